"""Each processing job's share of the day's inputs, as record numbers rather than copies of the records.

The partition job reads every split-type input once, maps each record's key to its product, and writes for each
processing job one index file (``shares/{job}.u32``: native unsigned 32-bit record numbers) and one JSON sidecar
naming, per input and product, where its run of record numbers starts and how long it is. A processing job then
reads its products' records straight from the collected input: no byte of an input is written again before it
reaches its product's file, and no job scans a key it does not own.
"""
from __future__ import annotations

import os
from array import array
from pathlib import Path
from typing import Any, Callable

from esomp_dbf import atomic_open
from esomp_trust.inputs import InputError, read_json, write_json

_TYPECODE = "I"
if array(_TYPECODE).itemsize != 4:  # pragma: no cover - every platform Python supports today has 4-byte ints
    raise ImportError("esomp_trust.shares needs a 4-byte array typecode 'I'")


def identity(path: str | os.PathLike) -> dict[str, int]:
    """What tells a collected input from a later one under the same name: re-collection renames a new file in."""
    stat = os.stat(path)
    return {"size": stat.st_size, "inode": stat.st_ino, "mtime_ns": stat.st_mtime_ns}


class ShareWriter:
    """Collects every job's record numbers per input and product; ``commit`` writes them, one pair of files per
    job, each under a temporary name renamed into place."""

    def __init__(self, root: Path, groups: dict[str, list[str]]):
        self.root, self.groups = root, groups
        self.numbers = {group: array(_TYPECODE) for group in groups}
        self.runs: dict[str, dict[str, dict[str, list[int]]]] = {group: {} for group in groups}

    def add(self, name: str, by_product: dict[str, list[int]]) -> dict[str, int]:
        """Record input ``name``'s record numbers by product; return the records per job."""
        per_job = {}
        for group, products in self.groups.items():
            numbers, runs = self.numbers[group], self.runs[group].setdefault(name, {})
            start = len(numbers)
            for product in products:
                indices = by_product.get(product)
                if indices:
                    runs[product] = [len(numbers), len(indices)]
                    numbers.extend(indices)
            per_job[group] = len(numbers) - start
        return per_job

    def commit(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for group in self.groups:
            with atomic_open(self.root / f"{group}.u32") as fh:
                fh.write(self.numbers[group].tobytes())
            write_json(self.root / f"{group}.json", {"runs": self.runs[group]})


class Share:
    """One processing job's share: the record numbers of each of its products in each input."""

    def __init__(self, root: Path, group: str, missing: str):
        self.path = root / f"{group}.u32"
        self.runs = read_json(root / f"{group}.json", missing)["runs"]
        self.numbers = array(_TYPECODE)
        try:
            with open(self.path, "rb") as fh:
                self.numbers.frombytes(fh.read())
        except FileNotFoundError:
            raise InputError(f"{self.path}: missing; {missing}") from None

    def run(self, name: str, product: str) -> tuple[int, int]:
        """Where ``product``'s record numbers of input ``name`` start in the share, and how many there are."""
        run = self.runs.get(name, {}).get(product)
        if run is None:
            return 0, 0
        start, count = run
        if start < 0 or count < 0 or start + count > len(self.numbers):
            raise InputError(f"{self.path}: input {name}, product {product}: records {start}+{count} run past the "
                             f"end of the share ({len(self.numbers)} record numbers); rerun the partition job")
        return start, count

    def records(self, name: str, product: str) -> array:
        start, count = self.run(name, product)
        return self.numbers[start:start + count]

    def gather(self, name: str, fetch: Callable[[array], bytes]) -> tuple[int, memoryview]:
        """Every record of input ``name`` in this share, fetched at once: (first record number's position in the
        share, the records' bytes). A product's records are the slice of its run."""
        runs = [self.run(name, product) for product in self.runs.get(name, {})]
        if not runs:
            return 0, memoryview(b"")
        first = min(start for start, _ in runs)
        end = max(start + count for start, count in runs)
        return first, memoryview(fetch(self.numbers[first:end]))

    def check_input(self, name: str, path: str, described: dict[str, Any], rerun: str) -> None:
        """Refuse an input that changed since the partition job numbered its records."""
        try:
            now = identity(path)
        except FileNotFoundError:
            raise InputError(f"{path}: collected file {name} is gone from the collection root") from None
        then = {k: described.get(k) for k in now}
        if now != then:
            raise InputError(f"{path}: collected file {name} changed since the partition job read it "
                             f"({then} then, {now} now): rerun {rerun}")
