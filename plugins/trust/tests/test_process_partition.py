"""The partition job shares its inputs with a forked child when it has a second core: the same shares and manifest
as one process alone, and a child that dies fails the job naming the inputs it had."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from esomp_trust import processing
from esomp_trust.testing import DATE, new_day, run_plan


def work_files(site) -> dict[str, bytes]:
    root = Path(site.directory("extract_temp")) / DATE / "trust"
    # the shares and the partition manifests; not the processing jobs' outputs, which name inodes
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parent.name != "outputs"}


def partition(site, channel="szse"):
    return run_plan(site, only=("process",))[f"trust-partition-{channel}"]


def test_process_partition_forked_or_alone_writes_the_same_bytes(tmp_path, monkeypatch):
    site, _ = new_day(tmp_path / "day", 12)
    run_plan(site, only=("collect",))
    forked = []
    real_fork = os.fork
    monkeypatch.setattr(processing.os, "fork", lambda: forked.append(1) or real_fork())
    shared = partition(site)
    assert forked and not isinstance(shared, Exception), shared
    both = work_files(site)
    monkeypatch.setattr(processing.os, "cpu_count", lambda: 1)
    alone = partition(site)
    assert len(forked) == 3  # each channel's partition job forked once
    assert work_files(site) == both and alone.detail == shared.detail
    assert alone.detail["inputs"]["SJSMX10105.DBF"]["per_job"]
    assert run_plan(site, only=("process",))["trust-partition-sse"].detail["inputs"]["zqye0105.dbf"]["per_job"]


def test_process_partition_child_that_dies_fails_the_job_naming_its_inputs(tmp_path, monkeypatch):
    site, report = new_day(tmp_path / "dies", 4)
    run_plan(site, only=("collect",))
    parent = os.getpid()
    real = processing._partition_one

    def dying(item, *args):
        if os.getpid() != parent:
            os._exit(3)
        return real(item, *args)

    monkeypatch.setattr(processing, "_partition_one", dying)
    failure = partition(site)
    assert isinstance(failure, processing.InputError)
    named = str(failure).split("partitioning ")[1].split(" ended")[0].split(", ")
    assert "ended without its outcome" in str(failure) and named
    assert set(named) <= {f["name"] for f in report.files}
    assert not (Path(site.directory("extract_temp")) / DATE / "trust" / "partition-szse.json").exists()
    monkeypatch.setattr(processing, "_partition_one", real)
    assert not isinstance(partition(site), Exception)


@pytest.mark.parametrize("cores", [1, 2])
def test_process_partition_errors_of_either_side_are_all_named(tmp_path, monkeypatch, cores):
    site, report = new_day(tmp_path / "bad", 4)
    run_plan(site, only=("collect",))
    monkeypatch.setattr(processing.os, "cpu_count", lambda: cores)
    collected = Path(site.directory("collection_root")) / DATE
    # the two heaviest split inputs of one channel: with two cores, one goes to each side of the fork
    split = [f for f in report.files if f["split"] and f["channel"] == "szse"]
    bad = [f["name"] for f in sorted(split, key=lambda f: -f["records"])[:2]]
    for name in bad:
        path = next(collected.rglob(name))
        path.write_bytes(path.read_bytes()[:-500])
    failure = partition(site)
    assert isinstance(failure, processing.InputError)
    assert all(name in str(failure) for name in bad) and "truncated" in str(failure)


def test_process_partition_a_bad_input_fails_only_its_channels_partition(tmp_path):
    site, report = new_day(tmp_path / "one-bad", 4)
    run_plan(site, only=("collect",))
    collected = Path(site.directory("collection_root")) / DATE
    path = next(collected.rglob("zqye0105.dbf"))
    path.write_bytes(path.read_bytes()[:-500])
    results = run_plan(site, only=("process",))
    assert isinstance(results["trust-partition-sse"], processing.InputError)
    assert "zqye0105.dbf" in str(results["trust-partition-sse"])
    kept = work_files(site)
    assert "partition-szse.json" in kept and "partition-site.json" in kept and "partition-sse.json" not in kept
