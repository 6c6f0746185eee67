"""disclosure by connection: overlapping-period lookup, epsilon per release, budget table

Revision ID: 0004_disclosure
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_disclosure"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("disclosure_release") as batch:
        batch.add_column(sa.Column("epsilon", sa.Float(), nullable=False, server_default="0"))
    op.create_index(
        "ix_disclosure_release_period",
        "disclosure_release",
        ["period_start", "period_end"],
        unique=False,
    )
    op.create_table(
        "disclosure_budget",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_disclosure_budget_connection",
        "disclosure_budget",
        ["connection_id", "year"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_disclosure_budget_connection", table_name="disclosure_budget")
    op.drop_table("disclosure_budget")
    op.drop_index("ix_disclosure_release_period", table_name="disclosure_release")
    with op.batch_alter_table("disclosure_release") as batch:
        batch.drop_column("epsilon")
