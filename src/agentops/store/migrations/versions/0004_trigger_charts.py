"""trigger charts: each trigger's CUSUM bank state per version

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-26 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triggerchart",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_version_id", sa.Integer(), nullable=False),
        sa.Column("trigger_set_id", sa.Integer(), nullable=False),
        sa.Column("trigger_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("cursor_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("cursor_id", sa.Integer(), nullable=True),
        sa.Column("max_seen_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agentversion.id"]),
        sa.ForeignKeyConstraint(["trigger_set_id"], ["triggerset.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_version_id", "trigger_set_id", "trigger_name"),
    )
    with op.batch_alter_table("triggerchart", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_triggerchart_agent_version_id"), ["agent_version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("triggerchart", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_triggerchart_agent_version_id"))
    op.drop_table("triggerchart")
