"""ownership screening and KYB: declared owners, each org's ownership status, legal details

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
KYB = (
    ("legal_name", 400),
    ("registration_number", 100),
    ("registry", 200),
    ("incorporation_country", 2),
    ("headquarters_country", 2),
    ("ultimate_parent", 400),
    ("ultimate_parent_country", 2),
)


def upgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(
            sa.Column("ownership_status", sa.String(16), nullable=False, server_default="clear")
        )
        batch.add_column(
            sa.Column("listed_owner_share", sa.Float(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("ownership_rule", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ownership_path", sa.JSON(), nullable=True))
        for name, size in KYB:
            batch.add_column(sa.Column(name, sa.String(size), nullable=True))
    op.create_table(
        "org_owners",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("orgs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("owner_org_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=True),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("declared_by", sa.String(320), nullable=False),
        sa.Column("declared_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("org_owners")
    with op.batch_alter_table("orgs") as batch:
        for column in (
            *(name for name, _ in KYB),
            "ownership_path",
            "ownership_rule",
            "listed_owner_share",
            "ownership_status",
        ):
            batch.drop_column(column)
