"""Deterministic packages with a manifest: tar.zst (default) or zip.

A tar.zst package is a multi-frame zstd stream (concatenated frames decompress as one stream). The package's own
bytes (tar headers, its own files, the end of archive) are compressed per package; the data blocks of shared
market-data members are compressed once per day and the same compressed frame is copied into every package.
Every tar header is fixed: sorted names, mtime = the business date at 00:00 UTC, uid/gid 0, uname/gname "esomp",
mode 0644, USTAR (no pax timestamps). The same inputs therefore give the same bytes on every rerun.
"""
from __future__ import annotations

import calendar
import contextlib
import datetime
import fcntl
import functools
import hashlib
import io
import json
import os
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, NamedTuple

import attrs
import zstandard

from esomp_core import atomic_open

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
FLUSH_AT = 8 << 20  # own bytes compressed per frame at most; keeps memory bounded for large institution packages
MANIFEST = "manifest.json"
OWNER = "esomp"


class PackageError(ValueError):
    """A package that does not verify against its manifest: names the package and the member."""


class Member(NamedTuple):
    """A file to package: its name inside the package, where it is, and what the manifest says of it (a named
    tuple: a sending job makes one per file of every package)."""

    name: str
    path: str
    size: int
    sha256: str
    records: int | None
    file_type: str
    shared: bool = False


@functools.lru_cache(maxsize=16)
def business_mtime(date: str) -> int:
    return calendar.timegm(datetime.date(int(date[:4]), int(date[4:6]), int(date[6:8])).timetuple())


_json_text = json.encoder.encode_basestring  # json's own C string encoder, as json.dumps(ensure_ascii=False) uses


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return _json_text(value)
    if type(value) is int:
        return str(value)
    return json.dumps(value)


def manifest_bytes(package: str, date: str, institution: str, product: str | None,
                   members: Iterable[Member]) -> bytes:
    """The manifest: ``json.dumps(..., ensure_ascii=False, sort_keys=True, indent=1)`` plus a newline, byte for
    byte, laid out here because json's indenting encoder is pure Python (~1 ms for 32 files, per package)."""
    members = list(members)
    if not members:
        data = {"package": package, "date": date, "institution": institution, "product": product, "files": []}
        return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")
    value = _json_value
    entries = ",\n".join(
        f'  {{\n   "file_type": {_json_text(m.file_type)},\n   "name": {_json_text(m.name)},\n'
        f'   "records": {value(m.records)},\n   "sha256": "{m.sha256}",\n   "size": {m.size:d}\n  }}'
        for m in members)
    text = (f'{{\n "date": {value(date)},\n "files": [\n{entries}\n ],\n "institution": {value(institution)},\n'
            f' "package": {value(package)},\n "product": {value(product)}\n}}\n')
    return text.encode("utf-8")


def _tarinfo_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = OWNER
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


@functools.lru_cache(maxsize=1024)
def _header_template(name: str, mtime: int) -> tuple[bytes, bytes, bytes, int]:
    """The header of ``name`` cut around its size (124:136) and checksum (148:156) fields, and the sum of the
    other bytes."""
    header = _tarinfo_header(name, 0, mtime)
    head, middle, rest = header[:124], header[136:148], header[156:]
    return head, middle, rest, sum(head) + sum(middle) + sum(rest)


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """The USTAR header tarfile would write. Only the size and the checksum change between members of the same
    name, so tarfile builds one header per name and the size and checksum are put in (tarfile costs ~40 us)."""
    if size >= 8 ** 11:  # too large for the octal size field: tarfile says so
        return _tarinfo_header(name, size, mtime)
    head, middle, rest, base = _header_template(name, mtime)
    size_field = b"%011o\0" % size
    checksum = base + sum(size_field) + 8 * 0x20  # summed with its own field as eight blanks
    return b"".join((head, size_field, middle, b"%06o\0 " % checksum, rest))


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class SharedFrames:
    """The compressed tar data blocks of shared members, made once per day and kept as files in ``directory``
    (named by the content's sha256, so a changed input never reuses a stale frame). The first job to need a frame
    makes it under a lock on the directory; jobs arriving meanwhile wait and read it instead of compressing the
    same market data again (the lock goes with a killed maker's process)."""

    LOCK = ".frames.lock"

    def __init__(self, directory: Path, level: int):
        self.directory, self.level = directory, level
        self.frames: dict[str, bytes] = {}
        self.made = 0
        self.reused = 0

    def frame(self, member: Member) -> bytes:
        frame = self.frames.get(member.sha256)
        if frame is not None:
            self.reused += 1
            return frame
        path = self.directory / f"{member.sha256}.tar-data.zst"
        try:
            frame = path.read_bytes()
            self.reused += 1
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / self.LOCK, "ab") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    frame = path.read_bytes()  # made while this job waited for the lock
                    self.reused += 1
                except FileNotFoundError:
                    frame = self._make(member, path)
                    self.made += 1
        self.frames[member.sha256] = frame
        return frame

    def _make(self, member: Member, path: Path) -> bytes:
        # Under the lock no one else writes this frame: a temporary one is what a killed maker left.
        for leftover in self.directory.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        data = Path(member.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != member.sha256:
            raise PackageError(f"{member.path}: content changed since it was described (sha256 differs); "
                               "rerun the processing of this date")
        frame = zstandard.ZstdCompressor(level=self.level, write_checksum=True).compress(data + _padding(len(data)))
        with atomic_open(path) as fh:  # a reader sees the whole frame or none
            fh.write(frame)
        return frame


def _read_into(member: Member, target: memoryview) -> None:
    """Read ``member`` into ``target`` (its size plus at least one byte of room, so a file that grew shows)."""
    fd = os.open(member.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        got = os.readv(fd, [target])
        while 0 < got < member.size:  # a regular file reads short only at its end, or past 2 GiB at once
            more = os.readv(fd, [target[got:]])
            if not more:
                break
            got += more
    finally:
        os.close(fd)
    if got > member.size:
        raise PackageError(f"{member.path}: more than the {member.size} bytes expected (changed while packaging?)")
    if got < member.size:
        raise PackageError(f"{member.path}: {got} bytes, {member.size} expected (changed while packaging?)")


class Tally:
    """Records per file name, read from the DBF header of each product file as it is packaged (no extra read):
    the day's accounting sums them, independently of the splitter's own counts. A header that does not fit its
    file's size is refused, naming the file."""

    def __init__(self):
        self.records: dict[str, int] = {}

    def add(self, member: Member, data) -> None:
        if len(data) < 12:
            raise PackageError(f"{member.path}: {len(data)} bytes, too short for a DBF header")
        count, header_length, record_length = struct.unpack_from("<IHH", data, 4)
        if len(data) - header_length - count * record_length not in (0, 1):
            raise PackageError(f"{member.path}: the header says {count} records of {record_length} bytes after a "
                               f"{header_length}-byte header, but the file has {len(data)} bytes")
        name = member.name.rpartition("/")[2]
        self.records[name] = self.records.get(name, 0) + count


def _own_bytes(run: list[tuple[bytes, Any, int]], total: int, tally: Tally | None = None) -> bytearray:
    """The tar bytes of a run of headers and own members, laid out in one zeroed buffer (the padding is already
    there) and read straight into it: no copy per file. Each own member's header count goes to ``tally``."""
    buffer = bytearray(total + 1)  # one byte to spare past the last file (see _read_into)
    view = memoryview(buffer)
    at = 0
    for header, source, size in run:
        view[at:at + BLOCK] = header
        at += BLOCK
        if source is None:  # a shared member's header: its data is a frame of its own
            continue
        if type(source) is bytes:
            view[at:at + size] = source
        else:
            _read_into(source, view[at:at + size + 1])
            view[at + size] = 0  # the spare byte, were it read into padding or the next header's place
            if tally is not None:
                tally.add(source, view[at:at + size])
        at += size + (-size % BLOCK)
    view.release()
    del buffer[total:]
    return buffer


def write_tar_zst(stream: BinaryIO, manifest: bytes, members: list[Member], mtime: int, shared: SharedFrames,
                  level: int, compressor: zstandard.ZstdCompressor | None = None, tally: Tally | None = None) -> None:
    """The package's own bytes in runs, each compressed as one frame, cut before every shared member's frame and
    after FLUSH_AT bytes; ``compressor`` (at ``level``) may be one kept for many packages (same bytes)."""
    compress = (compressor or zstandard.ZstdCompressor(level=level, write_checksum=True)).compress
    run: list[tuple[bytes, Any, int]] = [(tar_header(MANIFEST, len(manifest), mtime), manifest, len(manifest))]
    run_size = BLOCK + len(manifest) + (-len(manifest) % BLOCK)
    offset = 0  # tar bytes before the run
    for member in members:
        size = member.size
        header = tar_header(member.name, size, mtime)
        if member.shared:
            run.append((header, None, 0))
            stream.write(compress(_own_bytes(run, run_size + BLOCK, tally)))
            stream.write(shared.frame(member))
            offset += run_size + BLOCK + size + (-size % BLOCK)
            run, run_size = [], 0
            continue
        run.append((header, member, size))
        run_size += BLOCK + size + (-size % BLOCK)
        if run_size >= FLUSH_AT:
            stream.write(compress(_own_bytes(run, run_size, tally)))
            offset += run_size
            run, run_size = [], 0
    end = offset + run_size + 2 * BLOCK
    # The end-of-archive blocks, padded to a whole record as tar does: zeros the buffer already holds.
    stream.write(compress(_own_bytes(run, run_size + 2 * BLOCK + (-end % RECORD), tally)))


def write_zip(stream: BinaryIO, manifest: bytes, members: list[Member], date: str, level: int,
              tally: Tally | None = None) -> None:
    stamp = (int(date[:4]), int(date[4:6]), int(date[6:8]), 0, 0, 0)
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=min(max(level, 1), 9)) as zf:
        for name, member in [(MANIFEST, None), *((m.name, m) for m in members)]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the machine
            info.external_attr = 0o100644 << 16
            data = manifest if member is None else Path(member.path).read_bytes()
            if tally is not None and member is not None and not member.shared:
                tally.add(member, data)
            zf.writestr(info, data)


class _Hashing:
    """Hashes and counts what is written, and hands it to ``stream`` in few large writes (no second read of the
    package, no write call per frame)."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.sha256, self.size = stream, hashlib.sha256(), 0
        self.pending: list[bytes] = []
        self.pending_size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= FLUSH_AT:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(b"".join(self.pending))
            self.pending, self.pending_size = [], 0


@attrs.frozen
class Written:
    """A package as written: its manifest, size and sha256."""

    manifest: bytes
    size: int
    sha256: str


def build_package(path: Path, fmt: str, *, name: str, date: str, institution: str, product: str | None,
                  members: list[Member], shared: SharedFrames, level: int,
                  compressor: zstandard.ZstdCompressor | None = None, tally: Tally | None = None) -> Written:
    """Write the package atomically at ``path`` and its manifest beside it. ``compressor``: a zstd compressor at
    ``level`` with checksums, kept by the caller for many packages (a new one per package costs its tables);
    ``tally``: counts the records of the package's own (not shared) members from their headers."""
    members = sorted(members, key=lambda m: m.name)
    manifest = manifest_bytes(name, date, institution, product, members)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        if fmt == "zip":
            write_zip(fh, manifest, members, date, level, tally)
        else:
            hashing = _Hashing(fh)
            write_tar_zst(hashing, manifest, members, business_mtime(date), shared, level, compressor, tally)
            hashing.flush()
    with atomic_open(manifest_path(path)) as fh:
        fh.write(manifest)
    if fmt == "zip":  # zipfile seeks back to patch headers: hash what landed on disk
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return Written(manifest, path.stat().st_size, digest)
    return Written(manifest, hashing.size, hashing.sha256.hexdigest())


def manifest_path(package: Path) -> Path:
    return package.with_name(package.name + ".manifest.json")


def remove_leftovers(directory: Path, packages: Iterable[str]) -> list[str]:
    """Remove the temporary files (``.{name}.{pid}.tmp``) of ``packages`` and their manifests that a killed
    writer left in ``directory``; return their names. One listing of the directory, not one per package; a
    package belongs to one sending job, so no other job is writing these names."""
    owned = set(packages)
    owned.update([f"{name}.manifest.json" for name in owned])
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if name.startswith(".") and name.endswith(".tmp") and name[1:].rsplit(".", 2)[0] in owned:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            removed.append(name)
    return sorted(removed)


# --- reading and verifying ---------------------------------------------------------------------------------------


def read_members(path: str | os.PathLike) -> dict[str, bytes]:
    """Every member of a tar.zst or zip package, by name (for verification and tests; loads them in memory)."""
    path = Path(path)
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist()}
    with open(path, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        data = reader.read()
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for info in tf.getmembers():
            if info.name in found:
                raise PackageError(f"{path}: member {info.name} appears twice")
            found[info.name] = tf.extractfile(info).read()
    return found


def verify_package(path: str | os.PathLike) -> dict[str, Any]:
    """Check every member against the package's manifest (size, sha256, DBF record count); return the manifest."""
    members = read_members(path)
    if MANIFEST not in members:
        raise PackageError(f"{path}: no {MANIFEST} member")
    manifest = json.loads(members.pop(MANIFEST))
    listed = {f["name"]: f for f in manifest["files"]}
    if set(listed) != set(members):
        extra = sorted(set(members) - set(listed))
        missing = sorted(set(listed) - set(members))
        raise PackageError(f"{path}: members differ from the manifest (not listed: {extra}, missing: {missing})")
    for member, data in members.items():
        entry = listed[member]
        if len(data) != entry["size"]:
            raise PackageError(f"{path}: {member}: {len(data)} bytes, the manifest says {entry['size']}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise PackageError(f"{path}: {member}: sha256 differs from the manifest")
        if entry.get("records") is not None and len(data) >= 8:
            count = struct.unpack_from("<I", data, 4)[0]
            if count != entry["records"]:
                raise PackageError(f"{path}: {member}: {count} records, the manifest says {entry['records']}")
    return manifest
