"""``esomp gen --types`` and ``--exclude``: which file types a day gets, and the manifest saying what was left out."""
import json
from pathlib import Path

import pytest

import esomp_gen.plugin as gen
import esomp_sitetypes.plugin as sitetypes
import esomp_sse.plugin as sse
import esomp_szse.plugin as szse
from esomp_gen import GenError, generate_day

PLUGINS = (szse, sse, sitetypes, gen)
DATE = "20240612"


@pytest.fixture
def site(esomp_site_factory, esomp_pm_factory):
    return esomp_site_factory(pm=esomp_pm_factory(*PLUGINS))


def run_gen(esomp_cli, site, *options):
    return esomp_cli(["gen", "--date", DATE, "--products", "3", *options, "--json"], site=site, plugins=PLUGINS)


def manifest_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(Path(json.loads(result.output)["manifest"]).read_text(encoding="utf-8"))


def test_gen_types_writes_only_the_named_types(site, esomp_cli):
    manifest = manifest_of(run_gen(esomp_cli, site, "--types", "SJSMX1,zqye", "--types", "TZXX"))
    assert sorted(f["type"] for f in manifest["files"]) == ["SJSMX1", "TZXX", "zqye"]
    assert len(manifest["left_out"]) == 29 and "SJSHQ" in manifest["left_out"]
    assert manifest["left_out"]["SJSHQ"] == "not in --types"
    assert not (site.root / "exchange" / "szse" / "SJSHQ0612.DBF").exists()


def test_gen_exclude_writes_all_but_the_named_types(site, esomp_cli):
    manifest = manifest_of(run_gen(esomp_cli, site, "--exclude", "show2003, SJSHQ"))
    generated = {f["type"] for f in manifest["files"]}
    assert len(generated) == 30 and not generated & {"show2003", "SJSHQ"}
    assert manifest["left_out"] == {"SJSHQ": "in --exclude", "show2003": "in --exclude"}


def test_gen_without_selection_leaves_nothing_out(site):
    report = generate_day(site, DATE, 3)
    assert len(report.files) == 32 and report.left_out == {}


def test_gen_refuses_unknown_type_names_listing_the_known_ones(site, esomp_cli):
    result = run_gen(esomp_cli, site, "--types", "SJSMX1,SJSMX9")
    assert result.exit_code != 0
    assert "--types: unknown file type SJSMX9" in result.output
    assert "known: " in result.output and "SJSMX1" in result.output and "zqye" in result.output
    with pytest.raises(GenError, match=r"--exclude: unknown file types nope, zgh \(known: .*Zgh"):
        generate_day(site, DATE, 3, exclude=["nope", "zgh"])
    with pytest.raises(GenError, match=r"did you mean ZGH or Zgh\?"):
        generate_day(site, DATE, 3, types=["zgh"])


def test_gen_refuses_a_selection_that_leaves_nothing(site):
    with pytest.raises(GenError, match="no file type left to generate"):
        generate_day(site, DATE, 3, types=["SJSHQ"], exclude=["SJSHQ"])


def test_gen_fault_on_a_left_out_type_is_an_error(site):
    with pytest.raises(GenError, match="no plain file of type SJSHB, SJSKS in this day"):
        generate_day(site, DATE, 3, types=["SJSMX1"], faults=["missing-file"])
