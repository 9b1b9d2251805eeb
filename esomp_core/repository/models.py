"""The core's tables: the system of record for the day (SQLAlchemy 2 declarative models). Plugins keep their
tables in their own distributions, created by their own migration branches."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Institution(Base):
    """A trust company (机构) that receives its products' files."""

    __tablename__ = "institutions"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")


class Classification(Base):
    """A node of the product classification tree (产品分类)."""

    __tablename__ = "classifications"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("classifications.code"))


class Product(Base):
    """A trust product (信托产品)."""

    __tablename__ = "products"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    institution_code: Mapped[str] = mapped_column(ForeignKey("institutions.code"), index=True)
    classification_code: Mapped[str | None] = mapped_column(ForeignKey("classifications.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    accounts: Mapped[list["Account"]] = relationship(back_populates="product", order_by="Account.account")
    institution: Mapped[Institution] = relationship()


class Account(Base):
    """A securities account (证券账户 / 股东代码); it belongs to one product only."""

    __tablename__ = "accounts"
    market: Mapped[str] = mapped_column(String(8), primary_key=True)
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"), index=True)
    product: Mapped[Product] = relationship(back_populates="accounts")


class Run(Base):
    """One business date's run of the plan."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[str] = mapped_column(String(8), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    lock_holder: Mapped[str | None] = mapped_column(String(200))
    lock_heartbeat: Mapped[datetime | None] = mapped_column(DateTime)
    paused_batches: Mapped[list[int]] = mapped_column(JSON, default=list)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("run_id", "name"), Index("ix_jobs_run_state", "run_id", "state"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(16))
    business_type: Mapped[str] = mapped_column(String(64))
    batch: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(64), default="")
    products: Mapped[list[str]] = mapped_column(JSON, default=list)
    depends_on: Mapped[list[str]] = mapped_column(JSON, default=list)
    after: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Ordering only: jobs that must have ended (in any state) before this one starts."""
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    files: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)


class File(Base):
    """A file collected or written: name, size, checksum, where it came from."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_date_channel_name", "date", "channel", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default="collected")
    channel: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(400))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    mtime: Mapped[datetime | None] = mapped_column(DateTime)
    source: Mapped[str | None] = mapped_column(Text)
    file_type: Mapped[str | None] = mapped_column(String(64))
    records: Mapped[int | None] = mapped_column(BigInteger)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    collected_at: Mapped[datetime | None] = mapped_column(DateTime)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_subject_state", "rule", "subject", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(400))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    business_type: Mapped[str] = mapped_column(String(64), default="core")
    state: Mapped[str] = mapped_column(String(16), default="open")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)



class MonitorRun(Base):
    """When each monitor last ran and how it went: the schedule's memory across daemon restarts."""

    __tablename__ = "monitor_runs"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    """The [rule, subject] pairs the monitor reported last time: those it no longer reports are resolved."""
