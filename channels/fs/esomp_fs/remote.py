"""Connections through fsspec: open a channel's filesystem, list, fetch and put files, retry transient failures."""
from __future__ import annotations

import ftplib
import functools
import hashlib
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar
from urllib.parse import unquote, urlsplit

import attrs
import fsspec

from esomp_core import secret, sha256_file  # noqa: F401 (the channel hashes local copies as remote.sha256_file)
from esomp_fs.options import FsOptions, mask_url

CHUNK = 1 << 20
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: a dropped or refused connection, a timeout, a 4xx FTP reply, an SSH error."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    if isinstance(exc, ftplib.error_perm) or getattr(exc, "permanent", False):
        return False
    paramiko = sys.modules.get("paramiko")  # not imported: the error cannot be one of its own
    if paramiko is not None:
        if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
            return False
        if isinstance(exc, paramiko.SSHException):
            return True
    return isinstance(exc, (OSError, EOFError, ftplib.Error))


@attrs.frozen
class Endpoint:
    """Where a channel points: the fsspec protocol, the root path on it, and how to connect."""

    protocol: str
    root: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    shown: str = ""

    def show(self, path: str) -> str:
        """A path on this endpoint as a URL that is safe to show (no password)."""
        if self.protocol == "file":
            return path
        if self.protocol == "memory":
            return f"memory://{path}"
        prefix = self.shown.split("://", 1)[1].split("/", 1)[0]
        return f"{self.protocol}://{prefix}{path}"

    @classmethod
    def parse(cls, url: str, base: Path) -> "Endpoint":
        parts = urlsplit(url)
        shown = mask_url(url)
        if parts.scheme in ("", "file") or (len(url) > 1 and url[1] == ":"):
            raw = unquote(parts.path) if parts.scheme == "file" else url
            path = Path(raw).expanduser()
            path = path if path.is_absolute() else base / path
            return cls("file", str(path), shown=str(path))
        if parts.scheme == "memory":
            return cls("memory", "/" + (parts.netloc + parts.path).strip("/"), shown=shown)
        root = unquote(parts.path) or "/"
        return cls(parts.scheme, root.rstrip("/") or "/", parts.hostname, parts.port, parts.username, shown)


def known_hosts_policy(path: str) -> Any:
    """A paramiko policy accepting only the host key listed for the host in a known_hosts file."""
    import paramiko  # imported here: only sftp:// needs it

    keys = paramiko.HostKeys(os.path.expanduser(path))

    class HostKeyRefused(paramiko.SSHException):
        permanent = True  # another attempt would meet the same key

    class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            known = keys.lookup(hostname) or {}
            if known.get(key.get_name()) != key:
                raise HostKeyRefused(f"host key of {hostname} is not the one in known_hosts {path} (refused)")

    return KnownHostsOnly()


def connect(endpoint: Endpoint, options: FsOptions, *, key_path: str) -> Any:
    """A new fsspec filesystem for the endpoint (never a cached instance: each caller owns its connection)."""
    if endpoint.protocol in ("file", "memory"):
        return _shared_filesystem(endpoint.protocol)
    user = options.username or endpoint.user
    password = secret(options.password_env, path=f"{key_path}.password_env")
    if endpoint.protocol == "ftp":
        from fsspec.implementations.ftp import FTPFileSystem

        return FTPFileSystem(endpoint.host, port=endpoint.port or 21, username=user, password=password,
                             timeout=options.timeout, skip_instance_cache=True)
    from fsspec.implementations.sftp import SFTPFileSystem

    key_file = secret(options.key_file_env, path=f"{key_path}.key_file_env")
    policy = known_hosts_policy(options.known_hosts) if options.known_hosts else "auto_add"
    return SFTPFileSystem(endpoint.host, port=endpoint.port or 22, username=user, password=password,
                          key_filename=key_file, look_for_keys=False, allow_agent=False, timeout=options.timeout,
                          banner_timeout=options.timeout, auth_timeout=options.timeout,
                          host_key_policy=policy, skip_instance_cache=True)


@functools.cache
def _shared_filesystem(protocol: str) -> Any:
    # fsspec shares these instances anyway (no connection to own); skip its per-call instance lookup.
    return fsspec.filesystem(protocol)


def close(fs: Any) -> None:
    """Close a connection we opened (SSH client, FTP control connection); local filesystems have none."""
    conn = getattr(fs, "client", None) or getattr(fs, "ftp", None)
    if conn is not None:
        try:
            conn.close()
        except Exception:  # closing a dead connection must not hide the error that killed it
            pass


@contextmanager
def connection(endpoint: Endpoint, options: FsOptions, key_path: str) -> Iterator[Any]:
    fs = connect(endpoint, options, key_path=key_path)
    try:
        yield fs
    finally:
        close(fs)


def retrying(action: Callable[[Any], T], endpoint: Endpoint, options: FsOptions, key_path: str, *,
             sleep: Callable[[float], None] = time.sleep,
             on_retry: Callable[[int, BaseException], None] | None = None) -> tuple[T, int]:
    """Run ``action(fs)`` on a fresh connection, again after a transient failure: (result, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            with connection(endpoint, options, key_path) as fs:
                return action(fs), attempt
        except Exception as exc:
            if not is_transient(exc) or attempt > options.retries:
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            if on_retry:
                on_retry(attempt, exc)
            sleep(options.backoff * 2 ** (attempt - 1))


# --- file operations that differ by protocol --------------------------------------------------------------------


def join(root: str, *names: str) -> str:
    return "/".join([root.rstrip("/"), *names]) if root != "/" else "/" + "/".join(names)


def list_files(fs: Any, path: str) -> dict[str, dict[str, Any]]:
    """Regular files directly under ``path``: name -> fsspec info (fresh, never from a directory cache)."""
    fs.invalidate_cache(path)
    entries = fs.ls(path, detail=True)
    return {entry["name"].rstrip("/").rsplit("/", 1)[-1]: entry for entry in entries
            if entry.get("type") == "file"}


def mtime_of(info: dict[str, Any]) -> datetime | None:
    """Modification time from any fsspec info dict, as naive UTC; None where the protocol has none."""
    value = info.get("mtime", info.get("modify"))
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
    text = str(value).split(".")[0]  # FTP MLSD: YYYYMMDDHHMMSS[.sss], UTC
    return datetime.strptime(text, "%Y%m%d%H%M%S")


def _is(fs: Any, protocol: str) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return protocol in protocols


def fetch(fs: Any, path: str, local: str) -> None:
    if _is(fs, "ftp"):
        with open(local, "wb") as out:
            fs.ftp.retrbinary(f"RETR {path}", out.write, blocksize=CHUNK)
    else:
        fs.get_file(path, local)


def put(fs: Any, source: BinaryIO, path: str) -> None:
    """Upload a stream to ``path`` in one transfer (FTP: one STOR; SFTP: paramiko's pipelined putfo)."""
    if _is(fs, "ftp"):
        fs.ftp.storbinary(f"STOR {path}", source, blocksize=CHUNK)
    elif _is(fs, "sftp"):
        fs.ftp.putfo(source, path)
    else:
        with fs.open(path, "wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
    fs.invalidate_cache(path.rsplit("/", 1)[0] or "/")


def remote_sha256(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    if _is(fs, "ftp"):
        fs.ftp.retrbinary(f"RETR {path}", digest.update, blocksize=CHUNK)
    else:
        with fs.open(path, "rb") as f:
            if _is(fs, "sftp"):
                f.prefetch()  # paramiko: pipeline the reads instead of one round trip per block
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def makedirs(fs: Any, path: str) -> None:
    if path in ("", "/"):
        return
    if _is(fs, "ftp"):
        # fsspec's FTP makedirs asks for a listing per level; try MKD per level and ignore "exists" replies.
        current = ""
        for part in path.strip("/").split("/"):
            current += "/" + part
            try:
                fs.ftp.mkd(current)
            except ftplib.error_perm:
                pass
        fs.invalidate_cache()
    else:
        fs.makedirs(path, exist_ok=True)


def size_of(fs: Any, path: str) -> int:
    fs.invalidate_cache(path.rsplit("/", 1)[0] or "/")
    return int(fs.info(path)["size"])
