"""How a processing job puts its files in place: a staging directory per product replacing the product's directory
once (the default layout), or a temporary name per file for layouts that share directories; both give the same
bytes, a rerun removes what a killed worker left, and market data is copied once when links cannot cross."""
from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from esomp_trust import processing
from esomp_trust.testing import DATE, new_day, run_plan


def ok(results):
    failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
    assert not failed, failed


def contents(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_process_staged_and_in_place_layouts_write_the_same_bytes(tmp_path):
    staged, _ = new_day(tmp_path / "staged", 6)
    ok(run_plan(staged, only=("collect", "process")))
    flat, _ = new_day(tmp_path / "flat", 6, split_path="{clearing_root}/{date}/{institution}/{product}_files/{name}")
    ok(run_plan(flat, only=("collect", "process")))
    a = contents(Path(staged.directory("clearing_root")) / DATE)
    b = {k.replace("_files/", "/"): v for k, v in contents(Path(flat.directory("clearing_root")) / DATE).items()}
    assert len(a) == 6 * 32 and a == b
    assert not [p for p in Path(staged.directory("clearing_root")).rglob(".*")]  # no staging directory left


def test_process_staged_rerun_replaces_the_directory_and_clears_a_killed_run(tmp_path):
    site, _ = new_day(tmp_path / "rerun", 4)
    ok(run_plan(site, only=("collect", "process")))
    root = Path(site.directory("clearing_root")) / DATE
    first = contents(root)
    product = next(p for p in root.glob("*/*") if p.is_dir())
    (product / "stray.txt").write_text("not ours")  # a file of an earlier layout, or put there by hand
    staging = product.with_name(f".{product.name}.staging")  # a worker killed mid-job left these
    staging.mkdir()
    (staging / "half.dbf").write_bytes(b"\x03")
    old = product.with_name(f".{product.name}.old")
    old.mkdir()
    ok(run_plan(site, only=("process",)))
    assert contents(root) == first
    assert not staging.exists() and not old.exists()


def test_process_staged_failure_leaves_no_staging_directory(tmp_path, monkeypatch):
    site, _ = new_day(tmp_path / "fail", 4)
    ok(run_plan(site, only=("collect", "process")))
    root = Path(site.directory("clearing_root")) / DATE
    first = contents(root)
    real = processing._write_fd
    calls = []

    def failing(fd, data):
        calls.append(1)
        if len(calls) == 40:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(processing, "_write_fd", failing)
    results = run_plan(site, only=("process",))
    failure = results["trust-process-b1-j1"]
    assert isinstance(failure, OSError) and ".staging/" in str(failure)
    assert not [p for p in root.rglob(".*")]
    assert contents(root) == first  # the products keep the last good run's files


def test_process_staged_copies_market_data_once_across_devices(tmp_path, monkeypatch):
    site, _ = new_day(tmp_path / "xdev", 4)
    ok(run_plan(site, only=("collect",)))
    collection = str(Path(site.directory("collection_root")))
    real = os.link

    def link(src, dst, **kwargs):
        if str(src).startswith(collection):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst, **kwargs)

    monkeypatch.setattr(processing.os, "link", link)
    results = run_plan(site, only=("process",))
    ok(results)
    copied = results["trust-process-b1-j1"].detail["copied_across_devices"]
    assert sorted(copied) == sorted(p.name for p in (Path(site.directory("clearing_root")) / DATE / ".shared")
                                    .iterdir())
    assert len(copied) == 3
    products = [p for p in (Path(site.directory("clearing_root")) / DATE).glob("*/*") if p.is_dir()]
    for name in copied:
        assert len({(p / name).stat().st_ino for p in products}) == 1
