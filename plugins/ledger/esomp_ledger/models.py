"""The ledger's tables, on a MetaData of their own, created by the ledger migration branch (esomp_ledger/migrations).

Amounts are integer fen (BIGINT): exact, and summed by the database without rounding.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from esomp_core import Migrations

MIGRATIONS = Migrations("ledger", Path(__file__).with_name("migrations") / "versions",
                        "the double-entry journal: accounts, vouchers, lines and closed days")


class LedgerBase(DeclarativeBase):
    metadata = MetaData()  # not the core's: the core's migrations never see these tables


class LedgerAccount(LedgerBase):
    """An account of the chart: customer funds, a product, the company, a market's clearing reserve, fees, custody."""

    __tablename__ = "ledger_accounts"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    market: Mapped[str] = mapped_column(String(16), default="")


class LedgerVoucher(LedgerBase):
    """A balanced set of lines. ``number`` is stable across reruns (job id and position, or R + the reversed
    voucher's number), so exports do not depend on database ids."""

    __tablename__ = "ledger_vouchers"
    __table_args__ = (Index("ix_ledger_vouchers_date_number", "date", "number"),
                      Index("ix_ledger_vouchers_job", "job_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    date: Mapped[str] = mapped_column(String(8))
    job_id: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    memo: Mapped[str] = mapped_column(Text, default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_vouchers.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    posted_at: Mapped[datetime] = mapped_column(DateTime)
    lines: Mapped[list[LedgerLine]] = relationship(
        back_populates="voucher", order_by="LedgerLine.line_no",
        primaryjoin="LedgerVoucher.id == foreign(LedgerLine.voucher_id)")


class LedgerLine(LedgerBase):
    """One debit (D) or credit (C) of a voucher, in integer fen. No foreign keys (see the migration): posting
    checks accounts and voucher ids itself."""

    __tablename__ = "ledger_lines"
    voucher_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(1))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(Text, default="")
    voucher: Mapped[LedgerVoucher] = relationship(
        back_populates="lines", primaryjoin="LedgerVoucher.id == foreign(LedgerLine.voucher_id)")


class LedgerDay(LedgerBase):
    """A closed day (日终): only reversals may be posted to it afterwards."""

    __tablename__ = "ledger_days"
    date: Mapped[str] = mapped_column(String(8), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(DateTime)
    closed_by: Mapped[str] = mapped_column(String(100), default="")
