"""SZSE file types (深市登记结算数据接口): layouts, split keys and seed-day generator profiles.

Layout sources are stated per type in ``description``: "spec" for layouts published in the SZSE interface
specification (as collected in shared/reference/exchange-files.md), "spec names, assumed widths" where only
the field names are public, and PLACEHOLDER (``placeholder=True``) where no public layout exists: a site with
its own copy of the spec declares the real layout under ``[filetypes.NAME]`` and this plugin then steps aside.
"""
from __future__ import annotations

from typing import Any, Callable

from esomp_core import FileType, hookimpl, layout


# 清算明细 SJSMX0/1/2 (three batches, one layout): 48 fields, 478 bytes a record.
SJSMX = layout(
    "MXJSZH C6, MXBFZH C25, MXSJLX C2, MXYWLB C4, MXZQDM C8, MXJYDY C6, MXTGDY C6, MXZQZH C20, MXDDBH C24, "
    "MXYYB C4, MXZXBH C16, MXYWLSH C16, MXCJSL N15.2, MXQSSL N15.2, MXCJJG N13.4, MXQSJG N18.9, MXXYJY C1, "
    "MXPCBS C1, MXZQLB C2, MXZQZL C2, MXGFXZ C2, MXJSFS C1, MXHBDH C3, MXQSBJ N17.2, MXYHS N12.2, MXJYJSF N12.2, "
    "MXJGGF N12.2, MXGHF N12.2, MXJSF N12.2, MXSXF N12.2, MXQSYJ N12.2, MXQTFY N12.2, MXZJJE N17.2, MXSFJE N18.2, "
    "MXCJRQ C8, MXQSRQ C8, MXJSRQ C8, MXFSRQ C8, MXQTRQ C8, MXSCDM C2, MXJYFS C2, MXZQDM2 C8, MXTGDY2 C6, "
    "MXDDBH2 C16, MXCWDH C4, MXPPHM C10, MXFJSM C30, MXBYBZ C1"
)

# 明细结果 SJSJG: SJSMX's pattern with prefix JG, plus JSSL, LTLX, JSBZ (交收标志) and ZYDH; no CWDH/PPHM;
# FJSM widened to 100. 50 fields, 555 bytes.
SJSJG = layout(
    "JGJSZH C6, JGBFZH C25, JGSJLX C2, JGYWLB C4, JGZQDM C8, JGJYDY C6, JGTGDY C6, JGZQZH C20, JGDDBH C24, "
    "JGYYB C4, JGZXBH C16, JGYWLSH C16, JGCJSL N15.2, JGQSSL N15.2, JGJSSL N15.2, JGCJJG N13.4, JGQSJG N18.9, "
    "JGXYJY C1, JGPCBS C1, JGZQLB C2, JGZQZL C2, JGGFXZ C2, JGLTLX C1, JGJSFS C1, JGHBDH C3, JGQSBJ N17.2, "
    "JGYHS N12.2, JGJYJSF N12.2, JGJGGF N12.2, JGGHF N12.2, JGJSF N12.2, JGSXF N12.2, JGQSYJ N12.2, "
    "JGQTFY N12.2, JGZJJE N17.2, JGSFJE N18.2, JGJSBZ C1, JGCJRQ C8, JGQSRQ C8, JGJSRQ C8, JGFSRQ C8, "
    "JGQTRQ C8, JGSCDM C2, JGJYFS C2, JGZQDM2 C8, JGTGDY2 C6, JGDDBH2 C16, JGZYDH C4, JGFJSM C100, JGBYBZ C1"
)

# 股份对账 SJSDZ: 64 bytes.
SJSDZ = layout("DZTGDY C6, DZZQDM C8, DZZQZH C20, DZGFXZ C2, DZLTLX C1, DZZYGS N17.2, DZFSRQ C8, DZBYBZ C1")

# SJSFW: field names from the spec, widths assumed (not confirmed by a public source).
SJSFW = layout(
    "FWSJLB C2, FWJSZH C6, FWBFZH C25, FWTGDY C6, FWZQDM C8, FWZQZH C20, FWGFXZ C2, FWLTLX C1, FWMRJE N17.2, "
    "FWMCJE N17.2, FWZJYE N17.2, FWSL1 N15.2, FWSL2 N15.2, FWCLRQ C8, FWFSRQ C8, FWZYSM C30, FWBZSM C30, FWBYBZ C1"
)

# SJSGF 股份 and SJSHB: only the key field is public (GFGDDM, HBGDDM); the rest follows the SJS* pattern.
SJSGF = layout(
    "GFJSZH C6, GFTGDY C6, GFZQDM C8, GFGDDM C20, GFYWLB C4, GFGFXZ C2, GFLTLX C1, GFBDSL N17.2, GFYE N17.2, "
    "GFQSRQ C8, GFFSRQ C8, GFBYBZ C1"
)
SJSHB = layout(
    "HBJSZH C6, HBTGDY C6, HBZQDM C8, HBGDDM C20, HBYWLB C4, HBSL N15.2, HBJE N17.2, HBQSRQ C8, HBFSRQ C8, "
    "HBBYBZ C1"
)
LOFJS = layout(
    "JSJSZH C6, JSTGDY C6, JSZQDM C8, JSZQZH C20, JSYWLB C4, JSSL N15.2, JSJG N13.4, JSJE N17.2, JSSXF N12.2, "
    "JSQSRQ C8, JSJSRQ C8, JSBYBZ C1"
)
# SJSKS: no public layout at all.
SJSKS = layout("KSJSZH C6, KSTGDY C6, KSZQDM C8, KSZQZH C20, KSYWLB C4, KSSL N15.2, KSJE N17.2, KSFSRQ C8, KSBYBZ C1")

# 证券信息 SJSXX: 31 fields, 199 bytes, real D fields (XXSSRQ, XXDJRQ). Field names after the spec; widths
# assumed so the total matches the published record length.
SJSXX = layout(
    "XXZQDM C6, XXZQJC C8, XXYWJC C17, XXJCZQ C6, XXHYZL C3, XXHBZL C2, XXMGMZ N7.2, XXZFXL N12.0, "
    "XXLTGS N12.0, XXSNLR N9.4, XXBNLR N9.4, XXJSFL N8.6, XXYHSL N8.6, XXGHFL N8.6, XXSSRQ D8, XXDJRQ D8, "
    "XXMBXL N10.0, XXBLDW N6.0, XXSLDW N6.0, XXJGDW N5.3, XXJHCS N5.3, XXLXCS N5.3, XXXJLX C1, XXZTJG N9.3, "
    "XXDTJG N9.3, XXZHBL N5.2, XXJYZT C1, XXZQJB C1, XXZQLB C2, XXZQZL C1, XXBYBZ C1"
)

# 行情 SJSHQ: 35 fields, 352 bytes, copied from the header of a real SJSHQ.DBF (shared/realdata/sjshq.dbf).
SJSHQ = layout(
    "HQZQDM C6, HQZQJC C8, HQZRSP N9.3, HQJRKP N9.3, HQZJCJ N9.3, HQCJSL N12.0, HQCJJE N17.3, HQCJBS N9.0, "
    "HQZGCJ N9.3, HQZDCJ N9.3, HQSYL1 N7.2, HQSYL2 N7.2, HQJSD1 N9.3, HQJSD2 N9.3, HQHYCC N12.0, HQSJW5 N9.3, "
    "HQSSL5 N12.0, HQSJW4 N9.3, HQSSL4 N12.0, HQSJW3 N9.3, HQSSL3 N12.0, HQSJW2 N9.3, HQSSL2 N12.0, HQSJW1 N9.3, "
    "HQSSL1 N12.0, HQBJW1 N9.3, HQBSL1 N12.0, HQBJW2 N9.3, HQBSL2 N12.0, HQBJW3 N9.3, HQBSL3 N12.0, HQBJW4 N9.3, "
    "HQBSL4 N12.0, HQBJW5 N9.3, HQBSL5 N12.0"
)

SPEC = "layout: SZSE spec"
NAMES_ONLY = "layout: spec field names, widths assumed"
PLACEHOLDER = "PLACEHOLDER layout (no public source): declare the real one under [filetypes.{name}]"


def _settlement(name: str, fields, key: str, title: str, source: str, *, placeholder: bool = False,
                **profile: Any) -> FileType:
    return FileType(
        name=name, family="szse", channel="szse", fields=fields, key_fields=(key,),
        patterns=(f"{name}.dbf", f"{name}{{mmdd}}.dbf"),
        placeholder=placeholder,
        description=f"{title}; {source.format(name=name)}",
        market="SZ", profile={"filename": f"{name}{{mmdd}}.DBF", "header_year": 2000, **profile},
    )


FILE_TYPES: tuple[FileType, ...] = (
    _settlement("SJSMX0", SJSMX, "MXZQZH", "清算明细 batch 0", SPEC, records=10, seq="MXYWLSH", deleted=0.002),
    _settlement("SJSMX1", SJSMX, "MXZQZH", "清算明细 batch 1", SPEC, records=60, seq="MXYWLSH", deleted=0.002),
    _settlement("SJSMX2", SJSMX, "MXZQZH", "清算明细 batch 2", SPEC, records=10, seq="MXYWLSH", eof=False),
    _settlement("SJSJG", SJSJG, "JGZQZH", "明细结果", SPEC, records=60, seq="JGYWLSH", deleted=0.002),
    _settlement("SJSDZ", SJSDZ, "DZZQZH", "股份对账", SPEC, records=30, eof=False),
    _settlement("SJSFW", SJSFW, "FWZQZH", "SJSFW", NAMES_ONLY, records=4),
    _settlement("SJSGF", SJSGF, "GFGDDM", "股份 (key may be blank)", NAMES_ONLY, records=4, blank_key=0.01),
    _settlement("SJSHB", SJSHB, "HBGDDM", "SJSHB", NAMES_ONLY, records=3),
    _settlement("SJSKS", SJSKS, "KSZQZH", "SJSKS", PLACEHOLDER, placeholder=True, records=2),
    _settlement("LOFJS", LOFJS, "JSZQZH", "LOF 结算", NAMES_ONLY, records=3, eof=False),
    FileType(
        name="SJSXX", family="szse", channel="szse", fields=SJSXX, patterns=("SJSXX.dbf", "SJSXX{mmdd}.dbf"),
        description="证券信息 (market data: every product gets the whole file); " + NAMES_ONLY
        + "; first record 000000 carries the date",
        profile={"filename": "SJSXX{mmdd}.DBF", "total": 1713, "header_year": 2000,
                 "quirks": ["date-record", "nul-padded-numeric", "zero-date"]},
    ),
    FileType(
        name="SJSHQ", family="szse", channel="szse", fields=SJSHQ, patterns=("SJSHQ.dbf", "SJSHQ{mmdd}.dbf"),
        description="行情 (market data: every product gets the whole file); layout from a real SJSHQ.DBF header; "
        "first record 000000 carries the date and time",
        profile={"filename": "SJSHQ{mmdd}.DBF", "total": 5941, "header_year": 2000, "quirks": ["date-record"]},
    ),
)


@hookimpl
def register_file_types(register: Callable[[FileType], None]) -> None:
    for file_type in FILE_TYPES:  # a site's own declaration of one of these names replaces it
        register(file_type)
