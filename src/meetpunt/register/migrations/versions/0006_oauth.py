"""oauth: apps' redirect URIs, authorization codes and tokens (stored as hashes)

Revision ID: 0006_oauth
Revises: 0005_api_party
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_oauth"
down_revision = "0005_api_party"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_redirect_uri",
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["api_party.id"], name=op.f("fk_api_redirect_uri_party_id_api_party")
        ),
        sa.PrimaryKeyConstraint("party_id", "uri", name=op.f("pk_api_redirect_uri")),
    )
    op.create_table(
        "oauth_code",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("consents", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_party.id"], name=op.f("fk_oauth_code_client_id_api_party")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["api_party.id"], name=op.f("fk_oauth_code_customer_id_api_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_code")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_code_code_hash")),
    )
    op.create_table(
        "oauth_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("access_hash", sa.String(length=64), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("consents", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_party.id"], name=op.f("fk_oauth_token_client_id_api_party")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["api_party.id"], name=op.f("fk_oauth_token_customer_id_api_party")
        ),
        sa.ForeignKeyConstraint(
            ["code_id"], ["oauth_code.id"], name=op.f("fk_oauth_token_code_id_oauth_code")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_token")),
        sa.UniqueConstraint("access_hash", name=op.f("uq_oauth_token_access_hash")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_oauth_token_refresh_hash")),
    )


def downgrade() -> None:
    op.drop_table("oauth_token")
    op.drop_table("oauth_code")
    op.drop_table("api_redirect_uri")
