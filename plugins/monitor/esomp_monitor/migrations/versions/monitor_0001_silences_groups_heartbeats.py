"""silences, notification groups, daemon heartbeats: created, or adopted where the core's old schema made them

Revision ID: monitor_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "monitor_0001"
down_revision = None
branch_labels = ("monitor",)
depends_on = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("silences"):
        op.create_table(
            "silences",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("rule", sa.String(length=200), nullable=False),
            sa.Column("subject", sa.String(length=400), nullable=False),
            sa.Column("starts_at", sa.DateTime(), nullable=False),
            sa.Column("ends_at", sa.DateTime(), nullable=False),
            sa.Column("created_by", sa.String(length=200), nullable=False),
            sa.Column("comment", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("silences") as batch_op:
            batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)
    if _missing("notification_groups"):
        op.create_table(
            "notification_groups",
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("last_sent_at", sa.DateTime(), nullable=True),
            sa.Column("alert_ids", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
    if _missing("daemon_heartbeats"):
        op.create_table(
            "daemon_heartbeats",
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("host", sa.String(length=200), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("state", sa.String(length=32), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )


def downgrade() -> None:
    for table in ("daemon_heartbeats", "notification_groups", "silences"):
        op.drop_table(table)
