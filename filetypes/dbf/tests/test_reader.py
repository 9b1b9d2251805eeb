import datetime
import struct
from decimal import Decimal

import pytest

from esomp_core import FieldSpec
from esomp_dbf import DbfError, DbfFile, Invalid, encode_record, write_dbf
from esomp_dbf.values import decode_value

dbfread = pytest.importorskip("dbfread")
from dbfread.field_parser import FieldParser  # noqa: E402

FIELDS = [FieldSpec("CODE", "C", 6), FieldSpec("NAME", "C", 8), FieldSpec("PRICE", "N", 8, 3), FieldSpec("QTY", "N", 6)]


def small_file(tmp_path, records=3, eof=True):
    rows = [encode_record(FIELDS, [f"{i:06d}", "证券", i + 0.5, i]) for i in range(records)]
    path = tmp_path / "SMALL.DBF"
    write_dbf(path, FIELDS, rows, eof=eof)
    return path


def test_real_headers(realdata):
    show = DbfFile(realdata("show2003.dbf"))
    assert (show.version, show.count, show.header_length, show.record_length) == (3, 11651, 993, 265)
    assert len(show.fields) == 30 and show.language_driver == 0 and not show.has_eof
    assert show.deleted_count() == sum(1 for r in show.records() if r[0] == 0x2A) > 0
    hq = DbfFile(realdata("sjshq.dbf"))
    assert (hq.count, hq.record_length, len(hq.fields), hq.has_eof) == (5941, 352, 35, True)
    assert hq.decode(0, "HQZQDM") == "000000"
    assert hq.fields[2].offset == 1 + 6 + 8 and hq.field("hqzqjc").name == "HQZQJC"


def test_real_files_read_from_bytes_match_mmap(real_file):
    data = real_file.read_bytes()
    with DbfFile(real_file) as mapped:
        from_bytes = DbfFile(data, name="x")
        assert from_bytes.fields == mapped.fields
        assert [bytes(r) for r in from_bytes.records()] == [bytes(r) for r in mapped.records()]
        assert mapped.keys(0) == [bytes(r[1:1 + mapped.fields[0].length]) for r in mapped.records()]


def agrees(ours, theirs) -> bool:
    """dbfread's value and ours mean the same: where dbfread gives float for an N field with decimals we give the
    exact Decimal of the same text, which rounds to that float."""
    if isinstance(ours, Decimal):
        return type(theirs) in (int, float) and float(ours) == theirs
    return ours == theirs and type(ours) is type(theirs)


def test_typed_values_agree_with_dbfread(real_file):
    """Every value dbfread can parse, on every record (deleted ones too), equals ours."""
    table = dbfread.DBF(str(real_file), encoding="gbk", ignore_missing_memofile=True, raw=True)
    parser = FieldParser(table)
    theirs = list(table) + list(table.deleted)
    ours = DbfFile(real_file)
    live = [i for i in range(len(ours)) if not ours.is_deleted(i)]
    dead = [i for i in range(len(ours)) if ours.is_deleted(i)]
    assert len(theirs) == len(ours)
    compared = skipped = 0
    for index, raw_row in zip(live + dead, theirs):
        for field in table.fields:
            raw = raw_row[field.name]
            assert ours.record(index)[ours.field(field.name).offset:][: field.length] == raw
            try:
                expected = parser.parse(field, raw)
            except ValueError:
                skipped += 1  # dbfread cannot parse it: no oracle for this value
                continue
            got = ours.decode(index, field.name)
            assert agrees(got, expected), (index, field.name, raw, got, expected)
            compared += 1
    assert compared > 0.99 * len(ours) * len(ours.fields), (compared, skipped)


def test_typed_iteration_equals_dbfread_rows(realdata):
    path = realdata("sjshq.dbf")
    ours = DbfFile(path)
    rows = list(dbfread.DBF(str(path), encoding="gbk"))
    live = [ours.row(i) for i in range(len(ours)) if not ours.is_deleted(i)]
    assert len(rows) == len(live)
    for theirs, mine in zip(rows, live):
        assert list(theirs) == list(mine) and all(agrees(mine[k], v) for k, v in theirs.items()), (theirs, mine)


@pytest.mark.parametrize(
    "spec, raw, expected",
    [
        (("N", 8, 3), b"   -.---", Invalid),
        (("N", 8, 2), b"  1.00\x00\x00", Decimal("1.00")),  # NUL padding stripped (documented decision)
        (("N", 8, 2), b"  1.\x0000", Invalid),
        (("N", 8, 0), b"      42", 42),
        (("N", 8, 3), b"  42.000", Decimal("42.000")),
        (("N", 8, 3), b"      42", Decimal(42)),
        (("N", 8, 0), b"        ", None),
        (("F", 8, 0), b"      42", 42.0),
        (("D", 8, 0), b"       0", None),
        (("D", 8, 0), b"00000000", None),
        (("D", 8, 0), b"20240229", datetime.date(2024, 2, 29)),
        (("D", 8, 0), b"20231341", Invalid),
        (("L", 1, 0), b"y", True),
        (("L", 1, 0), b"N", False),
        (("L", 1, 0), b"?", None),
        (("L", 1, 0), b"x", Invalid),
        (("C", 6, 0), b"ab\x00   ", "ab"),
    ],
)
def test_decoding_rules(spec, raw, expected):
    from esomp_dbf import Field

    field = Field("X", spec[0], spec[1], spec[2], 1)
    value = decode_value(field, raw, record=7)
    if expected is Invalid:
        assert isinstance(value, Invalid) and value.raw == raw and value.record == 7 and value.field == "X"
        assert value.reason
    else:
        assert value == expected and type(value) is type(expected)


def test_undecodable_text_names_file_record_and_field(tmp_path):
    rows = [encode_record(FIELDS, [b"\xff\xfe\xff\xfe\xff\xfe", "x", 1, 1])]
    path = tmp_path / "BAD.DBF"
    write_dbf(path, FIELDS, rows)
    f = DbfFile(path)
    with pytest.raises(DbfError, match=r"BAD\.DBF: record 0, field CODE: undecodable text .* gbk"):
        f.decode(0, "CODE")
    assert f.decode(0, "QTY") == 1


def corrupt(tmp_path, data, name="CORRUPT.DBF"):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_truncated_file_says_how_many_records_are_whole(tmp_path):
    data = small_file(tmp_path).read_bytes()
    path = corrupt(tmp_path, data[:-10])  # EOF byte and 9 bytes of the last record gone
    with pytest.raises(DbfError, match=r"CORRUPT\.DBF: truncated: .*3 records.*only 2 records are whole"):
        DbfFile(path)


def test_wrong_record_count(tmp_path):
    data = bytearray(small_file(tmp_path).read_bytes())
    struct.pack_into("<I", data, 4, 2)  # one record fewer than stored
    with pytest.raises(DbfError, match=r"CORRUPT\.DBF: \d+ bytes beyond the 2 records.*3 whole records"):
        DbfFile(corrupt(tmp_path, data))
    struct.pack_into("<I", data, 4, 5)
    with pytest.raises(DbfError, match="truncated"):
        DbfFile(corrupt(tmp_path, data))


def test_eof_byte_presence(tmp_path):
    assert DbfFile(small_file(tmp_path, eof=True)).has_eof
    assert not DbfFile(small_file(tmp_path, eof=False)).has_eof
    data = small_file(tmp_path).read_bytes()
    with pytest.raises(DbfError, match="at most one 0x1A"):
        DbfFile(data[:-1] + b"X", name="other")


def test_bad_version_byte(tmp_path):
    data = bytearray(small_file(tmp_path).read_bytes())
    data[0] = 0x30
    with pytest.raises(DbfError, match=r"CORRUPT\.DBF: bad version byte 0x30"):
        DbfFile(corrupt(tmp_path, data))


def test_missing_terminator_and_inconsistent_header_length(tmp_path):
    data = bytearray(small_file(tmp_path).read_bytes())
    header_length = struct.unpack_from("<H", data, 8)[0]
    assert data[header_length - 1] == 0x0D
    no_terminator = bytearray(data)
    no_terminator[header_length - 1] = 0x20
    with pytest.raises(DbfError, match="0x0D terminator"):
        DbfFile(corrupt(tmp_path, no_terminator))
    longer = bytearray(data)
    struct.pack_into("<H", longer, 8, header_length + 1)
    with pytest.raises(DbfError, match=r"header length \d+ is inconsistent with 4 field descriptors"):
        DbfFile(corrupt(tmp_path, longer))


def test_record_length_mismatch(tmp_path):
    data = bytearray(small_file(tmp_path).read_bytes())
    struct.pack_into("<H", data, 10, struct.unpack_from("<H", data, 10)[0] + 1)
    with pytest.raises(DbfError, match=r"record length 30 != sum of field lengths \+ 1 \(29\)"):
        DbfFile(corrupt(tmp_path, data))


def test_unknown_field_lists_available(tmp_path):
    f = DbfFile(small_file(tmp_path))
    with pytest.raises(DbfError, match=r"SMALL\.DBF: no field 'MXZQZH'; available fields: CODE, NAME, PRICE, QTY"):
        f.field("MXZQZH")


def test_too_short_and_empty(tmp_path):
    with pytest.raises(DbfError, match="too short"):
        DbfFile(corrupt(tmp_path, b""))
    with pytest.raises(DbfError, match="too short"):
        DbfFile(b"\x03abc", name="tiny")
