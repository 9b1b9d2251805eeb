"""What a stage costs: wall time, CPU time of the process tree, peak RSS of the process tree."""
from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User + system time of this process and of its children that have been waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _parent_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:  # gone between the listing and the read
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])  # the command name may hold spaces: skip past ")"


def tree_rss(root: int) -> tuple[int, int]:
    """Bytes resident in ``root`` and all its descendants: (all, anonymous). RSS counts pages shared by forked
    workers once per process, and file pages a process maps (the DBF reader maps its inputs) as its own; the
    anonymous part (resident minus file-backed and shared, from /proc/PID/statm) is the memory the work holds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    total, anonymous, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                _, resident, shared = (int(v) for v in fh.read().split()[:3])
        except OSError:
            continue
        total += resident * PAGE
        anonymous += (resident - shared) * PAGE
        stack.extend(children.get(pid, ()))
    return total, anonymous


class PeakMemory:
    """Samples the RSS of this process tree in a thread; ``peak`` is the largest sum seen (``peak_anonymous``,
    the largest sum of anonymous pages)."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self.peak_anonymous = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esomp-bench-rss", daemon=True)

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            total, anonymous = tree_rss(pid)
            self.peak, self.peak_anonymous = max(self.peak, total), max(self.peak_anonymous, anonymous)
            self.samples += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


class Stopwatch:
    """Wall and CPU seconds (process tree) of a ``with`` block."""

    def __enter__(self) -> "Stopwatch":
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu


def shell(command: list[str] | str) -> dict[str, float]:
    """Run a command (a string goes through sh, for pipes) and time it; a failure names the command."""
    with Stopwatch() as watch:
        done = subprocess.run(command, shell=isinstance(command, str), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    if done.returncode:
        shown = command if isinstance(command, str) else " ".join(command)
        raise RuntimeError(f"{shown}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    return {"seconds": watch.wall, "cpu_seconds": watch.cpu}


def filesystem(path: str | os.PathLike) -> dict[str, str]:
    """The mount that holds ``path``: its mount point, file system type and device (to say where we ran)."""
    path = os.path.realpath(path)
    best = {"mount": "/", "type": "?", "device": "?"}
    with open("/proc/mounts", encoding="utf-8") as fh:
        for line in fh:
            device, mount, kind = line.split()[:3]
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best["mount"]):
                best = {"mount": mount, "type": kind, "device": device}
    return best


def tree_size(root: Path) -> tuple[int, int]:
    """Files and bytes under ``root`` (hard links counted once per name for files, once per inode for bytes)."""
    files, size, seen = 0, 0, set()
    for folder, _, names in os.walk(root):
        for name in names:
            stat = os.lstat(os.path.join(folder, name))
            files += 1
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                size += stat.st_size
    return files, size


def machine() -> dict[str, Any]:
    memory = 0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    model = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "memory_bytes": memory}
