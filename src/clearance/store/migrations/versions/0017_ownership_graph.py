"""the ownership graph beyond declared owners: imported ownership files (FtM, BODS) with their
evidence, and the ownership carried by loaded list data (FtM `Ownership` records)

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ownership_imports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("orgs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("file_name", sa.String(400), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("root_ref", sa.String(200), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("imported_by", sa.String(320), nullable=False),
        sa.Column("imported_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "imported_holdings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "import_id",
            sa.Integer(),
            sa.ForeignKey("ownership_imports.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("record", sa.String(200), nullable=False),
        sa.Column("asset_ref", sa.String(200), nullable=False),
        sa.Column("asset_name", sa.String(400), nullable=False),
        sa.Column("owner_ref", sa.String(200), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_name", sa.String(400), nullable=False),
        sa.Column("owner_country", sa.String(2), nullable=True),
        sa.Column("owner_org_id", sa.Integer(), sa.ForeignKey("orgs.id"), nullable=True),
        sa.Column("percent", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("org_owners") as batch:
        batch.add_column(sa.Column("import_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ref", sa.String(200), nullable=True))
        batch.create_foreign_key(
            "fk_org_owners_import_id_ownership_imports",
            "ownership_imports",
            ["import_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "list_ownership",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("list_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("record_id", sa.String(200), primary_key=True),
        sa.Column("owner_id", sa.String(200), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_name", sa.String(400), nullable=False),
        sa.Column("asset_id", sa.String(200), nullable=False),
        sa.Column("asset_name", sa.String(400), nullable=False),
        sa.Column("asset_country", sa.String(2), nullable=True),
        sa.Column("percent", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("list_ownership")
    with op.batch_alter_table("org_owners") as batch:
        batch.drop_constraint("fk_org_owners_import_id_ownership_imports", type_="foreignkey")
        batch.drop_column("ref")
        batch.drop_column("import_id")
    op.drop_table("imported_holdings")
    op.drop_table("ownership_imports")
