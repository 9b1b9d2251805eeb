"""deliveries: created, or adopted where the core's old monitoring migration created it already

Revision ID: notify_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("deliveries"):
        return
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("group_key", sa.String(length=400), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.create_index("ix_deliveries_state_next", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_table("deliveries")
