"""models.input_price, models.output_price: what a model's tokens cost, for spend budgets (issue 15)

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Per million tokens, in the currency budgets are set in; NULL: not priced (not charged).
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("input_price", sa.Numeric(18, 6), nullable=True))
        batch.add_column(sa.Column("output_price", sa.Numeric(18, 6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("output_price")
        batch.drop_column("input_price")
