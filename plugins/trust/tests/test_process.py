"""Processing on a generated day: 32 files per product, every record accounted for, market data hard-linked,
corrupt inputs and path traversal refused with the file or product named."""
from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from esomp_trust.testing import DATE, as_job, new_day, run_plan
from esomp_core import Job
from esomp_dbf import DbfFile
from esomp_trust import plugin
from esomp_trust.options import OutputPaths, PathTraversal, split_path


def product_dirs(site):
    root = Path(site.directory("clearing_root")) / DATE
    return {p.name: p for inst in root.iterdir() if not inst.name.startswith(".") for p in inst.iterdir()}


def test_hook_process_every_product_gets_32_files(day):
    site, report, _ = day
    dirs = product_dirs(site)
    assert len(dirs) == 50
    names = {f["name"] for f in report.files}
    assert len(names) == 32
    for product, directory in dirs.items():
        assert {p.name for p in directory.iterdir()} == names, product
        for path in directory.iterdir():
            DbfFile(path).close()  # a valid DBF, header included, even with no records


def test_hook_process_every_record_lands_in_one_product_or_the_unmatched_report(day):
    site, report, results = day
    dirs = product_dirs(site)
    monitor = Path(site.directory("monitoring_centre")) / DATE
    from esomp_core import account_map

    partitions = [json.loads(p.read_text()) for p in
                  (Path(site.directory("extract_temp")) / DATE / "trust").glob("partition-*.json")]
    assert sorted(p["channel"] for p in partitions) == ["site", "sse", "szse"]
    collected = {e["name"]: e["path"] for p in partitions for e in p["inputs"]}
    partition_of = {e["name"]: f"trust-partition-{p['channel']}" for p in partitions for e in p["inputs"]}
    for entry in (f for f in report.files if f["split"]):
        owner = account_map(site.repository, entry["market"])
        name = entry["name"]
        landed = 0
        with DbfFile(collected[name]) as source:
            header = bytes(source.header)
            remaining = Counter(bytes(r) for r in source.records())
        for product, directory in dirs.items():
            with DbfFile(directory / name) as part:
                keys = {k.strip(b" \x00").decode() for k in part.keys(entry["key"])}
                assert all(owner[k] == product for k in keys), (name, product)
                assert part.count == entry["products"].get(product, 0), (name, product)
                landed += part.count
                assert bytes(part.header)[:4] + bytes(part.header)[8:] == header[:4] + header[8:]
                remaining.subtract(bytes(r) for r in part.records())  # byte for byte, as in the source
        assert min(remaining.values()) >= 0 and sum(remaining.values()) == entry["unowned"], name
        report_csv = monitor / f"unmatched-{partition_of[name]}-{name}.csv"
        unmatched = list(csv.DictReader(report_csv.open())) if entry["unowned"] else []
        assert len(unmatched) == entry["unowned"]
        assert all(row["key"] not in owner and row["file"] == name for row in unmatched)
        assert landed + len(unmatched) == entry["records"], name
        indices = {int(row["record"]) for row in unmatched}
        assert len(indices) == len(unmatched)
        detail = results[partition_of[name]].detail["inputs"][name]
        assert detail["records"] == entry["records"]
        assert detail.get("unmatched", {}).get("records", 0) == entry["unowned"]


def test_hook_process_market_data_is_hard_linked(day):
    site, report, results = day
    dirs = product_dirs(site)
    market = [f for f in report.files if not f["split"]]
    assert sorted(f["type"] for f in market) == ["SJSHQ", "SJSXX", "show2003"]
    collected = Path(site.directory("collection_root")) / DATE
    for entry in market:
        source = next(collected.rglob(entry["name"]))
        inodes = {os.stat(d / entry["name"]).st_ino for d in dirs.values()}
        assert inodes == {source.stat().st_ino}
        assert source.stat().st_nlink >= 51
    for name, result in results.items():
        if name.startswith("trust-process"):
            assert result.detail["linked"] == 3 * result.detail["products"], name
    assert "copied_across_devices" not in results["trust-process-b1-j1"].detail


def test_hook_process_rerun_is_idempotent(day):
    site, _, _ = day
    before = {p: {f.name: (f.read_bytes(), f.stat().st_ino) for f in d.iterdir()} for p, d in product_dirs(site).items()}
    results = run_plan(site, only=("process",))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    after = {p: {f.name: (f.read_bytes(), f.stat().st_ino) for f in d.iterdir()} for p, d in product_dirs(site).items()}
    assert {p: {n: b for n, (b, _) in files.items()} for p, files in after.items()} == \
        {p: {n: b for n, (b, _) in files.items()} for p, files in before.items()}
    # No temporary files left behind anywhere under the clearing root.
    assert not [p for p in Path(site.directory("clearing_root")).rglob("*") if ".tmp" in p.name or ".link" in p.name]


def test_hook_process_bcp_for_listed_types(tmp_path):
    site, report = new_day(tmp_path / "bcp", 6, bcp_types=["SJSJG", "SJSXX"])
    results = run_plan(site, only=("collect", "process"))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    bcp = Path(site.directory("bcp_root")) / DATE
    jg = next(f for f in report.files if f["type"] == "SJSJG")
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in bcp.rglob(jg["name"] + ".bcp"))
    assert len(list(bcp.rglob(jg["name"] + ".bcp"))) == 6
    owned = sum(jg["products"].values())
    assert owned - jg["deleted"] <= lines <= owned  # deleted records are not loaded
    xx = next(f for f in report.files if f["type"] == "SJSXX")
    text = (bcp / "market" / f"{xx['name']}.bcp").read_text(encoding="utf-8").splitlines()
    assert len(text) == xx["records"] - xx["deleted"] and text[0].count("\t") == 30


def test_hook_process_corrupt_input_fails_naming_the_file(tmp_path):
    site, report = new_day(tmp_path / "corrupt", 8)
    run_plan(site, only=("collect",))
    mx = next(f for f in report.files if f["type"] == "SJSMX1")
    collected = next((Path(site.directory("collection_root")) / DATE).rglob(mx["name"]))
    data = collected.read_bytes()
    collected.write_bytes(data[: len(data) - 700])  # truncated mid-record

    results = run_plan(site, only=("process", "send"))
    bad = next(name for name, outcome in results.items() if name.startswith("trust-partition")
               and isinstance(outcome, Exception))
    failure = results[bad]
    assert mx["name"] in str(failure) and "truncated" in str(failure)
    # The other channels' partitions stand: their work is kept for the rerun.
    assert all(not isinstance(outcome, Exception) for name, outcome in results.items()
               if name.startswith("trust-partition") and name != bad)
    # The processing and sending jobs cannot run on a partial day: they fail saying what they wait for.
    for name, outcome in results.items():
        if not name.startswith("trust-partition"):
            assert isinstance(outcome, Exception) and bad in str(outcome), name

    collected.write_bytes(data)  # the operator puts the good file back and reruns
    results = run_plan(site, only=("process", "send"))
    assert not [r for r in results.values() if isinstance(r, Exception)]


def test_hook_process_path_traversal_is_refused(tmp_path):
    with pytest.raises(PathTraversal, match=r"product \.\./x"):
        split_path("{clearing_root}/{date}/{institution}/{product}/{name}", clearing_root=str(tmp_path),
                   date=DATE, institution="T1", product="../x", name="a.dbf")
    site, _ = new_day(tmp_path / "traversal", 4)
    run_plan(site, only=("collect", "process"))
    out = OutputPaths("{clearing_root}/{date}/{product}/../../../{name}", clearing_root=site.directory("clearing_root"),
                      date=DATE, institution={"P00001": "T1"})
    with pytest.raises(PathTraversal, match=r"product P00001.*outside"):
        out("P00001", "a.dbf")


def test_hook_process_missing_key_field_names_file_and_field(tmp_path):
    site, report = new_day(tmp_path / "field", 3)
    run_plan(site, only=("collect",))
    spec = next(s for s in site.registry.business_types["trust"].plan(site, DATE) if s.name == "trust-partition-sse")
    from esomp_core import FileType

    # A site re-declares a type with a key field its files do not have.
    zqye = site.registry.file_types["zqye"]
    site.registry.file_types["zqye"] = FileType(**{**{a: getattr(zqye, a) for a in
                                                     ("name", "family", "patterns", "fields", "encoding", "format",
                                                      "case_sensitive", "channel", "profile")},
                                                  "key_fields": ("NOSUCH",)})
    with pytest.raises(Exception, match=r"zqye0105\.dbf.*no field 'NOSUCH'"):
        plugin.process(job=as_job(0, spec), site=site)


def test_hook_process_refuses_an_input_recollected_after_the_partition(tmp_path):
    site, report = new_day(tmp_path / "changed", 6)
    results = run_plan(site, only=("collect", "process"))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    mx = next(f for f in report.files if f["type"] == "SJSMX1")
    collected = next((Path(site.directory("collection_root")) / DATE).rglob(mx["name"]))
    data = collected.read_bytes()
    collected.unlink()
    collected.write_bytes(data)  # same bytes, new file: the record numbers may no longer be true of it

    spec = next(s for s in site.registry.business_types["trust"].plan(site, DATE) if s.name == "trust-process-b1-j1")
    with pytest.raises(Exception, match=rf"{mx['name']} changed since the partition job read it.*rerun trust-partition"):
        plugin.process(job=as_job(1, spec), site=site)
    results = run_plan(site, only=("process",))  # the partition job runs again first, as a rerun would
    assert not [r for r in results.values() if isinstance(r, Exception)]


def test_hook_process_rerun_removes_what_a_killed_worker_left(day):
    site, _, _ = day
    directory = next(iter(product_dirs(site).values()))
    (directory / ".SJSMX10105.DBF.tmp").write_bytes(b"")  # killed between create and write
    (directory / ".SJSHQ0105.DBF.link").write_bytes(b"")  # killed between link and rename
    results = run_plan(site, only=("process",))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == []
