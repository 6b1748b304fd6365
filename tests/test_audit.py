import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from agentops.agents.service import register_agent
from agentops.audit.chain import ChainedEvent, event_hash, event_hash_from_text
from agentops.audit.checkpoints import checkpoint_files
from agentops.audit.export import render_events
from agentops.audit.merkle import (
    MerkleFrontier,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_inclusion,
)
from agentops.audit.periods import PeriodError, parse_moment
from agentops.audit.sealer import wait_until_sealed
from agentops.audit.service import (
    AuditTamperError,
    event_count,
    export_records,
    iter_events,
    pending_count,
    record_event,
    seal_all,
    take_checkpoint,
    tree_head,
    verify_chain,
    verify_trail,
    verify_with_checkpoints,
)
from agentops.audit.signing import generate_key, load_private_key, load_public_key
from agentops.store.models import AuditEvent, AuditPending, Person, Role
from audit_tamper import rewrite_forward, without_triggers


def _events(session: Session, n: int, **extra: object) -> None:
    for i in range(n):
        record_event(session, actor="t", kind=f"k{i}", entity_type="x", entity_id=i, **extra)  # type: ignore[arg-type]
    session.commit()
    _sealed(session)


def _sealed(session: Session) -> None:
    """Wait for this process's background sealer (PostgreSQL; SQLite seals at commit)."""
    assert wait_until_sealed(session.get_bind(), timeout=10)  # type: ignore[arg-type]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "keys" / "audit.key"
    return private, generate_key(private)


def test_chain_verifies_and_detects_edited_payload(session: Session) -> None:
    register_agent(
        session, name="airline", owner_email="o@x.io", backup_email="b@x.io", actor="test"
    )
    record_event(session, actor="t", kind="custom", entity_type="x", entity_id=1, payload={"a": 1})
    session.commit()
    events = list(iter_events(session))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert verify_chain(session) == []

    without_triggers(session, "UPDATE auditevent SET actor = 'mallory' WHERE seq = 2")
    problems = verify_chain(session)
    assert [p.seq for p in problems] == [2]
    assert "changed" in problems[0].reason


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE auditevent SET actor = 'mallory' WHERE seq = 1",
        "UPDATE auditevent SET hash = 'x'",
        "DELETE FROM auditevent WHERE seq = 2",
        "DELETE FROM auditevent",
    ],
)
def test_raw_sql_cannot_change_or_delete_events(session: Session, statement: str) -> None:
    _events(session, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        session.exec(text(statement))  # type: ignore[call-overload]
    session.rollback()
    assert event_count(session) == 3 and verify_chain(session) == []


def test_pending_entries_cannot_be_edited_before_sealing(engine: Engine) -> None:
    with Session(engine) as session:
        record_event(session, actor="t", kind="k", entity_type="x", entity_id=1)
        session.flush()
        with pytest.raises(DBAPIError, match="cannot be changed"):
            session.exec(text("UPDATE auditpending SET actor = 'mallory'"))  # type: ignore[call-overload]


def test_deleted_event_is_detected(session: Session) -> None:
    _events(session, 3)
    without_triggers(session, "DELETE FROM auditevent WHERE seq = 2")
    reasons = [p.reason for p in verify_chain(session)]
    assert any("missing" in r for r in reasons)


def test_orm_refuses_to_change_events(session: Session) -> None:
    _events(session, 1)
    event = session.exec(select(AuditEvent)).one()
    event.actor = "mallory"
    session.add(event)
    with pytest.raises(AuditTamperError):
        session.commit()


def test_writers_leave_entries_pending_and_are_sealed_after_commit(engine: Engine) -> None:
    with Session(engine) as session:
        # On PostgreSQL the database refuses a Slack actor who is not a registered person.
        session.add(Person(email="o@x.io", name="o", role=Role.owner))
        session.commit()
        seal_all(engine)  # PostgreSQL recorded the new person itself (migration 0009)
        sealed_before = event_count(session)
        entry = record_event(
            session,
            actor="o@x.io",
            kind="approval.decided",
            entity_type="action",
            entity_id=7,
            payload={"decision": "approve"},
            channel="slack",
            before={"status": "awaiting_approval"},
            after={"status": "approved"},
        )
        assert isinstance(entry, AuditPending) and pending_count(session) == 1
        assert event_count(session) == sealed_before
        session.commit()
        # Sealed at commit (SQLite) or by the background sealer the commit woke.
        _sealed(session)
    with Session(engine) as session:
        assert pending_count(session) == 0
        event = session.exec(select(AuditEvent).where(AuditEvent.kind == "approval.decided")).one()
        assert (event.seq, event.channel) == (sealed_before + 1, "slack")
        assert event.correlation_id == "action:7"
        assert event.payload["before"] == {"status": "awaiting_approval"}
        assert verify_chain(session) == []


def test_rolled_back_writer_leaves_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        record_event(session, actor="t", kind="k", entity_type="x", entity_id=1)
        session.rollback()
    with Session(engine) as session:
        assert pending_count(session) == 0 and event_count(session) == 0


def test_concurrent_writers_get_one_gapless_chain(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with Session(engine) as session:
                    record_event(session, actor=f"w{n}", kind="k", entity_type="x", entity_id=i)
                    session.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        assert [e.seq for e in iter_events(session)] == list(range(1, 61))
        result = verify_trail(session)
        assert result.intact and result.events == 60 and result.pending == 0
        assert result.merkle_root == tree_head(session).merkle_root


def test_newest_events_come_back_in_chain_order(session: Session) -> None:
    _events(session, 5)
    assert [e.kind for e in iter_events(session, newest=2)] == ["k3", "k4"]
    assert [e.kind for e in iter_events(session, kind_prefix="k1", newest=3)] == ["k1"]
    assert event_count(session) == 5


def test_fast_hash_matches_canonical_hash() -> None:
    when = datetime(2026, 11, 26, 3, 0, 0, 120000, tzinfo=UTC)
    payload = {"b": [1, {"z": None, "a": "é"}], "a": 1.5}
    event = ChainedEvent(1, when, "o@x.io", "k", "action", "3", payload, "cli", "action:3")
    from agentops.audit.chain import canonical_json

    fast = event_hash_from_text(
        seq=1,
        occurred_at=when.isoformat(),
        actor="o@x.io",
        kind="k",
        entity_type="action",
        entity_id="3",
        payload_text=canonical_json(payload),
        prev_hash="0" * 64,
        channel="cli",
        correlation_id="action:3",
    )
    assert fast == event_hash(event, "0" * 64)


def test_merkle_frontier_root_and_inclusion_proofs() -> None:
    hashes = [f"{i:064x}" for i in range(1, 14)]
    for size in range(1, len(hashes) + 1):
        frontier = MerkleFrontier()
        for h in hashes[:size]:
            frontier.append(h)
        restored = MerkleFrontier.from_json(frontier.to_json())
        assert restored.root() == frontier.root() and restored.size == size
        for index in range(size):
            proof = inclusion_proof(hashes[:size], index)
            assert verify_inclusion(
                event_hash_hex=hashes[index],
                index=index,
                tree_size=size,
                proof=proof,
                root=frontier.root(),
            )
        assert not verify_inclusion(
            event_hash_hex="f" * 64, index=0, tree_size=size, proof=proof, root=frontier.root()
        )
    three = MerkleFrontier()
    for h in hashes[:3]:
        three.append(h)
    leaves = [leaf_hash(h) for h in hashes[:3]]
    assert three.root() == node_hash(node_hash(leaves[0], leaves[1]), leaves[2]).hex()


def test_forward_rewrite_is_caught_by_checkpoints_naming_the_first_altered_event(
    session: Session, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "checkpoints"
    _events(session, 6)
    take_checkpoint(session, directory=directory, key=load_private_key(private))
    session.commit()
    _events(session, 4)
    take_checkpoint(session, directory=directory, key=load_private_key(private))
    session.commit()
    assert len(checkpoint_files(directory)) == 2

    rewrite_forward(session, seq=4, actor="mallory")
    assert verify_chain(session) == []  # the chain alone cannot see a careful forger

    result, unusable, checked = verify_with_checkpoints(
        session, directory=directory, public_key=load_public_key(public)
    )
    assert unusable == [] and checked == 2
    # Each checkpoint names the first event in its range that no longer matches.
    assert [p.seq for p in result.problems] == [4, 7]
    first = result.problems[0].reason
    assert "differs from signed checkpoint checkpoint-000000000006.json" in first


def test_checkpoints_catch_truncation_and_forged_files(
    session: Session, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    directory = tmp_path / "checkpoints"
    _events(session, 5)
    signed = take_checkpoint(session, directory=directory, key=load_private_key(private))
    session.commit()
    result, unusable, _ = verify_with_checkpoints(
        session, directory=directory, public_key=load_public_key(public)
    )
    assert result.intact and unusable == []

    without_triggers(
        session,
        "DELETE FROM auditevent WHERE seq = 5",
        "UPDATE auditchainhead SET seq = 4, hash = (SELECT hash FROM auditevent WHERE seq = 4), "
        "merkle_frontier = NULL",
    )
    result, _, _ = verify_with_checkpoints(
        session, directory=directory, public_key=load_public_key(public)
    )
    assert verify_chain(session) == []
    assert any("covers 5 events, the trail ends at 4" in p.reason for p in result.problems)

    signed.path.write_text(signed.path.read_text().replace('"tree_size": 5', '"tree_size": 4'))
    _, unusable, checked = verify_with_checkpoints(
        session, directory=directory, public_key=load_public_key(public)
    )
    assert checked == 0 and "signature does not match" in unusable[0]


def test_export_records_filter_by_time_and_agent(session: Session) -> None:
    register_agent(session, name="a1", owner_email="o@x.io", backup_email="b@x.io", actor="t")
    register_agent(session, name="a2", owner_email="o@x.io", backup_email="b@x.io", actor="t")
    session.commit()
    _sealed(session)
    all_records = list(export_records(session))
    mine = list(export_records(session, agent="a1"))
    assert 0 < len(mine) < len(all_records)
    assert all(r["payload"].get("agent", "a1") == "a1" or r["entity_type"] != "agent" for r in mine)
    later = datetime(2999, 1, 1, tzinfo=UTC)
    assert list(export_records(session, since=later)) == []
    jsonl = render_events(all_records[:1], fmt="jsonl")
    assert jsonl.count("\n") == 1 and '"seq":1' in jsonl
    assert render_events(all_records, fmt="csv").splitlines()[0].startswith("seq,occurred_at")
    with pytest.raises(ValueError):
        render_events(all_records, fmt="xml")


def test_parse_moment() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    assert parse_moment("30d", now=now) == datetime(2026, 10, 27, tzinfo=UTC)
    assert parse_moment("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(PeriodError, match="30x"):
        parse_moment("30x", now=now)


def test_audit_deployments_are_scheduled() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "deployments" / "serve_audit.py"
    spec = importlib.util.spec_from_file_location("serve_audit", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    crons = sorted(
        schedule.schedule.cron
        for deployment in module.build_deployments()
        for schedule in deployment.schedules or []
    )
    assert crons == ["* * * * *", "15 0 * * *"]


@pytest.mark.flows
@pytest.mark.usefixtures("prefect_harness")
def test_checkpoint_flow_signs_a_checkpoint(
    engine: Engine, keys: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.flows.audit_checkpoint import checkpoint_audit_trail, seal_audit_trail
    from agentops.settings import get_settings

    monkeypatch.setenv("AGENTOPS_AUDIT_SIGNING_KEY", str(keys[0]))
    get_settings.cache_clear()
    with Session(engine) as session:
        _events(session, 3)
    assert seal_audit_trail() == 0  # already sealed after the commit (and _events waited)
    result = checkpoint_audit_trail(directory=str(tmp_path / "cp"))
    assert result["tree_size"] == 3 and result["posted_to_slack"] is False
    assert Path(str(result["path"])).is_file()
    get_settings.cache_clear()


def test_checkpoint_is_posted_to_slack(
    session: Session, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    import json

    import httpx

    from agentops.adapters.slack_audit import post_checkpoint

    _events(session, 2)
    signed = take_checkpoint(session, directory=tmp_path, key=load_private_key(keys[0]))
    sent: list[dict[str, object]] = []

    def slack(request: httpx.Request) -> httpx.Response:
        sent.append({"auth": request.headers["authorization"], **json.loads(request.content)})
        return httpx.Response(200, json={"ok": sent[-1]["channel"] == "#audit"})

    post_checkpoint(signed, token="xoxb-t", channel="#audit", transport=httpx.MockTransport(slack))
    assert sent[0]["auth"] == "Bearer xoxb-t" and signed.body["chain_head"] in str(sent[0]["text"])
    with pytest.raises(RuntimeError, match="Slack refused"):
        post_checkpoint(signed, token="t", channel="#gone", transport=httpx.MockTransport(slack))


def test_a_decision_sealed_between_the_two_reads_is_still_found(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.audit import service

    _events(session, 1)
    record_event(session, actor="t", kind="approval.decided", entity_type="action", entity_id=7,
                 payload={"decision": "approve"})  # fmt: skip
    session.commit()
    _sealed(session)
    real = service._newest_sealed
    reads: list[str] = []

    def sealed_after_the_first_read(session: Session, **where: str) -> AuditEvent | None:
        # The first look at the chain happens before the sequencer moves the entry there;
        # by the look at the pending entries it has already moved.
        reads.append("sealed")
        return None if len(reads) == 1 else real(session, **where)

    monkeypatch.setattr(service, "_newest_sealed", sealed_after_the_first_read)
    found = service.find_decision_entry(
        session, kind="approval.decided", entity_type="action", entity_id="7"
    )
    assert found == ({"decision": "approve"}, True)
    assert reads == ["sealed", "sealed"]
