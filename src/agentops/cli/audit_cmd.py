"""`agentops audit …`: read, seal, sign, export and verify the decision trail."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table
from sqlmodel import Session

from agentops.audit.chain import canonical_json
from agentops.audit.checkpoints import Checkpoint, CheckpointError
from agentops.audit.export import ExportError, file_sha256, verify_export, write_export
from agentops.audit.periods import parse_moment
from agentops.audit.retention import (
    ArchivedRange,
    checked_archive,
    confirm_purge,
    purge_admin,
    request_purge,
)
from agentops.audit.service import (
    Verification,
    event_count,
    export_records,
    iter_events,
    record_event,
    seal_all,
    seal_visible,
    take_checkpoint,
    tree_head,
    verify_trail,
    verify_with_checkpoints,
)
from agentops.audit.signing import (
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_path,
)
from agentops.cli.common import (
    acting_user,
    console,
    fail,
    store_session,
    user_errors,
    warn,
)
from agentops.cli.safe_text import styled
from agentops.settings import get_settings
from agentops.store.db import engine_scope
from agentops.store.migrate import ensure_schema
from agentops.store.models import utcnow

app = typer.Typer(help="Read, seal, sign, export and verify the tamper-evident decision trail.")


@app.command("log")
@user_errors
def log(
    kind: str | None = typer.Option(None, help="Only kinds starting with this, e.g. approval."),
    entity: str | None = typer.Option(None, help="Only this entity, e.g. action:3."),
    limit: int = typer.Option(50, min=1, max=1_000_000, help="Show the newest N events."),
) -> None:
    """Show the newest audit events."""
    with store_session() as session:
        events = list(iter_events(session, kind_prefix=kind, entity=entity, newest=limit))
        if not events:
            console.print("No audit events match.")
            return
        table = Table("seq", "when (UTC)", "actor", "via", "event", "entity", "details")
        for event in events:
            table.add_row(
                str(event.seq),
                f"{event.occurred_at:%Y-%m-%d %H:%M:%S}",
                event.actor,
                event.channel or "",
                event.kind,
                f"{event.entity_type}:{event.entity_id}",
                _short(canonical_json(event.payload)),
            )
        console.print(table)


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("seal")
@user_errors
def seal() -> None:
    """Seal recorded events now (the sequencer also runs after each commit and on schedule)."""
    with engine_scope() as engine:
        ensure_schema(engine)
        sealed = seal_all(engine)
    console.print(f"Sealed {sealed} pending event(s).")


@app.command("keygen")
@user_errors
def keygen(
    key: Path | None = typer.Option(None, help="Private key file (default: the setting)."),
) -> None:
    """Create the Ed25519 key that signs checkpoints and export manifests."""
    path = key or get_settings().audit_signing_key
    pub = generate_key(path)
    fingerprint = key_id(load_public_key(pub))
    console.print(f"Signing key written to {path} (keep it private); public key: {pub}.")
    console.print(f"Key id {fingerprint}: give auditors the public key, never the private one.")


@app.command("checkpoint")
@user_errors
def checkpoint(
    directory: Path | None = typer.Option(None, "--dir", help="Where checkpoints go."),
    key: Path | None = typer.Option(None, help="Private key file (default: the setting)."),
) -> None:
    """Sign the chain head (size, hash, Merkle root, time) into a file, and post it to Slack."""
    settings = get_settings()
    signing_key = load_private_key(key or settings.audit_signing_key)
    target = directory or settings.audit_checkpoint_dir
    with store_session() as session:
        signed = take_checkpoint(session, directory=target, key=signing_key)
    console.print(
        f"Checkpoint of {signed.tree_size} events written to {signed.path} "
        f"(chain head {signed.body['chain_head'][:16]}…)."
    )
    _post_to_slack(signed)


def _post_to_slack(signed: Checkpoint) -> None:
    settings = get_settings()
    if settings.slack_bot_token is None or not settings.audit_slack_channel:
        return
    from agentops.adapters.slack_audit import post_checkpoint

    try:
        post_checkpoint(
            signed,
            token=settings.slack_bot_token.get_secret_value(),
            channel=settings.audit_slack_channel,
        )
    except Exception as exc:  # the file copy is written; Slack is a second copy
        warn(f"checkpoint not posted to Slack: {exc}")
        return
    console.print(f"Posted to Slack channel {settings.audit_slack_channel}.")


@app.command("export")
@user_errors
def export(
    output: Path = typer.Option(..., "--output", "-o", help="New directory to write."),
    since: str | None = typer.Option(None, help="From this moment: 30d, 12h or a date (UTC)."),
    until: str | None = typer.Option(None, help="Before this moment: 1d or a date (UTC)."),
    agent: str | None = typer.Option(None, help="Only this agent's events."),
    key: Path | None = typer.Option(None, help="Private key file (default: the setting)."),
) -> None:
    """Export events.jsonl, events.csv and a signed manifest.json for an auditor."""
    now = utcnow()
    start = parse_moment(since, now=now, option="--since") if since else None
    end = parse_moment(until, now=now, option="--until") if until else None
    signing_key = load_private_key(key or get_settings().audit_signing_key)
    with store_session() as session:
        seal_visible(session)
        summary = write_export(
            output,
            records=export_records(session, since=start, until=end, agent=agent),
            key=signing_key,
            head=tree_head(session),
            filters={"since": _iso(start), "until": _iso(end), "agent": agent},
            created_at=now,
        )
    span = (
        f"seq {summary.first_seq}-{summary.last_seq}" if summary.events else "no events matched"
    )
    console.print(f"Exported {summary.events} events ({span}) to {output}/ with manifest.json.")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@app.command("archive")
@user_errors
def archive(
    before: str = typer.Option(..., help="Archive events before this moment: a date or 400d."),
    output: Path = typer.Option(..., "--output", "-o", help="New directory for the archive."),
    as_email: str | None = typer.Option(None, "--as", help="Who archives (default: env)."),
    key: Path | None = typer.Option(None, help="Private key file (default: the setting)."),
) -> None:
    """Export and checkpoint everything before a date; nothing is deleted (admins)."""
    actor = acting_user(as_email)
    now = utcnow()
    end = parse_moment(before, now=now, option="--before")
    signing_key = load_private_key(key or get_settings().audit_signing_key)
    with store_session() as session:
        actor = purge_admin(session, email=actor, what="archiving the trail").email
        seal_visible(session)
        summary = write_export(
            output,
            records=export_records(session, until=end),
            key=signing_key,
            head=tree_head(session),
            filters={"since": None, "until": end.isoformat(), "agent": None},
            created_at=now,
        )
        signed = take_checkpoint(session, directory=output / "checkpoints", key=signing_key)
        manifest_sha256 = file_sha256(output / "manifest.json")
        # The trail itself records that this range left the building, and which archive.
        record_event(
            session,
            actor=actor,
            kind="audit.archived",
            entity_type="audit",
            entity_id=f"{summary.first_seq}-{summary.last_seq}",
            payload={
                "before": end.isoformat(),
                "events": summary.events,
                "first_seq": summary.first_seq,
                "last_seq": summary.last_seq,
                "manifest_sha256": manifest_sha256,
                "checkpoint_tree_size": signed.tree_size,
            },
            channel="cli",
        )
    console.print(
        f"Archived {summary.events} events before {end:%Y-%m-%d %H:%M} UTC to {output}/ "
        f"(manifest SHA-256 {manifest_sha256[:16]}…); nothing was deleted."
    )


def _verified_archive(
    session: Session, archive_dir: Path, public_key: Path | None
) -> ArchivedRange:
    """The archive's range after checking its signature with the public key."""
    key = load_public_key(public_key or public_key_path(get_settings().audit_signing_key))
    return _archive_or_fail(
        lambda: checked_archive(session, directory=archive_dir, public_key=key)
    )


@app.command("purge-request")
@user_errors
def purge_request(
    archive_dir: Path = typer.Option(..., "--archive", help="The archive of the range."),
    as_email: str | None = typer.Option(None, "--as", help="Who asks: an admin (default: env)."),
    public_key: Path | None = typer.Option(None, "--public-key", help="Default: the setting."),
) -> None:
    """Ask to remove an archived range; a second admin confirms from their web session."""
    actor = acting_user(as_email)
    min_age = get_settings().audit_purge_min_age_days
    with store_session() as session:
        archived = _verified_archive(session, archive_dir, public_key)
        request_purge(session, archive=archived, actor=actor, min_age_days=min_age)
    console.print(
        f"Removal of events {archived.first_seq}-{archived.last_seq} requested by {actor}; "
        "a second admin gets a one-time confirmation at /admin/purge (signed in on the web) "
        "and runs `agentops audit purge-confirm --archive DIR --confirmation CODE`.",
        soft_wrap=True,
    )


@app.command("purge-confirm")
@user_errors
def purge_confirm(
    archive_dir: Path = typer.Option(..., "--archive", help="The archive of the range."),
    confirmation: str = typer.Option(
        ...,
        "--confirmation",
        help="The one-time code the second admin got at /admin/purge in their web session.",
    ),
    public_key: Path | None = typer.Option(None, "--public-key", help="Default: the setting."),
) -> None:
    """Redeem a second admin's confirmation: delete the range, leave a tombstone."""
    min_age = get_settings().audit_purge_min_age_days
    with store_session() as session:
        archived = _verified_archive(session, archive_dir, public_key)
        removed = confirm_purge(
            session, archive=archived, confirmation=confirmation, min_age_days=min_age
        )
    console.print(
        f"Removed {removed} archived events ({archived.first_seq}-{archived.last_seq}); "
        f"tombstone records archive manifest {archived.manifest_sha256[:16]}…."
    )


def _archive_or_fail(check: Callable[[], ArchivedRange]) -> ArchivedRange:
    try:
        return check()
    except ExportError as exc:
        raise fail(str(exc)) from None


@app.command("verify-export")
@user_errors
def verify_export_cmd(
    directory: Path = typer.Argument(..., help="The export directory."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="The signer's public key (default: the setting's .pub)."
    ),
) -> None:
    """Check an export's signature, file digests and event hashes, without the database."""
    key = load_public_key(public_key or public_key_path(get_settings().audit_signing_key))
    try:
        check = verify_export(directory, public_key=key)
    except ExportError as exc:
        raise fail(str(exc)) from None
    if check.problems:
        for problem in check.problems:
            console.print(problem, style="red")
        console.print(
            styled(("export does not verify", "bold red"), f": {len(check.problems)} problem(s).")
        )
        raise typer.Exit(1)
    console.print(
        styled(
            ("export verified", "green"),
            f": {check.events} events, files match the signed manifest (key {key_id(key)}).",
        )
    )


@app.command("verify")
@user_errors
def verify(
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Also check every signed checkpoint in this directory."
    ),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="The signer's public key (default: the setting's .pub)."
    ),
) -> None:
    """Recompute the hash chain and Merkle tree; exit 1 if anything was altered or removed."""
    with engine_scope() as engine:
        ensure_schema(engine)
        seal_all(engine)
    unusable: list[str] = []
    checked = 0
    with store_session() as session:
        if checkpoints is None:
            result = verify_trail(session)
        else:
            key = load_public_key(public_key or public_key_path(get_settings().audit_signing_key))
            try:
                result, unusable, checked = verify_with_checkpoints(
                    session, directory=checkpoints, public_key=key
                )
            except CheckpointError as exc:
                raise fail(str(exc)) from None
        count = event_count(session)
    _report(result, unusable=unusable, checked=checked, count=count)


def _report(result: Verification, *, unusable: list[str], checked: int, count: int) -> None:
    for message in unusable:
        console.print(message, style="red")
    for problem in result.problems:
        console.print(styled((f"event {problem.seq}", "red"), f": {problem.reason}"))
    if result.more_problems:
        console.print(f"… and {result.more_problems} more problem(s)", style="red")
    against = f", {checked} signed checkpoint(s) match" if checked else ""
    if result.intact and not unusable:
        console.print(
            styled(
                ("intact", "green"),
                f": {count} events, hash chain and Merkle root "
                f"{result.merkle_root[:16]}… verified{against}.",
            )
        )
        return
    total = len(result.problems) + result.more_problems + len(unusable)
    console.print(styled(("tampered", "bold red"), f": {total} problem(s) in {count} events."))
    raise typer.Exit(1)
