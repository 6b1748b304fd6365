"""Why the SQLite importer stores a chunk in multi-row INSERTs and shortens the switch interval.

An import parsed in the importer's own process runs two threads: one parses (pure Python,
holding the GIL) while the other stores chunks. sqlite3's `executemany` lets go of the GIL
around every row's step; with another thread busy, taking it back costs up to the switch
interval (5 ms by default) per row. This prints, on fresh SQLite stores:

- the importer's own rows for ROWS tau-airline records, stored by `executemany` alone,
  by `executemany` beside a busy Python thread, and by the importer's inserter (a few
  multi-row statements) beside the same busy thread;
- `import_conversations` of IMPORT_RECORDS records parsed in the process, with the
  writer's switch interval at Python's default (5 ms) and at the importer's 1 ms, the
  median of ROUNDS runs each.

    python benchmarks/import_gil.py [--rows N] [--records N] [--rounds N]
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import migrated_engine, scratch_database, write_jsonl
from scale_ingest import _registered, import_file, importer_row_builder

ROWS = 1_000
IMPORT_RECORDS = 10_000
ROUNDS = 3


@contextmanager
def busy_thread() -> Iterator[None]:
    """A thread running Python without pause, as the importer's parser does."""
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def importer_rows(path: Path, engine: Any, ids: tuple[int, int]) -> list[list[tuple[Any, ...]]]:
    """The importer's rows for the file, chunk by chunk, as its writer stores them."""
    from agentops.ingestion.bulk import bind_value
    from agentops.ingestion.files import read_records

    imported_at = bind_value("imported_at", datetime.now(UTC), engine.dialect)
    return [
        [(*ids, *values, imported_at) for values in chunk.values]
        for chunk in importer_row_builder(engine.dialect).chunks(read_records(path))
    ]


def store_seconds(path: Path, store: Callable[[Any, list[tuple[Any, ...]]], None]) -> float:
    """Seconds to store the file's rows, chunk by chunk, on a fresh store."""
    with scratch_database("sqlite") as url:
        engine = migrated_engine(url)
        chunks = importer_rows(path, engine, _registered(engine))
        with engine.connect() as connection:
            start = time.perf_counter()
            for rows in chunks:
                store(connection, rows)
                connection.commit()
            seconds = time.perf_counter() - start
        engine.dispose()
        return seconds


def by_executemany(connection: Any, rows: list[tuple[Any, ...]]) -> None:
    """Rows stored as the raw baseline stores them."""
    from agentops.ingestion.bulk import COLUMNS

    marks = ", ".join("?" for _ in COLUMNS)
    cursor = connection.connection.driver_connection.cursor()
    cursor.executemany(f"INSERT INTO conversation ({', '.join(COLUMNS)}) VALUES ({marks})", rows)
    cursor.close()


def by_importer(connection: Any, rows: list[tuple[Any, ...]]) -> None:
    """Rows stored by the importer's inserter."""
    from agentops.ingestion.bulk import ConversationInserter

    ConversationInserter(connection).insert(rows)


def import_seconds(path: Path, *, switch_interval: float) -> float:
    """Seconds for import_conversations of the file, parsed in this process."""
    from agentops.ingestion import service

    service.WRITER_SWITCH_INTERVAL_S = switch_interval
    workdir = Path(tempfile.gettempdir())
    return import_file("sqlite", path, workdir, parallel_parse=False)["seconds"]


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows stored (default {ROWS})")
    parser.add_argument("--records", type=int, default=IMPORT_RECORDS, help="records imported")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="imports per setting")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="agentops-import-gil-") as folder:
        rows_file = write_jsonl(Path(folder) / "rows.jsonl", args.rows)
        table = Table("how", "seconds", "rows/s", title=f"Storing {args.rows:,} importer rows")
        for label, store, busy in (
            ("executemany alone", by_executemany, False),
            ("executemany, a busy thread beside it", by_executemany, True),
            ("the importer's multi-row INSERTs, a busy thread beside them", by_importer, True),
        ):
            console.print(f"storing: {label}", style="dim")
            with busy_thread() if busy else nullcontext():
                seconds = store_seconds(rows_file, store)
            table.add_row(label, f"{seconds:.2f}", f"{args.rows / seconds:,.0f}")
        console.print(table)

        records_file = write_jsonl(Path(folder) / "records.jsonl", args.records)
        table = Table(
            "writer's switch interval",
            "median s",
            "records/s",
            title=f"import_conversations of {args.records:,} records parsed in the process "
            f"(median of {args.rounds})",
        )
        for interval in (0.005, 0.001):
            console.print(f"importing: switch interval {interval * 1000:g} ms", style="dim")
            runs = [
                import_seconds(records_file, switch_interval=interval) for _ in range(args.rounds)
            ]
            median = statistics.median(runs)
            table.add_row(
                f"{interval * 1000:g} ms", f"{median:.2f}", f"{args.records / median:,.0f}"
            )
        console.print(table)


if __name__ == "__main__":
    main()
