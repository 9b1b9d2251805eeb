from pathlib import Path

import pytest

from esomp_core import Registry

import esomp_szse.plugin as szse

REAL = Path("/work/shared/realdata")


def registered(pm_factory, site=None):
    registry = Registry.collect(pm_factory(szse), site)
    assert not registry.errors
    return registry.file_types


def record_length(ft):
    return 1 + sum(f.length for f in ft.fields)


def test_hook_register_file_types_registers_the_twelve_szse_files(esomp_pm_factory):
    types = registered(esomp_pm_factory)
    assert sorted(types) == sorted(["SJSMX0", "SJSMX1", "SJSMX2", "SJSJG", "SJSFW", "SJSGF", "SJSHB", "SJSKS",
                                    "SJSDZ", "SJSXX", "LOFJS", "SJSHQ"])
    assert all(ft.family == "szse" and ft.channel == "szse" and ft.encoding == "gbk" for ft in types.values())


@pytest.mark.parametrize("name, length, fields", [
    ("SJSMX0", 478, 48), ("SJSMX1", 478, 48), ("SJSMX2", 478, 48), ("SJSJG", 555, 50), ("SJSDZ", 64, 8),
    ("SJSHQ", 352, 35), ("SJSXX", 199, 31),
])
def test_hook_register_file_types_record_lengths_match_the_reference(esomp_pm_factory, name, length, fields):
    ft = registered(esomp_pm_factory)[name]
    assert record_length(ft) == length
    assert len(ft.fields) == fields


def test_hook_register_file_types_split_keys_and_market_data(esomp_pm_factory):
    types = registered(esomp_pm_factory)
    assert types["SJSMX1"].key_fields == ("MXZQZH",)
    assert types["SJSJG"].key_fields == ("JGZQZH",)
    assert types["SJSDZ"].key_fields == ("DZZQZH",)
    assert types["SJSGF"].key_fields == ("GFGDDM",)
    assert types["LOFJS"].key_fields == ("JSZQZH",)
    assert not types["SJSHQ"].split and not types["SJSXX"].split
    assert [f.type for f in types["SJSXX"].fields if f.name in ("XXSSRQ", "XXDJRQ")] == ["D", "D"]
    assert [n for n, ft in types.items() if ft.placeholder] == ["SJSKS"]
    assert "PLACEHOLDER" in types["SJSKS"].description


def test_hook_register_file_types_patterns(esomp_pm_factory):
    types = registered(esomp_pm_factory)
    mx1 = types["SJSMX1"]
    assert mx1.matches("SJSMX10612.DBF", "20240612") and mx1.matches("sjsmx1.dbf", "20240612")
    assert not mx1.matches("SJSMX10613.DBF", "20240612")
    assert not mx1.matches("SJSMX00612.DBF", "20240612")
    matching = [n for n, ft in types.items() if ft.matches("SJSJG0612.DBF", "20240612")]
    assert matching == ["SJSJG"]


@pytest.mark.skipif(not (REAL / "sjshq.dbf").exists(), reason="shared/realdata/sjshq.dbf is not on this machine")
def test_hook_register_file_types_sjshq_layout_is_the_real_header(esomp_pm_factory):
    from esomp_dbf import DbfFile

    with DbfFile(REAL / "sjshq.dbf") as real:
        assert registered(esomp_pm_factory)["SJSHQ"].fields == tuple(f.spec for f in real.fields)


def test_hook_register_file_types_yields_to_a_site_declaration(esomp_site_factory, esomp_pm_factory):
    from esomp_core import Registry
    from esomp_sitetypes import plugin as sitetypes
    from esomp_szse import plugin as szse

    site = esomp_site_factory(filetypes={"SJSKS": {"patterns": ["SJSKS*.dbf"], "key": "KSZQZH",
                                                   "fields": ["KSZQZH C 20", "KSSL N 15 2"]}})
    for order in ((szse, sitetypes), (sitetypes, szse)):  # whichever registers first, the site's own wins
        reg = Registry.collect(esomp_pm_factory(*order), site)
        assert not reg.errors
        assert [f.name for f in reg.file_types["SJSKS"].fields] == ["KSZQZH", "KSSL"]
        assert not reg.file_types["SJSKS"].placeholder and reg.owners[("file type", "SJSKS")] == sitetypes.__name__
        assert "SJSMX1" in reg.file_types