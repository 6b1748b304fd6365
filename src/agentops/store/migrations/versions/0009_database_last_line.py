"""security: purge confirmations, session versions; on PostgreSQL the database guards the trail

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:30:00

Both databases: `purgeconfirmation` (one-time confirmations a second admin gets in their
web session) and `person.session_version` (bumped by sign-out and role changes, so a saved
cookie stops working).

PostgreSQL only (SQLite has no roles, so nothing there would stop a writer anyway):
- pending entries are checked on insert: the time must be the database's own (within
  MAX_SKEW_S) and a web or Slack actor named by email must be a registered person;
- the sequencer locks the head and seals through SECURITY DEFINER functions that copy the
  pending rows themselves, so the application role needs no INSERT on `auditevent`, no
  DELETE on `auditpending` and no UPDATE on `auditchainhead` (docs/security.md grants);
- role and ownership changes in `person` and `agent` write a trail entry in the same
  transaction, whoever makes them;
- audit events younger than the minimum age cannot be deleted, even by the owner with the
  append-only trigger off (`agentops.purge_min_age_days`, 365 when unset).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_SKEW_S = 300

POSTGRES_UP = [
    f"""
CREATE FUNCTION agentops_pending_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF abs(extract(epoch FROM NEW.occurred_at - clock_timestamp())) > {MAX_SKEW_S} THEN
        RAISE EXCEPTION 'audit entry time % is not the database''s time', NEW.occurred_at
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.channel IN ('web', 'slack') AND position('@' IN NEW.actor) > 0
       AND NOT EXISTS (SELECT 1 FROM person WHERE email = NEW.actor) THEN
        RAISE EXCEPTION 'audit actor % on % is not a registered person', NEW.actor, NEW.channel
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
""",
    "CREATE TRIGGER auditpending_checked BEFORE INSERT ON auditpending "
    "FOR EACH ROW EXECUTE FUNCTION agentops_pending_check()",
    """
CREATE FUNCTION agentops_lock_audit_head(p_wait boolean)
RETURNS TABLE(o_seq integer, o_hash varchar, o_frontier json)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_wait THEN
        RETURN QUERY SELECT h.seq, h.hash::varchar, h.merkle_frontier
            FROM auditchainhead h WHERE h.id = 1 FOR UPDATE;
    ELSE
        RETURN QUERY SELECT h.seq, h.hash::varchar, h.merkle_frontier
            FROM auditchainhead h WHERE h.id = 1 FOR UPDATE SKIP LOCKED;
    END IF;
END
$$
""",
    """
CREATE FUNCTION agentops_seal_audit(p_ids integer[], p_hashes text[], p_frontier json)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head_seq integer;
    head_hash varchar;
    sealed integer;
BEGIN
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_hashes) OR cardinality(p_ids) = 0 THEN
        RAISE EXCEPTION 'one hash per pending entry, at least one';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(p_ids) x) <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'pending entries listed twice';
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM auditchainhead WHERE id = 1 FOR UPDATE;
    -- The rows are copied from auditpending here, never taken from the caller: sealing
    -- can move an entry into the chain but cannot change or drop it.
    INSERT INTO auditevent (seq, occurred_at, actor, kind, entity_type, entity_id, payload,
                            prev_hash, hash, channel, correlation_id)
    SELECT head_seq + x.i, p.occurred_at, p.actor, p.kind, p.entity_type, p.entity_id,
           p.payload::json,
           CASE WHEN x.i = 1 THEN head_hash ELSE p_hashes[x.i - 1] END,
           p_hashes[x.i], p.channel, p.correlation_id
    FROM unnest(p_ids) WITH ORDINALITY AS x(id, i)
    JOIN auditpending p ON p.id = x.id
    ORDER BY x.i;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    IF sealed <> cardinality(p_ids) THEN
        RAISE EXCEPTION 'only pending entries can be sealed';
    END IF;
    DELETE FROM auditpending WHERE id = ANY(p_ids);
    UPDATE auditchainhead
        SET seq = head_seq + sealed, hash = p_hashes[sealed], merkle_frontier = p_frontier
        WHERE id = 1;
    RETURN sealed;
END
$$
""",
    # The trail hashes payload text as written and exports re-serialise it the way Python's
    # canonical_json does (sorted keys, no spaces, ASCII): text outside printable ASCII is
    # recorded as its SHA-256 so the two always agree.
    """
CREATE FUNCTION agentops_canonical(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    plain text;
BEGIN
    IF value IS NULL OR jsonb_typeof(value) = 'null' THEN
        RETURN 'null';
    ELSIF jsonb_typeof(value) IN ('number', 'boolean') THEN
        RETURN value::text;
    END IF;
    plain := value #>> '{}';
    IF plain !~ '^[ -~]*$' THEN
        plain := 'sha256:' || encode(sha256(convert_to(plain, 'UTF8')), 'hex');
    END IF;
    RETURN to_json(plain)::text;
END
$$
""",
    """
CREATE FUNCTION agentops_governed_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    before jsonb := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END;
    after jsonb := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END;
    watched text[] := CASE TG_TABLE_NAME
        WHEN 'person' THEN ARRAY['email', 'role', 'slack_user_id']
        ELSE ARRAY['backup_id', 'name', 'owner_id'] END;
    parts text[] := ARRAY[]::text[];
    name text;
BEGIN
    FOREACH name IN ARRAY watched LOOP  -- already in sorted order
        IF (before -> name) IS DISTINCT FROM (after -> name) THEN
            parts := parts || (to_json(name)::text || ':{"from":'
                || agentops_canonical(before -> name) || ',"to":'
                || agentops_canonical(after -> name) || '}');
        END IF;
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO auditpending (occurred_at, actor, channel, kind, entity_type, entity_id, payload)
    VALUES (clock_timestamp(), 'db:' || session_user, 'db', 'db.' || TG_TABLE_NAME || '_changed',
            TG_TABLE_NAME, coalesce(after ->> 'id', before ->> 'id'),
            '{"changed":{' || array_to_string(parts, ',') || '},"operation":'
                || to_json(lower(TG_OP))::text || '}');
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER person_audited AFTER INSERT OR UPDATE OR DELETE ON person "
    "FOR EACH ROW EXECUTE FUNCTION agentops_governed_change()",
    "CREATE TRIGGER agent_audited AFTER INSERT OR UPDATE OR DELETE ON agent "
    "FOR EACH ROW EXECUTE FUNCTION agentops_governed_change()",
    """
CREATE FUNCTION agentops_audit_min_age() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    days integer := coalesce(
        nullif(current_setting('agentops.purge_min_age_days', true), '')::integer, 365);
BEGIN
    IF OLD.occurred_at > clock_timestamp() - make_interval(days => days) THEN
        RAISE EXCEPTION 'audit event % is younger than the minimum age of % days', OLD.seq, days
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$
""",
    "CREATE TRIGGER auditevent_min_age BEFORE DELETE ON auditevent "
    "FOR EACH ROW EXECUTE FUNCTION agentops_audit_min_age()",
]

POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS auditevent_min_age ON auditevent",
    "DROP FUNCTION IF EXISTS agentops_audit_min_age()",
    "DROP TRIGGER IF EXISTS agent_audited ON agent",
    "DROP TRIGGER IF EXISTS person_audited ON person",
    "DROP FUNCTION IF EXISTS agentops_governed_change()",
    "DROP FUNCTION IF EXISTS agentops_canonical(jsonb)",
    "DROP FUNCTION IF EXISTS agentops_seal_audit(integer[], text[], json)",
    "DROP FUNCTION IF EXISTS agentops_lock_audit_head(boolean)",
    "DROP TRIGGER IF EXISTS auditpending_checked ON auditpending",
    "DROP FUNCTION IF EXISTS agentops_pending_check()",
]


def upgrade() -> None:
    op.add_column(
        "person", sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_table(
        "purgeconfirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_purgeconfirmation_person_id", "purgeconfirmation", ["person_id"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    op.drop_index("ix_purgeconfirmation_person_id", table_name="purgeconfirmation")
    op.drop_table("purgeconfirmation")
    with op.batch_alter_table("person") as batch_op:
        batch_op.drop_column("session_version")
