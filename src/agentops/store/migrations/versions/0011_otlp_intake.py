"""otlp intake: open conversations, their traces, the received spans and log records, and
the Langfuse pull's cursor

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07 22:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString()
    op.create_table(
        "otlpconversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("key", text, nullable=False),
        sa.Column("state", text, nullable=False),
        sa.Column("first_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "key"),
    )
    op.create_index("ix_otlpconversation_state_seen", "otlpconversation", ["state", "last_seen_at"])
    op.create_table(
        "otlptrace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("trace_id", text, nullable=False),
        sa.Column("conversation_key", text, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "trace_id"),
    )
    op.create_index(
        op.f("ix_otlptrace_conversation_key"), "otlptrace", ["conversation_key"], unique=False
    )
    op.create_table(
        "otlpitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("trace_id", text, nullable=False),
        sa.Column("item_key", text, nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "item_key"),
    )
    op.create_index("ix_otlpitem_agent_trace", "otlpitem", ["agent_id", "trace_id", "id"])
    op.create_table(
        "langfusecursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("from_start_time", text, nullable=True),
        sa.Column("pulled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("scores_through", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id"),
    )


def downgrade() -> None:
    op.drop_table("langfusecursor")
    op.drop_index("ix_otlpitem_agent_trace", table_name="otlpitem")
    op.drop_table("otlpitem")
    op.drop_index(op.f("ix_otlptrace_conversation_key"), table_name="otlptrace")
    op.drop_table("otlptrace")
    op.drop_index("ix_otlpconversation_state_seen", table_name="otlpconversation")
    op.drop_table("otlpconversation")
