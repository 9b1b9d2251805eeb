"""``esomp bench dbf``: our split (in memory, into files on disk and on a RAM disk, into 200 and 4,000
destinations) against dbfread's raw read of the same file, in one run, as medians (``EXPLAIN`` says what each
figure measures).

Without files it generates an SJSMX1-like file (48 fields, 478-byte records, key MXZQZH, 4,000 accounts): the
reference workload's shape. dbfread is only the yardstick here: it is imported when needed.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from esomp_core import layout

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


SJSMX1_FIELDS = layout(_LAYOUT)
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


def dbfread_module():
    """dbfread, or None when it is not installed (the bench then says so and skips its rows)."""
    try:
        import dbfread
    except ImportError:
        return None
    return dbfread


DBFREAD_RAW = "dbfread raw read"
# dirs: one directory per destination, the processing stage's product layout; flat: every file in one directory.
LAYOUTS = {"dirs": "{dest}/{name}", "flat": "{dest}.dbf"}
EXPLAIN = (
    "Every figure is the median wall time of --repeat runs on the same file in the same process, the rows run in "
    "turn each round so that load swings hit them alike; MB/s and records/s are the source file's size and record "
    "count over that time; 'x dbfread' is dbfread's raw read time over it.",
    "dbfread raw read: dbfread.DBF(raw=True) iterating every record (field bytes, nothing decoded): the least a "
    "user's script does to read the file, before splitting anything.",
    "key scan: open the file and read the key field of every record (what a split reads).",
    "split in memory: open, group by key and write every destination's DBF (header, records, EOF byte) to an "
    "in-memory stream: the splitter without the file system.",
    "split into N files: the same into N files under a fresh directory (--layout dirs: DEST/NAME, one directory "
    "per destination, the processing stage's product layout; flat: DEST.dbf in one directory), staged: written "
    "under plain names in a private directory renamed into place once. 'temp name per file': each file under a "
    "temporary name renamed into place (the mode for directories that already hold files). Timed from opening the "
    "source to the last rename; removing the files between runs is not timed. Disk is --workdir, RAM disk is "
    "--ramdisk.",
    "floor: the same output files written by plain open/write/close from bytes already in memory (no reading, no "
    "split, no atomicity): what the file system alone costs (skipped with --no-floor).",
)


def default_ramdisk() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class _Rounds:
    """Measurements run round-robin, one run of each per round, so that a load swing on a shared machine hits
    every row alike and the ratios between rows hold; each row's figure is its median."""

    def __init__(self):
        self.tasks: list[tuple[str, Callable[[], object], Callable[[], object] | None, dict]] = []

    def add(self, name: str, fn: Callable[[], object], setup: Callable[[], object] | None = None, **about) -> None:
        """``setup()`` runs untimed before each run and may return a cleanup to run untimed after it."""
        self.tasks.append((name, fn, setup, about))

    def run(self, repeat: int) -> dict[str, dict]:
        samples: dict[str, list[float]] = {name: [] for name, *_ in self.tasks}
        for _ in range(repeat):
            for name, fn, setup, _about in self.tasks:
                cleanup = setup() if setup else None
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
                if cleanup:
                    cleanup()
        return {name: {"seconds": statistics.median(samples[name]), **about} for name, _fn, _s, about in self.tasks}


def bench_file(
    path: Path,
    key: str | None,
    destinations: Sequence[int],
    repeat: int,
    typed: bool,
    places: Mapping[str, Path],
    per_file: bool = True,
    layout: str = "dirs",
    floor: bool = True,
) -> dict:
    with DbfFile(path) as f:
        key_field = f.field(key or (SJSMX1_KEY if SJSMX1_KEY in f.field_names else f.fields[0].name))
        distinct = sorted({k.strip(b" \x00").decode(f.encoding, "backslashreplace") for k in f.keys(key_field)})
        count, size = f.count, path.stat().st_size
    key_name, filename = key_field.name, LAYOUTS[layout]
    rounds = _Rounds()
    dbfread = dbfread_module()
    if dbfread is not None:
        rounds.add(DBFREAD_RAW, lambda: [None for _ in dbfread.DBF(str(path), raw=True, encoding="gbk")])
        if typed:
            rounds.add("dbfread typed read", lambda: [None for _ in dbfread.DBF(str(path), encoding="gbk")])

    def scan():
        with DbfFile(path) as src:
            return src.keys(key_name)

    rounds.add("key scan", scan)

    def in_memory(mapping, outputs=None):
        def open_dest(dest):
            stream = io.BytesIO() if outputs is None else outputs.setdefault(dest, io.BytesIO())
            return contextlib.nullcontext(stream)

        with DbfFile(path) as src:
            split(src, key_name, mapping, open_dest)

    def into_files(mapping, out, staged):
        def run():
            with DbfFile(path) as src:
                split_to_dir(src, key_name, mapping, out, filename=filename, staged=staged)

        return run

    def cleaned_after(out):
        return lambda: (lambda: shutil.rmtree(out, ignore_errors=True))  # no setup; the cleanup removes the files

    def write_floor(mapping, out):
        # The same files by the plainest code from bytes ready in memory: what the file system alone costs.
        outputs: dict[str, io.BytesIO] = {}

        def setup():
            in_memory(mapping, outputs)
            return lambda: (shutil.rmtree(out, ignore_errors=True), outputs.clear())

        def run():
            for dest, data in outputs.items():
                target = out / filename.format(dest=dest, name=path.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as fh:
                    fh.write(data.getbuffer())

        return run, setup

    modes = {"": True, ", temp name per file": False} if per_file else {"": True}
    for n in destinations:
        # Destinations are spread round-robin over the distinct keys: one key each when there are enough.
        mapping = {k: f"P{i % n:04d}" for i, k in enumerate(distinct)}
        n = len(set(mapping.values()))
        rounds.add(f"split in memory, {n:,} destinations", lambda m=mapping: in_memory(m), destinations=n,
                   where="memory")
        for where, base in places.items():
            out = base / "split"
            if floor:
                run, setup = write_floor(mapping, out)
                rounds.add(f"floor: write the {n:,} output files, {where}", run, setup, destinations=n, where=where,
                           mode="floor")
            for label, staged in modes.items():
                rounds.add(f"split into {n:,} files, {where}{label}", into_files(mapping, out, staged),
                           cleaned_after(out), destinations=n, where=where,
                           mode="staged" if staged else "temp name per file")
    timings = rounds.run(repeat)
    raw = timings.get(DBFREAD_RAW, {}).get("seconds")
    for row in timings.values():
        t = row["seconds"]
        row.update(mb_per_s=size / t / 1e6, records_per_s=count / t, x_dbfread_raw=raw / t if raw else None)
    return {
        "file": str(path),
        "records": count,
        "bytes": size,
        "key": key_name,
        "distinct_keys": len(distinct),
        "repeat": repeat,
        "places": {where: str(p) for where, p in places.items()},
        "layout": filename,
        "results": timings,
        "dbfread": dbfread is not None,
    }


def run_bench(
    files: Sequence[Path] = (),
    *,
    records: int = 200_000,
    accounts: int = 4_000,
    destinations: Sequence[int] = (200, 4_000),
    key: str | None = None,
    repeat: int = 3,
    typed: bool = True,
    workdir: str | None = None,
    ramdisk: str | None = None,
    per_file: bool = True,
    layout: str = "dirs",
    floor: bool = True,
) -> list[dict]:
    """Bench ``files`` (or a generated SJSMX1-like file with ``accounts`` distinct keys) split into each count
    of ``destinations``, writing on disk under ``workdir`` (a temporary directory by default) and on the RAM disk
    ``ramdisk`` (none when None)."""
    with contextlib.ExitStack() as stack:
        disk = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esomp-bench-dbf-", dir=workdir)))
        places = {"disk": disk}
        if ramdisk:
            places["RAM disk"] = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esomp-bench-dbf-",
                                                                                       dir=ramdisk)))
        if not files:
            generated = disk / "SJSMX1.DBF"
            make_sjsmx1(generated, records, accounts)
            files = [generated]
        return [bench_file(Path(p), key, destinations, repeat, typed, places, per_file, layout, floor)
                for p in files]
