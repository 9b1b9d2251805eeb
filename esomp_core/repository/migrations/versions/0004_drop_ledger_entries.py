"""drop ledger_entries: the old initial schema created it for postings no code ever wrote

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("ledger_entries"):
        op.drop_table("ledger_entries")


def downgrade() -> None:
    pass  # the table held nothing: a downgrade does not bring it back
