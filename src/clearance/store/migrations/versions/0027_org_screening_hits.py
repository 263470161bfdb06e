"""organisations' screening hits and the operator's resolutions of them

An organisation's matches were not stored, so no one could decide them and a false potential
match locked every member out. They get tables of their own, like the person's (0003), so the
person path keeps its keys.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "org_screening_hits",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(length=100), nullable=False),
        sa.Column("entry_id", sa.String(length=200), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("matched_name", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("screened_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_org_screening_hits_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "list_name", "entry_id", name=op.f("pk_org_screening_hits")
        ),
    )
    op.create_table(
        "org_screening_resolutions",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(length=100), nullable=False),
        sa.Column("entry_id", sa.String(length=200), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resolved_by", sa.String(length=200), nullable=False),
        sa.Column("resolved_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_org_screening_resolutions_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "list_name", "entry_id", name=op.f("pk_org_screening_resolutions")
        ),
    )


def downgrade() -> None:
    op.drop_table("org_screening_resolutions")
    op.drop_table("org_screening_hits")
