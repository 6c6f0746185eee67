"""privacy: stored findings that open a flagged purpose (UC3 after UC2, UC12's steps)

Revision ID: 0008_privacy_flag
Revises: 0007_api_activation_runs
Create Date: 2026-12-06 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_privacy_flag"
down_revision = "0007_api_activation_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_flag",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("usecase", sa.String(length=8), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("opens", sa.String(length=8), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_flag")),
    )
    op.create_table(
        "privacy_flag_member",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["privacy_flag.id"],
            name=op.f("fk_privacy_flag_member_flag_id_privacy_flag"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_privacy_flag_member_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("flag_id", "connection_id", name=op.f("pk_privacy_flag_member")),
    )


def downgrade() -> None:
    op.drop_table("privacy_flag_member")
    op.drop_table("privacy_flag")
