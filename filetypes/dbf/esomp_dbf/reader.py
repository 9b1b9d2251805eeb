"""Reading dBase III files as bytes: a validated header, field descriptors and records as memoryview slices.

Nothing here builds per-field objects until a value is asked for (``DbfFile.decode``); scanning, counting and
key extraction stay on bytes so the splitter can run at copy speed.
"""
from __future__ import annotations

import codecs
import datetime
import mmap
import os
import re
import struct
from pathlib import Path
from typing import Iterator, Sequence

import attrs
import numpy as np

from esomp_core import FieldSpec

HEADER_SIZE = 32
DESCRIPTOR_SIZE = 32
TERMINATOR = 0x0D
EOF_BYTE = 0x1A
DELETED = 0x2A  # '*'
LIVE = 0x20  # ' '
# dBase III without (0x03) and with (0x83) memo: the header layout this reader understands.
VERSIONS = {0x03: "dBase III", 0x83: "dBase III with memo"}
_KEY_STRIP = b" \x00"
# The field types of dBase III (F as dBase IV writes it); the widths fixed by the format.
TYPES = "CNFDLM"
FIXED_WIDTHS = {"D": 8, "L": 1}
# Printable ASCII without spaces: a name is looked up by text, so it must survive being typed and printed.
_FIELD_NAME = re.compile(r"[!-~]+")


class DbfError(ValueError):
    """A DBF file that cannot be read as it claims to be; the message names the file and the problem."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@attrs.frozen
class Field:
    """A field descriptor as stored in the header; ``offset`` counts from the record's deletion-flag byte."""

    name: str
    type: str
    length: int
    decimals: int
    offset: int

    @property
    def spec(self) -> FieldSpec:
        return FieldSpec(self.name, self.type, self.length, self.decimals)


@attrs.frozen
class Invalid:
    """A stored value that does not parse as its field type (``-.---`` in an N field, say): kept, not raised."""

    raw: bytes
    field: str
    record: int | None
    reason: str

    def text(self, encoding: str = "gbk") -> str:
        return self.raw.decode(encoding, errors="backslashreplace")


def _descriptor(name: str, buf, pos: int, number: int, offset: int) -> Field:
    """Field descriptor ``number`` (from 1) at ``pos``, refused unless a dBase III reader can trust it."""
    raw_name = bytes(buf[pos : pos + 11]).split(b"\x00", 1)[0]
    try:
        field_name = raw_name.decode("ascii").strip()
    except UnicodeDecodeError:
        raise DbfError(name, f"field descriptor {number} has a non-ASCII name {raw_name!r}") from None
    kind, length, decimals = chr(buf[pos + 11]), buf[pos + 16], buf[pos + 17]
    if not field_name or length == 0:
        raise DbfError(name, f"field descriptor {number} is malformed (name {raw_name!r}, length {length})")
    if not _FIELD_NAME.fullmatch(field_name):
        raise DbfError(
            name, f"field descriptor {number} has a malformed name {raw_name!r} (printable ASCII without spaces)"
        )
    field = Field(field_name, kind, length, decimals, offset)
    problem = _layout_problem(field)
    if problem:
        raise DbfError(name, f"field {_described(field)}: {problem}")
    return field


def _described(field: Field) -> str:
    """``PX (N8.3)``: the name with the layout as dBase writes it, when the type is one."""
    if field.type not in TYPES:
        return field.name
    decimals = f".{field.decimals}" if field.decimals else ""
    return f"{field.name} ({field.type}{field.length}{decimals})"


def _layout_problem(field: Field) -> str | None:
    """Why a descriptor's type, width and decimals cannot describe real values (None when they can)."""
    if field.type not in TYPES:
        return f"type {field.type!r} is not a dBase III type ({', '.join(TYPES)})"
    fixed = FIXED_WIDTHS.get(field.type)
    if fixed and field.length != fixed:
        return f"{field.type} fields are {fixed} byte{'s' if fixed > 1 else ''} wide"
    if field.decimals and field.type not in "NF":
        return "decimals are for N and F fields only (a width above 255 is not dBase III)"
    if field.decimals >= field.length:
        # The point takes a byte of its own: N4.4 cannot hold any value with four decimals.
        return f"{field.decimals} decimals do not fit a {field.length}-byte field with its decimal point"
    return None


def _refuse_repeated_name(name: str, fields: Sequence[Field], field: Field) -> None:
    # dBase looks names up case-insensitively: with two ZQZH fields one of them is unreachable, and a key read
    # from the wrong one sends every record to the unmatched report.
    for number, other in enumerate(fields, 1):
        if other.name.upper() == field.name.upper():
            raise DbfError(
                name,
                f"field descriptor {len(fields) + 1} {field.name!r} repeats the name of field {number} "
                f"{other.name!r} (field names are case-insensitive)",
            )


def bad_flag_error(name: str, flags, numbers=None) -> DbfError | None:
    """The error for the first record whose deletion flag is neither b' ' nor b'*', or None when all are good.

    ``flags`` is the flag column (one byte per record, as a numpy array or bytes); ``numbers`` the record numbers
    of its entries when it is not the whole file. One vectorised test: no Python work per record.
    """
    column = np.frombuffer(flags, dtype=np.uint8) if isinstance(flags, (bytes, memoryview)) else flags
    bad = np.flatnonzero((column != LIVE) & (column != DELETED))
    if not len(bad):
        return None
    first = int(bad[0])
    record = first if numbers is None else int(numbers[first])
    return DbfError(
        name,
        f"record {record} has deletion flag {bytes([int(column[first])])!r}, neither b' ' nor b'*' "
        f"({len(bad)} record{'s' if len(bad) != 1 else ''} with a bad flag): the records are misaligned or corrupt",
    )


def _parse_header(name: str, buf) -> tuple:
    if len(buf) < HEADER_SIZE + 1:
        raise DbfError(name, f"too short for a DBF header ({len(buf)} bytes)")
    version = buf[0]
    if version not in VERSIONS:
        known = ", ".join(f"0x{v:02X} ({label})" for v, label in VERSIONS.items())
        raise DbfError(name, f"bad version byte 0x{version:02X}; expected {known}")
    count, header_length, record_length = struct.unpack_from("<IHH", buf, 4)
    if header_length > len(buf):
        raise DbfError(name, f"header length {header_length} is beyond the end of the file ({len(buf)} bytes)")
    fields: list[Field] = []
    offset = 1  # byte 0 of every record is the deletion flag
    pos = HEADER_SIZE
    while True:
        if pos >= header_length:
            raise DbfError(
                name,
                f"missing 0x0D terminator after the field descriptors within the header length {header_length}",
            )
        if buf[pos] == TERMINATOR:
            break
        if pos + DESCRIPTOR_SIZE > header_length:
            raise DbfError(
                name,
                f"header length {header_length} cuts field descriptor {len(fields) + 1} short "
                f"(missing 0x0D terminator?)",
            )
        field = _descriptor(name, buf, pos, len(fields) + 1, offset)
        _refuse_repeated_name(name, fields, field)
        fields.append(field)
        offset += field.length
        pos += DESCRIPTOR_SIZE
    if not fields:
        raise DbfError(name, "no field descriptors: a DBF has at least one field")
    expected = HEADER_SIZE + DESCRIPTOR_SIZE * len(fields) + 1
    # Some writers pad the header after the terminator with NULs; anything else means a wrong header length.
    if header_length != expected and any(buf[expected:header_length]):
        raise DbfError(
            name,
            f"header length {header_length} is inconsistent with {len(fields)} field descriptors "
            f"(expected {expected})",
        )
    if record_length != offset:
        raise DbfError(
            name,
            f"record length {record_length} != sum of field lengths + 1 ({offset}) for {len(fields)} fields",
        )
    return version, count, header_length, record_length, tuple(fields)


class DbfFile:
    """A DBF file opened for reading: from a path (memory-mapped), or from bytes, bytearray, mmap or memoryview.

    Validates the header and the file size at once and raises ``DbfError`` naming the file and the problem.
    Records are memoryview slices of the whole buffer; ``decode`` turns one field of one record into a value.
    """

    def __init__(self, source, *, name: str | None = None, encoding: str = "gbk"):
        self.path: Path | None = Path(source) if isinstance(source, (str, os.PathLike)) else None
        self.name = name or (str(source) if self.path is not None else "<bytes>")
        try:
            codecs.lookup(encoding)  # now, not at the first text value or key look-up
        except LookupError:
            raise DbfError(self.name, f"unknown encoding {encoding!r} (the text encoding, e.g. gbk)") from None
        self.encoding = encoding
        self._mmap: mmap.mmap | None = None
        if self.path is not None:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                # mmap cannot map an empty file; an empty file fails validation below anyway.
                data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            self._mmap = data or None
        else:
            data = source
        # ``data`` slices to bytes (hashable keys, cheap joins); ``buffer`` slices to zero-copy views.
        self.data = data if isinstance(data, (bytes, mmap.mmap)) else bytes(data)
        self.buffer = memoryview(self.data)
        try:
            self._validate()
        except BaseException:
            self.close()
            raise

    def _validate(self) -> None:
        buf = self.buffer
        (self.version, self.count, self.header_length, self.record_length, self.fields) = _parse_header(
            self.name, buf
        )
        self.updated = bytes(buf[1:4])  # YY MM DD as stored; the year's base differs between writers
        self.language_driver = buf[29]
        self._by_name = {f.name.upper(): f for f in self.fields}
        self._flags_checked = False
        expected = self.header_length + self.count * self.record_length
        size = len(buf)
        if size < expected:
            whole = max(0, size - self.header_length) // self.record_length
            raise DbfError(
                self.name,
                f"truncated: the header says {self.count} records of {self.record_length} bytes "
                f"({expected} bytes with the header) but the file has {size} bytes; "
                f"only {whole} records are whole",
            )
        if size == expected + 1 and buf[expected] == EOF_BYTE:
            self.has_eof = True
        elif size == expected:
            self.has_eof = False
        else:
            extra = size - expected
            whole = (size - self.header_length) // self.record_length
            raise DbfError(
                self.name,
                f"{extra} bytes beyond the {self.count} records the header declares "
                f"(at most one 0x1A end-of-file byte is allowed); the data holds {whole} whole records: "
                f"is the record count wrong?",
            )

    # --- context manager ---------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.buffer.release()
            if self._mmap is not None:
                self._mmap.close()
        except BufferError:
            pass  # a caller still holds record views; the mapping is freed when they are
        self._mmap = None

    def __enter__(self) -> DbfFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DbfFile {self.name!r} {self.count} records of {self.record_length} bytes, {len(self.fields)} fields>"

    # --- structure ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.count

    @property
    def header(self) -> bytes:
        """The header bytes verbatim (descriptors and terminator included)."""
        return bytes(self.buffer[: self.header_length])

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str | int | Field) -> Field:
        """The field called ``name`` (case-insensitive) or at that position; DbfError lists the fields otherwise."""
        if isinstance(name, Field):
            return name
        if isinstance(name, int):
            return self.fields[name]
        try:
            return self._by_name[name.upper()]
        except KeyError:
            raise DbfError(
                self.name, f"no field {name!r}; available fields: {', '.join(self.field_names)}"
            ) from None

    @property
    def records_start(self) -> int:
        return self.header_length

    @property
    def records_end(self) -> int:
        return self.header_length + self.count * self.record_length

    # --- records as bytes --------------------------------------------------------------------------------
    def record(self, index: int) -> memoryview:
        """Record ``index`` (deletion flag first) as a zero-copy view; DbfError if its flag is neither ' ' nor '*'."""
        if not 0 <= index < self.count:
            raise IndexError(f"{self.name}: record {index} out of range 0..{self.count - 1}")
        start = self.header_length + index * self.record_length
        view = self.buffer[start : start + self.record_length]
        if view[0] != LIVE and view[0] != DELETED:
            raise bad_flag_error(self.name, view[:1], [index])
        return view

    def records(self) -> Iterator[memoryview]:
        """Every record as a zero-copy view, after one check of all the deletion flags."""
        self.check_flags()
        view, size = self.buffer, self.record_length
        for start in range(self.header_length, self.records_end, size):
            yield view[start : start + size]

    def flags(self) -> bytes:
        """The deletion flag of every record: every record_length-th byte, one strided slice taken in C."""
        return self.data[self.header_length : self.records_end : self.record_length]

    def check_flags(self) -> None:
        """Refuse the file (DbfError naming it and the first bad record) if a deletion flag is neither b' ' nor
        b'*': such a record is misaligned or corrupt, and copying or routing it would spread the damage.

        Checked once per open file, on first use (not at open: a job that reads a few records of a large file
        should not page in all of it)."""
        if not self._flags_checked:
            error = bad_flag_error(self.name, self.flags())
            if error:
                raise error
            self._flags_checked = True

    def is_deleted(self, index: int) -> bool:
        return self.record(index)[0] == DELETED

    def deleted_count(self) -> int:
        self.check_flags()
        return self.flags().count(b"*")

    def keys(self, field: str | Field) -> list[bytes]:
        """The raw bytes of one field for every record, in order (unstripped), extracted in C."""
        self.check_flags()
        f = self.field(field)
        fmt = struct.Struct(f"{f.offset}x{f.length}s{self.record_length - f.offset - f.length}x")
        region = self.buffer[self.header_length : self.records_end]
        return [k for (k,) in fmt.iter_unpack(region)]

    # --- typed values ------------------------------------------------------------------------------------
    def decode(self, record, field, *, encoding: str | None = None):
        """The typed value of ``field`` (name, position or Field) in ``record`` (index, or record bytes/view).

        See ``esomp_dbf.values`` for the rules; unparseable values come back as ``Invalid``.
        """
        from esomp_dbf.values import decode_value

        index = record if isinstance(record, int) else None
        rec = self.record(record) if index is not None else record
        f = self.field(field)
        raw = bytes(rec[f.offset : f.offset + f.length])
        return decode_value(f, raw, encoding or self.encoding, index, self.name)

    def row(self, index: int, fields: Sequence[str] | None = None, *, encoding: str | None = None) -> dict:
        """Record ``index`` as a dict of typed values (``fields`` picks and orders them)."""
        from esomp_dbf.values import decode_value

        rec = bytes(self.record(index))
        chosen = [self.field(n) for n in fields] if fields else self.fields
        enc = encoding or self.encoding
        return {f.name: decode_value(f, rec[f.offset : f.offset + f.length], enc, index, self.name) for f in chosen}


def today_bytes(date: datetime.date | None = None) -> bytes:
    """A header "last update" triple YY MM DD with the dBase convention year - 1900."""
    date = date or datetime.date.today()
    return bytes((date.year - 1900, date.month, date.day))
