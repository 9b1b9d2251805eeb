"""packages and receipts: created, or adopted where the core's old initial schema created them already

Revision ID: trust_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "trust_0001"
down_revision = None
branch_labels = ("trust",)
depends_on = "0001"  # packages.job_id references the core's jobs


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("packages"):
        op.create_table(
            "packages",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("date", sa.String(length=8), nullable=False),
            sa.Column("name", sa.String(length=400), nullable=False),
            sa.Column("institution_code", sa.String(length=32), nullable=False),
            sa.Column("product_code", sa.String(length=32), nullable=True),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("members", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("date", "name"),
        )
        with op.batch_alter_table("packages") as batch_op:
            batch_op.create_index("ix_packages_date", ["date"], unique=False)
            batch_op.create_index("ix_packages_institution_code", ["institution_code"], unique=False)
            batch_op.create_index("ix_packages_job_id", ["job_id"], unique=False)
            batch_op.create_index("ix_packages_product_code", ["product_code"], unique=False)
    if _missing("receipts"):
        op.create_table(
            "receipts",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("package_id", sa.Integer(), nullable=False),
            sa.Column("target", sa.Text(), nullable=False),
            sa.Column("remote_path", sa.Text(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=True),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("delivered_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(["package_id"], ["packages.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("package_id", "target"),
        )
        with op.batch_alter_table("receipts") as batch_op:
            batch_op.create_index("ix_receipts_package_id", ["package_id"], unique=False)


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("packages")
