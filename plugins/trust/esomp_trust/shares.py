"""Each processing job's share of the day's inputs, as record numbers rather than copies of the records.

The partition job reads every split-type input once, maps each record's key to its product, and writes for each
processing job one index file (``shares/{job}.u32``: native unsigned 32-bit record numbers) and one JSON sidecar
naming the job's products and, per input, where its records start in the index and each product's run length. A
processing job then reads its products' records straight from the collected input: no byte of an input is written
again before it reaches its product's file, and no job scans a key it does not own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from esomp_core import atomic_open
from esomp_dbf import CodedPartition
from esomp_trust.inputs import InputError, read_json, write_json


def identity(path: str | os.PathLike) -> dict[str, int]:
    """What tells a collected input from a later one under the same name: re-collection renames a new file in."""
    stat = os.stat(path)
    return {"size": stat.st_size, "inode": stat.st_ino, "mtime_ns": stat.st_mtime_ns}


class ShareWriter:
    """Collects every job's record numbers per input; ``commit`` writes them, one pair of files per job, each
    under a temporary name renamed into place.

    Products are numbered in job order (the first job's products, then the second's, ...), so that a partition by
    those numbers (``esomp_dbf.partition_codes``) leaves each job's records of an input in one contiguous slice,
    its products' runs side by side: a job's share of an input is one array slice and a list of run lengths."""

    def __init__(self, root: Path, groups: dict[str, list[str]]):
        self.root, self.groups = root, groups
        self.code = {}  # product -> its number
        self.spans = {}  # job -> (first, end) product numbers
        for group, products in groups.items():
            first = len(self.code)
            for product in products:
                self.code[product] = len(self.code)
            self.spans[group] = (first, len(self.code))
        self.numbers: dict[str, list[np.ndarray]] = {group: [] for group in groups}
        self.length = dict.fromkeys(groups, 0)
        self.runs: dict[str, dict[str, list]] = {group: {} for group in groups}

    def add(self, name: str, coded: CodedPartition) -> dict[str, int]:
        """Record input ``name``'s partition by product number; return the records per job."""
        per_job = {}
        counts = coded.counts.tolist()
        for group, (first, end) in self.spans.items():
            lo = int(coded.starts[first]) if first < len(counts) else 0
            taken = sum(counts[first:end])
            self.numbers[group].append(coded.order[lo:lo + taken])
            self.runs[group][name] = [self.length[group], counts[first:end]]
            self.length[group] += taken
            per_job[group] = taken
        return per_job

    def commit(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for group, products in self.groups.items():
            numbers = np.concatenate(self.numbers[group]) if self.numbers[group] else np.empty(0)
            with atomic_open(self.root / f"{group}.u32") as fh:
                fh.write(numbers.astype(np.uint32).tobytes())
            write_json(self.root / f"{group}.json", {"products": list(products), "inputs": self.runs[group]})


class Share:
    """One processing job's share: the record numbers of each of its products in each input."""

    def __init__(self, root: Path, group: str, missing: str):
        self.path = root / f"{group}.u32"
        described = read_json(root / f"{group}.json", missing)
        self.products: list[str] = described["products"]
        self.inputs: dict[str, list] = described["inputs"]
        try:
            self.numbers = np.fromfile(self.path, dtype=np.uint32)
        except FileNotFoundError:
            raise InputError(f"{self.path}: missing; {missing}") from None

    def runs(self, name: str) -> dict[str, tuple[int, int]]:
        """product -> (where its record numbers of input ``name`` start in the share, how many there are)."""
        described = self.inputs.get(name)
        if described is None:
            return {}
        start, counts = described
        if len(counts) != len(self.products) or min(counts, default=0) < 0 or \
                start < 0 or start + sum(counts) > len(self.numbers):
            raise InputError(f"{self.path}: input {name}: its record runs do not fit the share "
                             f"({len(self.numbers)} record numbers); rerun the partition job")
        runs = {}
        for product, count in zip(self.products, counts):
            runs[product] = (start, count)
            start += count
        return runs

    def records(self, name: str, product: str) -> np.ndarray:
        start, count = self.runs(name).get(product, (0, 0))
        return self.numbers[start:start + count]

    def gather(self, name: str, fetch: Callable[[np.ndarray], Any]) -> tuple[int, memoryview]:
        """Every record of input ``name`` in this share, fetched at once: (first record number's position in the
        share, the records' bytes). A product's records are the slice of its run."""
        described = self.inputs.get(name)
        if not described or not sum(described[1]):
            return 0, memoryview(b"")
        self.runs(name)  # checked
        start, counts = described
        return start, memoryview(fetch(self.numbers[start:start + sum(counts)]))

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
