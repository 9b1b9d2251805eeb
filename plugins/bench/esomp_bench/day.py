"""The seed's day measured: generate it, run the whole plan through the engine, then time the floor (the plainest
tools doing the work no design can avoid) and the naive way on the very same generated day."""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from esomp_bench.measure import PeakMemory, Stopwatch, filesystem, shell, tree_size
from esomp_core import Site

DATE = "20261120"
RAMDISK = Path("/dev/shm")


class BenchError(RuntimeError):
    """The day did not run through, or a storage cannot be used; the message says which and why."""


def storage_root(storage: str, workdir: str | None) -> Path:
    if storage == "ramdisk":
        if not RAMDISK.is_dir():
            raise BenchError(f"--storage ramdisk: {RAMDISK} does not exist on this machine")
        return RAMDISK
    return Path(workdir or tempfile.gettempdir())


def run_day(site: Site, products: int, profile: str, workers: int | None) -> dict[str, Any]:
    """Generate the day into ``site`` and run its whole plan; the run's figures and the seed's table lines."""
    from esomp_core import Engine
    from esomp_core import run_status
    from esomp_gen import generate_day

    with Stopwatch() as generating:
        report = generate_day(site, DATE, products, profile=profile)
    settle()
    with PeakMemory() as memory, Stopwatch() as running:
        summary = Engine(site, DATE, executor="local", workers=workers).run()
    status = run_status(site, DATE)
    if summary.state != "succeeded":
        failed = "; ".join(f"{f['name']}: {f['error']}" for f in status["failed"]) or str(summary.counts)
        raise BenchError(f"the {products}-product day at {site.root} did not succeed: {failed}")
    output = Path(site.directory("clearing_root")) / DATE
    output_files, output_bytes = tree_size(output)
    send_total = next(line for line in status["lines"] if line["stage"] == "send" and line["group"] == "total")
    return {
        "generate_seconds": generating.wall, "input_bytes": report.bytes, "input_files": len(report.files),
        "lines": [{k: v for k, v in line.items() if k not in ("start", "end")} for line in status["lines"]],
        "wall_seconds": running.wall, "cpu_seconds": running.cpu, "peak_rss_bytes": memory.peak,
        "peak_anonymous_bytes": memory.peak_anonymous, "rss_samples": memory.samples,
        "output_files": output_files, "output_bytes": output_bytes,
        "package_bytes": send_total["bytes"], "packages": send_total["files"],
        "files_per_second": output_files / running.wall, "input_mb_per_second": report.bytes / 1e6 / running.wall,
    }


def run_floor(site: Site, scratch: Path) -> dict[str, Any]:
    """cat every collected input; cp -a the output tree (links stay links); tar | zstd -3 -T0 of that tree."""
    inputs = Path(site.directory("collection_root"))
    output = Path(site.directory("clearing_root")) / DATE
    copy = scratch / "floor-copy"
    settle()
    floor = {
        "read": shell(f"find '{inputs}' -type f -print0 | xargs -0 cat > /dev/null"),
        "write": shell(["cp", "-a", str(output), str(copy)]),
        "compress": shell(f"tar -cf - -C '{output.parent}' '{output.name}' | zstd -3 -T0 -q > /dev/null"),
    }
    # the copy goes with the run's directory (see Scratch): a removal here would slow the next run
    floor["seconds"] = sum(step["seconds"] for step in floor.values())
    return floor


def products_of(site: Site) -> list[str]:
    from sqlalchemy import select

    from esomp_core import ProductRow as Product

    with site.repository.session() as s:
        return list(s.scalars(select(Product.code).order_by(Product.code)))


def bench_storage(storage: str, products: int, profile: str, workers: int | None, naive_products: int,
                  scratch: "Scratch") -> dict[str, Any]:
    """One measurement of one storage: a fresh site, the day, the floor and (if asked) the naive way."""
    from esomp_demo import create_demo_site

    root = scratch.new(storage, products)
    site = create_demo_site(root / "site", products)
    load_before = os.getloadavg()[0]  # a shared machine: say how busy it was
    result = {"storage": storage, "directory": str(root), "filesystem": filesystem(root),
              "products": products, **run_day(site, products, profile, workers)}
    result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    result["floor"] = run_floor(site, root)
    if naive_products:
        from esomp_bench.naive import run_naive

        result["naive"] = run_naive(site, DATE, products_of(site), naive_products, root / "naive")
    site.repository.dispose()
    scratch.done(root)
    return result


class Scratch:
    """Where the runs' directories go, and when they are removed.

    ext4 without a journal will not reuse an inode freed in the last 60 s (360 s while its inode table block is
    dirty) and scans past every such inode when it allocates one: after a removed 128,000-file tree, creating
    files costs about ten times the kernel CPU. A run that followed a removal timed that, not itself. So on a disk
    a storage's run directories stay until its runs are done, and a run due within REUSE_DELAY of a removal on
    its file system waits for the rest (removals are synced, so the 60 s apply). Memory file systems have no such
    delay, and their directories hold memory: each goes as soon as its run ends."""

    REUSE_DELAY = 60.0
    BYTES_PER_PRODUCT = 3 << 19  # 1.5 MB: a 4,000-product run takes about 3.5 GB
    MEMORY = ("tmpfs", "ramfs")

    def __init__(self, workdir: str | None, progress=lambda text: None):
        self.workdir = workdir
        self.progress = progress
        self.roots: list[Path] = []
        self.removed_at: dict[Path, float] = {}  # file system's mount: when a removal there was last synced

    def new(self, storage: str, products: int) -> Path:
        parent = storage_root(storage, self.workdir)
        need = products * self.BYTES_PER_PRODUCT
        mine = [r for r in self.roots if r.parent == parent]
        if mine and shutil.disk_usage(parent).free < need:
            self.progress(f"{parent}: less than {need >> 20} MB free, removing earlier runs' directories first")
            self.remove(mine)
        mount = filesystem(parent)
        since = time.monotonic() - self.removed_at.get(Path(mount["mount"]), -self.REUSE_DELAY)
        if since < self.REUSE_DELAY and mount["type"] not in self.MEMORY:
            self.progress(f"{parent}: waiting {self.REUSE_DELAY - since:.0f} s for the inodes of a removed tree "
                          f"to become reusable ({mount['type']}, docs/bench.md)")
            time.sleep(self.REUSE_DELAY - since)
        root = Path(tempfile.mkdtemp(prefix="esomp-bench-", dir=parent))
        self.roots.append(root)
        return root

    def done(self, root: Path) -> None:
        """A run has ended: its directory goes now on a memory file system, later elsewhere."""
        if filesystem(root)["type"] in self.MEMORY:
            self.remove([root])

    def remove(self, roots: list[Path] | None = None) -> None:
        roots = list(self.roots if roots is None else roots)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
            self.roots.remove(root)
        settle()
        for root in roots:
            self.removed_at[Path(filesystem(root.parent)["mount"])] = time.monotonic()


def settle() -> None:
    """Let the disk finish what came before (dirty pages, the discards of a removed tree) so that a timed step
    neither pays for the previous one's writes nor leaves its own to the next. Untimed; no step fsyncs."""
    os.sync()


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' medians, key by key (nested dicts and table lines too); strings come from the first run."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_of([run[key] for run in runs]) for key in first}
    if isinstance(first, list):
        return [median_of([run[i] for run in runs]) for i in range(len(first))]
    if isinstance(first, (int, float)) and not isinstance(first, bool) and all(r is not None for r in runs):
        return statistics.median(runs)
    return first


def add_ratios(result: dict[str, Any]) -> None:
    result["ratios"] = {"total_over_floor": result["wall_seconds"] / result["floor"]["seconds"]}
    if "naive" in result:
        result["ratios"]["naive_over_total"] = result["naive"]["total_seconds"] / result["wall_seconds"]


def bench_day(*, products: int = 4000, profile: str = "seed-day", storages: tuple[str, ...] = ("disk",),
              workers: int | None = None, naive_products: int = 40, scaling: tuple[int, ...] = (),
              repeat: int = 1, workdir: str | None = None, progress=lambda text: None) -> dict[str, Any]:
    """Everything ``esomp bench day`` prints, as one dict (the --json document)."""
    if products < 20:
        raise BenchError(f"--products {products}: at least 20 (4 batches x 5 jobs of at least one product)")
    scratch = Scratch(workdir, progress)
    try:
        return _bench_day(products, profile, storages, workers, naive_products, scaling, repeat, scratch, progress)
    finally:
        scratch.remove()


def _bench_day(products: int, profile: str, storages: tuple[str, ...], workers: int | None, naive_products: int,
               scaling: tuple[int, ...], repeat: int, scratch: Scratch, progress) -> dict[str, Any]:
    from esomp_bench.measure import machine

    began = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results: dict[str, Any] = {}
    for storage in storages:
        runs = []
        for attempt in range(repeat):
            progress(f"{storage}: run {attempt + 1} of {repeat}, {products} products")
            runs.append(bench_storage(storage, products, profile, workers, naive_products, scratch))
        result = median_of(runs)
        result["runs"] = [{"wall_seconds": r["wall_seconds"], "floor_seconds": r["floor"]["seconds"],
                           "total_over_floor": r["wall_seconds"] / r["floor"]["seconds"],
                           "peak_rss_bytes": r["peak_rss_bytes"]} for r in runs]
        add_ratios(result)
        # each run's day and floor share the disk's state of the moment: the median of those same-run ratios
        result["ratios"]["median_run_total_over_floor"] = statistics.median(
            r["total_over_floor"] for r in result["runs"])
        results[storage] = result
        scratch.remove()  # before the next storage's runs: their pages would press on memory
    series = []
    for count in scaling:
        storage = storages[0]
        if count == products:
            measured = results[storage]
        else:
            progress(f"scaling: {count} products on {storage}")
            measured = bench_storage(storage, count, profile, workers, 0, scratch)
        series.append({"products": count, "storage": storage, "wall_seconds": measured["wall_seconds"],
                       "cpu_seconds": measured["cpu_seconds"], "peak_rss_bytes": measured["peak_rss_bytes"],
                       "peak_anonymous_bytes": measured["peak_anonymous_bytes"],
                       "seconds_per_1000_products": 1000 * measured["wall_seconds"] / count})
    return {"date": began, "business_date": DATE, "products": products, "profile": profile, "workers": workers,
            "cores": os.cpu_count(), "repeat": repeat, "naive_products": naive_products, "machine": machine(),
            "storages": results, "scaling": series}
