"""the misuse guard: flags per person, hold cases, and the hold on a person's controlled models

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("usage_hold", sa.String(16), nullable=True))
    op.create_table(
        "guard_cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("opened_at", UTC_TIME, nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Column("decided_by", sa.String(320), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
    )
    op.create_table(
        "guard_flags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("score_milli", sa.Integer(), nullable=False),
        sa.Column("decision_index", sa.BigInteger(), nullable=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("excerpt_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False, index=True),
        sa.Column("cleared_at", UTC_TIME, nullable=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("guard_cases.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("guard_flags")
    op.drop_table("guard_cases")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("usage_hold")
