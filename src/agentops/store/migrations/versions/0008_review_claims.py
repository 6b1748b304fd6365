"""review claims: an index in queue order over the items still in the queue

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = "status <> 'reviewed'"


def upgrade() -> None:
    # Claims take the oldest due open item: without this, every claim sorts the backlog.
    op.create_index(
        "ix_reviewitem_queue",
        "reviewitem",
        [sa.text("coalesce(due_at, created_at)"), "id"],
        postgresql_where=sa.text(QUEUED),
        sqlite_where=sa.text(QUEUED),
    )


def downgrade() -> None:
    op.drop_index("ix_reviewitem_queue", table_name="reviewitem")
