"""The notify plugin's table: the outbox of deliveries, on a MetaData of its own, created by the notify
migration branch (esomp_notify/migrations)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esomp_core import Migrations

MIGRATIONS = Migrations("notify", Path(__file__).with_name("migrations") / "versions",
                        "the outbox of alert notifications")


class NotifyBase(DeclarativeBase):
    metadata = MetaData()


class Delivery(NotifyBase):
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
