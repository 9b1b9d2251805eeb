"""Delivering to local directories: templates, names that would escape, failures that name the target."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from esomp_fs import DeliveryError, FsChannel, FsOptions, plugin, remote, transfer

DATE = "20261120"


def _package(tmp_path, size=100_000):
    package = tmp_path / "pkg" / f"XT001_{DATE}.zip"
    package.parent.mkdir(exist_ok=True)
    package.write_bytes(os.urandom(size))
    return package


def test_deliver_to_a_directory_with_template_name_and_manifest(tmp_path):
    package = _package(tmp_path)
    manifest = tmp_path / "pkg" / "manifest.json"
    manifest.write_text("{}")
    target = tmp_path / "outbox"
    channel = FsChannel("trust", FsOptions(url=f"file://{target}", path_template="{date}/{institution}-{mdd}/{name}",
                                           flag="READY.{institution}"))
    receipt = channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest, name="all.zip")
    folder = target / DATE / "XT001-B20"  # November is B in the exchanges' month letters
    assert sorted(p.name for p in folder.iterdir()) == ["READY.XT001", "all.zip", "manifest.json"]
    assert (folder / "all.zip").read_bytes() == package.read_bytes()
    assert receipt.remote_path == str(folder / "all.zip") and receipt.manifest_path == str(folder / "manifest.json")
    assert receipt.flag_path == str(folder / "READY.XT001") and receipt.attempts == 1
    row = receipt.as_row(package_id=7)
    assert (row["package_id"], row["remote_path"], row["size"], row["sha256"]) == (7, receipt.remote_path, 100_000,
                                                                                 receipt.sha256)


def test_deliver_removes_temporary_names_left_by_a_dead_delivery(tmp_path):
    package = _package(tmp_path)
    folder = tmp_path / "outbox" / "XT001" / DATE
    folder.mkdir(parents=True)
    orphan = folder / f".{package.name}.0123456789ab.part"  # a worker killed mid-upload left this
    orphan.write_bytes(b"half a package")
    other = folder / ".XT002_20261120.zip.0123456789ab.part"  # another package's: not ours to touch
    other.write_bytes(b"someone else's")
    FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"))).deliver(package, institution="XT001", date=DATE)
    assert not orphan.exists() and other.exists()
    assert (folder / package.name).read_bytes() == package.read_bytes()


@pytest.mark.parametrize("field, value", [("institution", "../etc"), ("institution", "a/b"), ("name", ".."),
                                          ("date", "")])
def test_names_that_would_escape_the_target_are_refused(tmp_path, field, value):
    package = _package(tmp_path)
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox")))
    kwargs = {"institution": "XT001", "date": DATE, "name": None, field: value}
    with pytest.raises(DeliveryError) as info:
        channel.deliver(package, **kwargs)
    assert f"{field} {value!r} cannot be used in a remote path" in info.value.reason
    assert str(tmp_path / "outbox") in info.value.target
    assert not (tmp_path / "outbox").exists()


def test_missing_package_and_unwritable_target_fail_with_target_and_reason(tmp_path):
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), retries=1, backoff=0))
    with pytest.raises(DeliveryError, match=r"trust\) .*/XT001/20261120/nothing.zip failed: package .* does not exist"):
        channel.deliver(tmp_path / "nothing.zip", institution="XT001", date=DATE)

    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the target directory should be")
    channel = FsChannel("trust", FsOptions(url=str(blocker), retries=1, backoff=0))
    with pytest.raises(DeliveryError) as info:
        channel.deliver(_package(tmp_path), institution="XT001", date=DATE)
    assert str(blocker) in info.value.target and info.value.attempts in (1, 2)
    assert "Error" in info.value.reason


def test_deliver_through_a_configured_channel(site_with, tmp_path):
    site = site_with(trust={"kind": "fs", "url": "outbox/trust"})
    package = _package(tmp_path)
    receipt = plugin.deliver(site, "trust", str(package), institution="XT001", date=DATE)
    assert (site.root / "outbox" / "trust" / "XT001" / DATE / package.name).read_bytes() == package.read_bytes()
    assert receipt.target == str(site.root / "outbox" / "trust")


def test_deliver_through_a_configured_link_channel_with_a_given_digest(site_with):
    site = site_with(trust={"kind": "fs", "url": "outbox/trust", "transfer": "link"})
    package = _package(site.root)  # on the target's file system
    receipt = plugin.deliver(site, "trust", str(package), institution="XT001", date=DATE, sha256="cd" * 32)
    assert os.path.samefile(site.root / "outbox" / "trust" / "XT001" / DATE / package.name, package)
    assert receipt.sha256 == "cd" * 32  # a link is not read back: the digest is recorded as given


# --- digests the caller gives, hard links, orphans -------------------------------------------------------------


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parts(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.fixture
def hashed(monkeypatch):
    """The paths the channel hashes, in order (the source files, or the copies it reads back)."""
    paths = []
    real = remote.sha256_file

    def recording(path):
        paths.append(str(path))
        return real(path)

    monkeypatch.setattr(remote, "sha256_file", recording)
    return paths


def test_given_digests_are_not_computed_again_but_the_copies_are_read_back(tmp_path, hashed):
    package = _package(tmp_path)
    manifest = tmp_path / "pkg" / "manifest.json"
    manifest.write_text('{"files": 3}')
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), flag="{name}.ok"))
    receipt = channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest,
                              sha256=_digest(package).upper(), manifest_sha256=_digest(manifest))
    folder = tmp_path / "outbox" / "XT001" / DATE
    assert str(package) not in hashed and str(manifest) not in hashed
    assert [p.rsplit("/", 1)[1].split(".")[1] for p in hashed] == ["manifest", "XT001_20261120"]  # read back
    assert receipt.sha256 == _digest(package)  # given in upper case, recorded as sha256 writes it
    assert (folder / f"{package.name}.ok").read_text() == f"{_digest(package)}  {package.name}\n"
    assert (folder / package.name).read_bytes() == package.read_bytes() and _parts(folder) == []


@pytest.mark.parametrize("keyword", ["sha256", "manifest_sha256"])
def test_a_wrong_given_digest_is_caught_by_the_read_back_and_not_retried(tmp_path, keyword):
    package = _package(tmp_path)
    manifest = tmp_path / "pkg" / "manifest.json"
    manifest.write_text("{}")
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), retries=3, backoff=0))
    waits = []
    with pytest.raises(DeliveryError) as info:
        channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest, sleep=waits.append,
                        **{keyword: "ab" * 32})
    wrong = package if keyword == "sha256" else manifest
    assert f"{keyword}={'ab' * 32} was given, but the file's sha256 is {_digest(wrong)}" in info.value.reason
    assert info.value.attempts == 1 and waits == []  # the caller's mistake: another attempt would not help
    folder = tmp_path / "outbox" / "XT001" / DATE
    assert package.name not in os.listdir(folder) and _parts(folder) == []


def test_a_given_digest_must_look_like_one(tmp_path):
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox")))
    with pytest.raises(DeliveryError, match=r"sha256: expected 64 hex digits, got 'abc'"):
        channel.deliver(_package(tmp_path), institution="XT001", date=DATE, sha256="abc")
    assert not (tmp_path / "outbox").exists()


def test_link_mode_delivers_hard_links_without_reading_them_back(tmp_path, hashed):
    package = _package(tmp_path)
    manifest = tmp_path / "pkg" / "manifest.json"
    manifest.write_text("{}")
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), transfer="link", flag="{name}.ok"))
    digest = _digest(package)
    for _ in range(2):  # a redelivery links the same file again: rename(2) would keep the temporary name
        receipt = channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest, sha256=digest)
        folder = tmp_path / "outbox" / "XT001" / DATE
        assert os.path.samefile(folder / package.name, package) and os.path.samefile(folder / manifest.name,
                                                                                     manifest)
        assert (folder / f"{package.name}.ok").read_text() == f"{digest}  {package.name}\n"
        assert _parts(folder) == [] and receipt.sha256 == digest and receipt.size == package.stat().st_size
    assert hashed == [str(manifest)] * 2  # the manifest's digest was not given; nothing was read back


def test_link_mode_links_a_free_name_directly_and_replaces_an_older_delivery(tmp_path, monkeypatch):
    from esomp_fs import transfer

    package = _package(tmp_path)
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), transfer="link", retries=0))
    folder = tmp_path / "outbox" / "XT001" / DATE
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(transfer.os, "replace", lambda a, b: (renamed.append(b), real_replace(a, b)))
    channel.deliver(package, institution="XT001", date=DATE, sha256=_digest(package))
    assert os.path.samefile(folder / package.name, package) and renamed == []  # no temporary name to rename

    older = tmp_path / "older.zip"
    older.write_bytes(b"the package as delivered before a rerun changed it")
    os.unlink(folder / package.name)
    os.link(older, folder / package.name)
    channel.deliver(package, institution="XT001", date=DATE, sha256=_digest(package))
    assert os.path.samefile(folder / package.name, package) and _parts(folder) == []
    assert renamed == [str(folder / package.name)]  # the taken name is replaced through a temporary one
    assert older.read_bytes() == b"the package as delivered before a rerun changed it"


def _other_device_than(path) -> str:
    shm = "/dev/shm"
    if not os.path.isdir(shm) or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm to put the package on another device")
    if os.stat(shm).st_dev == os.stat(path).st_dev:
        pytest.skip(f"/dev/shm and {path} are on the same device: no cross-device link to refuse")
    return shm


def test_link_mode_copies_and_verifies_across_devices(tmp_path):
    source = tempfile.mkdtemp(prefix="esomp-fs-test-", dir=_other_device_than(tmp_path))
    try:
        package = Path(source) / f"XT001_{DATE}.zip"
        package.write_bytes(os.urandom(50_000))
        channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), transfer="link", retries=0))
        receipt = channel.deliver(package, institution="XT001", date=DATE)
        delivered = tmp_path / "outbox" / "XT001" / DATE / package.name
        assert not os.path.samefile(delivered, package) and delivered.read_bytes() == package.read_bytes()
        assert receipt.sha256 == _digest(package)
        # A copy is read back, so a wrong digest is caught even in link mode.
        with pytest.raises(DeliveryError, match="sha256=0000.* was given, but the file's sha256 is"):
            channel.deliver(package, institution="XT001", date=DATE, sha256="0" * 64)
    finally:
        shutil.rmtree(source)


def test_orphans_are_removed_with_one_listing_of_the_folder_per_channel(tmp_path, monkeypatch):
    folder = tmp_path / "outbox" / "XT001" / DATE
    folder.mkdir(parents=True)
    packages = [_package(tmp_path, size=1000)]
    for code in ("XT002", "XT003"):
        packages.append(packages[0].with_name(f"{code}_{DATE}.zip"))
        packages[-1].write_bytes(os.urandom(1000))
    orphans = [folder / f".{p.name}.{i}0123456789a.part" for i, p in enumerate(packages)]
    for orphan in orphans:
        orphan.write_bytes(b"left by a killed worker")
    someone_elses = folder / f".XT009_{DATE}.zip.0123456789ab.part"  # another process's upload in progress
    someone_elses.write_bytes(b"half")
    longer_name = folder / f".{packages[0].name}.sig.0123456789ab.part"  # another file's, despite the prefix
    longer_name.write_bytes(b"half")
    listings = []
    names = transfer.LocalFiles.names
    monkeypatch.setattr(transfer.LocalFiles, "names", lambda self, f: listings.append(f) or names(self, f))

    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox")))
    for i, package in enumerate(packages):
        channel.deliver(package, institution="XT001", date=DATE)
        assert [o.exists() for o in orphans] == [j > i for j in range(3)]  # each package's own, when delivered
    assert listings == [str(folder)] and someone_elses.exists() and longer_name.exists()

    # A rerun opens the channel again: it lists again and finds what a worker killed since then left.
    late = folder / f".{packages[0].name}.fedcba987654.part"
    late.write_bytes(b"late")
    FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"))).deliver(packages[0], institution="XT001",
                                                                         date=DATE)
    assert not late.exists() and someone_elses.exists() and len(listings) == 2


def test_a_folder_removed_between_deliveries_is_made_again(tmp_path):
    channel = FsChannel("trust", FsOptions(url=str(tmp_path / "outbox"), flag="{name}.ok"))
    package = _package(tmp_path)
    channel.deliver(package, institution="XT001", date=DATE)
    shutil.rmtree(tmp_path / "outbox")
    channel.deliver(package, institution="XT001", date=DATE)
    assert (tmp_path / "outbox" / "XT001" / DATE / package.name).read_bytes() == package.read_bytes()
