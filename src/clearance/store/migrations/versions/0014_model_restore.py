"""phased restore after a kill switch: the cohort a model is served to while it is widened

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("restore_percent", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("restore_orgs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("restore_internal", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("restore_internal")
        batch.drop_column("restore_orgs")
        batch.drop_column("restore_percent")
