"""Faults the generator injects into a generated day, each recorded in the manifest with what should catch it
(docs/generator.md, "Faults"). Each fault picks its file among the day's files by file type, so the same day and
faults give the same bytes."""
from __future__ import annotations

import io
import struct
import zipfile
from datetime import datetime, timedelta
from typing import Any, Callable

from esomp_core import expand_date_tokens

Fault = Callable[[Any, dict[str, Any], str], dict[str, Any]]


def _plain(report_files: list[dict[str, Any]], prefer: tuple[str, ...]) -> dict[str, Any]:
    """The first file of the preferred types written as a plain file (not inside an archive)."""
    plain = {f["type"]: f for f in report_files if "member" not in f}
    for name in prefer:
        if name in plain:
            return plain[name]
    raise ValueError(f"no plain file of type {', '.join(prefer)} in this day: cannot inject the fault")


def _records(data: bytes) -> tuple[bytes, int, int, int]:
    count, header_len, record_len = struct.unpack_from("<IHH", data, 4)
    return data[:header_len], count, header_len, record_len


def _first_records(data: bytes, keep: int) -> bytes:
    """The file cut to its first ``keep`` records, its header's count patched: a valid, smaller DBF."""
    header, count, header_len, record_len = _records(data)
    keep = min(keep, count)
    header = header[:4] + struct.pack("<I", keep) + header[8:]
    return header + data[header_len:header_len + keep * record_len] + b"\x1a"


def shadow_member(site: Any, file: dict[str, Any], date: str) -> dict[str, Any]:
    """An archive whose member has the name of a collected file, holding 3 of its records."""
    path = site.root / file["path"]
    archive = path.parent / f"late-{date}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo(file["name"], date_time=(int(date[:4]), int(date[4:6]), int(date[6:]), 0, 0, 0))
        zf.writestr(info, _first_records(path.read_bytes(), 3))
    archive.write_bytes(buffer.getvalue())
    return {"fault": "shadow-member", "channel": file["channel"], "file": file["name"],
            "extra": archive.name, "found_as": f"two different inputs for file name {file['name']}"}


def stale_file(site: Any, file: dict[str, Any], date: str) -> dict[str, Any]:
    """Yesterday's copy of a dated file beside today's."""
    path = site.root / file["path"]
    yesterday = (datetime.strptime(date, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    old_name = file["name"].replace(expand_date_tokens("{mmdd}", date), expand_date_tokens("{mmdd}", yesterday))
    (path.parent / old_name).write_bytes(path.read_bytes())
    return {"fault": "stale-file", "channel": file["channel"], "file": file["name"], "extra": old_name,
            "found_as": f"{old_name} ignored: of another date"}


def case_variant(site: Any, file: dict[str, Any], date: str) -> dict[str, Any]:
    """A second file of the same type, its name in other case, one record short."""
    path = site.root / file["path"]
    other = file["name"].swapcase()
    _, count, _, _ = _records(path.read_bytes())
    (path.parent / other).write_bytes(_first_records(path.read_bytes(), count - 1))
    return {"fault": "case-variant", "channel": file["channel"], "file": file["name"], "extra": other,
            "found_as": f"two different inputs for file type {file['type']}"}


def half_written(site: Any, file: dict[str, Any], date: str) -> dict[str, Any]:
    """The file cut in the middle of its records, as while the exchange is still writing it."""
    path = site.root / file["path"]
    data = path.read_bytes()
    _, count, header_len, record_len = _records(data)
    path.write_bytes(data[:header_len + (count // 2) * record_len + 7])
    return {"fault": "half-written", "channel": file["channel"], "file": file["name"],
            "found_as": f"{file['name']} not complete"}


def missing_file(site: Any, file: dict[str, Any], date: str) -> dict[str, Any]:
    """The file never arrives."""
    (site.root / file["path"]).unlink()
    return {"fault": "missing-file", "channel": file["channel"], "file": file["name"],
            "found_as": f"expected file {file['type']} missing"}


# fault -> (what it does, the file types it prefers, in order)
FAULTS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "shadow-member": (shadow_member, ("SJSMX1", "SJSJG", "zqye")),
    "stale-file": (stale_file, ("zqye", "Bgh", "WDQ")),
    "case-variant": (case_variant, ("SJSGF", "SJSHB")),
    "half-written": (half_written, ("SJSDZ", "SJSFW")),
    "missing-file": (missing_file, ("SJSHB", "SJSKS")),
}


def inject(site: Any, files: list[dict[str, Any]], date: str, faults: list[str]) -> list[dict[str, Any]]:
    """Inject ``faults`` (each once, on distinct files) and return their manifest entries."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r} (available: {', '.join(FAULTS)})")
    used: set[str] = set()
    entries = []
    for name in dict.fromkeys(faults):
        fault, prefer = FAULTS[name]
        file = _plain([f for f in files if f["type"] not in used], prefer)
        used.add(file["type"])
        entries.append(fault(site, file, date))
    return entries
