"""Typed decoding of one stored value, on demand.

dbfread is the oracle: wherever it parses a value we return the same value, so the rules copy its parser:
- C: text with trailing spaces and NULs removed, decoded with the file's encoding (GBK by default); bytes that
  do not decode raise ``DbfError`` naming the file, record and field (a wrong encoding is a configuration error).
- N: ``int`` when the stripped text is an integer literal, otherwise ``float`` (not Decimal: dbfread returns
  float, and agreement with it is tested on every value of the real files); blank -> None. Leading/trailing
  ``*`` padding is ignored and ``,`` is read as the decimal point, as dbfread does.
- F: ``float``; blank -> None.
- D: ``datetime.date``; blank, all zeros or ``'       0'`` -> None (dbfread's NULL rule).
- L: T/t/Y/y -> True, F/f/N/n -> False, ``?`` or blank -> None.
- Other types (memo pointers and the like) are returned as the raw bytes.
Values that do not parse (``-.---`` in an N field, a date like ``20231341``) come back as ``Invalid``.
Decision on NULs in numeric fields: leading and trailing NULs are treated as padding and stripped, so
``'  1.00\\x00'`` (SJSXX XXMGMZ) reads as 1.0. dbfread raises on such values, so there is no oracle to agree
with, and the digits are intact; a NUL between digits still gives ``Invalid``.
"""
from __future__ import annotations

import datetime

from esomp_dbf.reader import DbfError, Field, Invalid

_NUMBER_STRIP = b" \t\r\n\x0b\x0c\x00"


def _number(raw: bytes, integer_ok: bool):
    text = raw.strip(_NUMBER_STRIP).strip(b"*")
    if not text.strip():
        return None
    if integer_ok:
        try:
            return int(text)
        except ValueError:
            pass
    return float(text.replace(b",", b".")) if integer_ok else float(text)


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
    try:
        if kind == "N":
            return _number(raw, True)
        if kind == "F":
            return _number(raw, False)
        if kind == "D":
            try:
                return datetime.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
            except ValueError:
                if raw.strip(b" 0") == b"":
                    return None
                raise ValueError("not a CCYYMMDD date") from None
        if kind == "L":
            if raw in (b"T", b"t", b"Y", b"y"):
                return True
            if raw in (b"F", b"f", b"N", b"n"):
                return False
            if raw in (b"?", b" ", b""):
                return None
            raise ValueError("not a logical value (T/F/Y/N/?)")
    except ValueError as exc:
        reason = str(exc) if kind in "DL" else f"not a number for {kind}{field.length}.{field.decimals}"
        return Invalid(raw=raw, field=field.name, record=record, reason=reason)
    return raw
