"""Writing dBase III files from whole record bytes, and encoding typed values into record bytes.

The writer never looks inside a record beyond its length and deletion flag: callers that copy records from
another file (the splitter) hand over bytes as they are.
"""
from __future__ import annotations

import datetime
import decimal
import os
import struct
from typing import BinaryIO, Iterable, Mapping, Sequence

from esomp_core import FieldSpec, atomic_open

from esomp_dbf.reader import (
    DELETED,
    DESCRIPTOR_SIZE,
    EOF_BYTE,
    HEADER_SIZE,
    LIVE,
    TERMINATOR,
    DbfError,
    DbfFile,
    Invalid,
    today_bytes,
)
from esomp_dbf.values import DATE_DIGITS, NUMERAL_WITH_EXPONENT, PLAIN_NUMERAL

_COUNT = struct.Struct("<I")
_TYPES = {"C": 254, "N": 20, "F": 20, "D": 8, "L": 1, "M": 10}


def record_length(fields: Sequence[FieldSpec]) -> int:
    """Bytes per record: the deletion flag plus every field's width."""
    return 1 + sum(f.length for f in fields)


def _check_fields(fields: Sequence[FieldSpec]) -> None:
    seen: set[str] = set()
    for f in fields:
        if f.type not in _TYPES:
            raise ValueError(f"field {f.name}: unsupported type {f.type!r} (one of {', '.join(_TYPES)})")
        if not (f.name.isascii() and 1 <= len(f.name) <= 10):
            raise ValueError(f"field name {f.name!r} must be 1 to 10 ASCII characters")
        if f.name.upper() in seen:
            raise ValueError(f"field name {f.name!r} is repeated")
        seen.add(f.name.upper())
        if f.type in "DL" and f.length != _TYPES[f.type]:
            raise ValueError(f"field {f.name}: {f.type} fields are {_TYPES[f.type]} bytes wide, not {f.length}")
        if not 1 <= f.length <= 255:
            raise ValueError(f"field {f.name}: length {f.length} outside 1..255")
        if f.decimals and (f.type not in "NF" or f.decimals > f.length - 2):
            raise ValueError(f"field {f.name}: {f.decimals} decimals do not fit {f.type}{f.length}")


def header_bytes(
    fields: Sequence[FieldSpec],
    count: int = 0,
    *,
    language_driver: int = 0,
    updated: datetime.date | bytes | None = None,
) -> bytes:
    """A dBase III (0x03) header with its field descriptors and 0x0D terminator."""
    _check_fields(fields)
    stamp = updated if isinstance(updated, bytes) else today_bytes(updated)
    if len(stamp) != 3:
        raise ValueError(f"updated must be a date or 3 bytes YY MM DD, not {updated!r}")
    length = HEADER_SIZE + DESCRIPTOR_SIZE * len(fields) + 1
    head = bytearray(HEADER_SIZE)
    head[0] = 0x03
    head[1:4] = stamp
    struct.pack_into("<IHH", head, 4, count, length, record_length(fields))
    head[29] = language_driver
    for f in fields:
        desc = bytearray(DESCRIPTOR_SIZE)
        desc[0:11] = f.name.upper().encode("ascii").ljust(11, b"\x00")
        desc[11] = ord(f.type)
        desc[16], desc[17] = f.length, f.decimals
        head += desc
    head.append(TERMINATOR)
    return bytes(head)


def _write(target, header: bytes, size: int, records: Iterable[bytes], eof: bool, name: str | None = None) -> int:
    """Header, records and EOF byte; a record of the wrong length or flag raises DbfError naming ``name`` (the
    source the records come from) or else the target."""
    if isinstance(target, (str, os.PathLike)):
        with atomic_open(target) as fh:
            return _write(fh, header, size, records, eof, name or os.fspath(target))
    stream: BinaryIO = target
    name = name or str(getattr(stream, "name", "<stream>"))
    seekable = stream.seekable()
    if not seekable:
        records = list(records)  # the count goes first on a stream we cannot seek back on
        header = header[:4] + struct.pack("<I", len(records)) + header[8:]
    start = stream.tell() if seekable else 0
    stream.write(header)
    count = 0
    for rec in records:
        if len(rec) != size or rec[0] not in (LIVE, DELETED):
            raise DbfError(
                name,
                f"record {count}: {len(rec)} bytes starting {bytes(rec[:1])!r}; expected {size} bytes "
                f"starting with the deletion flag b' ' or b'*'",
            )
        stream.write(rec)
        count += 1
    if eof:
        stream.write(bytes((EOF_BYTE,)))
    if seekable:
        end = stream.tell()
        stream.seek(start + 4)
        stream.write(struct.pack("<I", count))
        stream.seek(end)
    return count


def write_dbf(
    target,
    fields: Sequence[FieldSpec],
    records: Iterable[bytes],
    *,
    language_driver: int = 0,
    eof: bool = True,
    updated: datetime.date | bytes | None = None,
) -> int:
    """Write a dBase III file to a path (atomically) or a binary stream; return the number of records.

    Each record is its full bytes, deletion flag first (see ``encode_record``). Byte 29 is ``language_driver``
    as given; the record count is patched in after the records (or counted first on unseekable streams).
    """
    header = header_bytes(fields, 0, language_driver=language_driver, updated=updated)
    return _write(target, header, record_length(fields), records, eof)


def write_like(target, source: DbfFile, records: Iterable[bytes], *, eof: bool = True) -> int:
    """Write records under a verbatim copy of ``source``'s header (byte 29, date and descriptors kept);
    only the record count changes. This is what the splitter writes."""
    return _write(target, source.header, source.record_length, records, eof, source.name)


def patched_header(source: DbfFile, count: int) -> bytes:
    """``source``'s header bytes with the record count replaced."""
    return _with_count(source.header, count)


def _with_count(header: bytes, count: int) -> bytes:
    return b"".join((header[:4], _COUNT.pack(count), header[8:]))


def _truncate_text(data: bytes, width: int, encoding: str) -> bytes:
    # Cut on a character boundary so a GBK double-byte character is never split in half.
    cut = data[:width]
    while cut:
        try:
            cut.decode(encoding)
            return cut
        except UnicodeDecodeError:
            cut = cut[:-1]
    return cut


def _encode_one(f: FieldSpec, value, encoding: str, overflow: str) -> bytes:
    if isinstance(value, Invalid):
        value = value.raw  # a value read as Invalid is written back as it was stored
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) != f.length:
            data = data.ljust(f.length) if f.type == "C" or len(data) > f.length else data.rjust(f.length)
    elif f.type == "C":
        data = ("" if value is None else str(value)).encode(encoding)
        if len(data) > f.length and overflow == "truncate":
            data = _truncate_text(data, f.length, encoding)
        data = data.ljust(f.length)
    elif f.type in "NF":
        if value is None:
            data = b""
        elif isinstance(value, int) and not isinstance(value, bool) and not f.decimals:
            data = str(value).encode("ascii")
        else:
            data = f"{_finite_number(f, value):.{f.decimals}f}".encode("ascii")
        data = data.rjust(f.length)
    elif f.type == "D":
        if value is None:
            data = b" " * 8
        elif isinstance(value, datetime.date):
            data = f"{value.year:04d}{value.month:02d}{value.day:02d}".encode("ascii")
        elif isinstance(value, str) and DATE_DIGITS.fullmatch(value.encode("utf-8")):
            data = value.encode("ascii")
        else:
            raise ValueError(f"field {f.name}: {value!r} is not a date (datetime.date or CCYYMMDD text)")
    elif f.type == "L":
        data = {True: b"T", False: b"F", None: b"?"}[value]
    else:
        raise ValueError(f"field {f.name}: cannot encode a value for type {f.type}")
    if len(data) > f.length:
        raise ValueError(
            f"field {f.name} ({f.type}{f.length}{'.' + str(f.decimals) if f.decimals else ''}): "
            f"value {value!r} needs {len(data)} bytes"
            + (" (pass overflow='truncate' to cut text)" if f.type == "C" else "")
        )
    return data


def _finite_number(f: FieldSpec, value) -> decimal.Decimal:
    """``value`` as an exact Decimal; anything a reader would not read back as that number is refused: NaN and
    infinities (they would be stored as the text NaN), booleans, and text other than a plain numeral
    (``1_000``, `` 1e5`` in an N field)."""
    if isinstance(value, bool):
        raise ValueError(f"field {f.name}: {value!r} is not a number")
    if isinstance(value, str):
        numeral = NUMERAL_WITH_EXPONENT if f.type == "F" else PLAIN_NUMERAL
        if not numeral.fullmatch(value.encode("utf-8")):
            raise ValueError(f"field {f.name}: {value!r} is not a plain number for {f.type}{f.length}.{f.decimals}")
        return decimal.Decimal(value)
    if isinstance(value, float):
        # str() of a float is its shortest exact repr, so 0.1 stays 0.1 rather than 0.1000000000000000055...
        value = decimal.Decimal(str(value))
    elif isinstance(value, int):
        value = decimal.Decimal(value)
    if not isinstance(value, decimal.Decimal):
        raise ValueError(f"field {f.name}: {value!r} is not a number")
    if not value.is_finite():
        raise ValueError(f"field {f.name}: {value!r} is not a finite number")
    return value


def encode_record(
    fields: Sequence[FieldSpec],
    values: Sequence | Mapping,
    encoding: str = "gbk",
    deleted: bool = False,
    *,
    overflow: str = "error",
) -> bytes:
    """Record bytes for ``values`` (in field order, or a mapping by field name; missing names are blank).

    Text is left-justified, numbers right-justified with the field's decimals, dates as CCYYMMDD, logicals
    T/F/?. Bytes and ``Invalid`` values are stored as they are. A value too wide raises ValueError naming the
    field; ``overflow='truncate'`` cuts text (never numbers) on a character boundary instead.
    """
    if overflow not in ("error", "truncate"):
        raise ValueError(f"overflow must be 'error' or 'truncate', not {overflow!r}")
    if isinstance(values, Mapping):
        unknown = set(values) - {f.name for f in fields}
        if unknown:
            raise ValueError(f"no such fields: {', '.join(sorted(unknown))}")
        values = [values.get(f.name) for f in fields]
    elif len(values) != len(fields):
        raise ValueError(f"{len(values)} values for {len(fields)} fields")
    parts = [b"*" if deleted else b" "]
    parts += [_encode_one(f, v, encoding, overflow) for f, v in zip(fields, values)]
    return b"".join(parts)


