"""Fuzz target of the DBF engine: valid files, then their header and records mutated. Opening, reading typed
values, partitioning and writing either work, with every record accounted for, or raise DbfError naming the
file; never another exception. A few hundred examples in `make test`; `make fuzz` sets ESOMP_FUZZ_EXAMPLES."""
import contextlib
import datetime
import functools
import io
import json
import os
import struct
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esomp_dbf import DbfError, DbfFile, EncodedKeys, Invalid, KeyCodes, partition_codes, record_view, split
from esomp_dbf import write_like
from esomp_dbf.plugin import _json_value

NAME = "FUZZ.DBF"
EXAMPLES = int(os.environ.get("ESOMP_FUZZ_EXAMPLES", "300"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = [b"A1", b"A2", b"B1", b"0012345678", b"\xd6\xa4\xc8\xaf", b""]  # the last two: GBK text and a blank key
NUMERALS = [b"1", b"-1", b"1.50", b"-.---", b"1_000", b"NaN", b"nan", b"inf", b"-Infinity", b"1e5", b"1.5E-3",
            b"1,000", b"***", b"**1.5", b"0x1F", b"1 0", b"+.5", b"1.", b".", b"-", b"1.00\x00", b"\x001"]
DATES = [b"20240229", b"20231341", b"       0", b"00000000", b"        ", b"2_020101", b"2024+1+1", b" 2024011"]


@st.composite
def descriptors(draw):
    """(name, type, length, decimals) of a valid field."""
    kind = draw(st.sampled_from("CCNNFDL"))
    if kind in "DL":
        return kind, {"D": 8, "L": 1}[kind], 0
    length = draw(st.integers(1, 20))
    decimals = draw(st.integers(0, max(0, length - 2))) if kind in "NF" else 0
    return kind, length, decimals


@functools.lru_cache(maxsize=None)  # one strategy per (kind, length): building and validating them is the cost
def value_bytes(kind, length):
    """Stored bytes of exactly ``length`` for a field of ``kind``: plain values and the oddities of real files."""
    if kind == "C":
        text = st.sampled_from(KEYS) | st.binary(max_size=length)
        return text.map(lambda b: b[:length].ljust(length))
    if kind in "NF":
        number = st.sampled_from(NUMERALS) | st.integers(-10**6, 10**6).map(lambda n: str(n).encode())
        return number.map(lambda b: b[-length:].rjust(length))
    if kind == "D":
        return st.sampled_from(DATES)
    return st.sampled_from([b"T", b"F", b"Y", b"n", b"?", b" ", b"x"])


@st.composite
def valid_dbfs(draw):
    """A valid dBase III file: header, descriptors, records (some deleted), EOF byte or not."""
    shapes = [("K", "C", 10, 0)] + [(f"F{i}", *d) for i, d in enumerate(draw(st.lists(descriptors(), max_size=5)))]
    records = []
    for _ in range(draw(st.integers(0, 12))):
        flag = draw(st.sampled_from([b" ", b" ", b"*"]))
        records.append(flag + b"".join(draw(value_bytes(kind, length)) for _, kind, length, _ in shapes))
    header_length = 32 + 32 * len(shapes) + 1
    record_length = 1 + sum(s[2] for s in shapes)
    head = bytearray(32)
    head[0] = 0x03
    struct.pack_into("<IHH", head, 4, len(records), header_length, record_length)
    for name, kind, length, decimals in shapes:
        head += name.encode().ljust(11, b"\x00") + kind.encode() + bytes(4) + bytes((length, decimals)) + bytes(14)
    head.append(0x0D)
    data = bytes(head) + b"".join(records) + (b"\x1a" if draw(st.booleans()) else b"")
    return data, header_length, record_length


@st.composite
def mutated_dbfs(draw):
    """A valid file with a few of: a byte set in the header or anywhere, a deletion flag, a descriptor's name,
    length or decimals, the record count, header or record length, or the file cut or extended."""
    data, header_length, record_length = draw(valid_dbfs())
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        size = len(data)
        if size <= header_length:  # cut into the header: nothing more to aim at
            break
        kind = draw(st.sampled_from(["header", "any", "flag", "name", "width", "count", "lengths", "cut", "extend"]))
        if kind == "header":
            data[draw(st.integers(0, header_length - 1))] = draw(st.integers(0, 255))
        elif kind == "any":
            data[draw(st.integers(0, size - 1))] = draw(st.integers(0, 255))
        elif kind == "flag" and size >= header_length + record_length:
            record = draw(st.integers(0, (size - header_length) // record_length - 1))
            data[header_length + record * record_length] = draw(st.sampled_from(b"\x00#?X\x1a*"))
        elif kind == "name" and header_length >= 33 + 2 * 32:  # two fields at least: rename one after the first
            victim = 32 + 32 * draw(st.integers(1, (header_length - 33) // 32 - 1))
            data[victim : victim + 11] = draw(st.sampled_from([b"K", b"k", b"F0", b"A B", b"\xb9\xc9"])).ljust(11, b"\0")
        elif kind == "width":
            descriptor = 32 + 32 * draw(st.integers(0, (header_length - 33) // 32 - 1))
            data[descriptor + draw(st.sampled_from([11, 16, 17]))] = draw(st.integers(0, 255))
        elif kind == "count":
            struct.pack_into("<I", data, 4, draw(st.integers(0, 20) | st.integers(0, 2**32 - 1)))
        elif kind == "lengths":
            struct.pack_into("<H", data, draw(st.sampled_from([8, 10])), draw(st.integers(0, 2**16 - 1)))
        elif kind == "cut":
            del data[draw(st.integers(0, size)) :]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=40))
    return bytes(data)


def names_the_file(exc: DbfError) -> bool:
    return str(exc).startswith(f"{NAME}: ") and exc.name == NAME


@contextlib.contextmanager
def refused_by_name():
    """The body works, or raises DbfError naming the file; any other exception fails the target."""
    try:
        yield
    except DbfError as exc:
        assert names_the_file(exc), str(exc)


def flags_are_good(source: DbfFile) -> bool:
    """The deletion flags read independently, a record at a time."""
    size, start = source.record_length, source.header_length
    return all(source.data[start + i * size] in b" *" for i in range(source.count))


def check_typed_values(source: DbfFile) -> None:
    for index in range(source.count):
        with refused_by_name():
            row = source.row(index)
            record = bytes(source.record(index))
            for field in source.fields:
                value = row[field.name]
                check_value(field, record[field.offset : field.offset + field.length], value)
            json.dumps({k: _json_value(v, "gbk") for k, v in row.items()}, allow_nan=False, ensure_ascii=False)


def check_value(field, raw: bytes, value) -> None:
    """A number is read only from a plain numeral, and is the number that numeral says."""
    if isinstance(value, Invalid):
        assert value.raw == raw and value.field == field.name
        return
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        text = raw.strip(b" \x00").strip(b"*")
        assert set(text) <= set(b"0123456789+-.eE"), (field, raw, value)
        assert field.type in "NF", (field, raw, value)
        if isinstance(value, float):
            assert field.type == "F" and float(text) == value, (field, raw, value)
        else:
            assert Decimal(text.decode()) == value, (field, raw, value)
        return
    assert value is None or isinstance(value, (str, bool, bytes, datetime.date)), (field, raw, value)


def check_partition(source: DbfFile) -> None:
    """Every record lands once: in the destination its key maps to, or among the unmatched under its key."""
    key = source.fields[0]
    mapping = {"A1": 0, "B1": 1, "0012345678": 1, "证券": 2}
    good = flags_are_good(source)
    try:
        coded = partition_codes(source, key.name, KeyCodes(EncodedKeys.of(mapping, "gbk")), 3)
    except DbfError as exc:
        assert names_the_file(exc) and not good, str(exc)
        return
    assert good, "a bad deletion flag went through partition_codes"
    assert coded.total == source.count
    keys = [bytes(source.data[source.header_length + i * source.record_length + key.offset:][: key.length])
            for i in range(source.count)]
    wanted = {k.encode("gbk"): dest for k, dest in mapping.items()}
    seen = []
    for dest in range(3):
        share = coded.order[coded.starts[dest] : coded.starts[dest] + coded.counts[dest]].tolist()
        assert share == sorted(share) and all(wanted.get(keys[i].strip(b" \x00")) == dest for i in share)
        seen += share
    for text, indices in coded.unmatched.items():
        assert all(keys[i].strip(b" \x00") not in wanted for i in indices)
        seen += indices
    assert sorted(seen) == list(range(source.count))


def check_writing(source: DbfFile) -> None:
    with refused_by_name():
        out = io.BytesIO()
        assert write_like(out, source, source.records()) == source.count
        copy = DbfFile(out.getvalue(), name="COPY.DBF")
        assert copy.count == source.count and copy.data[copy.header_length :] == source.data[
            source.header_length : source.records_end] + b"\x1a"
    with refused_by_name():
        assert bytes(record_view(source, range(source.count))) == bytes(
            source.data[source.header_length : source.records_end])
    with refused_by_name():
        outputs = {}

        def open_dest(dest):
            outputs[dest] = io.BytesIO()
            return contextlib.nullcontext(outputs[dest])

        result = split(source, source.fields[0].name, {"A1": "a", "B1": "b"}, open_dest, unmatched_to="rest")
        written = {dest: DbfFile(stream.getvalue(), name=str(dest)).count for dest, stream in outputs.items()}
        assert sum(written.values()) == source.count == result.total
        assert written == {**result.counts, **({"rest": result.unmatched_count} if result.unmatched else {})}


@pytest.mark.fuzz
@fuzz
@given(mutated_dbfs())
def test_any_mutated_dbf_is_read_split_and_written_or_refused_by_name(data):
    try:
        source = DbfFile(data, name=NAME)
    except DbfError as exc:
        assert names_the_file(exc), str(exc)
        return
    with source:
        with refused_by_name():
            assert source.deleted_count() == sum(source.is_deleted(i) for i in range(source.count))
        check_typed_values(source)
        check_partition(source)
        check_writing(source)


@pytest.mark.fuzz
@fuzz
@given(valid_dbfs())
def test_every_valid_dbf_opens_and_accounts_for_every_record(generated):
    data, _, _ = generated
    with DbfFile(data, name=NAME) as source:
        assert source.check_flags() is None
        check_typed_values(source)
        check_partition(source)
        check_writing(source)
