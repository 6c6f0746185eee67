"""api parties: the callers of the HTTP API and the connections a customer is bound to

Revision ID: 0005_api_party
Revises: 0004_disclosure
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_api_party"
down_revision = "0004_disclosure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_party",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=13), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_party")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_party_key_hash")),
    )
    op.create_table(
        "api_party_connection",
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["api_party.id"], name=op.f("fk_api_party_connection_party_id_api_party")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_api_party_connection_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("party_id", "connection_id", name=op.f("pk_api_party_connection")),
    )


def downgrade() -> None:
    op.drop_table("api_party_connection")
    op.drop_table("api_party")
