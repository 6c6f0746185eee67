"""register: GIS corrections applied from UC7, with their source and who confirmed them

Revision ID: 0011_uc07_gis_correction
Revises: 0007_api_activation_runs
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_uc07_gis_correction"
down_revision = "0008_privacy_flag"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gis_correction",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("old_feeder", sa.String(length=40), nullable=False),
        sa.Column("old_phase", sa.String(length=2), nullable=True),
        sa.Column("new_feeder", sa.String(length=40), nullable=False),
        sa.Column("new_phase", sa.String(length=2), nullable=True),
        sa.Column("confirmed_by", sa.String(length=120), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_gis_correction_connection_id_connection"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gis_correction")),
    )


def downgrade() -> None:
    op.drop_table("gis_correction")
