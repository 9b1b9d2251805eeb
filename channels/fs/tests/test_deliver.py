"""Delivering to local directories: templates, names that would escape, failures that name the target."""
from __future__ import annotations

import os

import pytest

from esomp_fs import DeliveryError, FsChannel, FsOptions, plugin

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
    row = receipt.to_model(package_id=7)
    assert (row.package_id, row.remote_path, row.size, row.sha256) == (7, receipt.remote_path, 100_000,
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
