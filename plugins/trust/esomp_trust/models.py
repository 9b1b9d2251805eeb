"""The trust business type's tables: the packages it builds and the receipts of their deliveries.

They live on a MetaData of their own and are created by the trust migration branch (esomp_trust/migrations).
``packages.job_id`` references the core's ``jobs`` in the database; the model leaves that foreign key out because
the core's tables are not on this MetaData.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esomp_core import Migrations

MIGRATIONS = Migrations("trust", Path(__file__).with_name("migrations") / "versions",
                        "packages and their delivery receipts")


class TrustBase(DeclarativeBase):
    metadata = MetaData()


class Package(TrustBase):
    """A product's or institution's package of files for sending, with its manifest."""

    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("date", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[str] = mapped_column(String(8), index=True)
    name: Mapped[str] = mapped_column(String(400))
    institution_code: Mapped[str] = mapped_column(String(32), index=True)
    product_code: Mapped[str | None] = mapped_column(String(32), index=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    members: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)  # jobs.id in the database


class Receipt(TrustBase):
    """Proof of one delivery of a package to a target."""

    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("package_id", "target"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), index=True)
    target: Mapped[str] = mapped_column(Text)
    remote_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    delivered_at: Mapped[datetime] = mapped_column(DateTime)
