"""Exact money: Decimal at the API, integer fen (分) in the database. Floats are refused, never rounded."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from esomp_ledger.errors import LedgerError


def to_fen(amount, where: str = "") -> int:
    """``amount`` (Decimal, int or numeral text) as integer fen; more than two decimals, a float, a negative
    amount or a non-number raises LedgerError naming ``where``."""
    if type(amount) is Decimal:  # the usual case, checked with as few operations as a million lines can afford
        try:
            scaled = amount.scaleb(2)
            fen = int(scaled)
        except (ValueError, OverflowError):  # NaN, infinity: the checks below say which
            pass
        else:
            if fen == scaled and fen >= 0:
                return fen
    return _checked_fen(amount, where)


def _checked_fen(amount, where: str) -> int:
    if isinstance(amount, float) or isinstance(amount, bool):
        raise LedgerError(f"{where}amount {amount!r} is a {type(amount).__name__}: pass a Decimal or text, "
                          f"money is never a float")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
        fen = value.scaleb(2)
    except (InvalidOperation, TypeError, ValueError):
        raise LedgerError(f"{where}amount {amount!r} is not a number") from None
    if not fen.is_finite() or fen != fen.to_integral_value():
        raise LedgerError(f"{where}amount {amount!r} is not a whole number of fen (at most two decimals)")
    if fen < 0:
        raise LedgerError(f"{where}amount {amount!r} is negative: post it on the other side")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def fen_text(fen: int) -> str:
    """Exact text with two decimals, for exports: -1 -> '-0.01'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
