"""Typed decoding of one stored value, on demand.

dbfread is the oracle for what a value means: wherever it reads a plain number, a date or a logical we read the
same one. Where it is lenient enough to misread, we are strict: text that is not plainly a value of its field's
type comes back as ``Invalid`` (by field and record), never as a number nobody wrote.
- C: text with trailing spaces and NULs removed, decoded with the file's encoding (GBK by default); bytes that
  do not decode raise ``DbfError`` naming the file, record and field (a wrong encoding is a configuration error).
- N: a plain decimal numeral, optionally signed: ASCII digits with at most one point. No exponent, no ``_``
  digit groups, no ``,`` (``1,000`` is not 1.0), no ``NaN`` or ``inf``. N fields with decimals give ``Decimal``
  (exact: these are amounts and prices, never float); N fields without give ``int`` (``Decimal`` if the text has
  a point anyway). Blank -> None.
- F: the same numeral with an optional exponent, as ``float``; a value that overflows to infinity is invalid.
- Padding: leading and trailing spaces and NULs, then ``*`` (some writers pad with it) are stripped, so
  ``'  1.00\\x00'`` (SJSXX XXMGMZ) reads as 1.00. A field of ``*`` only is dBase's overflow marker: invalid,
  not blank. A NUL or space between digits gives ``Invalid``.
- D: ``datetime.date`` from eight ASCII digits CCYYMMDD; blank, all zeros or ``'       0'`` -> None (dbfread's
  NULL rule).
- L: T/t/Y/y -> True, F/f/N/n -> False, ``?`` or blank -> None.
- M (memo block numbers): the raw bytes.
Values that do not parse (``-.---`` in an N field, a date like ``20231341``) come back as ``Invalid``.
"""
from __future__ import annotations

import datetime
import math
import re
from decimal import Decimal

from esomp_dbf.reader import DbfError, Field, Invalid

_PADDING = b" \x00"
# fullmatch with bytes patterns: \d is the ASCII digits only.
PLAIN_NUMERAL = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
NUMERAL_WITH_EXPONENT = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
DATE_DIGITS = re.compile(rb"\d{8}")


def _number_text(raw: bytes) -> bytes | None:
    """The numeral inside its padding; None for a blank field; ValueError for dBase's overflow marker."""
    text = raw.strip(_PADDING)
    if not text:
        return None
    inner = text.strip(b"*")
    if not inner:
        raise ValueError("overflow marker: the value did not fit the field when it was written")
    return inner


def _n(field: Field, raw: bytes):
    text = _number_text(raw)
    if text is None:
        return None
    if not PLAIN_NUMERAL.fullmatch(text):
        raise ValueError(f"not a plain number for N{field.length}.{field.decimals}")
    if not field.decimals and b"." not in text:
        return int(text)
    return Decimal(text.decode("ascii"))


def _f(field: Field, raw: bytes):
    text = _number_text(raw)
    if text is None:
        return None
    if not NUMERAL_WITH_EXPONENT.fullmatch(text):
        raise ValueError(f"not a number for F{field.length}.{field.decimals}")
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"out of range for a float (F{field.length}.{field.decimals})")
    return value


def _d(raw: bytes):
    if DATE_DIGITS.fullmatch(raw):
        try:
            return datetime.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
        except ValueError:
            pass
    if raw.strip(b" 0") == b"":
        return None
    raise ValueError("not a CCYYMMDD date")


def _l(raw: bytes):
    if raw in (b"T", b"t", b"Y", b"y"):
        return True
    if raw in (b"F", b"f", b"N", b"n"):
        return False
    if raw in (b"?", b" ", b""):
        return None
    raise ValueError("not a logical value (T/F/Y/N/?)")


_PARSERS = {"N": _n, "F": _f, "D": lambda field, raw: _d(raw), "L": lambda field, raw: _l(raw)}


def decode_value(field: Field, raw: bytes, encoding: str = "gbk", record: int | None = None, name: str = "<bytes>"):
    kind = field.type
    if kind == "C":
        try:
            return raw.rstrip(b"\x00 ").decode(encoding)
        except UnicodeDecodeError as exc:
            where = f"record {record}, " if record is not None else ""
            raise DbfError(
                name, f"{where}field {field.name}: undecodable text {raw!r} as {encoding} ({exc.reason})"
            ) from None
    parse = _PARSERS.get(kind)
    if parse is None:
        return raw
    try:
        return parse(field, raw)
    except ValueError as exc:
        return Invalid(raw=raw, field=field.name, record=record, reason=str(exc))
