"""review on the web: fencing tokens, due times, not-applicable findings, skips, sign-in links,
sample plans with inclusion probabilities, double review, adjudication, disputes,
the rubric each agent names

Revision ID: 0005
Revises: 0006
Create Date: 2026-11-26 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(
            sa.Column("rubric_name", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    with op.batch_alter_table("reviewitem") as batch:
        batch.add_column(
            sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_index("ix_reviewitem_due_at", ["due_at"], unique=False)
        batch.add_column(sa.Column("inclusion_probability", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stratum", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(
            sa.Column("needs_second", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("final_violation", sa.Boolean(), nullable=True))
        batch.add_column(
            sa.Column("settled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("disputed_by_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("disputed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("dispute_reason", sa.Text(), nullable=True))
        batch.create_foreign_key("fk_reviewitem_disputed_by", "person", ["disputed_by_id"], ["id"])
    with op.batch_alter_table("sample") as batch:
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=True))
    with op.batch_alter_table("reviewfinding") as batch:
        batch.add_column(
            sa.Column("not_applicable", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "extrareview",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=True),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["review_item_id"], ["reviewitem.id"]),
        sa.ForeignKeyConstraint(["reviewer_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_extrareview_review_item_id", "extrareview", ["review_item_id"])
    op.create_table(
        "reviewskip",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("skipped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["review_item_id"], ["reviewitem.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("review_item_id", "person_id"),
    )
    op.create_index("ix_reviewskip_review_item_id", "reviewskip", ["review_item_id"])
    op.create_table(
        "loginlink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_loginlink_person_id", "loginlink", ["person_id"])
    op.create_table(
        "websecret",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("rubric_name")
    op.drop_table("websecret")
    op.drop_index("ix_loginlink_person_id", table_name="loginlink")
    op.drop_table("loginlink")
    op.drop_index("ix_extrareview_review_item_id", table_name="extrareview")
    op.drop_table("extrareview")
    op.drop_index("ix_reviewskip_review_item_id", table_name="reviewskip")
    op.drop_table("reviewskip")
    with op.batch_alter_table("reviewfinding") as batch:
        batch.drop_column("not_applicable")
    with op.batch_alter_table("sample") as batch:
        batch.drop_column("plan")
    with op.batch_alter_table("reviewitem") as batch:
        batch.drop_constraint("fk_reviewitem_disputed_by", type_="foreignkey")
        for column in (
            "dispute_reason",
            "disputed_at",
            "disputed_by_id",
            "settled_at",
            "final_violation",
            "stage",
            "needs_second",
        ):
            batch.drop_column(column)
        batch.drop_column("stratum")
        batch.drop_column("inclusion_probability")
        batch.drop_index("ix_reviewitem_due_at")
        batch.drop_column("due_at")
        batch.drop_column("lease_token")
