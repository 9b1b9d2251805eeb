"""The day's inputs of a channel: which business date a file name belongs to, whether a DBF arrived whole, and the
identity rule (one input per file name and per file type; docs/operations.md, "How inputs are identified")."""
from __future__ import annotations

import fnmatch
import os
import re
import struct
from typing import Any, Iterable

import attrs

from esomp_core import FileType, expand_date_tokens

DATE_TOKEN = re.compile(r"\{(date|yyyymmdd|mmdd|mdd)\}")


def has_date_token(text: str) -> bool:
    return DATE_TOKEN.search(text) is not None


def _fits(file_type: FileType, pattern: str, name: str) -> bool:
    if file_type.case_sensitive:
        return fnmatch.fnmatchcase(name, pattern)
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


@attrs.frozen
class Dating:
    """How a file name relates to the business date: "dated" (it is of that day), "other-date" (it names another
    day), "undated" (nothing tells its day), or "unknown" (no file type claims it)."""

    kind: str
    file_types: tuple[FileType, ...] = ()

    @property
    def file_type(self) -> FileType | None:
        return self.file_types[0] if len(self.file_types) == 1 else None


def date_of(name: str, date: str, file_types: Iterable[FileType], dated_source: bool) -> Dating:
    """A name with a date token in its file type's pattern is of ``date`` when the token matches; a name whose
    pattern has no token is of ``date`` only when it came from a dated source directory (the channel's url
    carries ``{date}``)."""
    dated, undated, other = [], [], []
    for file_type in file_types:
        for pattern in file_type.patterns:
            if not has_date_token(pattern):
                if _fits(file_type, pattern, name):
                    undated.append(file_type)
            elif _fits(file_type, expand_date_tokens(pattern, date), name):
                dated.append(file_type)
            elif _fits(file_type, expand_date_tokens(pattern, None), name):
                other.append(file_type)
    if dated or (undated and dated_source):
        return Dating("dated", tuple(_unique(dated + (undated if dated_source else []))))
    if undated:
        return Dating("undated", tuple(_unique(undated)))
    if other:
        return Dating("other-date", tuple(_unique(other)))
    return Dating("unknown")


def _unique(file_types: list[FileType]) -> list[FileType]:
    return list({ft.name: ft for ft in file_types}.values())


def dbf_shortfall(path: str | os.PathLike) -> str | None:
    """Why a DBF is not whole yet (its header declares more records than the file holds), or None. A file too
    short for a header counts as not whole; anything else wrong with it is the reader's to report."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        size = os.fstat(fh.fileno()).st_size
    if len(head) < 12:
        return f"{size} bytes, shorter than a DBF header"
    count, header_len, record_len = struct.unpack_from("<IHH", head, 4)
    declared = header_len + count * record_len
    if size < declared:
        return f"its header declares {count} records ({declared} bytes), the file has {size} bytes"
    return None


@attrs.frozen
class DayInput:
    """One input of the day: its identity is the channel, where it came from (``source``: a path, or
    ``archive#member``) and its sha256."""

    name: str
    path: str
    channel: str
    source: str
    sha256: str
    role: str = "collected"

    @property
    def base(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def shown(self) -> str:
        return f"{self.source} (channel {self.channel}, sha256 {self.sha256[:12]})"


@attrs.define
class Identity:
    """The outcome of the identity rule: conflicts fail collection; identical copies are collapsed visibly."""

    conflicts: list[str] = attrs.field(factory=list)
    collapsed: list[tuple[DayInput, DayInput]] = attrs.field(factory=list)  # (kept, dropped)

    @property
    def dropped(self) -> list[DayInput]:
        return [dropped for _, dropped in self.collapsed]


def identify(inputs: list[DayInput], type_of: dict[str, FileType | None]) -> Identity:
    """One input per file name and one per file type (unless the type takes ``many`` files a day, one per seat):
    identical copies are collapsed to the first, different ones are a conflict naming both. Case variants of a
    name (``sjsgf1120.dbf``, ``SJSGF1120.DBF``) are one file type's two inputs; ZGH and Zgh are two types."""
    outcome = Identity()
    kept = _one_each(inputs, lambda i: i.base, "one name", outcome)
    _one_each(kept, lambda i: None if _many(type_of.get(i.name)) else type_of[i.name].name,
              "one file type", outcome)
    return outcome


def _many(file_type: FileType | None) -> bool:
    return file_type is None or file_type.many


def _one_each(inputs: list[DayInput], key_of, what: str, outcome: Identity) -> list[DayInput]:
    first: dict[Any, DayInput] = {}
    kept = []
    for item in inputs:
        key = key_of(item)
        if key is None:
            kept.append(item)
            continue
        if key not in first:
            first[key] = item
            kept.append(item)
        elif first[key].sha256 == item.sha256:
            outcome.collapsed.append((first[key], item))
        else:
            label = f"file type {key}" if what == "one file type" else f"file name {item.base}"
            outcome.conflicts.append(f"two different inputs for {label}: {first[key].shown()} and {item.shown()}")
    return kept
