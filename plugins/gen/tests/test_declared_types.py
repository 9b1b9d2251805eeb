"""Every file type a site declares is generated as a valid file, whatever its first field or key layout."""
import json
from pathlib import Path

import pytest

import esomp_gen.plugin as gen
import esomp_sitetypes.plugin as sitetypes
from esomp_dbf import DbfFile, Invalid

DATE = "20240612"

# Keyless (split = false) types whose first field is anything but a 6-character code.
KEYLESS = {
    "KXRQ": {"patterns": ["KXRQ{mmdd}.dbf"], "split": False, "profile": {"total": 150},
             "fields": ["RQ D 8", "ZQDM C 6", "JG N 12 3", "BZ L 1"]},
    "KXMC": {"patterns": ["KXMC{mmdd}.dbf"], "split": False, "profile": {"total": 120},
             "fields": ["MC C 20", "SL N 15 2"]},
    "KXBH": {"patterns": ["KXBH{mmdd}.dbf"], "split": False, "profile": {"total": 90},
             "fields": ["BH C 4", "JE N 17 2", "RQ C 8"]},
    "KXJE": {"patterns": ["KXJE{mmdd}.dbf"], "split": False, "profile": {"total": 75},
             "fields": ["JE N 15 2", "XH N 3", "ZQJC C 5", "BY C 40"]},
    "KXLJ": {"patterns": ["KXLJ{mmdd}.dbf"], "split": False, "profile": {"total": 60, "seq": "LSH"},
             "fields": ["LJ L 1", "LSH N 2", "DM C 6"]},
    "KXUT": {"patterns": ["KXUT{mmdd}.dbf"], "split": False, "profile": {"total": 40}, "encoding": "utf-8",
             "fields": ["ZQJC C 7", "SL N 5"]},
}


def generated(esomp_site_factory, esomp_pm_factory, esomp_cli, filetypes):
    site = esomp_site_factory(pm=esomp_pm_factory(sitetypes, gen), filetypes=filetypes)
    result = esomp_cli(["gen", "--date", DATE, "--products", "5", "--types", ",".join(filetypes), "--json"],
                       site=site, plugins=(sitetypes, gen))
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path(json.loads(result.output)["manifest"]).read_text(encoding="utf-8"))
    return site, {entry["type"]: entry for entry in manifest["files"]}


def invalid_values(dbf: DbfFile) -> list[str]:
    """Every value of every record that the strict reader does not accept, as 'record field: problem'."""
    problems = []
    for index in range(dbf.count):
        for name, value in dbf.row(index).items():
            if isinstance(value, Invalid):
                problems.append(f"record {index} {name}: {value.reason} ({value.raw!r})")
    return problems


def test_gen_round_trips_keyless_types_with_any_first_field(esomp_site_factory, esomp_pm_factory, esomp_cli):
    site, files = generated(esomp_site_factory, esomp_pm_factory, esomp_cli, KEYLESS)
    assert set(files) >= set(KEYLESS)
    for name, table in KEYLESS.items():
        entry = files[name]
        dbf = DbfFile((site.root / entry["path"]).read_bytes(), name=entry["name"],
                      encoding=table.get("encoding", "gbk"))
        assert dbf.count == table["profile"]["total"] == entry["records"], name
        assert [f.name for f in dbf.fields] == [f.split()[0] for f in table["fields"]], name
        assert invalid_values(dbf) == [], name
        dbf.close()


def test_gen_numbers_a_narrow_running_number_field_without_overflowing(esomp_site_factory, esomp_pm_factory,
                                                                        esomp_cli):
    site, files = generated(esomp_site_factory, esomp_pm_factory, esomp_cli, {"KXLJ": KEYLESS["KXLJ"]})
    dbf = DbfFile((site.root / files["KXLJ"]["path"]).read_bytes(), name="KXLJ")
    numbers = [dbf.row(i)["LSH"] for i in range(dbf.count)]
    assert numbers[:3] == [1, 2, 3] and all(0 <= n <= 99 for n in numbers)  # wraps at the field's width


def test_gen_round_trips_a_split_type_with_a_narrow_key_and_short_name_field(esomp_site_factory, esomp_pm_factory,
                                                                             esomp_cli):
    declared = {"KSPL": {"patterns": ["KSPL{mmdd}.dbf"], "key": "ZH", "market": "SH",
                         "profile": {"records": 4, "seq": "XH"},
                         "fields": ["XH C 3", "ZH C 10", "ZQJC C 3", "SL N 9"]}}
    site, files = generated(esomp_site_factory, esomp_pm_factory, esomp_cli, declared)
    entry = files["KSPL"]
    dbf = DbfFile((site.root / entry["path"]).read_bytes(), name="KSPL")
    assert dbf.count == entry["records"] and invalid_values(dbf) == []
    assert sum(entry["products"].values()) + entry["unowned"] == entry["records"]


def test_gen_names_a_declared_file_so_that_its_own_pattern_matches(esomp_site_factory, esomp_pm_factory, esomp_cli):
    declared = {"KXWC": {**KEYLESS["KXBH"], "patterns": ["KX??[AB]{mmdd}.dbf"]}}
    site, files = generated(esomp_site_factory, esomp_pm_factory, esomp_cli, declared)
    name = files["KXWC"]["name"]
    assert name == "KX00A0612.dbf" and site.registry.file_types["KXWC"].matches(name, DATE)


@pytest.mark.parametrize("profile, problem", [
    ({"seq": "NOPE"}, "file type KXRQ: profile.seq: no field 'NOPE' (fields: RQ, ZQDM, JG, BZ)"),
    ({"seq": "RQ"}, "file type KXRQ: profile.seq: field RQ is of type D"),
    ({"total": "many"}, "file type KXRQ: profile.total: expected a number of 0 or more, got 'many'"),
])
def test_gen_refuses_a_profile_it_cannot_honour(esomp_site_factory, esomp_pm_factory, esomp_cli, profile, problem):
    declared = {"KXRQ": {**KEYLESS["KXRQ"], "profile": profile}}
    site = esomp_site_factory(pm=esomp_pm_factory(sitetypes, gen), filetypes=declared)
    result = esomp_cli(["gen", "--date", DATE, "--products", "2", "--types", "KXRQ"], site=site,
                       plugins=(sitetypes, gen))
    assert result.exit_code != 0 and problem in result.output
