"""`esomp bench day` on a tiny day: the run completes, every table line is printed, the JSON has every key."""
import json
import time
import types

import pytest

from esomp_bench.day import median_of
from esomp_bench.measure import PeakMemory, filesystem, tree_rss

RUN_KEYS = {"storage", "directory", "filesystem", "products", "generate_seconds", "input_bytes", "input_files",
            "lines", "wall_seconds", "cpu_seconds", "peak_rss_bytes", "peak_anonymous_bytes", "rss_samples",
            "output_files", "output_bytes", "package_bytes", "packages", "files_per_second", "input_mb_per_second",
            "floor", "naive", "runs", "ratios", "load_average"}
LABELS = ["machine load (1 min) before / after", "total wall time s", "CPU time s (process tree)",
          "peak memory MB (tree RSS)", "peak anonymous memory MB (tree)", "input MB", "output files",
          "packages / package MB", "files/s", "input MB/s", "floor: cat inputs s", "floor: cp -a output tree s",
          "floor: tar | zstd -3 -T0 s", "floor: total s", "ours / floor (medians' ratio)",
          "ours / floor, run by run", "naive: dbfread every input s",
          "naive: total s", "naive / ours", "extrapolated linearly"]


def test_hook_register_commands_bench_day_prints_every_line_and_writes_every_key(tmp_path, esomp_cli, monkeypatch):
    from esomp_bench.day import Scratch

    monkeypatch.setattr(Scratch, "REUSE_DELAY", 0.0)  # a tiny day's removal delays nothing (tested apart)
    report = tmp_path / "bench.json"
    result = esomp_cli(["bench", "day", "--products", 50, "--storage", "both", "--naive-products", 2,
                        "--scaling", "20", "--workdir", tmp_path, "--json", report])
    assert result.exit_code == 0, result.output
    for storage in ("disk", "ramdisk"):
        assert f"{storage}: 50 products" in result.output
    for group in ("site", "sse", "szse", "prepare", "batch 1", "batch 2", "batch 3", "batch 4", "total"):
        assert f"│ {group} " in result.output, group
    for label in LABELS:
        assert label in result.output, label
    assert "/dev/shm/esomp-bench-" in result.output and "scaling (disk)" in result.output

    data = json.loads(report.read_text())
    assert set(data) == {"date", "business_date", "products", "profile", "workers", "cores", "repeat",
                         "naive_products", "machine", "storages", "scaling"}
    assert set(data["storages"]) == {"disk", "ramdisk"}
    for storage, run in data["storages"].items():
        assert set(run) == RUN_KEYS, storage
        assert run["filesystem"]["type"] == ("tmpfs" if storage == "ramdisk" else filesystem(tmp_path)["type"])
        assert set(run["floor"]) == {"read", "write", "compress", "seconds"}
        assert set(run["naive"]) == {"products_measured", "products", "read_seconds", "per_product_seconds",
                                     "write_and_package_seconds", "total_seconds", "extrapolated"}
        assert run["naive"]["products_measured"] == 2 and run["naive"]["extrapolated"] is True
        assert set(run["ratios"]) == {"total_over_floor", "naive_over_total", "median_run_total_over_floor"}
        (only,) = run["runs"]
        assert only["total_over_floor"] == run["ratios"]["median_run_total_over_floor"] \
            == pytest.approx(run["wall_seconds"] / run["floor"]["seconds"])
        assert run["packages"] == 50 and run["output_files"] == 50 * 32
        stages = [(line["stage"], line["group"]) for line in run["lines"]]
        assert stages.count(("send", "batch 4")) == 1 and ("collect", "szse") in stages
        assert run["peak_rss_bytes"] > 0 and run["cpu_seconds"] > 0
    assert [s["products"] for s in data["scaling"]] == [20]
    assert not list(tmp_path.glob("esomp-bench-*")), "the disk run's site is removed afterwards"


def test_bench_day_refuses_bad_options(esomp_cli):
    result = esomp_cli(["bench", "day", "--products", 5])
    assert result.exit_code == 1 and "--products 5" in result.output
    result = esomp_cli(["bench", "day", "--scaling", "1000,lots"])
    assert result.exit_code == 2 and "--scaling" in result.output
    result = esomp_cli(["bench", "day", "--repeat", 0])
    assert result.exit_code == 2 and "--repeat" in result.output


def test_peak_memory_sees_a_child_process():
    import subprocess
    import sys
    import time

    with PeakMemory(interval=0.02) as memory:
        child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(200 << 20); time.sleep(1)"])
        time.sleep(0.8)
        with_child, anonymous = tree_rss(__import__("os").getpid())
        child.wait()
    assert with_child > 200 << 20 and anonymous > 200 << 20
    assert memory.peak > 200 << 20 and memory.peak_anonymous > 200 << 20 and memory.samples > 1


def test_median_of_runs_takes_medians_key_by_key():
    runs = [{"s": 3.0, "name": "disk", "lines": [{"seconds": 1.0}], "floor": {"seconds": 9}},
            {"s": 1.0, "name": "disk", "lines": [{"seconds": 5.0}], "floor": {"seconds": 7}},
            {"s": 2.0, "name": "disk", "lines": [{"seconds": None}], "floor": {"seconds": 8}}]
    assert median_of(runs) == {"s": 2.0, "name": "disk", "lines": [{"seconds": 1.0}], "floor": {"seconds": 8}}


def test_scratch_keeps_disk_runs_until_removed_and_then_waits_before_the_next(tmp_path, monkeypatch):
    from esomp_bench import day

    if day.filesystem(tmp_path)["type"] in day.Scratch.MEMORY:
        pytest.skip(f"{tmp_path} is on a memory file system here")
    said, slept = [], []
    # the module's own clock only: patching time.sleep itself would also catch other threads' sleeps
    monkeypatch.setattr(day, "time", types.SimpleNamespace(sleep=slept.append, monotonic=time.monotonic))
    scratch = day.Scratch(str(tmp_path), said.append)
    first = scratch.new("disk", 10)
    scratch.done(first)
    second = scratch.new("disk", 10)
    assert first.is_dir() and second.is_dir() and first != second and said == [] and slept == []
    scratch.remove()
    assert not first.exists() and not second.exists() and scratch.roots == []
    third = scratch.new("disk", 10)  # right after a removal on this file system
    assert len(slept) == 1 and 55 < slept[0] <= 60 and "waiting" in said[0] and str(tmp_path) in said[0]
    scratch.remove()
    assert not third.exists()


def test_scratch_removes_a_ramdisk_run_when_it_ends_without_waiting(monkeypatch):
    from esomp_bench import day

    slept = []
    # the module's own clock only: patching time.sleep itself would also catch other threads' sleeps
    monkeypatch.setattr(day, "time", types.SimpleNamespace(sleep=slept.append, monotonic=time.monotonic))
    scratch = day.Scratch(None)
    root = scratch.new("ramdisk", 10)
    scratch.done(root)
    assert not root.exists() and scratch.roots == []
    scratch.done(scratch.new("ramdisk", 10))
    assert slept == [], "a memory file system has no inode reuse delay"


def test_scratch_short_of_space_removes_earlier_runs_first_and_says_so(tmp_path, monkeypatch):
    import shutil

    from esomp_bench import day

    said = []
    monkeypatch.setattr(day, "time", types.SimpleNamespace(sleep=lambda seconds: None, monotonic=time.monotonic))
    scratch = day.Scratch(str(tmp_path), said.append)
    first = scratch.new("disk", 10)
    free = shutil.disk_usage(tmp_path).free
    second = scratch.new("disk", free // day.Scratch.BYTES_PER_PRODUCT + 1)  # more than the disk has
    assert not first.exists() and second.is_dir() and scratch.roots == [second]
    assert "removing earlier runs" in said[0] and str(tmp_path) in said[0]
    scratch.remove()
