import json

import pytest

from esomp_core import ConfigError, Registry

import esomp_sitetypes.plugin as sitetypes
from esomp_sitetypes import file_type

# The seed day's 30 processed files plus the two market-data files (seed 000, 数据要求 1).
SEED_FILES = {"IPO_GH", "zqye", "zqbd", "jsmx", "gh", "Dgh", "LOFJS", "SJSFW", "SJSGF", "SJSHB", "SJSJG", "SJSKS",
              "SJSMX0", "SJSMX1", "SJSMX2", "WDQ", "ZGH", "ZQY", "SJSDZ", "TZXX", "SJSXX", "abcsj", "Bgh", "Cil",
              "Lofmxzf", "scdhb", "Zgh", "zhtg", "zhzl", "zsmx", "show2003", "SJSHQ"}
DEFAULTS = {"TZXX", "abcsj", "Cil", "Lofmxzf", "scdhb", "zhtg", "zhzl", "zsmx"}
KCB = {"patterns": ["KCBMX{mmdd}.dbf"], "key": "KCZQZH", "market": "SH", "channel": "sse",
       "fields": ["KCZQZH C 10", "KCZQDM C6", {"name": "KCSL", "type": "N", "length": 15, "decimals": 2},
                  "KCRQ D 8"]}


def collect(pm_factory, site=None, *plugins):
    return Registry.collect(pm_factory(sitetypes, *plugins), site)


def test_hook_register_file_types_ships_placeholders_for_the_unpublished_layouts(esomp_pm_factory):
    registry = collect(esomp_pm_factory)
    assert not registry.errors
    assert set(registry.file_types) == DEFAULTS
    for ft in registry.file_types.values():
        assert ft.placeholder and ft.split and ft.family == "site" and ft.market in ("SZ", "SH")


def test_hook_register_file_types_new_type_declared_in_config(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(filetypes={"KCBMX": KCB})
    registry = collect(esomp_pm_factory, site)
    assert not registry.errors
    kcb = registry.file_types["KCBMX"]
    assert [(f.name, f.type, f.length, f.decimals) for f in kcb.fields] == [
        ("KCZQZH", "C", 10, 0), ("KCZQDM", "C", 6, 0), ("KCSL", "N", 15, 2), ("KCRQ", "D", 8, 0)]
    assert kcb.key_fields == ("KCZQZH",) and kcb.channel == "sse" and not kcb.placeholder
    assert kcb.matches("KCBMX0612.dbf", "20240612") and not kcb.matches("KCBMX0613.dbf", "20240612")
    assert DEFAULTS <= set(registry.file_types)


@pytest.mark.parametrize("change, path, words", [
    ({"key": "NOPE"}, "filetypes.KCBMX.key", "not among the fields"),
    ({"fields": ["KCZQZH C 10", "KCSL X 15"]}, "filetypes.KCBMX.fields[1]", "NAME TYPE WIDTH"),
    ({"fields": ["KCZQZH C 10", "KCZQZH N 5"]}, "filetypes.KCBMX.fields[1]", "repeats"),
    ({"fields": ["KCZQZH C 10", "KCRQ D 6"]}, "filetypes.KCBMX.fields[1]", "width 6"),
    ({"key": [], "split": True}, "filetypes.KCBMX.key", "needs a key"),
    ({"split": False}, "filetypes.KCBMX.split", "drop one"),
    ({"encoding": "klingon"}, "filetypes.KCBMX.encoding", "unknown encoding"),
    ({"market": "HK"}, "filetypes.KCBMX.market", "expected one of"),
    ({"patern": ["x"]}, "filetypes.KCBMX.patern", "unknown key"),
    ({"patterns": []}, "filetypes.KCBMX.patterns", "at least one"),
])
def test_hook_register_file_types_bad_declaration_names_the_key(esomp_site_factory, esomp_pm_factory, change, path,
                                                           words):
    site = esomp_site_factory(filetypes={"KCBMX": {**KCB, **change}})
    registry = collect(esomp_pm_factory, site)
    assert len(registry.errors) == 1
    assert f"{path}: " in registry.errors[0] and words in registry.errors[0]
    assert str(site.config.source) in registry.errors[0]
    assert DEFAULTS == set(registry.file_types)  # the good declarations are still registered


def test_file_type_error_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        file_type("X", {"patterns": ["x*"], "fields": "not a list"}, "esomp.toml")
    assert caught.value.path == "filetypes.X.fields"


def test_hook_register_file_types_site_overrides_a_placeholder(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(filetypes={
        "TZXX": {"fields": ["TZZH C 20", "TZJE N 17 2"], "key": "TZZH"},
        "zhzl": {"description": "still unknown here"},
    })
    registry = collect(esomp_pm_factory, site)
    assert not registry.errors
    tzxx = registry.file_types["TZXX"]
    assert not tzxx.placeholder and tzxx.key_fields == ("TZZH",) and len(tzxx.fields) == 2
    assert tzxx.patterns == ("TZXX{mmdd}.dbf",)  # keys the site does not give come from the default
    zhzl = registry.file_types["zhzl"]
    assert zhzl.placeholder and zhzl.description == "still unknown here"


def all_plugins():
    import esomp_sse.plugin as sse
    import esomp_szse.plugin as szse

    return [szse, sse, sitetypes]


def test_hook_register_file_types_all_families_cover_the_seed_day(esomp_pm_factory):
    registry = Registry.collect(esomp_pm_factory(*all_plugins()), None)
    assert not registry.errors
    assert set(registry.file_types) == SEED_FILES and len(registry.file_types) == 32


def test_hook_register_file_types_each_generated_name_matches_exactly_one_type(esomp_pm_factory):
    from esomp_core import expand_date_tokens

    types = Registry.collect(esomp_pm_factory(*all_plugins()), None).file_types
    for date in ("20240612", "20241205"):
        for ft in types.values():
            name = expand_date_tokens(ft.profile.get("filename") or ft.patterns[0].replace("*", "{mmdd}"), date)
            owners = [n for n, other in types.items() if other.matches(name, date)]
            assert owners == [ft.name], name
            assert [n for n, other in types.items() if other.matches(name)] == [ft.name], name


def test_hook_register_commands_filetypes_lists_32(esomp_site, esomp_cli):
    result = esomp_cli(["filetypes", "--json"], site=esomp_site, plugins=all_plugins())
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == SEED_FILES
    assert rows["SJSMX1"]["record_length"] == 478 and rows["SJSMX1"]["split"] == "split"
    assert rows["SJSHQ"]["split"] == "whole" and rows["SJSHQ"]["key"] == []
    assert rows["ZGH"]["case_sensitive"] and rows["TZXX"]["placeholder"] and not rows["zqye"]["placeholder"]
    table = esomp_cli(["filetypes"], site=esomp_site, plugins=all_plugins())
    assert table.exit_code == 0 and "32 file type(s)" in table.output
    assert "PLACE" in table.output and "SJSMX1" in table.output


def test_hook_register_commands_filetypes_reports_a_bad_declaration(esomp_site_factory, esomp_cli):
    site = esomp_site_factory(filetypes={"KCBMX": {**KCB, "key": "NOPE"}})
    result = esomp_cli(["filetypes", "--json"], site=site, plugins=all_plugins())
    assert result.exit_code == 1
    assert "filetypes.KCBMX.key" in result.output
