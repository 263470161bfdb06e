"""identity: verification cases, vault evidence, document bindings, webhook events

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("document_digest", sa.String(length=64), nullable=True),
        sa.Column("evidence_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("audit_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_identity_cases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_cases")),
    )
    op.create_index(op.f("ix_identity_cases_user_id"), "identity_cases", ["user_id"])
    op.create_index(op.f("ix_identity_cases_status"), "identity_cases", ["status"])
    op.create_table(
        "identity_evidence",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("erased_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["identity_cases.id"],
            name=op.f("fk_identity_evidence_case_id_identity_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_evidence")),
    )
    op.create_index(op.f("ix_identity_evidence_case_id"), "identity_evidence", ["case_id"])
    op.create_table(
        "identity_documents",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("bound_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_identity_documents_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_identity_documents")),
    )
    op.create_table(
        "identity_webhook_events",
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("vendor", "event_id", name=op.f("pk_identity_webhook_events")),
    )


def downgrade() -> None:
    op.drop_table("identity_webhook_events")
    op.drop_table("identity_documents")
    op.drop_index(op.f("ix_identity_evidence_case_id"), table_name="identity_evidence")
    op.drop_table("identity_evidence")
    op.drop_index(op.f("ix_identity_cases_status"), table_name="identity_cases")
    op.drop_index(op.f("ix_identity_cases_user_id"), table_name="identity_cases")
    op.drop_table("identity_cases")
