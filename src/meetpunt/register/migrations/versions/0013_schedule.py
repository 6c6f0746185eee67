"""schedule: UC15's persistent watches of contractless and out-of-service connections

Revision ID: 0013_schedule
Revises: 0011_uc07_gis_correction
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_schedule"
down_revision = "0011_uc07_gis_correction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_task",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("ean", sa.String(length=18), nullable=False),
        sa.Column("commodity", sa.String(length=12), nullable=False),
        sa.Column("grp", sa.String(length=24), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("stop_reason", sa.String(length=64), nullable=True),
        sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_import_wh", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_task")),
        sa.UniqueConstraint(
            "purpose",
            "ean",
            "commodity",
            "started_on",
            name=op.f("uq_schedule_task_purpose"),
        ),
    )
    op.create_table(
        "schedule_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("import_wh", sa.BigInteger(), nullable=True),
        sa.Column("consumed_wh", sa.BigInteger(), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["schedule_task.id"], name=op.f("fk_schedule_run_task_id_schedule_task")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_run")),
        sa.UniqueConstraint("task_id", "due", name=op.f("uq_schedule_run_task_id")),
    )


def downgrade() -> None:
    op.drop_table("schedule_run")
    op.drop_table("schedule_task")
