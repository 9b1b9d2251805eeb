"""Watermarks: which rows of an incrementally collected table belong to which business date.

A date reads the rows above the highest value an earlier date read. A rerun of a date reads the same range again
(up to where the next collected date starts), so its output is the same bytes unless the source changed.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import select

from esomp_sql.models import Watermark

# Values are kept as text with their kind, so they are compared as what they are (12 > 9, not '12' < '9').
DECODERS = {"int": int, "decimal": Decimal, "float": float, "str": str,
            "date": date.fromisoformat, "datetime": datetime.fromisoformat}


def encode(value: Any) -> tuple[str, str]:
    """(kind, text) of a watermark value."""
    if isinstance(value, bool):
        raise ValueError(f"a true/false column cannot be a watermark (value {value!r})")
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, Decimal):
        return "decimal", format(value, "f")
    if isinstance(value, float):
        return "float", repr(value)
    if isinstance(value, datetime):
        return "datetime", value.isoformat()
    if isinstance(value, date):
        return "date", value.isoformat()
    if isinstance(value, str):
        return "str", value
    raise ValueError(f"a {type(value).__name__} column cannot be a watermark (value {value!r})")


def decode(kind: str | None, text: str | None) -> Any:
    return None if kind is None or text is None else DECODERS[kind](text)


@attrs.frozen
class Bounds:
    """The watermark range of a date: above ``low`` (None: no lower bound), up to ``high`` (None: no upper bound).
    ``nothing``: a later date already read every row, from the first one."""

    low: Any = None
    high: Any = None
    nothing: bool = False


def bounds(session: Any, channel: str, table: str, day: str) -> Bounds:
    """Where ``day``'s rows start (after the last earlier date) and end (where the next collected date starts)."""
    rows = Watermark.channel == channel, Watermark.table_name == table
    before = session.scalars(select(Watermark).where(*rows, Watermark.date < day)
                             .order_by(Watermark.date.desc()).limit(1)).first()
    after = session.scalars(select(Watermark).where(*rows, Watermark.date > day)
                            .order_by(Watermark.date).limit(1)).first()
    low = decode(before.kind, before.high) if before else None
    if after is None:
        return Bounds(low)
    if after.low is None:
        return Bounds(low, nothing=True)
    return Bounds(low, decode(after.kind, after.low))


def save(session: Any, channel: str, table: str, day: str, low: Any, high: Any, rows: int) -> None:
    """Record ``day``'s range (``high``: the largest value read, or ``low`` when nothing was new)."""
    row = session.scalars(select(Watermark).where(Watermark.channel == channel, Watermark.table_name == table,
                                                  Watermark.date == day)).first()
    if row is None:
        row = Watermark(channel=channel, table_name=table, date=day)
        session.add(row)
    top = high if high is not None else low
    kind = encode(top)[0] if top is not None else None
    row.kind = kind
    row.low = encode(low)[1] if low is not None else None
    row.high = encode(top)[1] if top is not None else None
    row.rows, row.collected_at = rows, datetime.now()
