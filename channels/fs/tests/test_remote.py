"""FTP (pyftpdlib) and SFTP (asyncssh) servers on 127.0.0.1: round trips, retries, credentials, host keys."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from esomp_fs import CollectError, DeliveryError, FsChannel, FsOptions

DATE = "20261120"
ENV = "ESOMP_FS_TEST_PASSWORD"


@pytest.fixture
def secret_env(monkeypatch, password):
    monkeypatch.setenv(ENV, password)
    return ENV


def _url(scheme: str, server, path: str) -> str:
    return f"{scheme}://{server.user}@127.0.0.1:{server.port}{path}"


@pytest.fixture(params=["ftp", "sftp"])
def server(request):
    """Each test below runs against both servers: (scheme, server)."""
    return request.param, request.getfixturevalue(f"{request.param}_server")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_collect_round_trip_byte_identical(server, secret_env, tmp_path, esomp_site):
    scheme, srv = server
    data = {f"SJSMX1{DATE}.DBF": os.urandom(2_500_000), f"zqye{DATE}.dbf": os.urandom(1000), "other.txt": b"x"}
    for name, content in data.items():
        (srv.root / "outbox").mkdir(exist_ok=True)
        (srv.root / "outbox" / name).write_bytes(content)
    channel = FsChannel("szse", FsOptions(url=_url(scheme, srv, "/outbox"), patterns=["*{date}*"],
                                          password_env=secret_env, stable=True, poll_interval=0.01))
    report = channel.collect(DATE, dest_root=tmp_path / "c", unpack_root=tmp_path / "u",
                             record=esomp_site.repository, sleep=lambda s: None)
    assert sorted(f.name for f in report.collected) == [f"SJSMX1{DATE}.DBF", f"zqye{DATE}.dbf"]
    assert _files(tmp_path / "c" / DATE / "szse") == {k: v for k, v in data.items() if DATE in k}
    assert all(f.mtime is not None and f.source.startswith(f"{scheme}://esomp@127.0.0.1") for f in report.collected)
    again = channel.collect(DATE, dest_root=tmp_path / "c", unpack_root=tmp_path / "u", record=esomp_site.repository)
    assert again.collected == [] and len(again.skipped) == 2
    assert srv.password not in repr(report.as_dict()) + repr(again.as_dict())


def test_deliver_round_trip_with_manifest_and_flag(server, secret_env, tmp_path):
    scheme, srv = server
    package = tmp_path / "XT001_20261120.tar.zst"
    package.write_bytes(os.urandom(3_000_000))
    manifest = tmp_path / "XT001_20261120.manifest.json"
    manifest.write_text('{"files": 32}')
    channel = FsChannel("trust", FsOptions(url=_url(scheme, srv, "/inbox"), password_env=secret_env,
                                           flag="{name}.ok"))
    receipt = channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest)
    folder = srv.root / "inbox" / "XT001" / DATE
    assert _files(folder) == {package.name: package.read_bytes(), manifest.name: manifest.read_bytes(),
                              f"{package.name}.ok": f"{receipt.sha256}  {package.name}\n".encode()}
    assert receipt.remote_path == f"/inbox/XT001/{DATE}/{package.name}"
    assert (receipt.size, receipt.attempts) == (3_000_000, 1)
    assert receipt.target == _url(scheme, srv, "/inbox") and srv.password not in repr(receipt)
    # Delivering again (a rerun) replaces the files in place.
    package.write_bytes(b"smaller")
    channel.deliver(package, institution="XT001", date=DATE)
    assert (folder / package.name).read_bytes() == b"smaller"


def test_deliver_with_given_digests_reads_back_and_refuses_a_wrong_one(server, secret_env, tmp_path):
    scheme, srv = server
    package = tmp_path / "XT001_20261120.zip"
    package.write_bytes(os.urandom(300_000))
    manifest = tmp_path / "XT001_20261120.zip.manifest.json"
    manifest.write_text('{"files": 2}')
    digests = {"sha256": hashlib.sha256(package.read_bytes()).hexdigest(),
               "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()}
    channel = FsChannel("trust", FsOptions(url=_url(scheme, srv, "/inbox"), password_env=secret_env, retries=2,
                                           backoff=0))
    receipt = channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest, **digests)
    folder = srv.root / "inbox" / "XT001" / DATE
    assert _files(folder) == {package.name: package.read_bytes(), manifest.name: manifest.read_bytes()}
    assert receipt.sha256 == digests["sha256"]

    package.write_bytes(os.urandom(300_000))  # rebuilt: the digest given is now the old one
    with pytest.raises(DeliveryError) as info:
        channel.deliver(package, institution="XT001", date=DATE, manifest_path=manifest, **digests)
    assert f"sha256={digests['sha256']} was given, but the file's sha256 is" in info.value.reason
    assert info.value.attempts == 1
    assert (folder / package.name).read_bytes() != package.read_bytes()  # the earlier delivery stays


def test_wrong_password_fails_without_the_secret(server, monkeypatch, tmp_path):
    scheme, srv = server
    wrong = "wr0ng-" + srv.password
    monkeypatch.setenv(ENV, wrong)
    channel = FsChannel("szse", FsOptions(url=_url(scheme, srv, "/"), password_env=ENV, retries=2, backoff=0))
    with pytest.raises(CollectError) as info:
        channel.collect(DATE, dest_root=tmp_path / "c", unpack_root=tmp_path / "u")
    message = str(info.value)
    assert f"{scheme}://esomp@127.0.0.1:{srv.port}/" in message and "after 1 attempt(s)" in message
    assert wrong not in message and srv.password not in message  # authentication failures are not retried
    package = tmp_path / "p.zip"
    package.write_bytes(b"p")
    with pytest.raises(DeliveryError) as info:
        channel.deliver(package, institution="XT001", date=DATE)
    assert info.value.target.startswith(f"{scheme}://esomp@127.0.0.1:{srv.port}/ (channel szse) /XT001/")
    assert wrong not in str(info.value)


def test_refused_connection_is_retried_then_reported(tmp_path, ftp_server):
    port = ftp_server.port
    waits = []
    channel = FsChannel("szse", FsOptions(url="ftp://127.0.0.1:1/in", retries=2, backoff=0.5, timeout=5))
    package = tmp_path / "p.zip"
    package.write_bytes(b"p")
    with pytest.raises(DeliveryError) as info:
        channel.deliver(package, institution="XT001", date=DATE, sleep=waits.append)
    assert waits == [0.5, 1.0] and info.value.attempts == 3
    assert "ftp://127.0.0.1:1/in (channel szse) /in/XT001/20261120/p.zip" in str(info.value)
    assert "ConnectionRefusedError" in info.value.reason
    assert port != 1


def test_dropped_connection_mid_upload_leaves_no_partial_file_and_retry_succeeds(ftp_server, secret_env, tmp_path):
    package = tmp_path / "XT001.zip"
    package.write_bytes(os.urandom(4_000_000))
    final = ftp_server.root / "XT001" / DATE / package.name
    drops = ftp_server.extra["drops"]

    no_retry = FsChannel("trust", FsOptions(url=_url("ftp", ftp_server, "/"), password_env=secret_env, retries=0))
    drops[:] = [0]
    with pytest.raises(DeliveryError) as info:
        no_retry.deliver(package, institution="XT001", date=DATE)
    assert 0 < drops[0] < package.stat().st_size  # the server really cut the upload half-way
    assert not final.exists()  # nothing under the final name, only the temporary one
    [partial] = [p for p in final.parent.iterdir()]
    assert partial.name.startswith(f".{package.name}.") and partial.name.endswith(".part")
    assert 0 < partial.stat().st_size < package.stat().st_size
    assert ftp_server.password not in str(info.value)

    channel = FsChannel("trust", FsOptions(url=_url("ftp", ftp_server, "/"), password_env=secret_env, retries=2))
    drops[:] = [0]
    waits = []
    receipt = channel.deliver(package, institution="XT001", date=DATE, sleep=waits.append)
    assert receipt.attempts == 2 and waits == [2.0] and drops[0] > 0
    assert final.read_bytes() == package.read_bytes()
    assert not any(p.name.endswith(".part") for p in final.parent.iterdir())  # the first attempt's too


def test_sftp_key_file_and_known_hosts(sftp_server, tmp_path, monkeypatch):
    client_key = sftp_server.extra["client_key"]
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(str(key_file), format_name="openssh")
    monkeypatch.setenv("ESOMP_FS_TEST_KEY", str(key_file))
    (sftp_server.root / "out").mkdir()
    (sftp_server.root / "out" / "a.dbf").write_bytes(b"keyed")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} "
                           + sftp_server.extra["host_key"].export_public_key().decode())
    channel = FsChannel("szse", FsOptions(url=_url("sftp", sftp_server, "/out"), key_file_env="ESOMP_FS_TEST_KEY",
                                          known_hosts=str(known_hosts)))
    assert [f["name"] for f in channel.check()] == ["a.dbf"]

    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519")
    known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} " + other.export_public_key().decode())
    impostor = FsChannel("szse", FsOptions(url=_url("sftp", sftp_server, "/out"), key_file_env="ESOMP_FS_TEST_KEY",
                                           known_hosts=str(known_hosts), retries=3))
    with pytest.raises(CollectError, match="not the one in known_hosts") as info:
        impostor.check()
    assert "after 1 attempt(s)" in str(info.value)  # a wrong host key is not retried
