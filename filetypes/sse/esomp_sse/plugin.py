"""SSE file types (上海登记结算数据接口): layouts, split keys and seed-day generator profiles.

Layout sources are stated per type in ``description`` as in esomp_szse. ZGH and Zgh are two different files
told apart only by case, so every type here matches case-sensitively on its name (the extension either case).
"""
from __future__ import annotations

from typing import Any, Callable

from esomp_core import FileType, hookimpl, layout


# 证券余额 zqye: 93 bytes; quantities are character fields.
ZQYE = layout(
    "SCDM C2, QSBH C8, ZQZH C10, XWH C5, ZQDM C6, ZQLB C2, LTLX C1, QYLB C2, GPNF C4, YE1 C16, YE2 C16, BY C12, "
    "JZRQ C8"
)
# 证券变动 zqbd.
ZQBD = layout(
    "SCDM C2, QSBH C8, ZQZH C10, XWH C5, ZQDM C6, ZQLB C2, LTLX C1, QYLB C2, GPNF C4, BDSL C16, BDLX C3, BDRQ C8, "
    "SL C16, BH C20, BY C20"
)
# 结算明细 jsmx: 48 character fields, 513 bytes.
JSMX = layout(
    "SCDM C2, JLLX C3, JYFS C3, JSFS C3, YWLX C3, QSBZ C3, GHLX C3, JSBH C16, CJBH C16, SQBH C16, WTBH C16, "
    "JYRQ C8, QSRQ C8, JSRQ C8, QTRQ C8, WTSJ C6, CJSJ C6, XWH1 C5, XWH2 C5, XWHY C8, JSHY C8, TGHY C8, ZQZH C10, "
    "ZQDM1 C6, ZQDM2 C6, ZQLB C2, LTLX C1, QYLB C2, GPNF C4, MMBZ C1, SL C16, CJSL C16, ZJZH C25, BZ C3, JG1 C17, "
    "JG2 C17, QSJE C19, YHS C17, JSF C17, GHF C17, ZGF C17, SXF C17, QTJE1 C19, QTJE2 C19, QTJE3 C19, SJSF C19, "
    "JGDM C4, FJSM C40"
)
# 过户 gh: 114 bytes. Bgh (B股过户) is taken to share it; Dgh, ZGH, Zgh and IPO_GH have no public layout and
# borrow it as placeholders (their key is "probably GDDM").
GH = layout(
    "GDDM C10, GDXM C8, BCRQ C8, CJBH N8, GSDM C5, CJSL N10, BCYE N10, ZQDM C6, SBSJ C6, CJSJ C6, CJJG N8.3, "
    "CJJE N12.2, SQBH C10, BS C1, MJBH C5"
)
# wdq: field names public, widths assumed.
WDQ = layout("SCDM C2, WDQLB C3, CJXLH C16, ZQZH C10, ZQDM C6, XWH1 C5, SL C16, QTRQ C8, CJRQ C8")
# ZQY: no public layout.
ZQY = layout("SCDM C2, QSBH C8, ZQZH C10, XWH C5, ZQDM C6, ZQLB C2, YE C16, JZRQ C8")
# SHOW2003 行情: 30 fields, 265 bytes, copied from the header of a real SHOW2003.DBF (shared/realdata/).
SHOW2003 = layout(
    "S1 C6, S2 C8, S3 N8.3, S4 N8.3, S5 N12.0, S6 N8.3, S7 N8.3, S8 N8.3, S9 N8.3, S10 N8.3, S11 N10.0, S13 N8.3, "
    "S15 N10.0, S16 N8.3, S17 N10.0, S18 N8.3, S19 N10.0, S21 N10.0, S22 N8.3, S23 N10.0, S24 N8.3, S25 N10.0, "
    "S26 N8.3, S27 N10.0, S28 N8.3, S29 N10.0, S30 N8.3, S31 N10.0, S32 N8.3, S33 N10.0"
)

SPEC = "layout: SSE spec"
NAMES_ONLY = "layout: spec field names, widths assumed"
AS_GH = "layout: assumed the same as gh"
PLACEHOLDER = "PLACEHOLDER layout (no public source): declare the real one under [filetypes.{name}]"


def _dbf(prefix: str, *rest: str) -> tuple[str, ...]:
    """Case-sensitive patterns for ``prefix`` with a .dbf or .DBF extension."""
    return tuple(p for tail in (rest or ("*",)) for p in (f"{prefix}{tail}.dbf", f"{prefix}{tail}.DBF"))


def _dbf_any_case(prefix: str, *rest: str) -> tuple[str, ...]:
    """``_dbf`` for the prefix as written, in lower case and in upper case."""
    return tuple(dict.fromkeys(p for case in (prefix, prefix.lower(), prefix.upper()) for p in _dbf(case, *rest)))


def _settlement(name: str, fields, key: str, title: str, source: str, patterns: tuple[str, ...], filename: str,
                *, placeholder: bool = False, many: bool = False, **profile: Any) -> FileType:
    return FileType(
        name=name, family="sse", channel="sse", fields=fields, key_fields=(key,), patterns=patterns,
        case_sensitive=True, placeholder=placeholder, many=many, description=f"{title}; {source.format(name=name)}",
        market="SH", profile={"filename": filename, "header_year": 1900, **profile},
    )


FILE_TYPES: tuple[FileType, ...] = (
    _settlement("zqye", ZQYE, "ZQZH", "证券余额", SPEC, _dbf("zqye", "{mmdd}"), "zqye{mmdd}.dbf", records=30),
    _settlement("zqbd", ZQBD, "ZQZH", "证券变动", SPEC, _dbf("zqbd", "{mmdd}"), "zqbd{mmdd}.dbf", records=10,
                delivery="zip"),
    _settlement("jsmx", JSMX, "ZQZH", "结算明细 (MDD extension: month 1-9/A-C and day)", SPEC,
                ("jsmx??_*.{mdd}", *_dbf("jsmx", "{mmdd}")), "jsmx01_JS123.{mdd}", records=60, seq="CJBH", eof=False,
                deleted=0.002),
    _settlement("gh", GH, "GDDM", "过户 (GH + seat number)", SPEC, (*_dbf("gh"), *_dbf("GH")), "GH32562.dbf",
                many=True, records=50, seq="CJBH", eof=False),
    _settlement("Bgh", GH, "GDDM", "B股过户", AS_GH, _dbf_any_case("Bgh", "{mmdd}"),
                "Bgh{mmdd}.dbf", records=2),
    _settlement("Dgh", GH, "GDDM", "Dgh 过户", PLACEHOLDER, _dbf_any_case("Dgh", "{mmdd}"),
                "Dgh{mmdd}.dbf", placeholder=True, records=2),
    _settlement("ZGH", GH, "GDDM", "ZGH (upper case; not Zgh)", PLACEHOLDER, _dbf("ZGH", "{mmdd}"), "ZGH{mmdd}.dbf",
                placeholder=True, records=2),
    _settlement("Zgh", GH, "GDDM", "Zgh (mixed case; not ZGH)", PLACEHOLDER, (*_dbf("Zgh", "{mmdd}"), *_dbf("zgh", "{mmdd}")),
                "Zgh{mmdd}.dbf", placeholder=True, records=2),
    _settlement("IPO_GH", GH, "GDDM", "新股过户", PLACEHOLDER, (*_dbf("IPO_GH", "{mmdd}"), *_dbf("ipo_gh", "{mmdd}")),
                "IPO_GH{mmdd}.dbf", placeholder=True, records=1),
    _settlement("WDQ", WDQ, "ZQZH", "未到期", NAMES_ONLY, (*_dbf("wdq", "{mmdd}"), *_dbf("WDQ", "{mmdd}")), "wdq{mmdd}.dbf",
                records=3),
    _settlement("ZQY", ZQY, "ZQZH", "ZQY", PLACEHOLDER, _dbf("ZQY", "{mmdd}"), "ZQY{mmdd}.dbf",
                placeholder=True, records=3),
    FileType(
        name="show2003", family="sse", channel="sse", fields=SHOW2003, case_sensitive=True,
        patterns=(*_dbf("show2003", ""), *_dbf("SHOW2003", "")),
        description="行情 (market data: every product gets the whole file); layout from a real SHOW2003.DBF "
        "header; first record 000000 carries the date; about 7% of records deleted; -.--- in numeric fields",
        profile={"filename": "show2003.dbf", "total": 11651, "header_year": 1900, "deleted": 0.07, "eof": False,
                 "quirks": ["date-record", "dash-numeric"]},
    ),
)


@hookimpl
def register_file_types(register: Callable[[FileType], None]) -> None:
    for file_type in FILE_TYPES:  # a site's own declaration of one of these names replaces it
        register(file_type)
