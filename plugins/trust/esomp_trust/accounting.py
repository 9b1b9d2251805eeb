"""The day's accounting (核对): every record of every split input is in exactly one product's package or in the
unmatched report.

The count is independent of the splitter's own: each sending job reads the record count in the DBF header of
every product file it packages (the bytes it reads anyway, so no file is opened again) and writes the sums per
input (``extract_temp/{date}/trust/counted/{job}.json``). ``trust-account`` adds those up per input with the
header count of the input's unmatched-report DBF and compares the total with the input's own header count. A header
that does not fit its file's size is an error too, so a count cannot hide a short file. Every active product must
have been packaged exactly once.
"""
from __future__ import annotations

import os
import struct
from collections import Counter
from typing import Any

from esomp_core import Job, JobResult
from esomp_trust.inputs import InputError, collected_inputs, read_json
from esomp_trust.options import TrustOptions
from esomp_trust.processing import WorkDirs, read_partitions

ERRORS_SHOWN = 20  # problems named in the error; the job's detail has the per-input counts


class RecordsUnaccounted(InputError):
    """Input records that are not in exactly one product's file or the unmatched report; names each file."""


def dbf_count(path: str) -> int:
    """The record count in a DBF's header, checked against the file's size (header + records, EOF byte or not).
    Raises OSError for a missing file and InputError for a header that does not fit the file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        head = os.read(fd, 12)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if len(head) < 12:
        raise InputError(f"{path}: {len(head)} bytes, too short for a DBF header")
    count, header_length, record_length = struct.unpack_from("<IHH", head, 4)
    if size - header_length - count * record_length not in (0, 1):
        raise InputError(f"{path}: the header says {count} records of {record_length} bytes after a "
                         f"{header_length}-byte header, but the file has {size} bytes")
    return count


def run_account(job: Job, site, options: TrustOptions) -> JobResult:
    dirs = WorkDirs(site, job.date)
    split = [entry for partition in read_partitions(dirs, job.params["channels"]) for entry in partition["inputs"]
             if entry["split"]]
    problems = _inputs_not_partitioned(site, job.date, options, {entry["name"] for entry in split})
    packaged = Counter()  # records per input name, in the packaged files' headers
    products = Counter()  # how many times each product was packaged
    for sending in job.params["sending"]:
        counted = read_json(dirs.counted(sending), f"the job {sending} has not succeeded")
        packaged.update(counted["records"])
        products.update(counted["products"])
    problems += _products_not_packaged_once(job.products, products)
    names = {entry["name"] for entry in split}
    problems += [f"{name}: {count} records packaged of a file that is no split input of the day"
                 for name, count in sorted(packaged.items()) if name not in names]
    result = JobResult(detail={"inputs": {}, "products": len(job.products)})
    for entry in split:
        counts = {"input": _input_count(entry, problems), "products": packaged[entry["name"]],
                  "unmatched": _unmatched_count(entry, problems)}
        result.detail["inputs"][entry["name"]] = counts
        result.files += 1
        result.records += max(counts["input"], 0)
        difference = counts["input"] - counts["products"] - counts["unmatched"]
        if counts["input"] >= 0 and difference:
            problems.append(f"{entry['path']}: {counts['input']} records in the input, {counts['products']} in "
                            f"the products' files and {counts['unmatched']} in the unmatched report: "
                            + (f"{difference} not accounted for" if difference > 0 else
                               f"{-difference} more than the input holds"))
    if problems:
        shown = "; ".join(problems[:ERRORS_SHOWN])
        more = f" (and {len(problems) - ERRORS_SHOWN} more)" if len(problems) > ERRORS_SHOWN else ""
        raise RecordsUnaccounted(f"records not accounted for: {shown}{more}")
    return result


def _inputs_not_partitioned(site, date: str, options: TrustOptions, partitioned: set[str]) -> list[str]:
    """Collected split-type files that no partition took: none of their records reached anyone."""
    inputs, _ = collected_inputs(site, date, options.collect_channels)
    return [f"{item.path}: collected input {item.name} of type {item.file_type} is in no partition"
            for item in inputs if item.split and item.name not in partitioned]


def _products_not_packaged_once(expected, packaged: Counter) -> list[str]:
    missing = [p for p in expected if not packaged[p]]
    twice = sorted(p for p, n in packaged.items() if n > 1)
    problems = []
    if missing:
        problems.append(f"product {missing[0]}: packaged by no sending job ({len(missing)} products so)")
    if twice:
        problems.append(f"product {twice[0]}: packaged {packaged[twice[0]]} times ({len(twice)} products so)")
    return problems


def _input_count(entry: dict[str, Any], problems: list[str]) -> int:
    """The input's own header count, or -1 (a problem noted) when it cannot be read."""
    try:
        return dbf_count(entry["path"])
    except (OSError, InputError) as exc:
        problems.append(f"{entry['path']}: input {entry['name']} cannot be counted: {exc}")
        return -1


def _unmatched_count(entry: dict[str, Any], problems: list[str]) -> int:
    if not entry.get("unmatched"):
        return 0
    try:
        return dbf_count(entry["unmatched"])
    except (OSError, InputError) as exc:
        problems.append(f"{entry['unmatched']}: unmatched report of {entry['name']} cannot be counted: {exc}")
        return 0
