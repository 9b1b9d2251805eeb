"""File-system primitives for every plugin: outputs appear whole or not at all, and a rerun replaces them whole.

Write under a hidden temporary name beside the target and rename into place (rename is atomic within a file
system); swap a staged directory in for the old one; hash a file without reading it all into memory.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from typing import IO, Iterator

CHUNK = 1 << 20


def temp_name(path: str | os.PathLike, tag: str = "tmp") -> str:
    """The hidden temporary name beside ``path`` that this process writes it under (``.NAME.PID.TAG``)."""
    head, tail = os.path.split(os.fspath(path))
    return os.path.join(head, f".{tail}.{os.getpid()}.{tag}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open ``path`` for writing under a temporary name; rename it into place only when the block succeeds."""
    temp = temp_name(path)
    try:
        with open(temp, mode, encoding=encoding) as fh:
            yield fh
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write ``data`` (text is encoded) to ``path`` atomically, creating its directory."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with atomic_open(path) as fh:
        fh.write(data.encode(encoding) if isinstance(data, str) else data)


def replace_directory(staging: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the complete directory ``staging`` in the place of ``final`` (absent, empty or full): a reader sees the
    old directory or the new one. A full one is moved aside first, then removed."""
    try:
        os.rename(staging, final)  # a new (or empty) final directory is simply replaced
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    head, tail = os.path.split(os.fspath(final))
    old = os.path.join(head, f".{tail}.old")  # one name per directory: a rerun removes what a killed run left
    shutil.rmtree(old, ignore_errors=True)
    os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old)


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
