"""window indexes: a version's conversations by (version, time) and (version, id), verdicts
by settlement and submission time, and the trigger chart's replay flag

Sampling selects a window through (agent_version_id, started_at, id) and evaluations read
what is new through it and (agent_version_id, id); the single-column indexes on
agent_version_id and agent_id are dropped (the first is the composite's prefix, the
second the unique key's), which also spares every insert two index updates.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.create_index(
            "ix_conversation_version_time", ["agent_version_id", "started_at", "id"]
        )
        batch.create_index("ix_conversation_version_id", ["agent_version_id", "id"])
        batch.drop_index("ix_conversation_agent_version_id")
        batch.drop_index("ix_conversation_agent_id")
    with op.batch_alter_table("reviewitem") as batch:
        batch.create_index("ix_reviewitem_settled_at", ["settled_at"])
    with op.batch_alter_table("review") as batch:
        batch.create_index("ix_review_submitted_at", ["submitted_at"])
    with op.batch_alter_table("triggerchart") as batch:
        batch.add_column(
            sa.Column("replay", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("triggerchart") as batch:
        batch.drop_column("replay")
    with op.batch_alter_table("review") as batch:
        batch.drop_index("ix_review_submitted_at")
    with op.batch_alter_table("reviewitem") as batch:
        batch.drop_index("ix_reviewitem_settled_at")
    with op.batch_alter_table("conversation") as batch:
        batch.create_index("ix_conversation_agent_id", ["agent_id"])
        batch.create_index("ix_conversation_agent_version_id", ["agent_version_id"])
        batch.drop_index("ix_conversation_version_id")
        batch.drop_index("ix_conversation_version_time")
