"""monitor runs: what each source of findings reported last, so the alert store resolves what it no longer sees

Revision ID: 0002
Revises: 0001

(Silences, notification groups and the daemon's heartbeat belong to the monitor distribution's branch.)
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_runs",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("monitor_runs")
