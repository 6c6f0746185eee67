"""api: customers' activation codes (as hashes) and the operator's use-case runs

Revision ID: 0007_api_activation_runs
Revises: 0006_oauth
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_api_activation_runs"
down_revision = "0006_oauth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_activation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["party_id"], ["api_party.id"], name=op.f("fk_api_activation_party_id_api_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_activation")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_api_activation_code_hash")),
    )
    op.create_table(
        "usecase_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("usecase", sa.String(length=8), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["api_party.id"], name=op.f("fk_usecase_run_party_id_api_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usecase_run")),
    )


def downgrade() -> None:
    op.drop_table("usecase_run")
    op.drop_table("api_activation")
