"""limits: requests and tokens per minute, concurrent streams and spend budgets per person,
organisation and key, and the default per person (issue 15)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "limits",
        # default | user | org | key; the target is the user's or org's id, the key's id, or "".
        sa.Column("scope", sa.String(8), primary_key=True),
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("concurrent", sa.Integer(), nullable=True),
        sa.Column("budget", sa.Numeric(18, 6), nullable=True),
        sa.Column("period", sa.String(8), nullable=True),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limits")
