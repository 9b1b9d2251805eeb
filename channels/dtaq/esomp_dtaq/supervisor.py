"""The job monitor of seed 003 (3.2.6): watches each service's server workers every ``interval`` seconds.

- A worker that died, or has not beaten its heartbeat for ``stuck_after`` seconds (stuck in one request, the
  seed's MSGW), is abnormal; the service's handling mode decides: 0 nothing, 1 keep it and submit another,
  2 end it without submitting, 3 end it and submit another.
- The pool grows by ``increment`` while more than ``target_depth`` requests wait per healthy worker, and shrinks
  by one (an end sentinel) when the queue is empty, never faster than one step per ``cooldown``.
- When the workers plus the abnormal ones have reached ``max_workers`` and the pool still cannot keep up (an
  abnormal worker, or more than max_workers x target_depth waiting), the breaker opens: clients call directly.
  It half-opens after ``open_seconds`` and closes when its trial requests are answered.

Workers are processes (forked, so they inherit the registered handlers); with the memory backend, which cannot
cross a process, they are threads.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from typing import Any, Iterable

import attrs

from esomp_dtaq.channel import END, DtaqChannel, QueuesChanged
from esomp_dtaq.config import service_code

log = logging.getLogger(__name__)


def _worker_process(channel: DtaqChannel, key: tuple[str, str, str], worker_id: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the supervisor, which ends workers in order
    channel.backend.forget()
    channel.serve(key, worker_id)


@attrs.define(eq=False)
class Worker:
    id: str
    key: tuple[str, str, str]
    process: Any = None
    thread: threading.Thread | None = None
    stop: threading.Event | None = None
    started: float = attrs.field(factory=time.time)
    abnormal: bool = False
    replaced: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else os.getpid()

    def alive(self) -> bool:
        return self.process.is_alive() if self.process is not None else self.thread.is_alive()

    def crashed(self) -> bool:
        """Ended other than by an end sentinel (a process exit code other than 0)."""
        return self.process is not None and self.process.exitcode not in (0, None)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
        elif self.stop is not None:
            self.stop.set()  # a thread cannot be killed: it ends after its current request


@attrs.define
class Event:
    at: float
    service: str
    what: str


class Supervisor:
    def __init__(self, channel: DtaqChannel, services: Iterable[tuple[str, str, str]] | None = None):
        self.channel = channel
        self.control = channel.control
        self.keys = list(services if services is not None else channel.services)
        self.workers: dict[tuple[str, str, str], list[Worker]] = {k: [] for k in self.keys}
        self.last_scaled: dict[tuple[str, str, str], float] = {k: 0.0 for k in self.keys}
        self.events: list[Event] = []
        self.refused: dict[tuple[str, str, str], str] = {}  # services whose queues are held back, and why
        self.threads = channel.backend.kind == "memory"
        self._mp = multiprocessing.get_context("fork")
        self._stop = threading.Event()

    def note(self, key: tuple[str, str, str], what: str) -> None:
        log.info("service %s: %s", service_code(key), what)
        self.events.append(Event(time.time(), service_code(key), what))
        del self.events[:-200]

    # --- workers -------------------------------------------------------------------------------------------------
    def submit(self, key: tuple[str, str, str]) -> Worker:
        worker_id = f"{service_code(key)}#{self.channel.backend.next_id('worker')}"
        if self.threads:
            stop = threading.Event()
            thread = threading.Thread(target=self.channel.serve, args=(key, worker_id), kwargs={"stop": stop},
                                      name=worker_id, daemon=True)
            worker = Worker(worker_id, key, thread=thread, stop=stop)
            thread.start()
        else:
            process = self._mp.Process(target=_worker_process, args=(self.channel, key, worker_id),
                                       name=worker_id, daemon=True)
            process.start()
            worker = Worker(worker_id, key, process=process)
        self.workers[key].append(worker)
        return worker

    def start(self) -> None:
        for key in self.keys:
            if not self._queues_ready(key):
                continue
            for _ in range(self.channel.policy(key).min_workers if self.control.running(service_code(key)) else 0):
                self.submit(key)

    def _queues_ready(self, key: tuple[str, str, str]) -> bool:
        """Whether the service's queues can be used; a service whose queues are held back (QueuesChanged) is
        noted once and left without workers, and the other services run on. Asked again every poll."""
        try:
            self.channel.queues(key)
        except QueuesChanged as exc:
            if self.refused.get(key) != str(exc):
                self.refused[key] = str(exc)
                log.error("%s", exc)
                self.note(key, str(exc))
            return False
        if self.refused.pop(key, None) is not None:
            self.note(key, "queues usable again: workers start")
        return True

    # --- one poll --------------------------------------------------------------------------------------------------
    def poll(self) -> None:
        table = self.control.workers()
        now = time.time()
        self.channel.expire_late_replies()
        for key in self.keys:
            try:
                if self._queues_ready(key):
                    self._poll_service(key, table, now)
            except Exception:  # one service's failure must not keep the others from being watched
                log.exception("supervisor poll of service %s failed", service_code(key))

    def _poll_service(self, key: tuple[str, str, str], table: dict[str, dict], now: float) -> None:
        code = service_code(key)
        policy = self.channel.policy(key)
        pool = self.workers[key]
        for worker in [w for w in pool if not w.alive()]:
            pool.remove(worker)
            self.control.forget_worker(worker.id)
            if worker.crashed():
                self.note(key, f"worker {worker.id} (pid {worker.pid}) ended abnormally "
                               f"(exit {worker.process.exitcode}); handling {policy.handling}")
                if policy.handling in (1, 3) and self.control.running(code):
                    self.note(key, f"submitted {self.submit(key).id} in its place")
        for worker in pool:
            beat = table.get(worker.id, {}).get("beat", worker.started)
            if not worker.abnormal and now - max(beat, worker.started) > policy.stuck_after:
                worker.abnormal = True
                self.note(key, f"worker {worker.id} has no heartbeat for {now - beat:.1f}s; "
                               f"handling {policy.handling}")
                if policy.handling in (2, 3):
                    worker.kill()
                if policy.handling in (1, 3) and self.control.running(code):
                    self.note(key, f"submitted {self.submit(key).id}")
        for worker in [w for w in pool if not w.alive()]:  # ended by its handling mode just now
            pool.remove(worker)
            self.control.forget_worker(worker.id)
        abnormal = sum(1 for w in pool if w.abnormal)
        healthy = len(pool) - abnormal
        if not self.control.running(code):
            return
        inq, _ = self.channel.queues(key)
        depth = inq.depth()
        self._scale(key, policy, depth, healthy, len(pool))
        self._breaker(key, policy, depth, abnormal, len(self.workers[key]))

    def _scale(self, key, policy, depth: int, healthy: int, total: int) -> None:
        now = time.monotonic()
        if healthy < policy.min_workers and total < policy.max_workers:
            for _ in range(min(policy.min_workers - healthy, policy.max_workers - total)):
                self.submit(key)
            return
        if now - self.last_scaled[key] < policy.cooldown:
            return
        wanted = min(max(math.ceil(depth / policy.target_depth), policy.min_workers), policy.max_workers)
        if wanted > healthy and total < policy.max_workers:
            added = min(policy.increment, wanted - healthy, policy.max_workers - total)
            for _ in range(added):
                self.submit(key)
            self.last_scaled[key] = now
            self.note(key, f"{depth} requests waiting: added {added} worker(s)")
        elif depth == 0 and healthy > policy.min_workers:
            self.channel.stop_one(key)
            self.last_scaled[key] = now
            self.note(key, "queue empty: sent one end sentinel to shrink the pool")

    def _breaker(self, key, policy, depth: int, abnormal: int, total: int) -> None:
        code = service_code(key)
        saturated = total >= policy.max_workers and (abnormal > 0 or depth > policy.max_workers * policy.target_depth)
        state = self.control.breaker(code)["state"]
        if saturated and state != "open":
            reason = (f"{total} workers ({abnormal} abnormal) at max {policy.max_workers}, {depth} waiting")
            self.control.set_breaker(code, "open", reason)
            self.note(key, f"breaker open: direct call ({reason})")

    # --- life cycle ----------------------------------------------------------------------------------------------
    def stop_service(self, key: tuple[str, str, str], wait: float = 10.0) -> None:
        """End a service: one end sentinel per live worker, then wait for them (killing stragglers)."""
        pool = [w for w in self.workers[key] if w.alive()]
        self.channel.stop_service(key, len(pool))
        deadline = time.monotonic() + wait
        for worker in pool:
            if worker.process is not None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            else:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.alive():
                self.note(key, f"worker {worker.id} did not end in {wait}s: killed")
                worker.kill()
        self.workers[key] = []

    def run(self, until: threading.Event | None = None) -> None:
        """Start the pools and poll every interval until ``until`` (or ``stop()``) is set."""
        until = until or self._stop
        self.start()
        while not until.wait(self.channel.options.interval):
            try:
                self.poll()
            except Exception:  # the monitor must outlive a bad poll (a backend hiccup)
                log.exception("supervisor poll failed")

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self, wait: float = 10.0) -> None:
        for key in self.keys:
            pool = [w for w in self.workers[key] if w.alive()]
            if not pool:
                continue
            inq, _ = self.channel.queues(key)
            for _ in pool:
                inq.send(END)
        deadline = time.monotonic() + wait
        for key in self.keys:
            for worker in self.workers[key]:
                if worker.process is not None:
                    worker.process.join(max(0.0, deadline - time.monotonic()))
                elif worker.thread is not None:
                    worker.thread.join(max(0.0, deadline - time.monotonic()))
                if worker.alive():
                    worker.kill()
            self.workers[key] = []

    def status(self) -> list[dict[str, Any]]:
        return service_status(self.channel, self.keys)


def service_status(channel: DtaqChannel, keys: Iterable[tuple[str, str, str]] | None = None) -> list[dict]:
    """What `esomp dtaq status` shows, read from the backend (so any process can ask)."""
    table = channel.control.workers()
    rows = []
    for key in keys if keys is not None else sorted(channel.services):
        code = service_code(key)
        policy = channel.policy(key)
        try:
            inq, outq = channel.queues(key)
        except QueuesChanged as exc:
            rows.append(_held_back_status(channel, key, str(exc)))
            continue
        info = inq.describe()
        workers = [dict(id=k, **v) for k, v in table.items() if v.get("service") == code]
        now = time.time()
        for w in workers:
            w["abnormal"] = now - w.get("beat", now) > policy.stuck_after
        service = channel.services.get(key)
        rows.append({
            "service": code, "financial": bool(service and service.financial),
            "description": service.description if service else "",
            "running": channel.control.running(code), "request_queue": inq.name, "reply_queue": outq.name,
            "depth": info["depth"], "leased": info["leased"], "oldest_age": info["oldest_age"],
            "replies_waiting": outq.depth(), "workers": len(workers),
            "abnormal": sum(w["abnormal"] for w in workers), "worker_table": workers,
            "breaker": channel.control.breaker(code),
            "min_workers": policy.min_workers, "max_workers": policy.max_workers,
            "max_entries": info["max_entries"], **_dropped_status(channel, code), "error": "",
        })
    return rows


def _dropped_status(channel: DtaqChannel, code: str) -> dict[str, Any]:
    """Requests of the service its workers dropped because their callers had given up: count and latest."""
    return {"expired_requests": channel.control.counted(f"expired-requests:{code}"),
            "dropped": channel.control.dropped_requests(code, limit=5)}


def _held_back_status(channel: DtaqChannel, key: tuple[str, str, str], error: str) -> dict[str, Any]:
    """A status row for a service whose queues are held back: what is known without using them."""
    code = service_code(key)
    service = channel.services.get(key)
    policy = channel.policy(key)
    workers = [w for w in channel.control.workers().values() if w.get("service") == code]
    return {"service": code, "financial": bool(service and service.financial),
            "description": service.description if service else "", "running": channel.control.running(code),
            "request_queue": "", "reply_queue": "", "depth": None, "leased": None, "oldest_age": None,
            "replies_waiting": None, "workers": len(workers), "abnormal": 0, "worker_table": workers,
            "breaker": channel.control.breaker(code), "min_workers": policy.min_workers,
            "max_workers": policy.max_workers, "max_entries": policy.max_entries,
            **_dropped_status(channel, code), "error": error}
