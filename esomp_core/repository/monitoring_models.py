"""Tables of monitoring: silences, monitor runs, notification groups, deliveries and the daemon's heartbeat."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from esomp_core.repository.models import Base


class Silence(Base):
    """A maintenance window: open alerts whose rule and subject match (shell wildcards) are not notified."""

    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200), default="*")
    subject: Mapped[str] = mapped_column(String(400), default="*")
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")


class MonitorRun(Base):
    """When each monitor last ran and how it went: the schedule's memory across daemon restarts."""

    __tablename__ = "monitor_runs"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    """The [rule, subject] pairs the monitor reported last time: those it no longer reports are resolved."""


class NotificationGroup(Base):
    """One notification group (Alertmanager's): when it was last notified and which alerts that covered."""

    __tablename__ = "notification_groups"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    alert_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class Delivery(Base):
    """One message to one target (webhook, email, log): retried with backoff until delivered or given up."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_state_next", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    group_key: Mapped[str] = mapped_column(String(400), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class DaemonHeartbeat(Base):
    """The daemon's latest heartbeat, for the dashboard: who, when, what it is doing."""

    __tablename__ = "daemon_heartbeats"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
