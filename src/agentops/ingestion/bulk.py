"""Insert conversation rows in bulk, letting the (agent_id, external_id) key skip stored ones.

One statement, `INSERT … ON CONFLICT (agent_id, external_id) DO NOTHING`, built with
SQLAlchemy Core for the session's dialect and run on the driver's cursor: psycopg sends a
whole batch in one pipeline and says per row whether it was stored (RETURNING). On SQLite
the same statement with many VALUES tuples stores a batch in a few executions, and their
rowcounts say whether every row was new (if not, the batch is redone row by row to say
which). No SELECT, no set of ids kept: a row already stored, by an earlier import or
earlier in the same file, is simply not inserted, and that is how it is counted as a
duplicate.
"""

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from agentops.store.models import Conversation

COLUMNS = (
    "agent_id",
    "agent_version_id",
    "external_id",
    "started_at",
    "channel",
    "intent",
    "transcript",
    "escalated",
    "contained",
    "sentiment",
    "latency_ms",
    "task_success",
    "imported_at",
)
# The unique key an already stored conversation is recognised by.
CONFLICT_KEY = ("agent_id", "external_id")
# The transcript is serialised by the importer (orjson), not by SQLAlchemy's JSON type.
PRESERIALISED = frozenset({"transcript"})
_TABLE = Conversation.__table__  # type: ignore[attr-defined]

Row = tuple[Any, ...]


def bind_processors(dialect: Dialect) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, converter) for each column whose values the driver cannot take as they are.

    The column types' own converters, so a bulk row is stored exactly as the ORM would
    store it (e.g. SQLite's text form of started_at, which time-window queries compare).
    """
    found = []
    for position, name in enumerate(COLUMNS):
        if name in PRESERIALISED:
            continue
        processor = _TABLE.c[name].type._cached_bind_processor(dialect)
        if processor is not None:
            found.append((position, processor))
    return found


def bind_value(name: str, value: Any, dialect: Dialect) -> Any:
    """One column's value as the driver takes it (see bind_processors)."""
    processor = _TABLE.c[name].type._cached_bind_processor(dialect)
    return value if processor is None else processor(value)


class ConversationInserter:
    """Inserts rows (in COLUMNS order) on a connection; says which were new."""

    def __init__(self, connection: Connection) -> None:
        self.dialect = connection.dialect
        self._driver = connection.connection.driver_connection
        self._sql = _SQL.get(self.dialect.name) or _SQL.setdefault(
            self.dialect.name, _insert_sql(self.dialect)
        )

    def insert(self, rows: Sequence[Row]) -> list[bool]:
        """Insert rows inside the connection's transaction; True for each row stored."""
        if not rows:
            return []
        try:
            if self.dialect.name == "postgresql":
                return self._insert_postgresql(rows)
            return self._insert_sqlite(rows)
        except self.dialect.loaded_dbapi.Error as exc:
            # The driver's own error, raised as SQLAlchemy would have raised it, so callers
            # handle a locked or unreachable database the way they always have.
            raise DBAPIError.instance(
                self._sql, None, exc, self.dialect.loaded_dbapi.Error, dialect=self.dialect
            ) from exc

    def _insert_postgresql(self, rows: Sequence[Row]) -> list[bool]:
        with self._driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.executemany(self._sql, rows, returning=True)
            stored = []
            while True:
                stored.append(cursor.fetchone() is not None)
                if not cursor.nextset():
                    return stored

    def _insert_sqlite(self, rows: Sequence[Row]) -> list[bool]:
        cursor = self._driver.cursor()  # type: ignore[union-attr]
        try:
            # A fresh batch goes in as few multi-row statements as SQLite's bound on
            # parameters allows; only when their total shows some rows were already stored
            # is it redone row by row, to say which.
            cursor.execute("SAVEPOINT bulk_insert")
            if self._insert_many_sqlite(cursor, rows) == len(rows):
                cursor.execute("RELEASE bulk_insert")
                return [True] * len(rows)
            cursor.execute("ROLLBACK TO bulk_insert")
            cursor.execute("RELEASE bulk_insert")
            stored = []
            for row in rows:
                cursor.execute(self._sql, row)
                stored.append(cursor.rowcount == 1)
            return stored
        finally:
            cursor.close()

    def _insert_many_sqlite(self, cursor: Any, rows: Sequence[Row]) -> int:
        # Not executemany: sqlite3 lets go of the GIL around every row's step, and while
        # the importer's parser thread holds it, taking it back costs up to the 5 ms switch
        # interval per row. One statement per many rows pays that once. Statements come in
        # power-of-two sizes: sqlite3 caches each one with the values last bound to it, so
        # the few sizes together hold at most one batch of transcripts.
        limit = self._driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
        stored = start = 0
        for size in statement_sizes(len(rows), largest=limit // len(COLUMNS)):
            batch = rows[start : start + size]
            cursor.execute(_multi_row_sqlite(size), [v for row in batch for v in row])
            stored += cursor.rowcount
            start += size
        return stored


MAX_ROWS_PER_STATEMENT = 512


def statement_sizes(count: int, *, largest: int) -> list[int]:
    """Powers of two adding up to count, none above largest (or MAX_ROWS_PER_STATEMENT)."""
    cap = 1 << (max(1, min(largest, MAX_ROWS_PER_STATEMENT)).bit_length() - 1)
    sizes = []
    while count:
        size = min(cap, 1 << (count.bit_length() - 1))
        sizes.append(size)
        count -= size
    return sizes


def _multi_row_sqlite(count: int) -> str:
    marks = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO {_TABLE.name} ({', '.join(COLUMNS)}) VALUES {', '.join([marks] * count)} "
        f"ON CONFLICT ({', '.join(CONFLICT_KEY)}) DO NOTHING"
    )


_SQL: dict[str, str] = {}


def _insert_sql(dialect: Dialect) -> str:
    key = list(CONFLICT_KEY)
    if dialect.name == "postgresql":
        statement = postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=key)
        # RETURNING says row by row what was stored; positional parameters let rows go to
        # the driver as plain tuples.
        statement = statement.returning(_TABLE.c.id)  # type: ignore[assignment]
        dialect = type(dialect)(paramstyle="format")  # type: ignore[call-arg]
    else:
        statement = sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=key)  # type: ignore[assignment]
    compiled = statement.compile(dialect=dialect, column_keys=list(COLUMNS))
    if tuple(compiled.positiontup or ()) != COLUMNS:
        raise RuntimeError("unexpected parameter order in the compiled bulk insert")
    return str(compiled)
