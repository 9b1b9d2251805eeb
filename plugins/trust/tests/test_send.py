"""Sending: packages verify against their manifests, reruns are byte-identical without duplicate receipts,
shared market data is compressed once, failed deliveries name the target, zip on request."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard
from sqlalchemy import func, select

from esomp_core import InstitutionRow as Institution
from esomp_trust import PackageRow as Package, ReceiptRow as Receipt
from esomp_trust.package import MANIFEST, read_members, verify_package
from esomp_trust.testing import DATE, digests, new_day, run_plan


def counts(site):
    with site.repository.session() as s:
        return s.scalar(select(func.count(Package.id))), s.scalar(select(func.count(Receipt.id)))


def test_hook_send_every_package_verifies_against_its_manifest(day):
    site, report, results = day
    send_dir = Path(site.directory("trust_send_temp")) / DATE
    packages = sorted(send_dir.glob("*.tar.zst"))
    assert len(packages) == 50
    for package in packages:
        manifest = verify_package(package)
        assert len(manifest["files"]) == 32 and manifest["product"] == package.name.split("_")[0]
        members = list(read_members(package))
        assert members[0] == MANIFEST and members[1:] == sorted(members[1:])
        delivered = Path(site.root) / "outbox" / manifest["institution"] / DATE / package.name
        assert delivered.read_bytes() == package.read_bytes()
        assert (delivered.parent / f"{package.name}.manifest.json").is_file()
    assert counts(site) == (50, 50)
    assert sum(r.detail["delivered"] for n, r in results.items() if n.startswith("trust-send")) == 50


def test_hook_send_reuses_compressed_market_data(day):
    site, _, results = day
    frames = sorted((Path(site.directory("compressed_root")) / DATE / "trust").glob("*.zst"))
    assert len(frames) == 3  # one per market-data file for the whole day
    made = sum(r.detail["shared_frames"]["made"] for n, r in results.items() if n.startswith("trust-send"))
    assert made == 3
    for package in (Path(site.directory("trust_send_temp")) / DATE).glob("*.tar.zst"):
        data = package.read_bytes()
        assert all(frame.read_bytes() in data for frame in frames), package.name


def test_hook_send_rerun_gives_identical_packages_and_no_duplicate_receipt(day):
    site, _, _ = day
    send_dir = Path(site.directory("trust_send_temp")) / DATE
    before = digests(send_dir)
    results = run_plan(site, only=("process", "send"))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert digests(send_dir) == before
    assert counts(site) == (50, 50)
    assert sum(r.detail["already_delivered"] for n, r in results.items() if n.startswith("trust-send")) == 50


def test_hook_send_failed_delivery_names_target_and_reason(tmp_path):
    site, _ = new_day(tmp_path / "fail", 4, products_per_job=2,
                      extra_channels={"broken": {"kind": "fs", "url": "blocked/inbox", "retries": 0}})
    blocker = Path(site.root) / "blocked"
    blocker.write_text("a file where a directory should be")
    with site.repository.session() as s:
        s.get(Institution, "T001").channel = "broken"
    results = run_plan(site)
    failure = results["trust-send-b1-j1"]  # P00001 (institution T001) and P00002
    assert isinstance(failure, Exception)
    assert "P00001_20240105.tar.zst" in str(failure) and "blocked/inbox" in str(failure)
    assert "P00002" not in str(failure)
    assert not isinstance(results["trust-send-b1-j2"], Exception)
    assert counts(site) == (4, 3)  # the package is recorded; only the delivered ones have receipts

    blocker.unlink()  # the target is repaired; a rerun delivers the missing one and duplicates nothing
    results = run_plan(site, only=("send",))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert counts(site) == (4, 4)


def test_hook_send_zip_by_institution(tmp_path):
    site, _ = new_day(tmp_path / "zip", 12, package_by="institution", package_format="zip", products_per_job=5)
    results = run_plan(site)
    assert not [r for r in results.values() if isinstance(r, Exception)]
    send_dir = Path(site.directory("trust_send_temp")) / DATE
    packages = sorted(send_dir.glob("*.zip"))
    with site.repository.session() as s:
        institutions = {p.institution_code for p in s.scalars(select(Package))}
    assert len(packages) == len(institutions) > 1
    files = 0
    for package in packages:
        manifest = verify_package(package)
        assert manifest["product"] is None
        products = {f["name"].split("/")[0] for f in manifest["files"]}
        assert len(manifest["files"]) == 32 * len(products)
        files += len(manifest["files"])
    assert files == 32 * 12
    before = digests(send_dir)
    run_plan(site, only=("send",))
    assert digests(send_dir) == before


def test_send_tampered_package_fails_verification(day, tmp_path):
    site, _, _ = day
    package = next((Path(site.directory("trust_send_temp")) / DATE).glob("*.tar.zst"))
    members = read_members(package)
    name = next(n for n in members if n != MANIFEST)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for member, data in members.items():
            data = data[:-1] + b"\0" if member == name else data
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    bad = tmp_path / package.name
    bad.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    with pytest.raises(ValueError, match=rf"{bad.name}: {name}: sha256 differs"):
        verify_package(bad)


@pytest.mark.parametrize("name", ["SJSMX11120.DBF", "P00001/show2003.dbf", "深市/明细.dbf", "d/" * 60 + "long.dbf"])
def test_send_tar_headers_are_the_ones_tarfile_writes(name):
    from esomp_trust.package import OWNER, tar_header

    for size in (0, 1, 511, 512, 123_456_789, 8 ** 11 - 1):
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uid, info.gid = size, 1_763_596_800, 0o644, 0, 0
        info.uname = info.gname = OWNER
        assert tar_header(name, size, 1_763_596_800) == info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


def test_send_package_digest_is_the_written_files(day):
    site, _, _ = day
    with site.repository.session() as s:
        rows = s.scalars(select(Package)).all()
        recorded = {Path(r.path).name: (r.size, r.sha256) for r in rows}
    on_disk = digests(Path(site.directory("trust_send_temp")) / DATE)
    assert {name: digest for name, (_, digest) in recorded.items()} == {n: on_disk[n] for n in recorded}
    assert all(size == (Path(site.directory("trust_send_temp")) / DATE / name).stat().st_size
               for name, (size, _) in recorded.items())


def test_hook_send_rehashes_a_product_file_changed_after_processing(tmp_path):
    site, _ = new_day(tmp_path / "changed", 4, products_per_job=2)
    results = run_plan(site, only=("collect", "process"))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    product_file = next(p for p in (Path(site.directory("clearing_root")) / DATE).rglob("P00001/SJSMX1*"))
    data = bytearray(product_file.read_bytes())
    data[-2:-1] = b"#"  # same size, other bytes: the digest processing recorded no longer holds
    product_file.write_bytes(bytes(data))
    results = run_plan(site, only=("send",))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    package = Path(site.directory("trust_send_temp")) / DATE / f"P00001_{DATE}.tar.zst"
    manifest = verify_package(package)
    assert read_members(package)[product_file.name] == bytes(data)
    assert any(f["name"] == product_file.name for f in manifest["files"])


@pytest.mark.parametrize("members", [[], [("SJSMX11120.DBF", 3), ("深市/明细 \"x\".dbf", None)]])
def test_send_manifest_is_json_dumps_with_indent_1(members):
    import json

    from esomp_trust.package import Member, manifest_bytes

    chosen = [Member(name=name, path="/nowhere", size=512 * i, sha256=f"{i:064x}", records=records,
                     file_type="SJSMX1", shared=False) for i, (name, records) in enumerate(members)]
    expected = {"package": "P1_20240105.tar.zst", "date": DATE, "institution": "T\\001", "product": None,
                "files": [{"name": m.name, "size": m.size, "sha256": m.sha256, "records": m.records,
                           "file_type": m.file_type} for m in chosen]}
    made = manifest_bytes("P1_20240105.tar.zst", DATE, "T\\001", None, chosen)
    assert made == (json.dumps(expected, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_send_records_each_package_and_receipt_once_on_either_database(tmp_path, request, database):
    from datetime import datetime
    from types import SimpleNamespace

    from esomp_core import Job
    from esomp_core import create_site as make_site
    from esomp_trust.sending import Built, _record_packages, _record_receipts

    tables = {"database": {"url": request.getfixturevalue("esomp_postgres_url")}} if database == "postgresql" else {}
    site = make_site(tmp_path / database, **tables)
    assert site.repository.engine.dialect.name == database
    job = Job(id=7, date=DATE, name="trust-send-b1-j1", stage="send", business_type="trust")

    def built(size):
        return [Built(f"P{i}_{DATE}.tar.zst", "T001", f"P{i}", tmp_path / f"P{i}", size + i, f"{size + i:064x}", 32,
                      f"{i:064x}") for i in range(3)]

    def receipt(package, attempts):
        return SimpleNamespace(target="file:///outbox", remote_path=f"/outbox/{package.name}", size=package.size,
                               sha256=package.sha256, attempts=attempts, delivered_at=datetime(2024, 1, 5, 18))

    first = built(100)
    ids, receipted = _record_packages(site, job, first, None)
    assert sorted(ids) == [p.name for p in first] and receipted == {}
    _record_receipts(site, [(ids[p.name], receipt(p, 1)) for p in first])

    second = built(200)  # a rerun with changed packages: same rows updated, receipts found, attempts added up
    again, receipted = _record_packages(site, job, second, None)
    assert again == ids
    assert receipted == {(ids[p.name], "file:///outbox"): (p.size, p.sha256) for p in first}
    _record_receipts(site, [(ids[p.name], receipt(p, 2)) for p in second])
    with site.repository.session() as s:
        rows = {r.name: (r.size, r.sha256, r.job_id) for r in s.scalars(select(Package))}
        receipts = {r.package_id: (r.size, r.attempts) for r in s.scalars(select(Receipt))}
    assert rows == {p.name: (p.size, p.sha256, None) for p in second}  # job 7 is not in this repository
    assert receipts == {ids[p.name]: (p.size, 3) for p in second}
    site.repository.dispose()


def _package_of(tmp_path, sizes, shared_at=None):
    """A package of files of ``sizes`` (one of them shared market data when ``shared_at`` is given)."""
    import hashlib

    from esomp_trust.package import Member, SharedFrames, build_package

    members = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"F{i:02d}.DBF"
        path.write_bytes(bytes((i + j) % 251 for j in range(size)))
        members.append(Member(name=path.name, path=str(path), size=size,
                              sha256=hashlib.sha256(path.read_bytes()).hexdigest(), records=None,
                              file_type="F", shared=i == shared_at))
    package = tmp_path / "out" / f"P1_{DATE}.tar.zst"
    build_package(package, "tar.zst", name=package.name, date=DATE, institution="T001", product="P1",
                  members=members, shared=SharedFrames(tmp_path / "frames", 3), level=3)
    return package, members


def test_send_package_of_block_edge_sizes_reads_with_standard_tar_and_zstd(tmp_path):
    import shutil
    import subprocess

    package, members = _package_of(tmp_path, [0, 1, 511, 512, 513, 1024, 10_240, 70_000], shared_at=3)
    manifest = verify_package(package)
    assert [f["size"] for f in manifest["files"]] == [m.size for m in members]
    if shutil.which("zstd") and shutil.which("tar"):
        out = tmp_path / "extracted"
        out.mkdir()
        subprocess.run(f"zstd -dc '{package}' | tar -xf - -C '{out}'", shell=True, check=True)
        for m in members:
            assert (out / m.name).read_bytes() == Path(m.path).read_bytes()


@pytest.mark.parametrize("actual", [0, 511, 513, 1024])
def test_send_file_changed_while_packaging_is_refused_naming_it(tmp_path, actual):
    from esomp_trust.package import Member, PackageError, SharedFrames, build_package

    path = tmp_path / "SJSMX10105.DBF"
    path.write_bytes(b"x" * actual)
    member = Member(name=path.name, path=str(path), size=512, sha256="0" * 64, records=None, file_type="SJSMX1")
    package = tmp_path / f"P1_{DATE}.tar.zst"
    said = f"{actual} bytes, 512 expected" if actual < 512 else "more than the 512 bytes expected"
    with pytest.raises(PackageError, match=f"SJSMX10105.DBF: {said}"):
        build_package(package, "tar.zst", name=package.name, date=DATE, institution="T001", product="P1",
                      members=[member], shared=SharedFrames(tmp_path / "frames", 3), level=3)
    assert not package.exists()


def test_send_job_waiting_for_a_frame_being_made_reads_it_instead_of_making_it(tmp_path):
    import fcntl
    import threading

    from esomp_trust.package import SharedFrames

    _, members = _package_of(tmp_path, [2000, 3000], shared_at=0)
    directory = tmp_path / "waiting"
    directory.mkdir()
    maker, waiter = SharedFrames(directory, 3), SharedFrames(directory, 3)
    got = []
    with open(directory / SharedFrames.LOCK, "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another job is making the frame
        thread = threading.Thread(target=lambda: got.append(waiter.frame(members[0])))
        thread.start()
        thread.join(0.3)
        assert thread.is_alive() and not got  # it waits for the maker
        frame = maker._make(members[0], directory / f"{members[0].sha256}.tar-data.zst")
        fcntl.flock(lock, fcntl.LOCK_UN)
    thread.join(10)
    assert got == [frame] and (waiter.made, waiter.reused) == (0, 1)


def test_send_package_cut_into_frames_by_size_is_whole_and_deterministic(tmp_path, monkeypatch):
    import esomp_trust.package as package_module

    monkeypatch.setattr(package_module, "FLUSH_AT", 2048)  # an institution's large package, in small
    package, members = _package_of(tmp_path, [100, 3000, 0, 512, 5000, 700, 2048, 1], shared_at=4)
    first = package.read_bytes()
    manifest = verify_package(package)
    assert [f["name"] for f in manifest["files"]] == [m.name for m in members]
    assert all(read_members(package)[m.name] == Path(m.path).read_bytes() for m in members)
    package, _ = _package_of(tmp_path, [100, 3000, 0, 512, 5000, 700, 2048, 1], shared_at=4)
    assert package.read_bytes() == first


def test_send_pauses_the_cyclic_collector_only_for_the_job():
    import gc

    from esomp_trust.sending import _without_cyclic_gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with _without_cyclic_gc():
            assert not gc.isenabled()
            raise RuntimeError("a failed job")
    assert gc.isenabled()
    gc.disable()  # paused by someone else: left as found
    try:
        with _without_cyclic_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_hook_send_rerun_removes_the_temporary_package_of_a_killed_sender(tmp_path, monkeypatch):
    import os

    from esomp_trust import package as package_module

    site, _ = new_day(tmp_path / "killed-sender", 4)
    results = run_plan(site, only=("collect", "process"))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    send_dir = Path(site.directory("trust_send_temp")) / DATE
    real_write = package_module.write_tar_zst

    def killed_mid_package(stream, *args, **kwargs):
        stream.write(b"half a package")
        stream.flush()
        os._exit(9)  # as SIGKILL would: no cleanup runs

    pid = os.fork()
    if pid == 0:  # the sending worker, killed while writing its first package
        site.repository.engine.dispose(close=False)  # the parent's connections stay the parent's
        package_module.write_tar_zst = killed_mid_package
        try:
            run_plan(site, only=("send",))
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    left = [p.name for p in send_dir.iterdir() if p.name.endswith(".tmp")]
    assert left and all(str(pid) in name for name in left)  # what the killed worker left behind

    monkeypatch.setattr(package_module, "write_tar_zst", real_write)
    results = run_plan(site, only=("send",))
    assert not [r for r in results.values() if isinstance(r, Exception)]
    assert sorted(p.name for p in send_dir.iterdir() if p.name.startswith(".")) == []
    assert len(list(send_dir.glob("*.tar.zst"))) == 4


def test_send_frame_maker_removes_a_killed_makers_temporary_frame(tmp_path):
    from esomp_trust.package import Member, SharedFrames

    data = b"market data" * 100
    source = tmp_path / "SJSHQ0105.DBF"
    source.write_bytes(data)
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    (frames_dir / f".{digest}.tar-data.zst.99999.tmp").write_bytes(b"cut short")  # its maker was killed
    (frames_dir / ".other.tar-data.zst.99999.tmp").write_bytes(b"another frame's, not ours to judge")
    SharedFrames(frames_dir, 3).frame(Member("SJSHQ0105.DBF", str(source), len(data), digest, 1, "SJSHQ", True))
    assert sorted(p.name for p in frames_dir.iterdir() if p.name.endswith(".tmp")) == [
        ".other.tar-data.zst.99999.tmp"]
