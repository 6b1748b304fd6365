"""Scale benchmark, ingest part: bulk import speed and memory against the database's own.

Run with `python benchmarks/scale_ingest.py [--quick]` (benchmarks/scale.py runs it as one
part). For each size in ScaleOptions.ingest_sizes it writes that many generated
tau-airline records (about 17 KB each) to a JSON Lines file, then measures, each in a
fresh process on a fresh, migrated database:

- orjson parse alone: reading the file line by line with orjson, nothing else;
- raw bulk insert: the importer's own rows for the file (built untimed, chunk by chunk,
  by the importer's row builder, so every column and value is the same) stored with
  the fastest plain driver call, COPY on PostgreSQL and executemany on SQLite, committed
  every CHUNK_RECORDS rows like the importer; only the insert and commit are timed;
- the importer: `import_conversations` on `read_records(file)`, as `agentops import`
  runs it (on SQLite a big file is parsed in worker processes), timed from first read to
  last commit, with its peak memory (RSS of the process, and of its largest parse
  worker) and, on SQLite, the store's and its write-ahead log's size at the end.

The target is an importer at two-thirds of the raw insert rate or better, with memory
flat from 100k to 1M records. The files and stores are deleted as the run goes (1M
records is about 17 GB of JSON Lines and as much again of SQLite store).
"""

import argparse
import resource
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import (
    ScaleOptions,
    in_fresh_process,
    migrated_engine,
    scratch_database,
    write_jsonl,
)

RAW_METHOD = {"sqlite": "(executemany)", "postgresql": "(COPY)"}
QUICK_SIZES = (2_000, 5_000)
AGENT = "scale-airline"
VERSION = "v1"  # the version scale_data writes into every record


def parse_only(path: Path) -> float:
    """Seconds to read and parse every line of the file with orjson."""
    start = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
    return time.perf_counter() - start


def _registered(engine: Any) -> tuple[int, int]:
    from sqlmodel import Session

    from agentops.agents.service import ensure_version, register_agent

    with Session(engine) as session:
        agent = register_agent(
            session,
            name=AGENT,
            owner_email="owner@bench.io",
            backup_email="backup@bench.io",
            actor="bench",
        )
        version = ensure_version(session, agent=agent, version=VERSION, actor="bench")
        session.commit()
        return agent.id, version.id  # type: ignore[return-value]


def import_file(
    kind: str,
    path: Path,
    workdir: Path,
    *,
    parallel_parse: bool = True,
    read: Callable[[Path], Iterable[Any]] | None = None,
) -> dict[str, float]:
    """Import the file into a fresh store; seconds taken, records stored, store sizes.

    By default a big file is parsed in worker processes, as `agentops import` does, and
    read as JSON Lines or JSON; `read` names another reader (e.g. OTLP's).
    """
    from sqlmodel import Session

    from agentops.agents.service import get_agent, get_version
    from agentops.ingestion.files import read_records
    from agentops.ingestion.service import import_conversations

    with scratch_database(kind, workdir=workdir) as url:
        engine = migrated_engine(url)
        _registered(engine)
        with Session(engine) as session:
            agent = get_agent(session, name=AGENT)
            version = get_version(session, agent=agent, version=VERSION)
            start = time.perf_counter()
            report = import_conversations(
                session,
                agent=agent,
                version=version,
                records=(read or read_records)(path),
                actor="bench",
                source=str(path),
                parallel_parse=parallel_parse,
            )
            session.commit()
            seconds = time.perf_counter() - start
        result = {
            "seconds": seconds,
            "imported": report.imported,
            # Parse workers have exited by now: the largest one's peak RSS.
            "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            **_store_sizes(url),
        }
        engine.dispose()
        return result


def importer_row_builder(dialect: Any) -> Any:
    """The importer's own row builder and chunk sizes: the very same rows and commits."""
    from agentops.ingestion.rows import RowBuilder, RowSettings
    from agentops.ingestion.service import CHUNK_BYTES, CHUNK_RECORDS
    from agentops.ingestion.transcripts import DEFAULT_ESCALATION_TOOLS

    now = datetime.now(UTC)
    return RowBuilder(
        RowSettings(
            version=VERSION,
            started_at=now,
            escalation_tools=DEFAULT_ESCALATION_TOOLS,
            latest_allowed=now + timedelta(minutes=5),
            json_checked=True,
            dialect=type(dialect),
            chunk_records=CHUNK_RECORDS,
            chunk_bytes=CHUNK_BYTES,
        )
    )


def raw_insert(kind: str, path: Path, workdir: Path) -> dict[str, float]:
    """Store the importer's rows for the file with COPY / executemany; only that timed."""
    from agentops.ingestion.bulk import COLUMNS, bind_value
    from agentops.ingestion.files import read_records

    with scratch_database(kind, workdir=workdir) as url:
        engine = migrated_engine(url)
        agent_id, version_id = _registered(engine)
        dialect = engine.dialect
        builder = importer_row_builder(dialect)
        columns = ", ".join(COLUMNS)
        placeholders = ", ".join("?" for _ in COLUMNS)
        seconds = 0.0
        stored = 0
        with engine.connect() as connection:
            driver: Any = connection.connection.driver_connection
            for chunk in builder.chunks(read_records(path)):
                imported_at = bind_value("imported_at", datetime.now(UTC), dialect)
                rows = [(agent_id, version_id, *values, imported_at) for values in chunk.values]
                start = time.perf_counter()
                if kind == "postgresql":
                    with (
                        driver.cursor() as cursor,
                        cursor.copy(f"COPY conversation ({columns}) FROM STDIN") as copy,
                    ):
                        for row in rows:
                            copy.write_row(row)
                    driver.commit()
                else:
                    cursor = driver.cursor()
                    cursor.execute("BEGIN")
                    cursor.executemany(
                        f"INSERT INTO conversation ({columns}) VALUES ({placeholders})", rows
                    )
                    cursor.execute("COMMIT")
                    cursor.close()
                seconds += time.perf_counter() - start
                stored += len(rows)
        result = {"seconds": seconds, "imported": stored, **_store_sizes(url)}
        engine.dispose()
        return result


def _store_sizes(url: str) -> dict[str, float]:
    if not url.startswith("sqlite"):
        return {}
    store = Path(url.removeprefix("sqlite:///"))
    wal = store.with_name(store.name + "-wal")
    return {
        "store_mb": store.stat().st_size / 2**20,
        # SQLite reuses its WAL without shrinking it: its size now is its peak.
        "wal_mb": wal.stat().st_size / 2**20 if wal.exists() else 0.0,
    }


def run(options: ScaleOptions, console: Console) -> None:
    """Measure and print the ingest table: import against parse alone and raw insert."""
    rows: list[dict[str, Any]] = []
    for size in options.ingest_sizes:
        path = options.workdir / f"agentops-scale-ingest-{size}.jsonl"
        console.print(f"ingest: writing {size:,} generated records to {path}", style="dim")
        write_jsonl(path, size)
        try:
            parse_seconds, _ = in_fresh_process(parse_only, path)
            for kind in options.databases:
                console.print(f"ingest: {size:,} records on {kind}", style="dim")
                raw, _ = in_fresh_process(raw_insert, kind, path, options.workdir)
                imported, peak_mb = in_fresh_process(import_file, kind, path, options.workdir)
                if imported["imported"] != size or raw["imported"] != size:
                    raise RuntimeError(f"{kind}: expected {size} rows, got {imported} / {raw}")
                rows.append(
                    {
                        "kind": kind,
                        "size": size,
                        "parse": size / parse_seconds,
                        "raw": size / raw["seconds"],
                        "import": size / imported["seconds"],
                        "peak_mb": peak_mb,
                        "worker_mb": imported["worker_mb"],
                        "store_mb": imported.get("store_mb"),
                        "wal_mb": imported.get("wal_mb"),
                    }
                )
        finally:
            path.unlink(missing_ok=True)
    console.print(_table(rows))
    for kind in options.databases:
        peaks = {row["size"]: row["peak_mb"] for row in rows if row["kind"] == kind}
        if len(peaks) >= 2:
            small, large = sorted(peaks)[-2:]
            console.print(
                f"{kind}: importer peak memory {peaks[small]:.0f} MB at {small:,} records, "
                f"{peaks[large]:.0f} MB at {large:,} ({peaks[large] / peaks[small]:.2f}x)"
            )


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Ingest: records/s of tau-sized records (higher is better)")
    for header in (
        "db",
        "records",
        "orjson parse",
        "raw insert",
        "import",
        "import/raw",
        "import/parse",
        "peak MB",
        "store/WAL MB",
    ):
        table.add_column(header, justify="right")
    for row in rows:
        disk = (
            f"{row['store_mb']:,.0f}/{row['wal_mb']:,.0f}" if row["store_mb"] is not None else "-"
        )
        workers = f" +{row['worker_mb']:,.0f}" if row["worker_mb"] > 1 else ""
        table.add_row(
            row["kind"],
            f"{row['size']:,}",
            f"{row['parse']:,.0f}",
            f"{row['raw']:,.0f} {RAW_METHOD[row['kind']]}",
            f"{row['import']:,.0f}",
            f"{row['import'] / row['raw']:.2f}",
            f"{row['import'] / row['parse']:.2f}",
            f"{row['peak_mb']:,.0f}{workers}",
            disk,
        )
    table.caption = (
        "raw insert: the importer's rows, COPY (PostgreSQL) or executemany (SQLite), insert and "
        "commit timed alone; peak MB: the importer's process (+ its largest parse worker)"
    )
    return table


def main() -> None:
    """Standalone entry point: `python benchmarks/scale_ingest.py [--quick]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (2k, 5k)")
    parser.add_argument("--sizes", help="comma-separated record counts, e.g. 10000,100000")
    parser.add_argument("--databases", help="comma-separated: sqlite,postgresql")
    args = parser.parse_args()
    options = ScaleOptions()
    if args.quick:
        options = ScaleOptions(ingest_sizes=QUICK_SIZES)
    if args.sizes:
        options = ScaleOptions(ingest_sizes=tuple(int(n) for n in args.sizes.split(",")))
    if args.databases:
        options = ScaleOptions(
            ingest_sizes=options.ingest_sizes, databases=tuple(args.databases.split(","))
        )
    run(options, Console(width=140))


if __name__ == "__main__":
    main()
