"""principals: suspended users, expiring API keys, licence authority and revocation

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

UTC_TIME = sa.DateTime(timezone=True)

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("suspended_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("suspended_reason", sa.Text, nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", UTC_TIME, nullable=True))
    with op.batch_alter_table("licences") as batch:
        batch.add_column(
            sa.Column("authority", sa.String(100), nullable=False, server_default="BIS")
        )
        batch.add_column(sa.Column("revoked_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("revoked_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licences") as batch:
        batch.drop_column("revoked_reason")
        batch.drop_column("revoked_at")
        batch.drop_column("authority")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
