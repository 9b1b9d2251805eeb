"""Strict reading: headers, deletion flags and values that a lenient reader would misread are refused or marked
invalid, by file, field and record (docs/filetypes.md, "Strict reading")."""
import contextlib
import datetime
import io
import json
import math
import struct
from decimal import Decimal

import pytest
from click.testing import CliRunner

from esomp_core import FieldSpec
from esomp_dbf import (DbfError, DbfFile, EncodedKeys, Field, Invalid, KeyCodes, encode_record, partition,
                       partition_codes, record_bytes, record_view, split, write_dbf, write_like, write_records)
from esomp_dbf.plugin import register_commands
from esomp_dbf.values import decode_value


def raw_dbf(fields, records=(), *, eof=True):
    """DBF bytes with descriptors written as given: (name bytes, type, length, decimals), no checks."""
    header_length = 32 + 32 * len(fields) + 1
    record_length = 1 + sum(length for _, _, length, _ in fields)
    head = bytearray(32)
    head[0] = 0x03
    struct.pack_into("<IHH", head, 4, len(records), header_length, record_length)
    for name, kind, length, decimals in fields:
        desc = bytearray(32)
        desc[0:11] = name.ljust(11, b"\x00")
        desc[11], desc[16], desc[17] = ord(kind), length, decimals
        head += desc
    head.append(0x0D)
    return bytes(head) + b"".join(records) + (b"\x1a" if eof else b"")


KEYED = [(b"ZQZH", "C", 4, 0), (b"QTY", "N", 6, 0)]


def keyed(flags=b"  ", keys=(b"A1  ", b"B1  ")):
    records = [bytes([flag]) + key + b"     1" for flag, key in zip(flags, keys)]
    return DbfFile(raw_dbf(KEYED, records), name="FLAGS.DBF")


# --- headers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("second", [b"ZQZH", b"zqzh", b" ZQZH"])
def test_duplicate_field_names_are_refused(second):
    # The last of two same-named fields used to win the name look-up: every record's key was read from it.
    data = raw_dbf([(b"ZQZH", "C", 4, 0), (second, "C", 4, 0)], [b" A1  B1  "])
    with pytest.raises(DbfError, match=r"^DUP\.DBF: field descriptor 2 '(?i:zqzh)' repeats the name of field 1 'ZQZH'"):
        DbfFile(data, name="DUP.DBF")


@pytest.mark.parametrize("kind, length, decimals", [("N", 4, 5), ("N", 4, 4), ("F", 2, 9)])
def test_decimals_that_do_not_fit_the_field_are_refused(kind, length, decimals):
    data = raw_dbf([(b"PX", kind, length, decimals)], [b" " * (length + 1)])
    with pytest.raises(DbfError, match=rf"^ODD\.DBF: field PX \({kind}{length}\.{decimals}\): {decimals} decimals"):
        DbfFile(data, name="ODD.DBF")


@pytest.mark.parametrize(
    "descriptor, problem",
    [
        ((b"NAME", "C", 4, 2), r"field NAME \(C4\.2\): decimals are for N and F fields"),
        ((b"WHEN", "D", 6, 0), r"field WHEN \(D6\): D fields are 8 bytes wide"),
        ((b"OK", "L", 2, 0), r"field OK \(L2\): L fields are 1 byte wide"),
        ((b"BLOB", "G", 4, 0), r"field BLOB: type 'G' is not a dBase III type"),
        ((b"A B", "C", 4, 0), r"field descriptor 1 has a malformed name b'A B'"),
        ((b"A\x01", "C", 4, 0), r"field descriptor 1 has a malformed name"),
    ],
)
def test_malformed_descriptors_are_refused(descriptor, problem):
    length = descriptor[2]
    with pytest.raises(DbfError, match=r"^ODD\.DBF: " + problem):
        DbfFile(raw_dbf([descriptor], [b" " * (length + 1)]), name="ODD.DBF")


def test_a_header_without_fields_is_refused():
    with pytest.raises(DbfError, match=r"^EMPTY\.DBF: no field descriptors"):
        DbfFile(raw_dbf([]), name="EMPTY.DBF")


def test_an_unknown_encoding_is_refused_at_open_naming_the_file():
    # It used to surface as a bare LookupError at the first key look-up or text value.
    with pytest.raises(DbfError, match=r"^ENC\.DBF: unknown encoding 'gbk2'"):
        DbfFile(raw_dbf(KEYED), name="ENC.DBF", encoding="gbk2")


# --- deletion flags -------------------------------------------------------------------------------------------
def test_a_bad_deletion_flag_is_refused_by_every_reading_path():
    source = keyed(flags=b" X")
    bad = r"^FLAGS\.DBF: record 1 has deletion flag b'X'"
    assert bytes(source.record(0)[:1]) == b" "
    for read in (
        lambda: source.record(1),
        lambda: source.is_deleted(1),
        lambda: source.row(1),
        lambda: list(source.records()),
        lambda: source.deleted_count(),
        lambda: source.keys("ZQZH"),
    ):
        with pytest.raises(DbfError, match=bad):
            read()


def test_the_splitter_refuses_a_bad_deletion_flag():
    source = keyed(flags=b"*?")
    bad = r"^FLAGS\.DBF: record 1 has deletion flag b'\?'"
    codes = KeyCodes(EncodedKeys.of({"A1": 0, "B1": 1}, "gbk"))
    with pytest.raises(DbfError, match=bad):
        partition_codes(source, "ZQZH", codes, 2)
    with pytest.raises(DbfError, match=bad):
        partition(source, "ZQZH", {"A1": "p"})
    with pytest.raises(DbfError, match=bad):
        split(source, "ZQZH", {"A1": "p"}, lambda dest: contextlib.nullcontext(io.BytesIO()))
    with pytest.raises(DbfError, match=bad):
        record_view(source, [0, 1])
    with pytest.raises(DbfError, match=bad):
        record_bytes(source, [1])
    with pytest.raises(DbfError, match=bad):
        write_records(io.BytesIO(), source, [1])
    # the good record alone is still readable: a job that owns only it is not held by the other one
    assert bytes(record_view(source, [0]))[:1] == b"*"
    assert partition(source, "ZQZH", {"A1": "p"}, records=[0]).counts == {"p": 1}


def test_the_splitter_names_the_first_bad_record_among_many():
    flags = b" " * 700 + b"\x00" + b"*" * 299
    source = keyed(flags=flags, keys=[b"A1  "] * 1000)
    with pytest.raises(DbfError, match=r"record 700 has deletion flag b'\\x00'.* \(1 record with a bad flag\)"):
        partition_codes(source, "ZQZH", KeyCodes(EncodedKeys.of({"A1": 0}, "gbk")), 1)


def test_two_keys_that_strip_to_one_for_two_destinations_are_refused():
    # "A1" and "A1 " are one key to the splitter: the later destination used to win without a word.
    with pytest.raises(ValueError, match=r"keys 'A1' and 'A1 ' are the same key .* destinations 'p1' and 'p2'"):
        EncodedKeys.of({"A1": "p1", "A1 ": "p2"}, "gbk")
    assert EncodedKeys.of({"A1": "p1", " A1": "p1"}, "gbk") == {b"A1": "p1"}  # one destination: no conflict


def test_info_and_cat_report_a_bad_flag_by_name(tmp_path):
    path = tmp_path / "FLAGS.DBF"
    path.write_bytes(keyed(flags=b" X").data)
    cli = __import__("click").Group("esomp")
    register_commands(cli)
    for command in ("info", "cat"):
        result = CliRunner().invoke(cli, ["dbf", command, str(path)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (command, result.exception)
        assert "FLAGS.DBF: record 1 has deletion flag b'X'" in result.output, (command, result.output)


# --- typed values ---------------------------------------------------------------------------------------------
N = Field("QTY", "N", 10, 0, 1)
N2 = Field("AMT", "N", 12, 2, 1)
F = Field("RATE", "F", 12, 0, 1)
D = Field("DAY", "D", 8, 0, 1)


@pytest.mark.parametrize("field", [N, N2, F])
@pytest.mark.parametrize("text", [b"1_000", b"NaN", b"nan", b"inf", b"Infinity", b"-Infinity", b"1,000", b"*****",
                                  b"0x1F", b"\xef\xbc\x91", b"- 1", b"1 000", b"1e999"])
def test_text_that_is_not_a_plain_number_is_invalid(field, text):
    raw = text.rjust(field.length)
    value = decode_value(field, raw, record=3, name="X.DBF")
    assert isinstance(value, Invalid), (raw, value)
    assert (value.field, value.record, value.raw) == (field.name, 3, raw)


def test_exponent_only_in_f_fields():
    assert isinstance(decode_value(N2, b"     1.5e+03"), Invalid)
    assert isinstance(decode_value(N, b"       1e5"), Invalid)
    assert decode_value(F, b"   1.5e+03  ") == 1500.0


def test_n_fields_with_decimals_are_decimal_never_float():
    for raw, expected in [(b"    1234.50", "1234.50"), (b"       -.5", "-0.5"), (b"    20161129", "20161129"),
                          (b"  **12.30**", "12.30"), (b"  1.00\x00\x00\x00\x00", "1.00")]:
        value = decode_value(N2, raw.rjust(12))
        assert type(value) is Decimal and value == Decimal(expected), raw
    assert decode_value(N, b"        42") == 42 and type(decode_value(N, b"        42")) is int
    assert decode_value(N, b"      42.5") == Decimal("42.5")


def test_dates_need_eight_digits():
    for raw in (b"2_020101", b"2024+1+1", b" 2024011", b"2024 1 1", b"2024\x0001\x0001"[:8]):
        value = decode_value(D, raw, record=0)
        assert isinstance(value, Invalid) and value.field == "DAY", raw
    assert decode_value(D, b"20240229") == datetime.date(2024, 2, 29)
    assert decode_value(D, b"       0") is None and decode_value(D, b"        ") is None


# --- writing --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("-Infinity"),
                                   Decimal("sNaN"), "1_000", "NaN", " 1e5", True])
def test_the_writer_refuses_values_that_are_not_finite_numbers(value):
    fields = [FieldSpec("AMT", "N", 12, 2)]
    with pytest.raises(ValueError, match=r"field AMT"):
        encode_record(fields, [value])


def test_the_writer_takes_decimal_and_number_text():
    fields = [FieldSpec("AMT", "N", 12, 2), FieldSpec("QTY", "N", 6)]
    assert encode_record(fields, [Decimal("1.5"), "42"]) == b" " + b"1.50".rjust(12) + b"42".rjust(6)
    assert encode_record(fields, ["-3.25", 7]) == b" " + b"-3.25".rjust(12) + b"7".rjust(6)


def test_write_like_refuses_a_bad_flag_naming_the_source():
    source = keyed()
    with pytest.raises(DbfError, match=r"^FLAGS\.DBF: record 1: 11 bytes starting b'#'"):
        write_like(io.BytesIO(), source, [b" A1       1", b"#B1       1"])


# --- JSON -----------------------------------------------------------------------------------------------------
def test_cat_json_has_no_nan_and_keeps_decimals_exact(tmp_path):
    fields = [(b"CODE", "C", 4, 0), (b"AMT", "N", 12, 2), (b"RATE", "F", 10, 0)]
    records = [b" A1  " + b"     1234.50" + b"       NaN", b" A2  " + b"  **Infinity" + b"     1e300"]
    path = tmp_path / "NAN.DBF"
    path.write_bytes(raw_dbf(fields, records))
    cli = __import__("click").Group("esomp")
    register_commands(cli)
    result = CliRunner().invoke(cli, ["dbf", "cat", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert rows[0]["AMT"] == "1234.50"
    assert rows[0]["RATE"]["invalid"] == "       NaN" and rows[1]["AMT"]["invalid"] == "  **Infinity"
    assert rows[1]["RATE"] == 1e300
