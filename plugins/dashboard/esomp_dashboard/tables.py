"""The dashboard's own tables (users, sessions, login limits, audit), on a MetaData of their own.

The dashboard's migration branch (esomp_dashboard/migrations) creates them: with the site's other branches on
`esomp init` and `esomp db upgrade`, and on first use by this process if the database has not got them yet.
"""
from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esomp_core import Migrations

MIGRATIONS = Migrations("dashboard", Path(__file__).with_name("migrations") / "versions",
                        "users, sessions, login limits and the audit of operator actions")


class DashboardBase(DeclarativeBase):
    metadata = MetaData()


class User(DashboardBase):
    __tablename__ = "dashboard_users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Setting(DashboardBase):
    """Site-wide settings; older versions kept the cookie-signing key here (see ``secret``)."""

    __tablename__ = "dashboard_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))


class Session(DashboardBase):
    """One login: deleting the row ends it at once, whatever copies of its cookie exist."""

    __tablename__ = "dashboard_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    origin: Mapped[str] = mapped_column(String(100))


class LoginLimit(DashboardBase):
    """Failed logins of one user name or one address in the current window, and its lockout if any."""

    __tablename__ = "dashboard_login_limits"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "user" or "address"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started: Mapped[datetime] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_origin: Mapped[str] = mapped_column(String(100))


class AuditEntry(DashboardBase):
    """One state-changing action: who, when, what, on what, how it ended, why and under which ticket."""

    __tablename__ = "dashboard_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))  # ok, denied, failed, locked, error
    origin: Mapped[str] = mapped_column(String(100))  # the client's address, or "cli"
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    ticket: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


_READY: set[str] = set()
_UPGRADING = threading.Lock()  # the server's threads may all ask at once on its first requests


def ensure_tables(repository) -> None:
    """Apply the dashboard's migrations, once per database and process (a no-op when they are applied)."""
    if repository.url in _READY:
        return
    with _UPGRADING:
        if repository.url not in _READY:
            repository.upgrade(MIGRATIONS)
            _READY.add(repository.url)


