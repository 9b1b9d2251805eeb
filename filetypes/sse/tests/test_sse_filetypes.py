from pathlib import Path

import pytest

from esomp_core import Registry

import esomp_sse.plugin as sse

REAL = Path("/work/shared/realdata")


def registered(pm_factory, site=None):
    registry = Registry.collect(pm_factory(sse), site)
    assert not registry.errors
    return registry.file_types


def test_hook_register_file_types_registers_the_twelve_sse_files(esomp_pm_factory):
    types = registered(esomp_pm_factory)
    assert sorted(types) == sorted(["zqye", "zqbd", "jsmx", "gh", "Dgh", "Bgh", "ZGH", "Zgh", "IPO_GH", "WDQ",
                                    "ZQY", "show2003"])
    assert {n for n, ft in types.items() if ft.placeholder} == {"Dgh", "ZGH", "Zgh", "IPO_GH", "ZQY"}
    assert not types["show2003"].split
    assert types["zqye"].key_fields == ("ZQZH",) and types["gh"].key_fields == ("GDDM",)


@pytest.mark.parametrize("name, length", [("zqye", 93), ("gh", 114), ("jsmx", 513), ("show2003", 265)])
def test_hook_register_file_types_record_lengths_match_the_reference(esomp_pm_factory, name, length):
    assert 1 + sum(f.length for f in registered(esomp_pm_factory)[name].fields) == length


def test_hook_register_file_types_jsmx_is_all_character_fields(esomp_pm_factory):
    jsmx = registered(esomp_pm_factory)["jsmx"]
    assert len(jsmx.fields) == 48 and {f.type for f in jsmx.fields} == {"C"}


def test_hook_register_file_types_zgh_and_Zgh_are_told_apart_by_case(esomp_pm_factory):
    types = registered(esomp_pm_factory)

    def owners(filename):
        return sorted(n for n, ft in types.items() if ft.matches(filename, "20240612"))

    assert owners("ZGH0612.dbf") == ["ZGH"]
    assert owners("Zgh0612.dbf") == ["Zgh"]
    assert owners("zqye0612.dbf") == ["zqye"]  # not ZQY
    assert owners("ZQY0612.dbf") == ["ZQY"]
    assert owners("GH32562.dbf") == ["gh"]
    assert owners("Dgh0612.DBF") == ["Dgh"]


def test_hook_register_file_types_jsmx_mdd_extension(esomp_pm_factory):
    jsmx = registered(esomp_pm_factory)["jsmx"]
    assert jsmx.matches("jsmx01_JS123.612", "20240612")
    assert jsmx.matches("jsmx01_JS123.C05", "20241205")
    assert jsmx.matches("jsmx02_JS99.A31", "20241031")
    assert not jsmx.matches("jsmx01_JS123.612", "20240613")
    assert not jsmx.matches("jsmx01_JS123.C05", "20240105")
    assert jsmx.matches("jsmx01_JS123.C05")  # without a date any MDD extension


@pytest.mark.skipif(not (REAL / "show2003.dbf").exists(), reason="shared/realdata/show2003.dbf is not here")
def test_hook_register_file_types_show2003_layout_is_the_real_header(esomp_pm_factory):
    from esomp_dbf import DbfFile

    with DbfFile(REAL / "show2003.dbf") as real:
        assert registered(esomp_pm_factory)["show2003"].fields == tuple(f.spec for f in real.fields)
