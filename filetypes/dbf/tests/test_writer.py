import datetime
import io
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esomp_core import FieldSpec
from esomp_dbf import DbfFile, encode_record, header_bytes, record_length, write_dbf, write_like

TEXT = st.text(alphabet="ABCxyz0189 证券账户清算", max_size=12).map(str.rstrip)


@st.composite
def field_and_value(draw):
    kind = draw(st.sampled_from("CNND L"))
    if kind == "C":
        length = draw(st.integers(1, 30))
        value = draw(TEXT.filter(lambda t: len(t.encode("gbk")) <= length))
        return FieldSpec("F", "C", length), value
    if kind == "N":
        decimals = draw(st.sampled_from([0, 0, 2, 4]))
        length = draw(st.integers(decimals + 3, 18))
        limit = 10 ** (length - decimals - 2) - 1
        number = draw(st.integers(-limit, limit) | st.none())
        if number is not None and decimals:
            number = Decimal(number).scaleb(-decimals)
        return FieldSpec("F", "N", length, decimals), number
    if kind == "D":
        return FieldSpec("F", "D", 8), draw(st.dates(datetime.date(1900, 1, 1)) | st.none())
    return FieldSpec("F", "L", 1), draw(st.sampled_from([True, False, None]))


@st.composite
def tables(draw):
    columns = draw(st.lists(field_and_value(), min_size=1, max_size=8))
    fields = [FieldSpec(f"F{i}", f.type, f.length, f.decimals) for i, (f, _) in enumerate(columns)]
    strategies = [st.just(v) for _, v in columns]
    rows = draw(st.lists(st.tuples(st.booleans(), st.tuples(*strategies)), max_size=20))
    return fields, rows


def expected_value(field, value):
    if value is not None and field.type == "N" and field.decimals:
        return Decimal(value)  # exact: an N field with decimals reads as Decimal, never float
    return value


@settings(max_examples=150, deadline=None)
@given(tables(), st.booleans(), st.integers(0, 255))
def test_write_then_read_round_trips(table, eof, driver):
    fields, rows = table
    records = [encode_record(fields, values, deleted=deleted) for deleted, values in rows]
    stream = io.BytesIO()
    assert write_dbf(stream, fields, iter(records), eof=eof, language_driver=driver) == len(rows)
    f = DbfFile(stream.getvalue())
    assert (f.count, f.has_eof, f.language_driver, f.version) == (len(rows), eof, driver, 3)
    assert f.record_length == record_length(fields) and [x.spec for x in f.fields] == fields
    assert [bytes(r) for r in f.records()] == records
    for i, (deleted, values) in enumerate(rows):
        assert f.is_deleted(i) == deleted
        expected = [expected_value(x, v) for x, v in zip(fields, values)]
        assert list(f.row(i).values()) == expected
        assert [type(v) for v in f.row(i).values()] == [type(v) for v in expected]


def test_unseekable_stream_counts_first():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, b):
            self.chunks.append(bytes(b))
            return len(b)

    fields = [FieldSpec("A", "C", 3)]
    pipe = Pipe()
    assert write_dbf(pipe, fields, (encode_record(fields, [s]) for s in "xyz")) == 3
    assert DbfFile(b"".join(pipe.chunks)).count == 3


def test_header_fields_and_date():
    fields = [FieldSpec("MXZQZH", "C", 20), FieldSpec("MXCJSL", "N", 15, 2)]
    head = header_bytes(fields, 7, language_driver=0x4D, updated=datetime.date(2024, 5, 6))
    assert head[:4] == bytes((3, 124, 5, 6)) and head[29] == 0x4D and head[-1] == 0x0D
    assert int.from_bytes(head[4:8], "little") == 7 and len(head) == 32 + 64 + 1


def test_encode_record_justification_and_overflow():
    fields = [FieldSpec("T", "C", 6), FieldSpec("N", "N", 8, 2), FieldSpec("D", "D", 8), FieldSpec("L", "L", 1)]
    rec = encode_record(fields, {"T": "证券", "N": 1.5, "D": datetime.date(2024, 1, 2)}, deleted=True)
    assert rec == b"*" + "证券".encode("gbk") + b"  " + b"    1.50" + b"20240102" + b"?"
    with pytest.raises(ValueError, match=r"field T \(C6\): value '证券账户' needs 8 bytes.*truncate"):
        encode_record(fields, ["证券账户", None, None, None])
    cut = encode_record(fields, ["证券账户", None, None, None], overflow="truncate")
    assert cut[1:7] == "证券账".encode("gbk")
    odd = encode_record(fields, ["a证券", None, None, None], overflow="truncate")
    assert odd[1:7] == "a证券".encode("gbk")[:5] + b" "  # never half a GBK character
    with pytest.raises(ValueError, match=r"field N \(N8.2\): value 1234567 needs 10 bytes"):
        encode_record(fields, [None, 1234567, None, None], overflow="truncate")
    with pytest.raises(ValueError, match="no such fields: X"):
        encode_record(fields, {"X": 1})


def test_write_rejects_bad_records_and_fields(tmp_path):
    fields = [FieldSpec("A", "C", 3)]
    with pytest.raises(ValueError, match="record 1: 3 bytes"):
        write_dbf(io.BytesIO(), fields, [b" abc", b"abc"])
    with pytest.raises(ValueError, match="1 to 10 ASCII"):
        write_dbf(io.BytesIO(), [FieldSpec("TOOLONGNAME1", "C", 3)], [])
    target = tmp_path / "out.dbf"
    with pytest.raises(ValueError):
        write_dbf(target, fields, [b" abc", b"?abc"])
    assert not target.exists() and list(tmp_path.iterdir()) == []  # atomic: nothing left behind


def test_real_files_rewrite_byte_identical_via_header_copy(real_file, tmp_path):
    original = real_file.read_bytes()
    with DbfFile(real_file) as f:
        out = tmp_path / real_file.name
        assert write_like(out, f, f.records(), eof=f.has_eof) == f.count
    assert out.read_bytes() == original
