"""api_party.name: an app's display name (issue 17)

Revision ID: 0014_api_party_name
Revises: 0013_schedule
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_api_party_name"
down_revision = "0013_schedule"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_party") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_party") as batch:
        batch.drop_column("name")
