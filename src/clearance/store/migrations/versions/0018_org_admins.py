"""org admins: the members of an organisation who may declare its KYB details and owners in the
portal (issue 18)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "org_admins",
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("orgs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
        sa.Column("granted_by", sa.String(320), nullable=False),
        sa.Column("granted_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("org_admins")
