"""Record templates: plausible field values built once per file type, as record bytes.

The generator never formats a record field by field: it copies these templates in bulk and patches only the
slices that must vary (the account, a running number, the deletion flag).
"""
from __future__ import annotations

import random
from typing import Sequence

from esomp_core import FieldSpec

from esomp_dbf import encode_record

# Short names as they appear in quote and security files (GBK text, like the real ones).
SHORT_NAMES = ("平安银行", "万科Ａ", "国农科技", "世纪星源", "深振业Ａ", "全新好", "神州高铁", "中国宝安",
               "浦发银行", "白云机场", "东风汽车", "中国国贸", "首创股份", "上海机场", "包钢股份", "华能国际",
               "华夏成长", "国债1901", "新华网", "招商轮船")
SZ_PREFIXES = ("000", "001", "002", "003", "300", "159", "160", "131")
SH_PREFIXES = ("600", "601", "603", "605", "688", "510", "204", "019")
TEMPLATES = 61  # a prime, so template order and account order do not fall into step


def security_code(rng: random.Random, market: str) -> str:
    return rng.choice(SZ_PREFIXES if market == "SZ" else SH_PREFIXES) + f"{rng.randrange(1000):03d}"


def number_text(field: FieldSpec, rng: random.Random) -> bytes:
    """A random number that fits the field: right-justified with the field's decimals."""
    digits = field.length - field.decimals - (1 if field.decimals else 0) - 1  # room for a sign
    top = 10 ** min(digits, 9) if digits > 0 else 1
    whole = rng.randrange(top) if rng.random() < 0.8 else rng.randrange(min(top, 100))
    if not field.decimals:
        return str(whole).encode("ascii").rjust(field.length)
    text = f"{whole}.{rng.randrange(10 ** field.decimals):0{field.decimals}d}"
    if len(text) > field.length:  # N7.6 holds ".977962": no room for the leading zero
        text = text[1:]
    return text.encode("ascii").rjust(field.length)


def fit_text(text: str, length: int, encoding: str = "gbk") -> bytes:
    """``text`` encoded and cut to at most ``length`` bytes on a character boundary (never half a character)."""
    data = b""
    for char in text:
        piece = char.encode(encoding)
        if len(data) + len(piece) > length:
            break
        data += piece
    return data


def running_number(field: FieldSpec, number: int) -> bytes | None:
    """``number`` as exactly ``field.length`` bytes of a valid value of ``field``, wrapping at its width.

    A code or running number must never change the record's length, whatever the field's width; a date or
    logical field holds no running number (None).
    """
    if field.type not in "CNF":
        return None
    number %= 10 ** field.length
    return b"%0*d" % (field.length, number) if field.type == "C" else b"%*d" % (field.length, number)


def field_value(field: FieldSpec, rng: random.Random, date: str, market: str, encoding: str = "gbk") -> bytes:
    name = field.name.upper()
    if field.type == "D":
        return date.encode("ascii")
    if field.type in "NF":
        return number_text(field, rng)
    if field.type == "L":
        return rng.choice((b"T", b"F"))
    # Character fields: guess from the name the way the specs name things.
    if name.endswith("RQ") and field.length == 8:
        return date.encode("ascii")
    if "ZQDM" in name and field.length >= 6:
        return security_code(rng, market).encode("ascii")
    if name.endswith("JC") or name == "S2":
        return fit_text(rng.choice(SHORT_NAMES), field.length, encoding)
    if name.endswith(("SJ",)) and field.length == 6:
        return f"{rng.randrange(9, 15):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}".encode("ascii")
    if name.endswith("BZ") or field.length == 1:
        return rng.choice(b"YN01BS").to_bytes(1, "big")[: field.length]
    if field.length >= 30:
        return b""  # remarks and reserve fields are blank in almost every real record
    width = rng.randint(1, min(field.length, 12))
    return str(rng.randrange(10**width)).encode("ascii").rjust(width, b"0")


def templates(fields: Sequence[FieldSpec], rng: random.Random, date: str, market: str,
              count: int = TEMPLATES, encoding: str = "gbk") -> list[bytes]:
    return [encode_record(fields, [field_value(f, rng, date, market, encoding) for f in fields], encoding)
            for _ in range(count)]


def offsets(fields: Sequence[FieldSpec]) -> dict[str, tuple[int, int]]:
    """Field name -> (start, end) within the record, counting the deletion flag as byte 0."""
    result, at = {}, 1
    for f in fields:
        result[f.name.upper()] = (at, at + f.length)
        at += f.length
    return result
