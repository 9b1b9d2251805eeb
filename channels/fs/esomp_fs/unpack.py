"""Safe unpacking of collected deliveries: .zip, .tar, .tar.zst (.tzst) and .zst.

Everything is written into a staging directory inside the target and moved into place only when the whole
archive passed: a refused archive (a member escaping the target, a link, a decompression bomb) leaves nothing
behind, inside the target or outside it.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

import zstandard

from esomp_fs.options import UnpackOptions

CHUNK = 1 << 20
SUFFIXES = (".tar.zst", ".tzst", ".zip", ".tar", ".zst")


class UnpackError(ValueError):
    """An archive refused: names the archive and, where there is one, the member."""

    def __init__(self, archive: str | os.PathLike, message: str, member: str | None = None):
        self.archive, self.member = str(archive), member
        where = f"{self.archive}: member {member!r}" if member is not None else self.archive
        super().__init__(f"{where}: {message}")


def archive_kind(name: str) -> str | None:
    lower = name.lower()
    return next((suffix for suffix in SUFFIXES if lower.endswith(suffix)), None)


def safe_member_path(archive: Path, member: str) -> PurePosixPath:
    """The member's relative path, or UnpackError if it is absolute or climbs out with '..'."""
    name = member.replace("\\", "/")
    path = PurePosixPath(name)
    if not name or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnpackError(archive, "absolute path refused (members must stay inside the target)", member)
    if ".." in path.parts:
        raise UnpackError(archive, "path escapes the target with '..' (refused)", member)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise UnpackError(archive, "empty member name refused", member)
    return PurePosixPath(*parts)


class _Budget:
    """Counts bytes and files written for one archive and refuses past the configured limits."""

    def __init__(self, archive: Path, limits: UnpackOptions):
        self.archive, self.limits = archive, limits
        self.compressed = max(archive.stat().st_size, 1)
        self.bytes = 0
        self.files = 0

    def add_file(self, member: str) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnpackError(self.archive, f"more than max_files={self.limits.max_files} members "
                                            f"(refused as a possible decompression bomb)", member)

    def add_bytes(self, count: int, member: str) -> None:
        self.bytes += count
        if self.bytes > self.limits.max_bytes:
            raise UnpackError(self.archive, f"unpacks to more than max_bytes={self.limits.max_bytes} "
                                            f"(refused as a decompression bomb)", member)
        if self.bytes > self.limits.max_ratio * self.compressed:
            raise UnpackError(self.archive, f"unpacks to more than max_ratio={self.limits.max_ratio:g} times its "
                                            f"{self.compressed} bytes (refused as a decompression bomb)", member)


def _write(source: BinaryIO, target: Path, budget: _Budget, member: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        while chunk := source.read(CHUNK):
            budget.add_bytes(len(chunk), member)
            out.write(chunk)


def _unzip(archive: Path, staging: Path, budget: _Budget) -> Iterator[PurePosixPath]:
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UnpackError(archive, f"not a readable zip file: {exc}") from None
    with zf:
        infos = zf.infolist()
        # Check every name and the declared sizes before writing a byte; the actual bytes are counted too.
        paths = [(info, safe_member_path(archive, info.filename)) for info in infos]
        for info, _ in paths:
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnpackError(archive, "symbolic link refused", info.filename)
        declared = sum(info.file_size for info in infos)
        if declared > budget.limits.max_bytes:
            raise UnpackError(archive, f"declares {declared} bytes, more than max_bytes={budget.limits.max_bytes} "
                                       f"(refused as a decompression bomb)")
        for info, path in paths:
            if info.is_dir():
                continue
            budget.add_file(info.filename)
            with zf.open(info) as member:
                _write(member, staging / path, budget, info.filename)
            yield path


def _untar(archive: Path, stream: BinaryIO, staging: Path, budget: _Budget) -> Iterator[PurePosixPath]:
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for info in tf:
                path = safe_member_path(archive, info.name)
                if info.isdir():
                    continue
                if not info.isfile():
                    kind = "symbolic link" if info.issym() else "hard link" if info.islnk() else "special file"
                    raise UnpackError(archive, f"{kind} refused (only files and directories are unpacked)",
                                      info.name)
                budget.add_file(info.name)
                member = tf.extractfile(info)
                assert member is not None  # a regular file always has data
                _write(member, staging / path, budget, info.name)
                yield path
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise UnpackError(archive, f"not a readable tar archive: {exc}") from None


def _zstd_stream(archive: Path, budget: _Budget) -> BinaryIO:
    return _CountingReader(zstandard.ZstdDecompressor().stream_reader(open(archive, "rb"), closefd=True),
                           budget)


class _CountingReader(io.RawIOBase):
    """A decompressed stream that refuses past the budget before tarfile sees the bytes."""

    def __init__(self, raw: BinaryIO, budget: _Budget):
        self.raw, self.budget, self.seen = raw, budget, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.seen += len(data)
        limits = self.budget.limits
        if self.seen > limits.max_bytes or self.seen > limits.max_ratio * self.budget.compressed:
            raise UnpackError(self.budget.archive, f"decompresses past max_bytes={limits.max_bytes} or "
                                                   f"max_ratio={limits.max_ratio:g} (refused as a decompression "
                                                   f"bomb)")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def unpack(archive: str | os.PathLike, target: str | os.PathLike, limits: UnpackOptions) -> list[Path]:
    """Unpack ``archive`` into ``target``; return the files written (absolute paths)."""
    archive, target = Path(archive), Path(target)
    kind = archive_kind(archive.name)
    if kind is None:
        raise UnpackError(archive, f"not an archive (expected one of {', '.join(SUFFIXES)})")
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".unpack-{uuid.uuid4().hex}"
    staging.mkdir()
    budget = _Budget(archive, limits)
    try:
        if kind == ".zip":
            members = list(_unzip(archive, staging, budget))
        elif kind == ".tar":
            with open(archive, "rb") as stream:
                members = list(_untar(archive, stream, staging, budget))
        elif kind in (".tar.zst", ".tzst"):
            with _zstd_stream(archive, budget) as stream:
                members = list(_untar(archive, io.BufferedReader(stream, CHUNK), staging, budget))
        else:  # a single compressed file: its name without .zst
            name = PurePosixPath(archive.name[: -len(".zst")])
            budget.add_file(name.name)
            try:
                with _zstd_stream(archive, budget) as stream:
                    _write(io.BufferedReader(stream, CHUNK), staging / name, budget, name.name)
            except zstandard.ZstdError as exc:
                raise UnpackError(archive, f"not a readable zstd file: {exc}") from None
            members = [name]
        written = []
        for member in members:
            final = target / member
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / member, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
