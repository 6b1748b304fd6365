"""audit trail append-only in the database; pending entries for the sequencer

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 03:00:00

Raw SQL can no longer change or delete audit events: BEFORE UPDATE/DELETE triggers
raise on both SQLite and PostgreSQL (and TRUNCATE on PostgreSQL). Writers now insert
into `auditpending` and the sequencer seals those entries into `auditevent`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
APPEND_ONLY = "audit events are append-only"
PENDING_FIXED = "pending audit entries cannot be changed"

SQLITE_TRIGGERS = {
    "auditevent_no_update": ("BEFORE UPDATE ON auditevent", APPEND_ONLY),
    "auditevent_no_delete": ("BEFORE DELETE ON auditevent", APPEND_ONLY),
    "auditpending_no_update": ("BEFORE UPDATE ON auditpending", PENDING_FIXED),
}

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION agentops_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'auditpending' THEN
        RAISE EXCEPTION '{PENDING_FIXED}' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION '{APPEND_ONLY} (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""

POSTGRES_TRIGGERS = {
    "auditevent_append_only": "BEFORE UPDATE OR DELETE ON auditevent FOR EACH ROW",
    "auditevent_no_truncate": "BEFORE TRUNCATE ON auditevent FOR EACH STATEMENT",
    "auditpending_no_update": "BEFORE UPDATE ON auditpending FOR EACH ROW",
}


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy) so SQLite keeps the table, and later its triggers.
    op.add_column("auditevent", sa.Column("channel", sqlmodel.sql.sqltypes.AutoString()))
    op.add_column(
        "auditevent", sa.Column("correlation_id", sqlmodel.sql.sqltypes.AutoString())
    )
    op.create_index("ix_auditevent_correlation_id", "auditevent", ["correlation_id"])
    op.add_column("auditchainhead", sa.Column("merkle_frontier", sa.JSON()))
    op.create_table(
        "auditpending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("correlation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entity_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entity_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The head row exists from the start, so concurrent sequencers never race to create it.
    op.execute(
        f"INSERT INTO auditchainhead (id, seq, hash) SELECT 1, 0, '{GENESIS_HASH}' "
        "WHERE NOT EXISTS (SELECT 1 FROM auditchainhead WHERE id = 1)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for name, when in POSTGRES_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION agentops_audit_refuse()"
            )
    else:
        for name, (when, message) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{message}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, when in POSTGRES_TRIGGERS.items():
            table = when.split(" ON ")[1].split()[0]
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS agentops_audit_refuse()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("auditpending")
    with op.batch_alter_table("auditchainhead", schema=None) as batch_op:
        batch_op.drop_column("merkle_frontier")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index("ix_auditevent_correlation_id")
        batch_op.drop_column("correlation_id")
        batch_op.drop_column("channel")
