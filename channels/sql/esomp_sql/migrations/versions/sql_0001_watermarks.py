"""sql_watermarks: how far each watermarked table of a sql channel was collected per business date

Revision ID: sql_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "sql_0001"
down_revision = None
branch_labels = ("sql",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sql_watermarks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("date", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("low", sa.Text(), nullable=True),
        sa.Column("high", sa.Text(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("collected_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "table_name", "date", name="uq_sql_watermarks_channel_table_date"),
    )


def downgrade() -> None:
    op.drop_table("sql_watermarks")
