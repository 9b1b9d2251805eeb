"""`esomp dtaq bench`: ECHO round trips through the DTAQ channel, next to a raw loop on the same backend.

Both runs use the same process layout (clients and workers as processes; threads for the memory backend) and
the same 2304-byte request. The raw loop is what one would write by hand with no codec, control checks, keyed
reply queue or lease: SQLite two plain tables, Redis LPUSH/BRPOP lists, memory queue.Queue.
"""
from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import resource
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from esomp_direct import REPLY_HEADER_LEN, REPLY_MAXLEN, REQUEST_HEADER_LEN, REQUEST_MAXLEN, Request
from esomp_dtaq.backends import open_backend
from esomp_dtaq.channel import END, DtaqChannel
from esomp_dtaq.config import DtaqOptions, ServicePolicy
from esomp_dtaq.examples import SERVICES

ECHO = next(s for s in SERVICES if s.domain == "ECHO")
PAYLOAD = bytes(range(256)) * 8 + b"x" * (REQUEST_MAXLEN - REQUEST_HEADER_LEN - 2048)  # 2304-byte requests


def _client_loop(call: Callable[[], None], stop_at: float, out: Any) -> None:
    latencies = []
    while True:
        start = time.perf_counter()
        if start >= stop_at:
            break
        call()
        latencies.append(time.perf_counter() - start)
    out.put(latencies)


def _run(workers: list[Callable[[], None]], make_call: Callable[[], Callable[[], None]], clients: int,
         seconds: float, threads: bool) -> tuple[dict[str, Any], list[Any]]:
    """Start the workers, run the clients until ``seconds`` pass; the summary and the still-running workers."""
    ctx = multiprocessing.get_context("fork")
    out = queue_module.Queue() if threads else ctx.Queue()
    spawn = (lambda target, args=(): threading.Thread(target=target, args=args, daemon=True)) if threads else \
        (lambda target, args=(): ctx.Process(target=target, args=args, daemon=True))
    server = [spawn(w) for w in workers]
    for s in server:
        s.start()
    time.sleep(0.3)  # let workers open their connections
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        _client_loop(make_call(), stop_at, out)

    started = time.perf_counter()
    procs = [spawn(client) for _ in range(clients)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(out.get())
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    return _summary(latencies, elapsed), server


def _summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    latencies.sort()
    n = len(latencies)
    pick = lambda q: round(latencies[min(n - 1, int(q * n))] * 1000, 3) if n else None  # noqa: E731
    return {"round_trips": n, "seconds": round(elapsed, 2), "per_second": round(n / elapsed, 1),
            "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": round(latencies[-1] * 1000, 3) if n else None,
            "mean_ms": round(statistics.fmean(latencies) * 1000, 3) if n else None}


# --- through the channel -------------------------------------------------------------------------------------
def bench_channel(kind: str, workdir: Path, url: str, clients: int, workers: int, seconds: float) -> dict:
    prefix = f"esomp:dtaq-bench:{uuid.uuid4().hex}"
    backend = open_backend(kind, path=str(workdir / "dtaq-bench.sqlite"), url=url, prefix=prefix)
    key = ("ECHO", "ECHO", "01")
    options = DtaqOptions(backend=kind, url=url, prefix=prefix,
                          services={"ECHO.ECHO.01": ServicePolicy(max_workers=max(workers, 1), timeout=30)})
    channel = DtaqChannel(backend, {key: ECHO}, options)
    channel.queues(key, rebuild=True)
    request = Request(*key, data=PAYLOAD)
    assert len(request.encode()) == REQUEST_MAXLEN

    def worker(i: int) -> Callable[[], None]:
        return lambda: channel.serve(key, f"bench#{i}")

    def make_call() -> Callable[[], None]:
        def call() -> None:
            reply = channel.call(request)
            if not reply.ok:
                raise RuntimeError(f"echo failed: {reply.code} {reply.message}")
        return call

    try:
        result, server = _run([worker(i) for i in range(workers)], make_call, clients, seconds, kind == "memory")
        for _ in server:
            channel.queues(key)[0].send(END)
        for s in server:
            s.join(10)
        return result
    finally:
        if kind == "redis":
            backend.drop_all()
        backend.close()


# --- the raw loops ------------------------------------------------------------------------------------------
def bench_raw(kind: str, workdir: Path, url: str, clients: int, workers: int, seconds: float) -> dict:
    reply = PAYLOAD[:REPLY_MAXLEN - REPLY_HEADER_LEN]
    if kind == "memory":
        requests: queue_module.Queue = queue_module.Queue()
        boxes = [queue_module.Queue() for _ in range(clients)]
        ids = iter(range(clients))

        def worker() -> None:
            while (item := requests.get()) is not None:
                boxes[item[0]].put(item[1][:len(reply)])

        def make_call() -> Callable[[], None]:
            me = next(ids)
            return lambda: (requests.put((me, PAYLOAD)), boxes[me].get())

        result, server = _run([worker] * workers, make_call, clients, seconds, True)
        for _ in server:
            requests.put(None)
        return result
    if kind == "redis":
        import redis

        prefix = f"esomp:dtaq-raw:{uuid.uuid4().hex}"

        def worker() -> None:
            r = redis.Redis.from_url(url)
            while True:
                _, item = r.brpop([f"{prefix}:req"])
                if item == b"end":
                    return
                r.lpush(f"{prefix}:rep:{item[:32].decode()}", item[32:32 + len(reply)])

        def make_call() -> Callable[[], None]:
            r = redis.Redis.from_url(url)
            me = uuid.uuid4().hex.encode()
            return lambda: (r.lpush(f"{prefix}:req", me + PAYLOAD), r.brpop([f"{prefix}:rep:{me.decode()}"]))

        result, server = _run([worker] * workers, make_call, clients, seconds, False)
        r = redis.Redis.from_url(url)
        for _ in server:
            r.lpush(f"{prefix}:req", b"end")
        for s in server:
            s.join(10)
        keys = list(r.scan_iter(match=f"{prefix}:*"))
        if keys:
            r.delete(*keys)
        return result
    path = workdir / "dtaq-raw.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE req (id INTEGER PRIMARY KEY, client TEXT, data BLOB)")
    db.execute("CREATE TABLE rep (id INTEGER PRIMARY KEY, client TEXT, data BLOB)")
    db.execute("CREATE INDEX rep_client ON rep (client)")

    def connect() -> sqlite3.Connection:
        c = sqlite3.connect(path, isolation_level=None, timeout=30)
        c.execute("PRAGMA synchronous=NORMAL")
        return c

    def take(c: sqlite3.Connection, sql: str, args: tuple = ()) -> Any:
        delay = 0.0001
        while True:
            row = c.execute(sql, args).fetchone()
            if row is not None:
                return row
            time.sleep(delay)
            delay = min(delay * 2, 0.005)

    def worker() -> None:
        c = connect()
        while True:
            client, data = take(c, "DELETE FROM req WHERE id = (SELECT min(id) FROM req) RETURNING client, data")
            if client == "end":
                return
            c.execute("INSERT INTO rep (client, data) VALUES (?, ?)", (client, data[:len(reply)]))

    def make_call() -> Callable[[], None]:
        c = connect()
        me = uuid.uuid4().hex
        return lambda: (c.execute("INSERT INTO req (client, data) VALUES (?, ?)", (me, PAYLOAD)),
                        take(c, "DELETE FROM rep WHERE id = (SELECT min(id) FROM rep WHERE client = ?) "
                                "RETURNING data", (me,)))

    result, server = _run([worker] * workers, make_call, clients, seconds, False)
    for _ in server:
        db.execute("INSERT INTO req (client, data) VALUES ('end', x'')")
    for s in server:
        s.join(10)
    return result


def _cpu_seconds(kind: str, url: str) -> tuple[float, float]:
    """CPU used so far by this process and its reaped children, and by the Redis server (0 for the others)."""
    own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    server = 0.0
    if kind == "redis":
        import redis

        info = redis.Redis.from_url(url).info("cpu")
        server = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return own, server


def _measured(kind: str, url: str, bench: Callable[[], dict]) -> dict:
    """``bench()`` with the CPU it cost per round trip: machine load makes rates noisy, CPU time much less so."""
    own, server = _cpu_seconds(kind, url)
    result = bench()
    own_after, server_after = _cpu_seconds(kind, url)
    n = max(result["round_trips"], 1)
    result["cpu_us_per_round_trip"] = round((own_after - own) / n * 1e6, 1)
    if kind == "redis":
        result["server_cpu_us_per_round_trip"] = round((server_after - server) / n * 1e6, 1)
    return result


def run_bench(site: Any, options: DtaqOptions, kind: str, *, clients: int = 8, workers: int = 4,
              seconds: float = 60.0) -> dict[str, Any]:
    workdir = Path(site.directory("monitoring_centre")) if site is not None else Path(tempfile.mkdtemp())
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    raw = _measured(kind, options.url, lambda: bench_raw(kind, workdir, options.url, clients, workers, seconds))
    ours = _measured(kind, options.url,
                     lambda: bench_channel(kind, workdir, options.url, clients, workers, seconds))
    return {"backend": kind, "clients": clients, "workers": workers, "request_bytes": REQUEST_MAXLEN,
            "dtaq": ours, "raw": raw,
            "overhead_ratio": round(raw["per_second"] / ours["per_second"], 2) if ours["per_second"] else None,
            "load_average": {"before": [round(x, 2) for x in load_before],
                             "after": [round(x, 2) for x in os.getloadavg()]}}


def print_report(result: dict[str, Any]) -> None:
    import click

    click.echo(f"backend {result['backend']}: {result['clients']} clients, {result['workers']} workers, "
               f"{result['request_bytes']}-byte echo requests")
    for name in ("dtaq", "raw"):
        r = result[name]
        server = (f" + server {r['server_cpu_us_per_round_trip']} us"
                  if "server_cpu_us_per_round_trip" in r else "")
        click.echo(f"  {name:5} {r['per_second']:>10,.1f} round trips/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
                   f"  max {r['max_ms']} ms  ({r['round_trips']} in {r['seconds']} s; "
                   f"CPU {r['cpu_us_per_round_trip']} us{server} per round trip)")
    click.echo(f"  overhead: raw/dtaq = {result['overhead_ratio']}x")
    load = result["load_average"]
    click.echo(f"  load average before {' '.join(map(str, load['before']))}, "
               f"after {' '.join(map(str, load['after']))}")
