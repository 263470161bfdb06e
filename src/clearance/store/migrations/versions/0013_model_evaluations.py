"""classification from evidence: named evaluation scores per model, the parameters and tokens
behind an estimated training compute, and the rule that classified each model

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_evaluations",
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name="fk_model_evaluations_model_id_models",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", "name", name="pk_model_evaluations"),
    )
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("parameters", sa.Float(), nullable=True))
        batch.add_column(sa.Column("tokens", sa.Float(), nullable=True))
        batch.add_column(sa.Column("classification_rule", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("classification_rule")
        batch.drop_column("tokens")
        batch.drop_column("parameters")
    op.drop_table("model_evaluations")
