"""The day's accounting (核对): every record of every split input is in exactly one product's file or in the
unmatched report.

The count is independent of the splitter's own: it reads the record count in the header of every file the
products' directories hold (found through ``split_path`` and the products master, not through the processing
jobs' lists), and of each unmatched-report DBF, and compares their sum per input with the input's own header.
Only headers are read (12 bytes and a stat per file), never records; a header whose count disagrees with the
file's size is an error too, so a count cannot hide a short file.
"""
from __future__ import annotations

import os
import struct
from typing import Any

from esomp_core.model import Job, JobResult
from esomp_trust.inputs import InputError, collected_inputs
from esomp_trust.options import OutputPaths, TrustOptions
from esomp_trust.processing import WorkDirs, institutions_of, read_partitions

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
    channels = job.params["channels"]
    split = [entry for partition in read_partitions(dirs, channels) for entry in partition["inputs"]
             if entry["split"]]
    problems = _inputs_not_partitioned(site, job.date, options, {entry["name"] for entry in split})
    products = list(job.products)
    out = OutputPaths(options.split_path, clearing_root=dirs.clearing_root, date=job.date,
                      institution=institutions_of(site, products))
    result = JobResult(detail={"inputs": {}, "products": len(products)})
    for entry in split:
        counts = _count_input(entry, products, out, problems)
        result.detail["inputs"][entry["name"]] = counts
        result.files += 1
        result.records += counts["input"]
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


def _count_input(entry: dict[str, Any], products: list[str], out: OutputPaths, problems: list[str]
                 ) -> dict[str, int]:
    """Records of one input: in the input's header, in its products' files, in its unmatched report."""
    name = entry["name"]
    counts = {"input": -1, "products": 0, "unmatched": 0}
    try:
        counts["input"] = dbf_count(entry["path"])
    except (OSError, InputError) as exc:
        problems.append(f"{entry['path']}: input {name} cannot be counted: {exc}")
    for product in products:
        path = out(product, name)
        try:
            counts["products"] += dbf_count(path)
        except FileNotFoundError:
            problems.append(f"product {product}: {path}: missing")
        except (OSError, InputError) as exc:
            problems.append(f"product {product}: {exc}")
    if entry.get("unmatched"):
        try:
            counts["unmatched"] = dbf_count(entry["unmatched"])
        except (OSError, InputError) as exc:
            problems.append(f"{entry['unmatched']}: unmatched report of {name} cannot be counted: {exc}")
    return counts
