"""Every input record is in exactly one product's file or in the unmatched report: trust-account counts them from
the written files' headers, independently of the splitter, and fails naming the file and the difference."""
from __future__ import annotations

from pathlib import Path

from esomp_trust import processing
from esomp_trust.accounting import RecordsUnaccounted, dbf_count
from esomp_trust.shares import Share
from esomp_trust.testing import DATE, new_day, run_plan


def test_hook_post_account_counts_every_record_of_the_day(day):
    site, report, results = day
    counted = results["trust-account"].detail["inputs"]
    split = [f for f in report.files if f["split"]]
    assert sorted(counted) == sorted(f["name"] for f in split)
    for entry in split:
        assert counted[entry["name"]] == {"input": entry["records"], "unmatched": entry["unowned"],
                                          "products": entry["records"] - entry["unowned"]}, entry["name"]


def test_account_a_record_the_splitter_dropped_fails_the_day_naming_the_file(tmp_path, monkeypatch):
    site, report = new_day(tmp_path / "dropped", 6)
    name = next(f["name"] for f in report.files if f["type"] == "SJSMX1")
    real = Share.runs

    def one_short(self, input_name):  # a splitter bug: the first product with records of the file loses one
        runs = real(self, input_name)
        if input_name == name:
            product = next(p for p, (_, count) in runs.items() if count)
            start, count = runs[product]
            runs[product] = (start, count - 1)
        return runs

    monkeypatch.setattr(Share, "runs", one_short)
    results = run_plan(site)
    assert not [n for n, r in results.items() if isinstance(r, Exception) and n != "trust-account"]
    failure = results["trust-account"]
    assert isinstance(failure, RecordsUnaccounted)
    assert name in str(failure) and "1 not accounted for" in str(failure)


def test_hook_post_account_names_a_missing_unmatched_report_with_the_difference(tmp_path):
    site, report = new_day(tmp_path / "missing", 6)
    results = run_plan(site)
    assert not [r for r in results.values() if isinstance(r, Exception)]
    unowned = next(f for f in report.files if f["split"] and f["unowned"])
    monitor = Path(site.directory("monitoring_centre")) / DATE / "unmatched"
    next(monitor.rglob(unowned["name"])).unlink()
    failure = run_plan(site, only=("post",))["trust-account"]
    assert isinstance(failure, RecordsUnaccounted)
    assert f"{unowned['unowned']} not accounted for" in str(failure) and unowned["name"] in str(failure)


def test_account_a_product_file_cut_short_is_refused_by_its_sending_job(tmp_path):
    site, report = new_day(tmp_path / "cut", 6)
    results = run_plan(site)
    assert not [r for r in results.values() if isinstance(r, Exception)]
    product_file = max((Path(site.directory("clearing_root")) / DATE).rglob("zqye0105.dbf"), key=dbf_count)
    product_file.write_bytes(product_file.read_bytes()[:-2])  # a record cut short: the header no longer fits
    results = run_plan(site, only=("send", "post"))
    failed = {name: str(r) for name, r in results.items() if isinstance(r, Exception)}
    sender = next(name for name, text in failed.items() if name.startswith("trust-send"))
    assert str(product_file) in failed[sender] and "the header says" in failed[sender]
    assert "has not succeeded" in failed["trust-account"]  # its count is gone with the failed run


def test_account_counts_headers_checked_against_the_file_size(tmp_path):
    site, report = new_day(tmp_path / "sizes", 2)
    run_plan(site, only=("collect",))
    path = next(Path(site.directory("collection_root")).rglob("SJSMX10105.DBF"))
    entry = next(f for f in report.files if f["name"] == "SJSMX10105.DBF")
    assert dbf_count(str(path)) == entry["records"]
    path.write_bytes(path.read_bytes() + b"x" * 10)  # more bytes than the header's records
    try:
        dbf_count(str(path))
    except processing.InputError as exc:
        assert "the header says" in str(exc) and str(path) in str(exc)
    else:
        raise AssertionError("a file longer than its header says was counted")


def test_account_of_zip_packages_by_institution(tmp_path):
    site, report = new_day(tmp_path / "zip", 6, package_format="zip", package_by="institution")
    results = run_plan(site)
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    counted = results["trust-account"].detail["inputs"]
    assert all(counted[f["name"]]["products"] == f["records"] - f["unowned"] for f in report.files if f["split"])
