"""model retirement and classification evidence: a model retired for good, and the evidence
behind an explicit classification decision

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("classification_evidence", sa.Text(), nullable=True))
        batch.add_column(sa.Column("retired_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("retired_at", UTC_TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("retired_reason")
        batch.drop_column("classification_evidence")
