"""``esomp bench dbf``: our split and scan against dbfread on the same file, in one run, as medians.

Without files it generates an SJSMX1-like file (48 fields, 478-byte records, key MXZQZH) with one account per
destination, the reference workload's shape. dbfread is only an oracle here: it is imported when needed.
"""
from __future__ import annotations

import contextlib
import io
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from esomp_core.model import FieldSpec

from esomp_dbf.reader import DbfFile
from esomp_dbf.split import split, split_to_dir
from esomp_dbf.writer import encode_record, write_dbf

_LAYOUT = (
    "MXJSZH C6, MXBFZH C25, MXSJLX C2, MXYWLB C4, MXZQDM C8, MXJYDY C6, MXTGDY C6, MXZQZH C20, MXDDBH C24, "
    "MXYYB C4, MXZXBH C16, MXYWLSH C16, MXCJSL N15.2, MXQSSL N15.2, MXCJJG N13.4, MXQSJG N18.9, MXXYJY C1, "
    "MXPCBS C1, MXZQLB C2, MXZQZL C2, MXGFXZ C2, MXJSFS C1, MXHBDH C3, MXQSBJ N17.2, MXYHS N12.2, "
    "MXJYJSF N12.2, MXJGGF N12.2, MXGHF N12.2, MXJSF N12.2, MXSXF N12.2, MXQSYJ N12.2, MXQTFY N12.2, "
    "MXZJJE N17.2, MXSFJE N18.2, MXCJRQ C8, MXQSRQ C8, MXJSRQ C8, MXFSRQ C8, MXQTRQ C8, MXSCDM C2, MXJYFS C2, "
    "MXZQDM2 C8, MXTGDY2 C6, MXDDBH2 C16, MXCWDH C4, MXPPHM C10, MXFJSM C30, MXBYBZ C1"
)


def _parse_layout(text: str) -> tuple[FieldSpec, ...]:
    specs = []
    for item in text.split(", "):
        name, kind = item.split()
        width, _, decimals = kind[1:].partition(".")
        specs.append(FieldSpec(name, kind[0], int(width), int(decimals or 0)))
    return tuple(specs)


SJSMX1_FIELDS = _parse_layout(_LAYOUT)
SJSMX1_KEY = "MXZQZH"


def account(n: int) -> str:
    return f"01{n:08d}"


def make_sjsmx1(path, records: int = 200_000, accounts: int = 4_000, *, seed: int = 0) -> list[str]:
    """Write an SJSMX1-like file; return its account codes. A few hundred encoded templates get the account
    patched in at the key's offset, so generating a million records takes seconds, not minutes."""
    rng = random.Random(seed)
    templates = []
    for t in range(256):
        values = {}
        for f in SJSMX1_FIELDS:
            if f.type == "N":
                values[f.name] = round(rng.uniform(0, 10 ** min(6, f.length - f.decimals - 2)), f.decimals)
            elif f.name.endswith("RQ"):
                values[f.name] = f"202401{rng.randint(1, 28):02d}"
            else:
                values[f.name] = "".join(rng.choice("ABCDEFGHJK0123456789") for _ in range(min(f.length, 6)))
        values["MXFJSM"] = "清算明细" if t % 2 else ""
        templates.append(encode_record(SJSMX1_FIELDS, values, deleted=t % 64 == 0))
    codes = [account(n) for n in range(accounts)]
    offset = 1 + sum(f.length for f in SJSMX1_FIELDS[: [f.name for f in SJSMX1_FIELDS].index(SJSMX1_KEY)])
    padded = [c.encode("ascii").ljust(20) for c in codes]

    def rows():
        for i in range(records):
            tpl = templates[i % len(templates)]
            yield tpl[:offset] + padded[rng.randrange(accounts)] + tpl[offset + 20 :]

    write_dbf(path, SJSMX1_FIELDS, rows())
    return codes


def _median_time(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dbfread_module():
    """dbfread, or None when it is not installed (the bench then says so and skips its rows)."""
    try:
        import dbfread
    except ImportError:
        return None
    return dbfread


def bench_file(path: Path, key: str | None, destinations: int, repeat: int, typed: bool, workdir: Path) -> dict:
    with DbfFile(path) as f:
        key_field = f.field(key or (SJSMX1_KEY if SJSMX1_KEY in f.field_names else f.fields[0].name))
        distinct = sorted({k.strip(b" \x00").decode(f.encoding, "backslashreplace") for k in f.keys(key_field)})
        count, size = f.count, path.stat().st_size
    # Destinations are spread round-robin over the distinct keys: one key each when there are enough.
    mapping = {k: f"P{i % destinations:04d}" for i, k in enumerate(distinct)}
    out = workdir / "split"

    def clean():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    def run_split():
        with DbfFile(path) as src:
            split_to_dir(src, key_field.name, mapping, out, filename="{dest}/{name}")

    def run_split_memory():
        # The engine without the file system: every destination is an in-memory stream.
        with DbfFile(path) as src:
            split(src, key_field.name, mapping, lambda dest: contextlib.nullcontext(io.BytesIO()))

    def run_scan():
        with DbfFile(path) as src:
            deleted = 0
            for rec in src.records():
                deleted += rec[0] == 0x2A
            return deleted

    timings = {
        "split": _median_time(run_split, repeat, clean),
        "split in memory": _median_time(run_split_memory, repeat),
        "scan": _median_time(run_scan, repeat),
    }
    shutil.rmtree(out, ignore_errors=True)
    dbfread = dbfread_module()
    if dbfread is not None:
        timings["dbfread raw"] = _median_time(
            lambda: [None for _ in dbfread.DBF(str(path), raw=True, encoding="gbk")], repeat
        )
        if typed:
            timings["dbfread typed"] = _median_time(
                lambda: [None for _ in dbfread.DBF(str(path), encoding="gbk")], repeat
            )
    rows = {
        name: {"seconds": t, "mb_per_s": size / t / 1e6, "records_per_s": count / t} for name, t in timings.items()
    }
    return {
        "file": str(path),
        "records": count,
        "bytes": size,
        "key": key_field.name,
        "destinations": len(set(mapping.values())),
        "repeat": repeat,
        "results": rows,
        "split_vs_dbfread_raw": (timings["dbfread raw"] / timings["split"]) if "dbfread raw" in timings else None,
        "split_in_memory_vs_dbfread_raw": (
            (timings["dbfread raw"] / timings["split in memory"]) if "dbfread raw" in timings else None
        ),
        "dbfread": dbfread is not None,
    }


def run_bench(
    files: Sequence[Path] = (),
    *,
    records: int = 200_000,
    accounts: int = 4_000,
    key: str | None = None,
    repeat: int = 3,
    typed: bool = True,
    workdir: str | None = None,
) -> list[dict]:
    """Bench ``files`` (or a generated SJSMX1-like file); ``workdir`` is where the split files go (a RAM disk
    such as /dev/shm shows the engine's cost without the disk's)."""
    with tempfile.TemporaryDirectory(prefix="esomp-bench-dbf-", dir=workdir) as tmp:
        workdir = Path(tmp)
        if not files:
            generated = workdir / "SJSMX1.DBF"
            make_sjsmx1(generated, records, accounts)
            files = [generated]
        return [bench_file(Path(p), key, accounts, repeat, typed, workdir) for p in files]
