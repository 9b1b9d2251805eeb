"""A synthetic exchange day: every registered DBF file type written for N products, plus the product master.

Deterministic: the same site file types, date, product count, profile and seed give byte-identical files
(header dates come from the business date, archives carry fixed times, nothing reads the clock).
"""
from __future__ import annotations

import collections
import hashlib
import io
import json
import random
import re
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable

import attrs
import zstandard
import calendar

from esomp_core import (
    FieldSpec, FileType, ProductImportError as ImportError_, atomic_open, expand_date_tokens, import_products,
    sync_classifications,
)

from esomp_dbf import header_bytes
from esomp_gen.faults import inject
from esomp_gen import master
from esomp_gen.records import TEMPLATES, offsets, running_number, templates

# Profile-wide settings; each file type's own ``profile`` dict says how many records it gets and its quirks.
PROFILES: dict[str, dict[str, Any]] = {
    "seed-day": {
        "skew": 1.0,        # Zipf exponent of product activity: the busiest of 4,000 products is ~450x the mean
        "unowned": 0.03,    # share of a split file's records on accounts that belong to no product
        "records": 2,       # records per product for a type whose profile does not say
        "total": 2000,      # records of a whole (market-data) file whose profile does not say
    },
}
BLOCK = TEMPLATES * 64  # records per write: a whole number of template cycles, ~2 MB for SJSMX
EOF = b"\x1a"


class GenError(ValueError):
    """Bad generator input (date, product count, profile), or a site whose file types cannot be generated."""


@attrs.define
class GenReport:
    date: str
    products: int
    profile: str
    seed: int
    files: list[dict[str, Any]] = attrs.field(factory=list)
    deliveries: list[dict[str, Any]] = attrs.field(factory=list)
    faults: list[dict[str, Any]] = attrs.field(factory=list)
    left_out: dict[str, str] = attrs.field(factory=dict)
    bytes: int = 0
    records: dict[str, int] = attrs.field(factory=dict)
    seconds: float = 0.0
    manifest: str = ""
    products_csv: str = ""
    imported: dict[str, int] = attrs.field(factory=dict)

    def as_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data = attrs.asdict(self)
        if not detail:
            data["files"] = [{k: v for k, v in f.items() if k not in ("accounts", "products")} for f in self.files]
        return data


class _Hashing:
    """A write-through stream that counts and hashes what passes."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.sha256, self.size = stream, hashlib.sha256(), 0

    def write(self, data) -> None:
        self.stream.write(data)
        self.sha256.update(data)
        self.size += len(data)


def header_date(date: str, year_base: int) -> bytes:
    """The header's YY MM DD: SZSE writers store year-2000, SSE ones year-1900 (both seen in real files)."""
    year = int(date[:4])
    return bytes(((year - year_base) % 256, int(date[4:6]), int(date[6:8])))


def activity(products: int, skew: float, rng: random.Random) -> list[float]:
    """Per product a weight with mean 1: Zipf-like over a random ranking, so a few products dominate."""
    ranks = list(range(1, products + 1))
    rng.shuffle(ranks)
    raw = [r ** -skew for r in ranks]
    scale = products / sum(raw) if raw else 0.0
    return [w * scale for w in raw]


def _split_slots(ft: FileType, people: list[master.Product], weights: list[float], settings: dict[str, Any],
                 rng: random.Random, seed: int, width: int) -> list[bytes]:
    """The key value of every record of a split file, in file order (records interleave across products)."""
    market = ft.market or "SZ"
    mean = float(ft.profile.get("records", settings["records"]))
    slots: list[bytes] = []
    for product, weight in zip(people, weights):
        accounts = [a.encode("ascii").ljust(width)[:width]
                    for a in (product.sz_accounts if market == "SZ" else product.sh_accounts)]
        count = 1 + int(max(0.0, mean - 1) * weight + rng.random())
        slots.extend(accounts[i % len(accounts)] for i in range(count))
    stray = master.unowned_accounts(market, seed)
    unowned = round(len(slots) * float(ft.profile.get("unowned", settings["unowned"])))
    slots.extend(rng.choice(stray).encode("ascii").ljust(width)[:width] for _ in range(unowned))
    blank = round(len(slots) * float(ft.profile.get("blank_key", 0.0)))
    slots.extend(b" " * width for _ in range(blank))
    rng.shuffle(slots)
    return slots


def _write_records(out: _Hashing, ft: FileType, pool: list[bytes], count: int, *, keys: list[bytes] | None,
                   deleted: set[int], seq_field: str | None, patch: Any = None) -> None:
    """Write ``count`` records built from ``pool`` in blocks, patching key, running number and deletion flag."""
    size = len(pool[0])
    cycle = b"".join(pool)
    where = offsets(ft.fields)
    key_at = where[ft.key_fields[0].upper()] if keys is not None else None
    seq = _field(ft, seq_field) if seq_field else None
    for start in range(0, count, BLOCK):
        n = min(BLOCK, count - start)
        buf = bytearray((cycle * -(-n // len(pool)))[: n * size])
        if key_at is not None:
            k0, k1 = key_at
            for i, key in enumerate(keys[start:start + n]):
                o = i * size
                buf[o + k0:o + k1] = key
        if seq is not None:
            s0, s1 = where[seq.name.upper()]
            for i in range(n):
                o = i * size
                buf[o + s0:o + s1] = running_number(seq, start + i + 1)
        if patch is not None:
            patch(buf, start, n, size)
        for index in deleted:
            if start <= index < start + n:
                buf[(index - start) * size] = 0x2A
        out.write(buf)


def _field(ft: FileType, name: str) -> FieldSpec:
    return next(f for f in ft.fields if f.name.upper() == name.upper())


def check_profile(ft: FileType) -> None:
    """Refuse a profile the generator cannot honour, naming the file type and the profile key."""
    seq = ft.profile.get("seq")
    if seq:
        names = [f.name.upper() for f in ft.fields]
        if str(seq).upper() not in names:
            raise GenError(f"file type {ft.name}: profile.seq: no field {seq!r} (fields: {', '.join(names)})")
        if running_number(_field(ft, seq), 0) is None:
            raise GenError(f"file type {ft.name}: profile.seq: field {seq} is of type {_field(ft, seq).type}; "
                           f"a running number needs a C, N or F field")
    for key in ("records", "total"):
        value = ft.profile.get(key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
            raise GenError(f"file type {ft.name}: profile.{key}: expected a number of 0 or more, got {value!r}")


def _chosen(rng: random.Random, count: int, share: float) -> set[int]:
    k = round(count * share)
    return set(rng.sample(range(count), k)) if k else set()


def _market_patch(ft: FileType, date: str):
    """Quirks of the market-data files, applied to each block: codes, the 000000 date record, odd numerics."""
    where = offsets(ft.fields)
    code = ft.fields[0]  # the security code: 000000 (the date record), 000001, ... (a D or L field is left alone)
    code_at = where[code.name.upper()] if running_number(code, 0) is not None else None
    quirks = set(ft.profile.get("quirks", ()))
    names = {f.name.upper(): f for f in ft.fields}
    dashes = [where[f.name.upper()] for f in ft.fields if f.type == "N" and f.decimals == 3][:4]
    zero_dates = [where[n] for n in ("XXDJRQ",) if n in where and names[n].length >= 8]
    nul_numeric = where.get("XXMGMZ") if "XXMGMZ" in names and names["XXMGMZ"].length >= 5 else None

    def patch(buf: bytearray, start: int, n: int, size: int) -> None:
        for i in range(n):
            o = i * size
            index = start + i
            if code_at is not None:
                buf[o + code_at[0]:o + code_at[1]] = running_number(code, index)
            if "dash-numeric" in quirks and dashes and index % 13 == 5:
                d0, d1 = dashes[index % len(dashes)]
                buf[o + d0:o + d1] = b"-.---".rjust(d1 - d0)
            if "zero-date" in quirks and index % 3 == 1:
                for d0, d1 in zero_dates:
                    buf[o + d0:o + d1] = b"0".rjust(d1 - d0)
            if "nul-padded-numeric" in quirks and nul_numeric:
                m0, m1 = nul_numeric
                buf[o + m0:o + m1] = b"1.00\x00".rjust(m1 - m0)
        if start == 0 and "date-record" in quirks:
            first = _date_record(ft, names, where, date)
            buf[:size] = first

    return patch


def _date_record(ft: FileType, names: dict, where: dict, date: str) -> bytes:
    """The first record of SJSHQ / SJSXX / SHOW2003: code 000000 carrying the date (and time)."""
    rec = bytearray(b" " * (1 + sum(f.length for f in ft.fields)))
    for f in ft.fields:  # numbers 0, text blank, as in the real files
        a, b = where[f.name.upper()]
        if f.type in "NF":
            rec[a:b] = (b"0." + b"0" * f.decimals if f.decimals else b"0").rjust(f.length)
    first = ft.fields[0]
    zero = running_number(first, 0)
    if zero is not None:
        a, b = where[first.name.upper()]
        rec[a:b] = zero
    for name, value in (("HQZQJC", date), ("HQCJBS", "153033"), ("XXZQJC", date), ("S2", "151923"),
                        ("S6", date), ("XXSSRQ", date)):
        a, b = where.get(name, (0, 0))
        if b - a >= len(value):  # a field too narrow for the value keeps its blank or zero
            text = value.encode("ascii")
            rec[a:b] = text.rjust(b - a) if names[name].type in "NF" else text.ljust(b - a)
    return bytes(rec)


def channel_directory(site: Any, channel: str, date: str) -> Path:
    """Where files arriving on ``channel`` are put: its configured local ``url``, else exchange/CHANNEL."""
    section = site.config.channels.get(channel)
    url = section.options.get("url") if section is not None else None
    if isinstance(url, str) and url.strip():
        url = expand_date_tokens(url, date)
        path = url[len("file://"):] if url.startswith("file://") else (None if "://" in url else url)
        if path:
            target = Path(path).expanduser()
            return target if target.is_absolute() else site.root / target
    return site.root / "exchange" / channel


def _write_dbf(out: _Hashing, ft: FileType, date: str, count: int, write_body) -> None:
    year_base = int(ft.profile.get("header_year", 1900))
    out.write(header_bytes(ft.fields, count, language_driver=0, updated=header_date(date, year_base)))
    write_body(out)
    if ft.profile.get("eof", True):
        out.write(EOF)


def _generate_file(out: _Hashing, ft: FileType, date: str, people, weights, settings, seed: int) -> dict[str, Any]:
    rng = random.Random(f"esomp-gen {seed} {date} {ft.name}")
    market = ft.market or "SZ"
    pool = templates(ft.fields, rng, date, market, encoding=ft.encoding or "gbk")
    entry: dict[str, Any] = {"type": ft.name, "family": ft.family, "channel": ft.channel or ft.family,
                             "split": ft.split, "eof": bool(ft.profile.get("eof", True))}
    if ft.split:
        key = next(f for f in ft.fields if f.name.upper() == ft.key_fields[0].upper())
        keys = _split_slots(ft, people, weights, settings, rng, seed, key.length)
        count = len(keys)
        deleted = _chosen(rng, count, float(ft.profile.get("deleted", 0.0)))
        _write_dbf(out, ft, date, count, lambda o: _write_records(
            o, ft, pool, count, keys=keys, deleted=deleted, seq_field=ft.profile.get("seq")))
        per_account = collections.Counter(keys)
        owner = {}
        for p in people:
            for a in (p.sz_accounts if market == "SZ" else p.sh_accounts):
                owner[a] = p.code
        accounts = {k.decode("ascii").strip(): n for k, n in sorted(per_account.items())}
        per_product: dict[str, int] = collections.Counter()
        for account, n in accounts.items():
            if account in owner:
                per_product[owner[account]] += n
        entry.update(key=ft.key_fields[0], market=market, accounts=accounts, products=dict(sorted(per_product.items())),
                     unowned=count - sum(per_product.values()))
    else:
        count = int(ft.profile.get("total", settings["total"]))
        deleted = _chosen(rng, count, float(ft.profile.get("deleted", 0.0))) - {0}
        patch = _market_patch(ft, date)
        _write_dbf(out, ft, date, count, lambda o: _write_records(
            o, ft, pool, count, keys=None, deleted=deleted, seq_field=ft.profile.get("seq"), patch=patch))
    entry.update(records=count, deleted=len(deleted), bytes=out.size, sha256=out.sha256.hexdigest())
    return entry


def _zip_bytes(name: str, data: bytes, date: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name, date_time=(int(date[:4]), int(date[4:6]), int(date[6:8]), 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, data)
    return buf.getvalue()


def _tar_zst_bytes(members: list[tuple[str, bytes]], mtime: float) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor(level=9).compress(raw.getvalue())


def _write_file(path: Path, data: bytes) -> None:
    with atomic_open(path) as fh:
        fh.write(data)


def check_inputs(date: str, products: int, profile: str) -> None:
    if not (len(date) == 8 and date.isdigit() and 1 <= int(date[4:6]) <= 12 and 1 <= int(date[6:8]) <= 31):
        raise GenError(f"date {date!r}: expected CCYYMMDD")
    if products < 1:
        raise GenError(f"products {products}: expected 1 or more")
    if profile not in PROFILES:
        raise GenError(f"unknown profile {profile!r} (available: {', '.join(PROFILES)})")


def _not_generated(ft: FileType) -> str | None:
    """Why the generator cannot write ``ft`` (None when it can): it writes DBF files with a field layout."""
    if ft.format != "dbf":
        return f"format {ft.format}: only DBF types are generated"
    return None if ft.fields else "no field layout"


def _names_in(option: str, names: Iterable[str], known: dict[str, FileType]) -> set[str]:
    """``names`` checked against the known types; an unknown one is an error listing the known ones."""
    names = [n for n in names if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        # Names are case-sensitive (ZGH and Zgh are two types): point at the spelling that was probably meant.
        near = [k for n in unknown for k in sorted(known) if k.lower() == n.lower()]
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise GenError(f"{option}: unknown file type{plural} {', '.join(unknown)} "
                       f"(known: {', '.join(sorted(known, key=str.lower))}){hint}")
    unable = [f"{n} ({_not_generated(known[n])})" for n in names if _not_generated(known[n])]
    if unable and option == "--types":
        raise GenError(f"--types: cannot generate {', '.join(unable)}")
    return set(names)


def select_types(available: Iterable[FileType], types: Iterable[str] | None = None,
                 exclude: Iterable[str] = ()) -> tuple[list[FileType], dict[str, str]]:
    """The file types to write (all generatable ones, or only ``types``, minus ``exclude``), sorted by name,
    and the registered ones left out with the reason. Names are exact: SSE has both ZGH and Zgh."""
    known = {ft.name: ft for ft in available}
    if all(_not_generated(ft) for ft in known.values()):
        raise GenError("no DBF file types are registered: install esomp-szse, esomp-sse or esomp-sitetypes")
    only = _names_in("--types", types, known) if types is not None else None
    excluded = _names_in("--exclude", exclude, known)
    chosen, left_out = [], {}
    for name, ft in sorted(known.items()):
        reason = _not_generated(ft)
        if reason is None and only is not None and name not in only:
            reason = "not in --types"
        if reason is None and name in excluded:
            reason = "in --exclude"
        if reason is None:
            chosen.append(ft)
        else:
            left_out[name] = reason
    if not chosen:
        raise GenError(f"no file type left to generate (left out: {', '.join(sorted(left_out))})")
    return chosen, left_out


def generate_day(site: Any, date: str, products: int, *, profile: str = "seed-day", seed: int = 0,
                 file_types: Iterable[FileType] | None = None, import_master: bool = True,
                 faults: Iterable[str] = (), types: Iterable[str] | None = None,
                 exclude: Iterable[str] = ()) -> GenReport:
    """Write a synthetic exchange day for ``site`` and import its product master; return what was written.
    ``faults`` (names of ``esomp_gen.faults.FAULTS``) are injected after and listed in the manifest.

    Each registered DBF file type (or ``file_types``; only those named in ``types``, none named in ``exclude``)
    goes to its channel's directory (see ``channel_directory``); ``{site.root}/exchange/products.csv`` holds
    the master and ``{site.root}/exchange/{date}.json`` the manifest (per file: records, deleted, accounts,
    products, sha256; ``left_out``: the registered types not written, with the reason).
    """
    date = date.replace("-", "")
    check_inputs(date, products, profile)
    began = time.perf_counter()
    settings = PROFILES[profile]
    available = site.registry.file_types.values() if file_types is None else file_types
    types, left_out = select_types(available, types, exclude)
    for ft in types:
        check_profile(ft)
    people = master.make_products(products, seed)
    weights = activity(products, float(settings["skew"]), random.Random(f"esomp-gen {seed} {date} activity"))
    report = GenReport(date, products, profile, seed, left_out=left_out)
    exchange = site.root / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    archives: dict[tuple[Path, str], list[tuple[str, bytes, dict[str, Any]]]] = collections.defaultdict(list)

    for ft in types:
        name = expand_date_tokens(ft.profile.get("filename") or _default_filename(ft), date)
        directory = channel_directory(site, ft.channel or ft.family, date)
        directory.mkdir(parents=True, exist_ok=True)
        delivery = ft.profile.get("delivery")
        if delivery in ("zip", "tar.zst"):
            memory = io.BytesIO()
            entry = _generate_file(_Hashing(memory), ft, date, people, weights, settings, seed)
            if delivery == "zip":
                container = directory / f"{Path(name).stem}.zip"
                _write_file(container, _zip_bytes(name, memory.getvalue(), date))
                report.deliveries.append(_delivery(site, container, "zip", [name]))
                entry.update(name=name, path=_relative(site, container), member=name)
            else:
                archives[(directory, ft.channel or ft.family)].append((name, memory.getvalue(), entry))
                entry.update(name=name, member=name)
        else:
            with atomic_open(directory / name) as fh:
                entry = _generate_file(_Hashing(fh), ft, date, people, weights, settings, seed)
            entry.update(name=name, path=_relative(site, directory / name))
        entry["channel"] = ft.channel or ft.family
        report.files.append(entry)

    mtime = calendar.timegm(time.strptime(date, "%Y%m%d"))  # UTC: no local-time drift
    for (directory, channel), members in sorted(archives.items(), key=lambda kv: str(kv[0])):
        container = directory / f"{channel}-{date}.tar.zst"
        _write_file(container, _tar_zst_bytes([(n, data) for n, data, _ in members], mtime))
        for _, _, entry in members:
            entry["path"] = _relative(site, container)
        report.deliveries.append(_delivery(site, container, "tar.zst", [n for n, _, _ in members]))

    try:
        report.faults = inject(site, report.files, date, list(faults))
    except ValueError as exc:
        raise GenError(str(exc)) from None
    report.products_csv = str(exchange / "products.csv")
    _write_file(Path(report.products_csv), master.products_csv(people).encode("utf-8"))
    report.manifest = str(exchange / f"{date}.json")
    manifest = {"date": date, "products": products, "profile": profile, "seed": seed,
                "files": report.files, "deliveries": report.deliveries, "faults": report.faults,
                "left_out": report.left_out}
    _write_file(Path(report.manifest), json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
    if import_master:
        report.imported = import_master_file(site, report.products_csv)
    report.bytes = sum(f["bytes"] for f in report.files)
    report.records = {f["type"]: f["records"] for f in report.files}
    report.seconds = round(time.perf_counter() - began, 3)
    return report


def import_master_file(site: Any, path: str) -> dict[str, int]:
    sync_classifications(site.repository, site.config.classifications)
    try:
        summary = import_products(site.repository, path)
    except ImportError_ as exc:
        raise GenError(f"importing the generated product master failed: {exc}") from None
    return attrs.asdict(summary)


def _default_filename(ft: FileType) -> str:
    """A name the type's first pattern matches: the first ``*`` takes the date, ``?`` a 0, ``[..]`` its first."""
    name = ft.patterns[0].replace("*", "{mmdd}", 1).replace("*", "").replace("?", "0")
    return re.sub(r"\[([^!\]])[^\]]*\]", r"\1", name)


def _relative(site: Any, path: Path) -> str:
    try:
        return str(path.relative_to(site.root))
    except ValueError:
        return str(path)


def _delivery(site: Any, container: Path, kind: str, members: list[str]) -> dict[str, Any]:
    data = container.read_bytes()
    return {"path": _relative(site, container), "kind": kind, "members": members, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
