"""dashboard users, settings, sessions, login limits and audit: created, or adopted where an earlier dashboard
created them on first use

Revision ID: dashboard_0001
Revises:
"""
from alembic import op
import sqlalchemy as sa


revision = "dashboard_0001"
down_revision = None
branch_labels = ("dashboard",)
depends_on = None


def _create(name: str, *columns, indexes: tuple[tuple[str, list[str]], ...] = ()) -> None:
    """Create a table and its indexes unless an earlier dashboard made it (it created its tables itself)."""
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    with op.batch_alter_table(name) as batch_op:
        for index, index_columns in indexes:
            batch_op.create_index(index, index_columns, unique=False)


def upgrade() -> None:
    _create("dashboard_users",
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("role", sa.String(length=16), nullable=False),
            sa.Column("password_hash", sa.String(length=300), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("username"))
    _create("dashboard_settings",
            sa.Column("key", sa.String(length=64), nullable=False),
            sa.Column("value", sa.String(length=400), nullable=False),
            sa.PrimaryKeyConstraint("key"))
    _create("dashboard_sessions",
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("username", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
            sa.Column("origin", sa.String(length=100), nullable=False),
            sa.PrimaryKeyConstraint("token_hash"),
            indexes=(("ix_dashboard_sessions_username", ["username"]),))
    _create("dashboard_login_limits",
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("key", sa.String(length=100), nullable=False),
            sa.Column("failures", sa.Integer(), nullable=False),
            sa.Column("window_started", sa.DateTime(), nullable=False),
            sa.Column("locked_until", sa.DateTime(), nullable=True),
            sa.Column("last_origin", sa.String(length=100), nullable=False),
            sa.PrimaryKeyConstraint("kind", "key"))
    _create("dashboard_audit",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=100), nullable=False),
            sa.Column("action", sa.String(length=40), nullable=False),
            sa.Column("target", sa.String(length=200), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=False),
            sa.Column("origin", sa.String(length=100), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("ticket", sa.String(length=100), nullable=True),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            indexes=(("ix_dashboard_audit_at", ["at"]), ("ix_dashboard_audit_action", ["action"])))


def downgrade() -> None:
    for name in ("dashboard_audit", "dashboard_login_limits", "dashboard_sessions", "dashboard_settings",
                 "dashboard_users"):
        op.drop_table(name)
