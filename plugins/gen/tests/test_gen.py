import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import dbfread
import pytest
import zstandard

import esomp_gen.plugin as gen
import esomp_sitetypes.plugin as sitetypes
import esomp_sse.plugin as sse
import esomp_szse.plugin as szse
from esomp_core import account_map, query_products
from esomp_dbf import DbfFile
from esomp_gen import GenError, generate_day

PLUGINS = (szse, sse, sitetypes, gen)
DATE = "20240612"


@pytest.fixture
def make_site(esomp_site_factory, esomp_pm_factory):
    def make(**tables):
        return esomp_site_factory(pm=esomp_pm_factory(*PLUGINS), **tables)

    return make


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """One generated day of 40 products, shared by the read-only checks below."""
    from esomp_core import create_site as build
    from esomp_core import make_plugin_manager

    pm = make_plugin_manager(entry_points=False)
    for plugin in PLUGINS:
        pm.register(plugin)
    site = build(tmp_path_factory.mktemp("day"), pm)
    report = generate_day(site, DATE, 40, seed=7)
    return site, report, json.loads(Path(report.manifest).read_text(encoding="utf-8"))


def member_bytes(site, entry) -> bytes:
    """A manifest file's DBF bytes, taken out of its zip or tar.zst delivery when it has one."""
    path = site.root / entry["path"]
    if "member" not in entry:
        return path.read_bytes()
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return zf.read(entry["member"])
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.extractfile(entry["member"]).read()


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_register_commands_gen_writes_the_day_and_imports_the_master(make_site, esomp_cli):
    site = make_site()
    result = esomp_cli(["gen", "--date", "2024-06-12", "--products", "12", "--seed", "3", "--json"], site=site,
                       plugins=PLUGINS)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["files"]) == 32 and report["products"] == 12
    assert Path(report["manifest"]).name == "20240612.json"
    assert report["imported"]["created"] == 12
    products = query_products(site.repository)
    assert [p["code"] for p in products] == [f"P{i:05d}" for i in range(1, 13)]
    assert all(1 <= sum(a.startswith("SZ:") for a in p["accounts"]) <= 3 for p in products)
    assert all(1 <= sum(a.startswith("SH:") for a in p["accounts"]) <= 3 for p in products)


def test_register_commands_gen_refuses_bad_input(make_site, esomp_cli):
    site = make_site()
    bad_date = esomp_cli(["gen", "--date", "2024-13-40", "--products", "3"], site=site, plugins=PLUGINS)
    assert bad_date.exit_code != 0 and "expected CCYYMMDD" in bad_date.output
    with pytest.raises(GenError, match="unknown profile 'busy'"):
        generate_day(site, DATE, 3, profile="busy")
    with pytest.raises(GenError, match="products 0"):
        generate_day(site, DATE, 0)


def test_generate_day_is_deterministic_for_a_seed(make_site):
    first, second, other = make_site(), make_site(), make_site()
    generate_day(first, DATE, 25, seed=11)
    generate_day(second, DATE, 25, seed=11)
    generate_day(other, DATE, 25, seed=12)
    digest = tree_digest(first.root / "exchange")
    assert len(digest) > 20
    assert digest == tree_digest(second.root / "exchange")
    assert digest != tree_digest(other.root / "exchange")


def test_generated_files_are_valid_dbf_and_agree_with_the_manifest(day, tmp_path):
    site, report, manifest = day
    assert len(manifest["files"]) == 32
    for entry in manifest["files"]:
        data = member_bytes(site, entry)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["name"]
        assert len(data) == entry["bytes"]
        dbf = DbfFile(data, name=entry["name"])
        assert dbf.language_driver == 0 and dbf.version == 0x03
        assert dbf.count == entry["records"] and dbf.deleted_count() == entry["deleted"]
        assert dbf.has_eof == entry["eof"]
        copy = tmp_path / f"{entry['type']}.dbf"
        copy.write_bytes(data)
        oracle = dbfread.DBF(copy, raw=True, load=False, ignore_missing_memofile=True)
        rows = list(oracle)
        rows += list(oracle.deleted)
        assert len(rows) == entry["records"]
        if entry["split"]:
            keys = [k.strip().decode("ascii") for k in dbf.keys(entry["key"])]
            counts: dict[str, int] = {}
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
            assert counts == entry["accounts"], entry["name"]
            assert sum(entry["products"].values()) + entry["unowned"] == entry["records"]
        dbf.close()


def test_generated_split_files_give_every_product_records_and_some_to_nobody(day):
    site, report, manifest = day
    owners = {**account_map(site.repository, "SZ"), **account_map(site.repository, "SH")}
    products = {p["code"] for p in query_products(site.repository)}
    for entry in manifest["files"]:
        if not entry["split"]:
            continue
        assert set(entry["products"]) == products, entry["name"]  # all 32 files for every product
        owned = sum(n for account, n in entry["accounts"].items() if account in owners)
        assert owned == sum(entry["products"].values())
        assert entry["unowned"] > 0 or entry["records"] < 40  # a few % of records belong to no product
        for account, n in entry["accounts"].items():
            if account in owners:
                assert entry["products"][owners[account]] >= n


def test_generated_day_has_the_real_world_quirks(day):
    site, report, manifest = day
    by_type = {e["type"]: e for e in manifest["files"]}

    def dbf(name):
        return DbfFile(member_bytes(site, by_type[name]), name=name)

    sjsxx = dbf("SJSXX")
    first = sjsxx.row(0)
    assert first["XXZQDM"] == "000000" and first["XXZQJC"] == DATE
    mgmz = sjsxx.field("XXMGMZ")
    assert bytes(sjsxx.record(1)[mgmz.offset:mgmz.offset + mgmz.length]) == b"  1.00\x00"
    djrq = sjsxx.field("XXDJRQ")
    assert any(bytes(r[djrq.offset:djrq.offset + 8]) == b"       0" for r in sjsxx.records())
    sjshq = dbf("SJSHQ").row(0)
    assert sjshq["HQZQDM"] == "000000" and sjshq["HQZQJC"] == DATE and sjshq["HQCJBS"] == 153033
    show = dbf("show2003")
    assert show.row(0)["S1"] == "000000" and show.row(0)["S6"] == int(DATE)
    assert show.deleted_count() > show.count * 0.05
    assert b"-.---" in show.data
    assert len({r["S1"] for r in (show.row(i, ["S1"]) for i in range(50))}) == 50
    assert {e["eof"] for e in manifest["files"]} == {True, False}
    assert any(e["deleted"] for e in manifest["files"] if e["split"])
    assert b" " * 20 in {k for k in dbf("SJSGF").keys("GFGDDM")}  # GFGDDM may be blank
    kinds = {d["kind"]: d for d in manifest["deliveries"]}
    assert set(kinds) == {"zip", "tar.zst"}
    assert sorted(kinds["tar.zst"]["members"]) == sorted(e["name"] for e in manifest["files"]
                                                         if e["family"] == "site")
    assert (site.root / kinds["zip"]["path"]).name == "zqbd0612.zip"
    assert by_type["jsmx"]["name"] == "jsmx01_JS123.612"


def test_generated_names_are_recognised_by_their_own_type(day):
    site, report, manifest = day
    types = site.registry.file_types
    for entry in manifest["files"]:
        assert [n for n, ft in types.items() if ft.matches(entry["name"], DATE)] == [entry["type"]]


def test_generate_day_writes_into_the_configured_channel_directory(make_site, tmp_path):
    inbox = tmp_path / "inbox" / "sz"
    site = make_site(channels={"szse": {"kind": "fs", "url": str(inbox)}, "sse": {"kind": "fs",
                                                                               "url": "sftp://host/x"}})
    report = generate_day(site, DATE, 3)
    szse_files = [f for f in report.files if f["channel"] == "szse"]
    assert len(szse_files) == 12 and all((inbox / f["name"]).exists() for f in szse_files)
    assert all((site.root / "exchange" / "sse").joinpath(Path(f["path"]).name).exists()
               for f in report.files if f["channel"] == "sse")


def test_generate_day_products_master_is_importable_again(make_site):
    site = make_site()
    generate_day(site, DATE, 5, seed=1)
    again = generate_day(site, "20240613", 5, seed=1)
    assert again.imported["created"] == 0 and again.imported["updated"] == 5
