"""policy checks: check files, each conversation's results, and criteria naming checks

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-07 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rubriccriterion") as batch:
        batch.add_column(sa.Column("checks", sa.JSON(), nullable=True))
    op.create_table(
        "checkset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("loaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "content_sha256"),
    )
    op.create_index("ix_checkset_agent_id", "checkset", ["agent_id"])
    op.create_table(
        "conversationcheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("check_set_id", sa.Integer(), nullable=False),
        sa.Column("agent_version_id", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.ForeignKeyConstraint(["check_set_id"], ["checkset.id"]),
        sa.ForeignKeyConstraint(["agent_version_id"], ["agentversion.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "check_set_id"),
    )
    op.create_index(
        "ix_conversationcheck_version", "conversationcheck", ["agent_version_id", "check_set_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversationcheck_version", table_name="conversationcheck")
    op.drop_table("conversationcheck")
    op.drop_index("ix_checkset_agent_id", table_name="checkset")
    op.drop_table("checkset")
    with op.batch_alter_table("rubriccriterion") as batch:
        batch.drop_column("checks")
