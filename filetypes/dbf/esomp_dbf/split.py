"""Byte-level splitting: one pass over a source file groups its records by key; each destination gets the
source header verbatim (record count patched), its records byte for byte (deleted ones too) and an EOF byte.

How it stays fast: records never become Python objects. They are viewed as a (count, record_length) byte matrix
over the file's memory map (no copy); the key column is read out in one step (one short bytes object per record,
for the dict lookups) and each distinct raw key is resolved once; one stable argsort orders the record indices by
destination, source order kept within each. Records are then gathered in that order into one reused buffer
(``GATHER_BYTES``) with one numpy ``take`` per buffer-full, and every destination is written as a few large
slices of it (usually one ``writev``: header, records, EOF byte). Memory: the buffer plus, per record, its key
and its index; never a copy of the file. Before records are routed or copied, their deletion flags are checked in
one vectorised test on the matrix's flag column: a flag other than b' ' or b'*' means misaligned or corrupt
records, refused with DbfError naming the file and the record.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Hashable, Iterable, Iterator, Mapping, Sequence

import attrs
import numpy as np

from esomp_core import temp_name
from esomp_dbf.reader import EOF_BYTE, DbfFile, bad_flag_error
from esomp_dbf.writer import _with_count, patched_header

_STRIP = b" \x00"
_EOF = bytes((EOF_BYTE,))
GATHER_BYTES = 8 << 20  # the reused gather buffer; a destination larger than this is written in pieces
STAGING = ".{name}.staging-{pid}"  # beside the target directory of a staged split_to_dir


@attrs.frozen
class SplitResult:
    """What a split (or partition) did.

    ``records[dest]`` are source record indices in source order; ``unmatched[key]`` the indices of records whose
    stripped key maps nowhere (they are reported, never dropped); ``total`` the records considered.
    """

    records: dict[Hashable, list[int]]
    unmatched: dict[str, list[int]]
    total: int

    @property
    def counts(self) -> dict[Hashable, int]:
        return {dest: len(idx) for dest, idx in self.records.items()}

    @property
    def unmatched_count(self) -> int:
        return sum(len(idx) for idx in self.unmatched.values())


def _rows(source: DbfFile) -> np.ndarray:
    """The records as a read-only (count, record_length) byte matrix over the source's buffer: no copy."""
    size = source.record_length
    if not source.count:
        return np.empty((0, size), dtype=np.uint8)
    flat = np.frombuffer(source.buffer, dtype=np.uint8, count=source.count * size, offset=source.header_length)
    return flat.reshape(source.count, size)


@attrs.frozen
class _Plan:
    """A partition and the index order that writes it: ``order`` holds the unmatched records first, then each
    destination's records, contiguous and in source order; ``spans`` and ``unmatched`` are slices of it."""

    result: SplitResult
    order: np.ndarray
    spans: dict[Hashable, tuple[int, int]]  # destination -> its slice of ``order``
    unmatched: tuple[int, int]


def _refuse_bad_flags(source: DbfFile, flags: np.ndarray, numbers: np.ndarray) -> None:
    """DbfError naming the file and the first record among ``numbers`` whose deletion flag (in ``flags``) is
    neither b' ' nor b'*': one vectorised test on the flag column."""
    error = bad_flag_error(source.name, flags, numbers)
    if error:
        raise error


def _check_flags(source: DbfFile, chosen: np.ndarray | None) -> None:
    """Before routing or copying records: the whole file's flags (once per open file), or only the chosen
    records' (a job working on its share need not page in the rest of the file)."""
    if chosen is None:
        source.check_flags()
    else:
        _refuse_bad_flags(source, _rows(source)[chosen, 0], chosen)


def _gathered(source: DbfFile, indices) -> np.ndarray:
    """The records at ``indices`` copied into one (n, record_length) array, their flags checked."""
    chosen = _indices(source, indices)
    rows = np.take(_rows(source), chosen, axis=0)
    _refuse_bad_flags(source, rows[:, 0], chosen)
    return rows


def _indices(source: DbfFile, indices) -> np.ndarray:
    """``indices`` as an index array, every one checked to be a record of ``source``."""
    chosen = np.asarray(indices if isinstance(indices, (Sequence, np.ndarray)) else list(indices), dtype=np.intp)
    chosen = chosen.reshape(-1)
    if len(chosen) and (chosen.min() < 0 or chosen.max() >= source.count):
        bad = int(chosen[(chosen < 0) | (chosen >= source.count)][0])
        raise IndexError(f"{source.name}: record {bad} out of range 0..{source.count - 1}")
    return chosen


class _Codes(dict):
    """Raw key -> group number, filled on first sight of each distinct key (-1: the key maps nowhere);
    groups are numbered in order of first appearance of their destination."""

    def __init__(self, wanted: Mapping[bytes, Hashable]):
        super().__init__()
        self.wanted = wanted
        self.group_of: dict[Hashable, int] = {}

    def __missing__(self, raw: bytes) -> int:
        key = raw.strip(_STRIP)
        code = self.group_of.setdefault(self.wanted[key], len(self.group_of)) if key in self.wanted else -1
        self[raw] = code
        return code


class EncodedKeys(dict):
    """A key -> destination mapping with its keys already encoded and stripped: a caller that partitions many
    files by the same mapping encodes it once (``EncodedKeys.of(mapping, encoding)``) instead of per file."""

    encoding: str = ""

    @classmethod
    def of(cls, key_to_group: Mapping[str, Hashable], encoding: str) -> "EncodedKeys":
        if isinstance(key_to_group, EncodedKeys):  # encoded for another encoding: back to text first
            key_to_group = {k.decode(key_to_group.encoding): dest for k, dest in key_to_group.items()}
        encoded = cls()
        texts: dict[bytes, str] = {}
        for key, dest in key_to_group.items():
            raw = str(key).encode(encoding).strip(_STRIP)
            if raw in encoded and encoded[raw] != dest:
                # keys are compared stripped: these two are one key, and the later one would silently win
                raise ValueError(f"keys {texts[raw]!r} and {key!r} are the same key once stripped of spaces and "
                                 f"NULs, for two destinations {encoded[raw]!r} and {dest!r}")
            encoded[raw], texts[raw] = dest, str(key)
        encoded.encoding = encoding
        return encoded


def _plan(source: DbfFile, key_field: str, key_to_group: Mapping[str, Hashable], records) -> _Plan:
    encoding = source.encoding
    if isinstance(key_to_group, EncodedKeys) and key_to_group.encoding == encoding:
        wanted: Mapping[bytes, Hashable] = key_to_group
    else:
        wanted = EncodedKeys.of(key_to_group, encoding)
    field = source.field(key_field)  # a missing field raises DbfError naming the file and listing the fields
    column = _rows(source)[:, field.offset : field.offset + field.length]
    chosen = None if records is None else _indices(source, records)
    _check_flags(source, chosen)
    if chosen is not None:
        column = column[chosen]  # copies the keys of those records only
    # One bytes object per key ('S' drops trailing NULs, which the comparison strips anyway).
    keys = np.ascontiguousarray(column).view(f"S{field.length}").ravel().tolist()
    codes = _Codes(wanted)
    groups = np.fromiter(map(codes.__getitem__, keys), dtype=np.intp, count=len(keys))
    group_of = codes.group_of
    if len(group_of) < np.iinfo(np.int16).max:
        groups = groups.astype(np.int16)  # numpy's stable sort of 16-bit numbers is a radix sort: much faster
    positions = np.argsort(groups, kind="stable")  # unmatched (-1) first, then group 0, 1, ...
    order = positions if chosen is None else chosen[positions]
    cuts = np.cumsum(np.bincount(groups + 1, minlength=len(group_of) + 1)).tolist()
    indices = order.tolist()
    spans = {dest: (cuts[g], cuts[g + 1]) for dest, g in group_of.items()}
    by_dest = {dest: indices[lo:hi] for dest, (lo, hi) in spans.items()}
    unmatched: dict[str, list[int]] = {}
    if cuts[0]:
        names: dict[bytes, list[int]] = {}
        for position, index in zip(positions[: cuts[0]].tolist(), indices[: cuts[0]]):
            raw = keys[position]
            target = names.get(raw)
            if target is None:
                text = raw.strip(_STRIP).decode(encoding, errors="backslashreplace")
                target = names[raw] = unmatched.setdefault(text, [])
            target.append(index)
    result = SplitResult(by_dest, unmatched, len(keys))
    return _Plan(result, order, spans, (0, cuts[0]))


class _Gather:
    """Records at ``order[lo:hi]`` as a few large byte views, gathered a buffer-full at a time.

    A view stays valid only until the next one is drawn (the buffer is reused): write it first.
    """

    def __init__(self, source: DbfFile, order: np.ndarray):
        self.rows = _rows(source)
        self.order = order
        capacity = max(1, min(len(order), GATHER_BYTES // source.record_length))
        self.buffer = np.empty((capacity, source.record_length), dtype=np.uint8)
        self.start = self.stop = 0

    def pieces(self, lo: int, hi: int) -> Iterator[tuple[memoryview, bool]]:
        """(view, last) pairs covering ``order[lo:hi]``."""
        while lo < hi:
            if not self.start <= lo < self.stop:
                self.start, self.stop = lo, min(lo + len(self.buffer), len(self.order))
                # mode="clip" writes straight into the buffer ("raise" copies through a temporary); the
                # indices are valid: from argsort, or checked by _indices.
                np.take(self.rows, self.order[self.start : self.stop], axis=0, out=self.buffer[: self.stop - lo],
                        mode="clip")
            end = min(hi, self.stop)
            yield self.buffer[lo - self.start : end - self.start].reshape(-1).data, end == hi
            lo = end


def _emit(stream: BinaryIO, header: bytes, pieces: Iterable[tuple[memoryview, bool]], eof: bool) -> None:
    """Header, records and EOF byte in as few writes as the buffer allows (one ``writelines`` usually)."""
    batch: list = [header]
    for piece, last in pieces:
        batch.append(piece)
        if last:
            break
        stream.writelines(batch)  # before the next piece overwrites this one
        batch = []
    if eof:
        batch.append(_EOF)
    stream.writelines(batch)


def partition(
    source: DbfFile,
    key_field: str,
    key_to_group: Mapping[str, Hashable],
    *,
    records: Sequence[int] | None = None,
) -> SplitResult:
    """Group record indices by destination without writing anything.

    Keys are compared stripped of spaces and NULs. ``records`` restricts the pass to those indices (a job's
    share from an earlier partition). A processing job reads a file once, partitions it by job, then each job
    calls ``split(..., records=result.records[job])`` on the same open file; or, across processes, ``split`` by
    job into intermediate DBF files that each job splits again.
    """
    return _plan(source, key_field, key_to_group, records).result


class KeyCodes(dict):
    """Raw key bytes -> whole-number destination (-1: the key maps nowhere), over an ``EncodedKeys`` whose
    destinations are 0..n-1. Each distinct raw key is stripped and looked up once, on first sight; the answer
    depends on the stripped key only, so one ``KeyCodes`` serves every file partitioned by the same mapping,
    whatever its key field's width (a caller partitioning 30 files resolves each account once, not 30 times)."""

    def __init__(self, wanted: EncodedKeys):
        super().__init__()
        self.wanted = wanted
        self.encoding = wanted.encoding

    def __missing__(self, raw: bytes) -> int:
        code = self[raw] = self.wanted.get(raw.strip(_STRIP), -1)
        return code


@attrs.frozen
class CodedPartition:
    """A partition by ``KeyCodes``: ``order`` holds the matched record indices grouped by destination 0, 1, ...
    (source order within each); ``counts[d]`` is how many belong to destination d, so destination d's records
    are ``order[starts[d]:starts[d] + counts[d]]``. ``unmatched[key]`` lists the records whose key maps nowhere."""

    order: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    unmatched: dict[str, list[int]]
    total: int


def partition_codes(source: DbfFile, key_field: str, codes: KeyCodes, destinations: int) -> CodedPartition:
    """``partition`` for whole-number destinations, kept in arrays: no per-destination Python lists, and the
    key lookups of earlier files reused through ``codes``."""
    if source.encoding != codes.encoding:
        raise ValueError(f"{source.name}: encoded {source.encoding}, the key codes are {codes.encoding}")
    field = source.field(key_field)  # a missing field raises DbfError naming the file and listing the fields
    source.check_flags()
    column = _rows(source)[:, field.offset : field.offset + field.length]
    keys = np.ascontiguousarray(column).view(f"S{field.length}").ravel().tolist()
    groups = np.fromiter(map(codes.__getitem__, keys), dtype=np.int32, count=len(keys))
    if len(groups) and (groups.max() >= destinations):
        raise ValueError(f"{source.name}: a key maps to destination {int(groups.max())}, "
                         f"beyond the {destinations} given")
    # numpy's stable sort of 16-bit numbers is a radix sort: much faster
    sortable = groups.astype(np.int16) if destinations < np.iinfo(np.int16).max else groups
    positions = np.argsort(sortable, kind="stable")  # unmatched (-1) first
    counts = np.bincount(groups + 1, minlength=destinations + 1)
    missing = int(counts[0])
    counts = counts[1:]
    starts = np.zeros(destinations, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    unmatched: dict[str, list[int]] = {}
    if missing:
        names: dict[bytes, list[int]] = {}
        for index in positions[:missing].tolist():
            raw = keys[index]
            target = names.get(raw)
            if target is None:
                text = raw.strip(_STRIP).decode(source.encoding, errors="backslashreplace")
                target = names[raw] = unmatched.setdefault(text, [])
            target.append(index)
    return CodedPartition(positions[missing:], counts, starts, unmatched, len(keys))


def record_bytes(source: DbfFile, indices: Iterable[int]) -> bytes:
    """The records at ``indices`` concatenated, as stored."""
    return _gathered(source, indices).tobytes()


def record_view(source: DbfFile, indices: Iterable[int]) -> memoryview:
    """``record_bytes`` as a flat byte view of the gathered array: one copy of the records, not two."""
    return _gathered(source, indices).reshape(-1).data


def write_records(stream: BinaryIO, source: DbfFile, indices: Sequence[int], *, eof: bool = True) -> None:
    """Write a DBF of ``source``'s records at ``indices``: its header verbatim with the count patched."""
    order = _indices(source, indices)
    _check_flags(source, order)
    _emit(stream, patched_header(source, len(order)), _Gather(source, order).pieces(0, len(order)), eof)


def split(
    source: DbfFile,
    key_field: str,
    mapping: Mapping[str, Hashable],
    open_dest: Callable[[Hashable], ContextManager[BinaryIO]],
    *,
    eof: bool = True,
    empty: bool | Iterable[Hashable] = False,
    unmatched_to: Hashable | None = None,
    records: Sequence[int] | None = None,
) -> SplitResult:
    """Split ``source`` by ``key_field`` into destinations named by ``mapping`` (stripped key -> destination).

    ``open_dest(dest)`` is entered as a context manager yielding a binary stream (``open(path, 'wb')`` or
    ``atomic_open(path)`` fit; wrap a BytesIO in ``contextlib.nullcontext`` to keep it open). Destinations
    without records get no file unless ``empty`` is True (every destination in ``mapping``) or lists them.
    Records whose key maps nowhere are in ``result.unmatched`` and, if ``unmatched_to`` is given, are also
    written to ``open_dest(unmatched_to)``. ``records`` restricts the split to those source indices.
    The source is read once for all destinations. Streams get large views of one reused buffer: each ``write``
    or ``writelines`` must consume its data before returning (files and BytesIO do; keeping the views doesn't).
    """
    plan = _plan(source, key_field, mapping, records)
    result, spans = plan.result, dict(plan.spans)
    if empty:
        for dest in set(mapping.values()) if empty is True else list(empty):
            if dest not in spans:
                result.records[dest] = []
                spans[dest] = (0, 0)
    if unmatched_to is not None and result.unmatched:
        spans[unmatched_to] = plan.unmatched
    gather = _Gather(source, plan.order)
    header = source.header
    for dest, (lo, hi) in spans.items():
        with open_dest(dest) as stream:
            _emit(stream, _with_count(header, hi - lo), gather.pieces(lo, hi), eof)
    return result


class _RawFile:
    """A file on a bare descriptor (no Python file object: 4,000 of them add up), entered as a context manager,
    with the two stream methods the splitter uses. Each call writes everything or raises an OSError naming the
    file: ``os.writev`` may write less than asked (after a signal, on a full disk)."""

    def __init__(self, path: str, flags: int = os.O_EXCL):
        self.path, self.flags = path, flags

    def __enter__(self) -> _RawFile:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | self.flags, 0o666)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def write(self, data) -> None:
        self.writelines([data])

    def writelines(self, buffers) -> None:
        buffers = list(buffers)
        try:
            left = sum(map(len, buffers)) - os.writev(self.fd, buffers)
            while left:
                views = [memoryview(b).cast("B") for b in buffers]
                written = sum(map(len, views)) - left
                while written >= len(views[0]):
                    written -= len(views.pop(0))
                views[0] = views[0][written:]
                buffers = views
                left -= os.writev(self.fd, buffers)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, self.path) from None


class _AtomicRawFile(_RawFile):
    """``atomic_open`` on a bare descriptor: written under a hidden temporary name beside ``path`` and renamed
    into place when complete; on failure the temporary file is removed."""

    def __init__(self, path: str):
        super().__init__(temp_name(path), os.O_TRUNC)
        self.final = path

    def __exit__(self, kind, *exc) -> None:
        try:
            super().__exit__()
            if kind is None:
                os.replace(self.path, self.final)
        except BaseException:
            self._discard()
            raise
        if kind is not None:
            self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _remove_stale_staging(parent: str, name: str) -> None:
    """Staging directories of earlier staged splits into the same target whose process is gone (killed)."""
    prefix = STAGING.format(name=name, pid="")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(parent):
            pid = entry[len(prefix) :]
            if not (entry.startswith(prefix) and pid.isdigit()) or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
            except PermissionError:
                pass  # alive, someone else's


def split_to_dir(
    source: DbfFile,
    key_field: str,
    mapping: Mapping[str, Hashable],
    directory: str | os.PathLike,
    *,
    filename: str = "{dest}/{name}",
    staged: bool = False,
    **options,
) -> SplitResult:
    """``split`` into files under ``directory``; ``filename`` is formatted with ``dest`` and the source file's
    ``name``. A destination whose path would leave ``directory`` (``..`` in a product code) is refused before
    anything is written.

    How results appear atomically (a killed process never leaves a half-written file under a final name):

    - default: each file is written under a hidden temporary name beside its final one and renamed into place
      when complete; files already in ``directory`` are kept (one product directory collects many sources).
    - ``staged=True``: ``directory`` must be new or empty. Every file is written under its plain final name into
      a private staging directory beside it (``.NAME.staging-PID``), which is renamed onto ``directory`` once
      at the end: the whole split appears at once or not at all, with no temporary name or rename per file. A
      killed split leaves only its staging directory, removed by the next staged split into the same target.
    """
    root = os.path.realpath(directory)
    name = source.path.name if source.path else Path(source.name).name
    paths: dict[Hashable, str] = {}
    dests = set(mapping.values())
    if options.get("unmatched_to") is not None:
        dests.add(options["unmatched_to"])
    for dest in dests:
        # normpath, not resolve(): a string check per destination, no syscalls for 4,000 of them.
        path = os.path.normpath(os.path.join(root, filename.format(dest=dest, name=name)))
        if not path.startswith(root + os.sep):
            raise ValueError(f"destination {dest!r} gives path {path}, outside {root}")
        paths[dest] = path
    if not staged:
        return _split_into(source, key_field, mapping, paths, _AtomicRawFile, options)
    parent, base = os.path.split(root)
    if os.path.isdir(root) and os.listdir(root):
        raise FileExistsError(f"{root}: a staged split needs a new or empty directory; this one has files")
    os.makedirs(parent, exist_ok=True)
    _remove_stale_staging(parent, base)
    staging = os.path.join(parent, STAGING.format(name=base, pid=os.getpid()))
    os.mkdir(staging)
    try:
        inside = {dest: staging + path[len(root) :] for dest, path in paths.items()}
        result = _split_into(source, key_field, mapping, inside, _RawFile, options)
        os.rename(staging, root)  # replaces the empty directory if there is one
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _split_into(source, key_field, mapping, paths, opener, options) -> SplitResult:
    parents = {dest: os.path.dirname(path) for dest, path in paths.items()}
    made: set[str] = set()

    def open_dest(dest: Hashable) -> ContextManager[BinaryIO]:
        parent = parents[dest]
        if parent not in made:
            try:
                os.mkdir(parent)  # one call for a new destination directory, the usual case
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
            made.add(parent)
        return opener(paths[dest])

    return split(source, key_field, mapping, open_dest, **options)


__all__ = [
    "CodedPartition",
    "EncodedKeys",
    "GATHER_BYTES",
    "KeyCodes",
    "SplitResult",
    "partition",
    "partition_codes",
    "record_bytes",
    "record_view",
    "split",
    "split_to_dir",
    "write_records",
]
