"""The sql channel's table: how far each watermarked table was collected on each business date, on a MetaData
of its own, created by the sql migration branch (esomp_sql/migrations)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from esomp_core import Migrations

MIGRATIONS = Migrations("sql", Path(__file__).with_name("migrations") / "versions",
                        "the watermarks of incrementally collected tables")


class SqlBase(DeclarativeBase):
    metadata = MetaData()


class Watermark(SqlBase):
    """One table of one channel collected for one date: the rows read were those with the watermark column above
    ``low`` (None: from the first row) up to ``high``, the largest value read (``low`` when nothing was new).
    ``kind`` says how the values are written as text (int, decimal, date, datetime, float, str)."""

    __tablename__ = "sql_watermarks"
    __table_args__ = (UniqueConstraint("channel", "table_name", "date", name="uq_sql_watermarks_channel_table_date"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    table_name: Mapped[str] = mapped_column(String(64))
    date: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str | None] = mapped_column(String(16))
    low: Mapped[str | None] = mapped_column(Text)
    high: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    collected_at: Mapped[datetime] = mapped_column(DateTime)
