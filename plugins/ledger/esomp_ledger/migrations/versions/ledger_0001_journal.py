"""ledger: accounts, vouchers, lines and closed days

Revision ID: ledger_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("market", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "ledger_vouchers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("date", sa.String(length=8), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_vouchers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("reverses_id"),
    )
    op.create_index("ix_ledger_vouchers_date_number", "ledger_vouchers", ["date", "number"])
    op.create_index("ix_ledger_vouchers_job", "ledger_vouchers", ["job_id"])
    op.create_table(
        "ledger_lines",
        sa.Column("voucher_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.CheckConstraint("side IN ('D', 'C')", name="ck_ledger_lines_side"),
        sa.CheckConstraint("amount_fen >= 0", name="ck_ledger_lines_amount"),
        # No foreign keys: post_vouchers checks each line's account against the chart and writes voucher ids
        # of its own transaction; PostgreSQL's per-row checks would triple the time of a million-line posting.
        sa.PrimaryKeyConstraint("voucher_id", "line_no"),
    )
    op.create_table(
        "ledger_days",
        sa.Column("date", sa.String(length=8), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("closed_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("date"),
    )


def downgrade() -> None:
    op.drop_table("ledger_days")
    op.drop_table("ledger_lines")
    op.drop_index("ix_ledger_vouchers_job", table_name="ledger_vouchers")
    op.drop_index("ix_ledger_vouchers_date_number", table_name="ledger_vouchers")
    op.drop_table("ledger_vouchers")
    op.drop_table("ledger_accounts")
