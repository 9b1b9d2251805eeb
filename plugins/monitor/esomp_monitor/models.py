"""The monitoring centre's tables: silences, notification groups and the daemon's heartbeat.

They live on a MetaData of their own and are created by the monitor migration branch (esomp_monitor/migrations);
a site made before the branch existed keeps its tables, which the branch takes over.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esomp_core import Migrations

MIGRATIONS = Migrations("monitor", Path(__file__).with_name("migrations") / "versions",
                        "silences, notification groups and the daemon's heartbeat")


class MonitorBase(DeclarativeBase):
    metadata = MetaData()


class Silence(MonitorBase):
    """A maintenance window: open alerts whose rule and subject match (shell wildcards) are not notified."""

    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200), default="*")
    subject: Mapped[str] = mapped_column(String(400), default="*")
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")


class NotificationGroup(MonitorBase):
    """One notification group (Alertmanager's): when it was last notified and which alerts that covered."""

    __tablename__ = "notification_groups"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    alert_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class DaemonHeartbeat(MonitorBase):
    """The daemon's latest heartbeat, for the dashboard: who, when, what it is doing."""

    __tablename__ = "daemon_heartbeats"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
