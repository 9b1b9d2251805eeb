"""Byte-level splitting: one pass over a source file groups its records by key; each destination gets the
source header verbatim (record count patched), its records byte for byte (deleted ones too) and an EOF byte.

The hot loop touches one bytes object per record (its raw key, extracted in C by ``DbfFile.keys``) and one
dict lookup that yields the destination's list directly; record bytes are only sliced when written, with one
join per destination.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, ContextManager, Hashable, Iterable, Mapping, Sequence

import attrs

from esomp_dbf.reader import EOF_BYTE, DbfFile
from esomp_dbf.writer import atomic_open, patched_header

_STRIP = b" \x00"
_EOF = bytes((EOF_BYTE,))


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
    encoding = source.encoding
    wanted = {str(k).encode(encoding).strip(_STRIP): dest for k, dest in key_to_group.items()}
    keys = source.keys(key_field)
    by_dest: dict[Hashable, list[int]] = {}
    unmatched: dict[str, list[int]] = {}
    cache: dict[bytes, list[int]] = {}  # raw (unstripped) key -> the list its records go to

    def resolve(raw: bytes) -> list[int]:
        key = raw.strip(_STRIP)
        if key in wanted:
            target = by_dest.setdefault(wanted[key], [])
        else:
            target = unmatched.setdefault(key.decode(encoding, errors="backslashreplace"), [])
        cache[raw] = target
        return target

    pairs = enumerate(keys) if records is None else ((i, keys[i]) for i in records)
    for index, raw in pairs:
        target = cache.get(raw)
        if target is None:
            target = resolve(raw)
        target.append(index)
    return SplitResult(by_dest, unmatched, len(keys) if records is None else len(records))


def record_bytes(source: DbfFile, indices: Iterable[int]) -> bytes:
    """The records at ``indices`` concatenated, as stored."""
    data, start, size = source.data, source.header_length, source.record_length
    return b"".join([data[p : p + size] for p in [start + i * size for i in indices]])


def write_records(stream: BinaryIO, source: DbfFile, indices: Sequence[int], *, eof: bool = True) -> None:
    """Write a DBF of ``source``'s records at ``indices``: its header verbatim with the count patched."""
    stream.write(patched_header(source, len(indices)))
    stream.write(record_bytes(source, indices))
    if eof:
        stream.write(_EOF)


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
    """
    result = partition(source, key_field, mapping, records=records)
    if empty:
        wanted = set(mapping.values()) if empty is True else list(empty)
        for dest in wanted:
            result.records.setdefault(dest, [])
    for dest, indices in result.records.items():
        with open_dest(dest) as stream:
            write_records(stream, source, indices, eof=eof)
    if unmatched_to is not None and result.unmatched:
        leftovers = sorted(i for idx in result.unmatched.values() for i in idx)
        with open_dest(unmatched_to) as stream:
            write_records(stream, source, leftovers, eof=eof)
    return result


def split_to_dir(
    source: DbfFile,
    key_field: str,
    mapping: Mapping[str, Hashable],
    directory: str | os.PathLike,
    *,
    filename: str = "{dest}/{name}",
    **options,
) -> SplitResult:
    """``split`` into files under ``directory``; ``filename`` is formatted with ``dest`` and the source file's
    ``name``. Each file is written under a temporary name and renamed into place. A destination whose path
    would leave ``directory`` (``..`` in a product code) is refused before anything is written."""
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
    made: set[str] = set()

    def open_dest(dest: Hashable) -> ContextManager[BinaryIO]:
        path = paths[dest]
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        return atomic_open(path)

    return split(source, key_field, mapping, open_dest, **options)


__all__ = ["SplitResult", "partition", "record_bytes", "split", "split_to_dir", "write_records"]
