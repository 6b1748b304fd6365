"""Benchmark: how much do policy checks add to an import?

Run with `python benchmarks/checks_import.py [--quick] [--database sqlite|postgresql]`.
It writes N generated tau-airline records (scale_data's generator, ~17 KB each) to a JSON
Lines file, then imports it into a fresh migrated store twice per round: once for an agent
with no check file, once for an agent with deployments/checks.example.yaml registered (all
eight airline checks run on every record inside the bulk path and their results stored).
It prints the best time of each over the rounds and the time the checks add; the target
is at most 25 %. It also prints the checks' own cost per conversation, measured alone.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlmodel import Session, func, select

from agentops.agents.service import ensure_version, register_agent
from agentops.checks.config import load_check_file
from agentops.checks.service import register_check_set
from agentops.ingestion.files import read_records
from agentops.ingestion.service import import_conversations
from agentops.store.models import ConversationCheck
from scale_data import migrated_engine, scratch_database, tau_conversations, write_jsonl

PACK = Path(__file__).resolve().parents[1] / "deployments" / "checks.example.yaml"


def timed_import(kind: str, path: Path, *, with_checks: bool) -> tuple[float, int]:
    """Seconds to import the file into a fresh store, and check rows stored."""
    with scratch_database(kind) as url:
        engine = migrated_engine(url)
        with Session(engine) as session:
            agent = register_agent(
                session, name="airline-assistant", owner_email="o@bench.io",
                backup_email="b@bench.io", actor="bench",
            )  # fmt: skip
            version = ensure_version(session, agent=agent, version="v1", actor="bench")
            if with_checks:
                register_check_set(
                    session, agent=agent, text=PACK.read_text(), source=str(PACK), actor="bench"
                )
            session.commit()
            start = time.perf_counter()
            import_conversations(
                session, agent=agent, version=version, records=read_records(path),
                actor="bench", parallel_parse=True,
            )  # fmt: skip
            session.commit()
            seconds = time.perf_counter() - start
            stored = session.exec(select(func.count()).select_from(ConversationCheck)).one()
        engine.dispose()
        return seconds, stored


def checks_alone() -> float:
    """Milliseconds the eight checks take on one tau conversation, on their own."""
    suite, _ = load_check_file(PACK)
    conversations = [record["traj"] for record in tau_conversations()]
    start = time.perf_counter()
    for _ in range(5):
        for messages in conversations:
            suite.run(messages)
    return (time.perf_counter() - start) / (5 * len(conversations)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 records, 2 rounds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    count = args.records or (2_000 if args.quick else 10_000)
    rounds = args.rounds or (2 if args.quick else 3)
    print(f"checks alone: {checks_alone():.3f} ms per conversation (8 airline checks)")
    with tempfile.TemporaryDirectory() as folder:
        path = write_jsonl(Path(folder) / "records.jsonl", count)
        plain, checked = [], []
        for _ in range(rounds):
            plain.append(timed_import(args.database, path, with_checks=False)[0])
            seconds, stored = timed_import(args.database, path, with_checks=True)
            checked.append(seconds)
            assert stored == count, f"expected {count} check rows, found {stored}"
    best_plain, best_checked = min(plain), min(checked)
    print(f"{args.database}, {count} records, best of {rounds}:")
    print(f"  import without checks: {best_plain:.2f} s ({count / best_plain:,.0f} records/s)")
    print(f"  import with checks:    {best_checked:.2f} s ({count / best_checked:,.0f} records/s)")
    added = (best_checked / best_plain - 1) * 100
    print(f"  added by checks:       {added:+.1f} % (target <= 25 %)")


if __name__ == "__main__":
    main()
