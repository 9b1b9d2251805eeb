"""Collecting from local directories and memory://: completeness rules, idempotence, unpacking, the stage hook."""
from __future__ import annotations

import io
import os
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

import fsspec
import pytest
from sqlalchemy import select

from esomp_core import FileRow as File, FileType, Job, PlanError, owning_plugin
from esomp_fs import CollectError, FsChannel, FsOptions, UnpackOptions
from esomp_fs import plugin

DATE = "20261120"


def _channel(url: str, **options) -> FsChannel:
    return FsChannel("szse", FsOptions(url=url, **options))


def _collect(channel: FsChannel, root: Path, **kwargs):
    return channel.collect(DATE, dest_root=root / "collect", unpack_root=root / "unpack", **kwargs)


def _write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_collect_local_records_every_file_in_the_repository(esomp_site, tmp_path):
    source = tmp_path / "source"
    _write(source / f"SJSMX1{DATE}.DBF", b"mx" * 5000)
    _write(source / f"zqye{DATE}.dbf", b"zq" * 300)
    _write(source / "zqye20261119.dbf", b"yesterday")  # another date: not collected
    channel = _channel(str(source), patterns=["SJSMX1{date}.DBF", "zqye{date}.dbf"])
    report = _collect(channel, tmp_path, record=esomp_site.repository)

    assert sorted(f.name for f in report.collected) == [f"SJSMX1{DATE}.DBF", f"zqye{DATE}.dbf"]
    for f in report.collected:
        local = tmp_path / "collect" / DATE / "szse" / f.name
        assert local.read_bytes() == (source / f.name).read_bytes()
        assert f.path == str(local)
    with esomp_site.repository.session() as session:
        rows = session.scalars(select(File).order_by(File.name)).all()
        assert [(r.name, r.role, r.channel, r.date, r.size) for r in rows] == [
            (f"SJSMX1{DATE}.DBF", "collected", "szse", DATE, 10000), (f"zqye{DATE}.dbf", "collected", "szse", DATE, 600)]
        assert all(r.sha256 and len(r.sha256) == 64 and r.mtime and r.source.startswith(str(source)) for r in rows)
    assert not [p for p in (tmp_path / "collect").rglob("*.part")]


def test_collect_again_is_idempotent_and_refetches_changed_sources(esomp_site, tmp_path):
    source = tmp_path / "source"
    first = _write(source / "a.dbf", b"first version", mtime=1_700_000_000)
    _write(source / "b.dbf", b"stays", mtime=1_700_000_000)
    channel = _channel(str(source))
    assert len(_collect(channel, tmp_path, record=esomp_site.repository).collected) == 2

    again = _collect(channel, tmp_path, record=esomp_site.repository)
    assert again.collected == []
    assert [(s.name, s.reason) for s in again.skipped] == [
        ("a.dbf", "already collected; source unchanged (same size and mtime)"),
        ("b.dbf", "already collected; source unchanged (same size and mtime)")]

    _write(first, b"second version!", mtime=1_700_000_500)
    third = _collect(channel, tmp_path, record=esomp_site.repository)
    assert [(f.name, f.status) for f in third.collected] == [("a.dbf", "changed")]
    assert (tmp_path / "collect" / DATE / "szse" / "a.dbf").read_bytes() == b"second version!"
    with esomp_site.repository.session() as session:
        rows = session.scalars(select(File).where(File.name == "a.dbf")).all()
        assert len(rows) == 1 and rows[0].size == len(b"second version!")  # updated, not duplicated


def test_collect_without_repository_uses_the_local_copies(tmp_path):
    source = tmp_path / "source"
    _write(source / "a.dbf", b"data", mtime=1_700_000_000)
    seen = []
    channel = _channel(str(source))
    assert [f.name for f in _collect(channel, tmp_path, record=seen.append).collected] == ["a.dbf"]
    assert [f.name for f in seen] == ["a.dbf"]
    assert _collect(channel, tmp_path, record=seen.append).collected == []
    assert len(seen) == 1


def test_growing_file_is_not_collected_until_stable(tmp_path):
    source = tmp_path / "source"
    growing = _write(source / "big.dbf", b"x" * 100)
    _write(source / "done.dbf", b"complete")
    channel = _channel(str(source), stable=True, poll_interval=3)
    waits = []

    def writer_keeps_writing(seconds: float) -> None:  # the exchange appends between our two polls
        waits.append(seconds)
        with open(growing, "ab") as f:
            f.write(b"y" * 50)

    report = _collect(channel, tmp_path, sleep=writer_keeps_writing)
    assert waits == [3]
    assert [f.name for f in report.collected] == ["done.dbf"]
    assert [s.name for s in report.pending] == ["big.dbf"]
    assert "not stable yet: size 100 -> 150" in report.pending[0].reason
    assert not (tmp_path / "collect" / DATE / "szse" / "big.dbf").exists()

    report = _collect(channel, tmp_path, sleep=lambda s: None)  # the writer has finished
    assert [f.name for f in report.collected] == ["big.dbf"]
    assert (tmp_path / "collect" / DATE / "szse" / "big.dbf").read_bytes() == growing.read_bytes()


def test_ready_flag_per_file_and_trigger_file(tmp_path):
    source = tmp_path / "source"
    _write(source / "a.dbf", b"a")
    _write(source / "b.dbf", b"b")
    _write(source / "a.dbf.ok", b"")
    report = _collect(_channel(str(source), ready="*.ok"), tmp_path / "one")
    assert [f.name for f in report.collected] == ["a.dbf"]  # the flag itself is never collected
    assert [(s.name, s.reason) for s in report.pending] == [("b.dbf", "waiting for its ready flag (*.ok)")]
    _write(source / "b.ok", b"")  # the stem form counts too
    assert [f.name for f in _collect(_channel(str(source), ready="*.ok"), tmp_path / "one").collected] == ["b.dbf"]

    trigger = _channel(str(source), ready="READY{date}.flg")
    assert _collect(trigger, tmp_path / "two").collected == []
    _write(source / f"READY{DATE}.flg", b"")
    assert [f.name for f in _collect(trigger, tmp_path / "two").collected] == ["a.dbf", "a.dbf.ok", "b.dbf", "b.ok"]


def test_missing_expected_file_past_deadline_is_reported(tmp_path):
    source = tmp_path / "source"
    _write(source / f"SJSMX1{DATE}.DBF", b"mx")
    sjsdz = FileType(name="sjsdz", family="szse", patterns=("SJSDZ{mmdd}.DBF",))
    channel = FsChannel("szse", FsOptions(url=str(source), expected=["SJSMX1{date}.DBF", "sjsdz", "zqye*.dbf"],
                                          deadline="16:30", check_records=False), file_types={"sjsdz": sjsdz})

    early = _collect(channel, tmp_path, now=datetime(2026, 11, 20, 16, 29))
    assert early.missing == ["sjsdz", "zqye*.dbf"] and not early.overdue
    assert "not there yet" in early.problem() and early.findings() == []

    late = _collect(channel, tmp_path, now=datetime(2026, 11, 20, 16, 30))
    assert late.overdue and late.missing == ["sjsdz", "zqye*.dbf"]
    assert late.problem() == ("channel szse: expected files missing past the deadline (deadline 2026-11-20 16:30): "
                              "sjsdz, zqye*.dbf")
    [finding] = late.findings()
    assert (finding.rule, finding.subject, finding.severity) == ("fs.missing_files", f"{DATE}/szse", "error")

    _write(source / "sjsdz1120.dbf", b"dz")  # matched by the file type, case-insensitively
    _write(source / "ZQYE.DBF", b"zq")
    done = _collect(channel, tmp_path, now=datetime(2026, 11, 20, 17, 0))
    assert done.missing == [] and not done.overdue and done.problem() is None


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_collected_archives_are_unpacked_and_recorded(esomp_site, tmp_path):
    source = tmp_path / "source"
    _write(source / "day.zip", _zip_bytes({"SJSMX1.DBF": b"m" * 999, "dir/zqye.dbf": b"z" * 50}))
    report = _collect(_channel(str(source)), tmp_path, record=esomp_site.repository)
    target = tmp_path / "unpack" / DATE / "szse" / "day.zip"  # each archive unpacks into its own directory
    assert (target / "SJSMX1.DBF").read_bytes() == b"m" * 999 and (target / "dir" / "zqye.dbf").exists()
    assert sorted(f.name for f in report.unpacked) == ["day.zip/SJSMX1.DBF", "day.zip/dir/zqye.dbf"]
    with esomp_site.repository.session() as session:
        rows = session.scalars(select(File).where(File.role == "unpacked")).all()
        assert sorted(r.name for r in rows) == ["day.zip/SJSMX1.DBF", "day.zip/dir/zqye.dbf"]
        archive = tmp_path / "collect" / DATE / "szse" / "day.zip"
        assert all(r.source == f"{archive}#{r.name.split('/', 1)[1]}" for r in rows)


def test_bomb_and_escaping_archives_are_refused_by_collect(tmp_path):
    source = tmp_path / "source"
    _write(source / "bomb.zip", _zip_bytes({"zeros": b"\0" * (4 << 20)}))
    _write(source / "evil.zip", _zip_bytes({"../../../outside.txt": b"evil"}))
    _write(source / "fine.dbf", b"fine")
    report = _collect(_channel(str(source), unpack=UnpackOptions(max_ratio=50)), tmp_path)
    assert sorted(f.name for f in report.collected) == ["bomb.zip", "evil.zip", "fine.dbf"]
    assert len(report.errors) == 2
    assert "bomb.zip" in report.errors[0] and "decompression bomb" in report.errors[0]
    assert "evil.zip: member '../../../outside.txt'" in report.errors[1]
    assert "cannot unpack" in report.problem()
    unpacked = tmp_path / "unpack"
    assert [p for p in unpacked.rglob("*") if p.is_file()] == []
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path.parent / "outside.txt").exists()


def test_memory_channel_collects_and_delivers_byte_identical(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/esomp-test-{uuid.uuid4().hex}"
    data = os.urandom(300_000)
    fs.pipe_file(f"{root}/in/SJSMX1{DATE}.DBF", data)
    channel = _channel(f"memory://{root}/in")
    report = _collect(channel, tmp_path)
    local = tmp_path / "collect" / DATE / "szse" / f"SJSMX1{DATE}.DBF"
    assert local.read_bytes() == data
    # memory:// has no mtime: the unchanged content is recognised by its sha256.
    again = _collect(channel, tmp_path)
    assert again.collected == [] and again.skipped[0].reason == "already collected; source unchanged (same sha256)"

    out = FsChannel("trust", FsOptions(url=f"memory://{root}/out", flag="{name}.ok"))
    receipt = out.deliver(local, institution="XT001", date=DATE)
    assert receipt.remote_path == f"{root}/out/XT001/{DATE}/SJSMX1{DATE}.DBF"
    assert fs.cat_file(receipt.remote_path) == data
    assert fs.cat_file(receipt.flag_path).decode() == f"{report.collected[0].sha256}  SJSMX1{DATE}.DBF\n"
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{root}/out")) == [f"SJSMX1{DATE}.DBF",
                                                                           f"SJSMX1{DATE}.DBF.ok"]
    fs.rm(root, recursive=True)


def test_dated_source_directory(tmp_path):
    source = tmp_path / "source"
    _write(source / DATE / "a.dbf", b"a")
    channel = _channel(str(source) + "/{date}")
    assert [f.name for f in _collect(channel, tmp_path).collected] == ["a.dbf"]
    other = channel.collect("20261123", dest_root=tmp_path / "c", unpack_root=tmp_path / "u")
    assert other.collected == [] and "does not exist" in other.pending[0].reason


def test_hook_collect_collects_a_configured_channel(site_with, tmp_path):
    source = tmp_path / "source"
    _write(source / "a.dbf", b"abc")
    site = site_with(szse={"kind": "fs", "url": str(source)}, queue={"kind": "dtaq"})
    job = Job(id=1, date=DATE, name="collect-szse", stage="collect", business_type="core", channel="szse")
    result = site.pm.hook.collect(job=job, site=site)
    assert (result.files, result.bytes) == (1, 3)
    assert result.detail["collected"][0]["name"] == "a.dbf"
    assert Path(site.directory("collection_root"), DATE, "szse", "a.dbf").read_bytes() == b"abc"


def test_hook_collect_is_owned_by_the_kind_of_the_channel_the_job_names(site_with, tmp_path):
    site = site_with(szse={"kind": "fs", "url": str(tmp_path)}, queue={"kind": "dtaq"})
    def collect(channel):
        return Job(id=1, date=DATE, name=f"collect-{channel}", stage="collect", business_type="trust",
                   channel=channel)

    assert owning_plugin(site, collect("szse")) == site.pm.get_name(plugin)
    with pytest.raises(PlanError, match="job collect-queue: no plugin registers the channel kind 'dtaq' that owns it"):
        owning_plugin(site, collect("queue"))
    with pytest.raises(PlanError, match="job collect-nope: no channel 'nope' in \\[channels\\]"):
        owning_plugin(site, Job(id=1, date=DATE, name="collect-nope", stage="collect", business_type="trust",
                                channel="nope"))


def test_hook_collect_fails_the_job_on_missing_files(site_with, tmp_path):
    site = site_with(szse={"kind": "fs", "url": str(tmp_path), "expected": ["SJSMX1*.DBF"], "deadline": "00:00"})
    job = Job(id=1, date=DATE, name="collect-szse", stage="collect", business_type="core", channel="szse")
    with pytest.raises(CollectError, match=r"channel szse: expected files missing past the deadline .*SJSMX1\*\.DBF"):
        plugin.collect(job, site)
