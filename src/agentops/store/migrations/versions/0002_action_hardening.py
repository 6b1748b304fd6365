"""actions: proposer identity, idempotency key, execution start, flags; admin role, cancelled

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_ENUM_VALUES = (("role", "admin"), ("actionstatus", "cancelled"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # SQLite stores enums as plain strings; PostgreSQL's enum types must learn the values.
        for enum_name, value in NEW_ENUM_VALUES:
            op.execute(f"ALTER TYPE {enum_name} ADD VALUE IF NOT EXISTS '{value}'")
    with op.batch_alter_table("action") as batch:
        batch.add_column(sa.Column("proposed_by_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.add_column(
            sa.Column("execution_started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("flag", sa.Text(), nullable=True))
        batch.create_foreign_key("fk_action_proposed_by", "person", ["proposed_by_id"], ["id"])


def downgrade() -> None:
    # PostgreSQL cannot drop enum values; 0001's downgrade drops the whole types.
    with op.batch_alter_table("action") as batch:
        batch.drop_constraint("fk_action_proposed_by", type_="foreignkey")
        batch.drop_column("flag")
        batch.drop_column("execution_started_at")
        batch.drop_column("idempotency_key")
        batch.drop_column("proposed_by_id")
