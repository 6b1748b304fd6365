"""Insert conversation rows in bulk, letting the (agent_id, external_id) key skip stored ones.

One statement, `INSERT … ON CONFLICT (agent_id, external_id) DO NOTHING`, built with
SQLAlchemy Core for the session's dialect and run on the driver's cursor: psycopg sends a
whole batch in one pipeline and says per row whether it was stored (RETURNING); sqlite3
runs it row by row in C and says the same through rowcount. No SELECT, no set of ids
kept: a row already stored, by an earlier import or earlier in the same file, is simply
not inserted, and that is how it is counted as a duplicate.
"""

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
            # A fresh batch goes in one executemany (a C loop); only when its total shows
            # some rows were already stored is it redone row by row, to say which.
            cursor.execute("SAVEPOINT bulk_insert")
            cursor.executemany(self._sql, rows)
            if cursor.rowcount == len(rows):
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


_SQL: dict[str, str] = {}


def _insert_sql(dialect: Dialect) -> str:
    key = ["agent_id", "external_id"]
    if dialect.name == "postgresql":
        statement = postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=key)
        # RETURNING says row by row what was stored; positional parameters let rows go to
        # the driver as plain tuples.
        statement = statement.returning(_TABLE.c.id)
        dialect = type(dialect)(paramstyle="format")
    else:
        statement = sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=key)
    compiled = statement.compile(dialect=dialect, column_keys=list(COLUMNS))
    if tuple(compiled.positiontup or ()) != COLUMNS:
        raise RuntimeError("unexpected parameter order in the compiled bulk insert")
    return str(compiled)
