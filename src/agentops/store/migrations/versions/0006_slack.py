"""slack: person.slack_user_id, the Slack outbox and the messages posted per action

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-26 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(
            sa.Column("slack_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.create_index(batch.f("ix_person_slack_user_id"), ["slack_user_id"], unique=True)
    op.create_table(
        "slackoutbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["action_id"], ["action.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_seq"),
    )
    with op.batch_alter_table("slackoutbox") as batch:
        batch.create_index(batch.f("ix_slackoutbox_action_id"), ["action_id"], unique=False)
        batch.create_index(batch.f("ix_slackoutbox_sent_at"), ["sent_at"], unique=False)
    op.create_table(
        "slackoutboxcursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "slackmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ts", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("thread_ts", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["action_id"], ["action.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action_id", "purpose"),
    )
    with op.batch_alter_table("slackmessage") as batch:
        batch.create_index(batch.f("ix_slackmessage_action_id"), ["action_id"], unique=False)


def downgrade() -> None:
    op.drop_table("slackmessage")
    op.drop_table("slackoutboxcursor")
    op.drop_table("slackoutbox")
    with op.batch_alter_table("person") as batch:
        batch.drop_index(batch.f("ix_person_slack_user_id"))
        batch.drop_column("slack_user_id")
