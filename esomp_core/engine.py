"""The engine: runs a business date's plan with the repository as the system of record.

Every state change is committed before anything acts on it, so the CLI, the dashboard and a restarted engine all
see the same day. A job is claimed by the engine (``running``, a fresh heartbeat), executed by a worker that keeps
the heartbeat fresh, and finished by that worker. A job whose heartbeat goes stale (its worker died) is put back
to ``pending`` and run again; stage hooks write atomically, so a rerun gives the same outputs.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime, timedelta
from typing import Any, Callable

import attrs
from sqlalchemy import select, update

from esomp_core.model import Job, JobResult
from esomp_core.plan import build_plan, store_plan
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import JobEvent, Run

DONE = ("succeeded", "failed", "cancelled", "skipped")
BLOCKING = ("failed", "cancelled", "skipped")


class RunLocked(RuntimeError):
    pass


class NoOwner(RuntimeError):
    pass


@attrs.frozen
class EngineOptions:
    """``[engine]`` in esomp.toml."""

    executor: str = "local"
    workers: int = 0
    """0: one per core."""
    lease: float = 60.0
    """Seconds without a heartbeat after which a running job's worker is taken for dead."""
    poll: float = 0.25
    batch_offsets: list[float] = attrs.field(factory=list)
    """Seconds after the run starts before each batch (1, 2, ...) may start; the seed's staggering."""


def engine_options(site) -> EngineOptions:
    from esomp_core.config import structure

    return structure(EngineOptions, site.section("engine"), path="engine", source=site.config.source)


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def to_job(row: JobRow, date: str) -> Job:
    return Job(id=row.id, date=date, name=row.name, stage=row.stage, business_type=row.business_type,
               batch=row.batch, category=row.category, channel=row.channel, products=tuple(row.products or ()),
               params=dict(row.params or {}), state=row.state, error=row.error)


def record_event(session, job_id: int, state: str, message: str | None = None) -> None:
    session.add(JobEvent(job_id=job_id, at=datetime.now(), state=state, message=message))


# --- what a worker does with one job --------------------------------------------------------------------------

_SITES: dict[str, Any] = {}


def _worker_site(site_root: str):
    from esomp_core.site import Site

    if site_root not in _SITES:
        _SITES[site_root] = Site.open(site_root)
    return _SITES[site_root]


class _Heartbeat:
    """One thread per worker process keeps the heartbeat of every job it is running fresh."""

    _instance: "_Heartbeat | None" = None

    def __init__(self, repo, lease: float):
        self.repo, self.interval = repo, max(lease / 4, 0.05)
        self.jobs: set[int] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name="esomp-heartbeat", daemon=True).start()

    @classmethod
    def of(cls, repo, lease: float) -> "_Heartbeat":
        if cls._instance is None or cls._instance.repo is not repo or cls._instance.pid != os.getpid():
            cls._instance = cls(repo, lease)
            cls._instance.pid = os.getpid()
        return cls._instance

    def add(self, job_id: int) -> None:
        with self.lock:
            self.jobs.add(job_id)

    def discard(self, job_id: int) -> None:
        with self.lock:
            self.jobs.discard(job_id)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self.lock:
                jobs = list(self.jobs)
            if jobs:
                with self.repo.session() as s:
                    s.execute(update(JobRow).where(JobRow.id.in_(jobs)).values(heartbeat_at=datetime.now()))


def _adopt_site(site) -> None:
    """In a forked worker: use the parent's site, but never its database connections."""
    site.repository.engine.dispose(close=False)
    _SITES.clear()
    _SITES[str(site.root)] = site


def execute_job(site_root: str, job_id: int, date: str, lease: float, site=None) -> str:
    """Run one claimed job in this process: heartbeat, stage hook, committed outcome, events. Returns its state."""
    site = site or _worker_site(site_root)
    repo = site.repository
    worker = holder_name()
    with repo.session() as s:
        row = s.get(JobRow, job_id)
        row.worker, row.started_at, row.heartbeat_at = worker, datetime.now(), datetime.now()
        record_event(s, job_id, "running", f"attempt {row.attempts} on {worker}")
        job = to_job(row, date)
    site.pm.hook.job_started(job=job, site=site)

    _Heartbeat.of(repo, lease).add(job_id)
    result: JobResult | None = None
    error = None
    try:
        result = getattr(site.pm.hook, job.stage)(job=job, site=site)
        if result is None:
            raise NoOwner(f"no plugin handles {job.stage} jobs of business type {job.business_type!r}")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (NoOwner, ValueError, OSError)):
            error += "\n" + traceback.format_exc(limit=8)
    finally:
        _Heartbeat.of(repo, lease).discard(job_id)
    state = "failed" if error else "succeeded"
    with repo.session() as s:
        row = s.get(JobRow, job_id)
        row.state, row.finished_at, row.error = state, datetime.now(), error
        if result is not None:
            row.files, row.records, row.bytes, row.detail = result.files, result.records, result.bytes, result.detail
        record_event(s, job_id, state, error.splitlines()[0] if error else None)
    job.state, job.error = state, error
    site.pm.hook.job_finished(job=job, result=result, site=site)
    return state


# --- executors -------------------------------------------------------------------------------------------------


class InlineExecutor:
    """Runs each job in the engine's own process, one at a time: for debugging and tests."""

    workers = 1

    def __init__(self, site, workers: int | None = None):
        self.site = site

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, site=self.site))
        except BaseException as exc:  # noqa: BLE001 - handed to the engine like a pool would
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        pass


class LocalExecutor:
    """A pool of worker processes (default: one per core). A pool broken by a killed worker is replaced."""

    def __init__(self, site, workers: int | None = None):
        self.site = site
        self.workers = workers or os.cpu_count() or 1
        self._pool = None

    def _make_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork: workers start in milliseconds and inherit the engine's site with its plugins.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_adopt_site, initargs=(self.site,))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            self._pool = self._make_pool()
        try:
            return self._pool.submit(fn, *args)
        except BrokenProcessPool:
            self._pool = self._make_pool()
            return self._pool.submit(fn, *args)

    def reset(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


# --- the engine ------------------------------------------------------------------------------------------------


@attrs.define
class RunSummary:
    date: str
    state: str
    counts: dict[str, int]
    seconds: float


class Engine:
    def __init__(self, site, date: str, *, executor: str | None = None, workers: int | None = None,
                 lease: float | None = None, on_change: Callable[[dict[str, int]], None] | None = None):
        self.site, self.date = site, date
        options = engine_options(site)
        self.executor_name = executor or options.executor
        self.workers = workers or options.workers or None
        self.lease = lease if lease is not None else options.lease
        self.poll = options.poll
        self.batch_offsets = options.batch_offsets
        self.on_change = on_change
        self.holder = holder_name()

    # the lock: one engine per site and day
    def acquire(self, run_id: int) -> None:
        now = datetime.now()
        stale = now - timedelta(seconds=max(self.lease, 5))
        with self.site.repository.session() as s:
            claimed = s.execute(
                update(Run).where(Run.id == run_id)
                .where((Run.lock_holder.is_(None)) | (Run.lock_holder == self.holder) | (Run.lock_heartbeat < stale))
                .values(lock_holder=self.holder, lock_heartbeat=now, state="running",
                        started_at=now)).rowcount
            if not claimed:
                run = s.get(Run, run_id)
                raise RunLocked(f"the run of {self.date} is held by {run.lock_holder} "
                                f"(heartbeat {run.lock_heartbeat:%H:%M:%S}); wait for it or stop that process")

    def release(self, run_id: int, state: str) -> None:
        with self.site.repository.session() as s:
            s.execute(update(Run).where(Run.id == run_id, Run.lock_holder == self.holder)
                      .values(lock_holder=None, state=state, finished_at=datetime.now()))

    def run(self) -> RunSummary:
        started = time.monotonic()
        run_id = store_plan(self.site, self.date, build_plan(self.site, self.date))
        self.acquire(run_id)
        factory = self.site.registry.executors.get(self.executor_name)
        if factory is None:
            self.release(run_id, "failed")
            raise ValueError(f"unknown executor {self.executor_name!r} "
                             f"(installed: {', '.join(sorted(self.site.registry.executors))})")
        executor = factory.create(self.site, self.workers)
        state = "failed"
        try:
            state = self._loop(run_id, executor, started)
        finally:
            executor.shutdown()
            self.release(run_id, state)
        return RunSummary(self.date, state, self.counts(run_id), time.monotonic() - started)

    def counts(self, run_id: int) -> dict[str, int]:
        with self.site.repository.session() as s:
            states = s.scalars(select(JobRow.state).where(JobRow.run_id == run_id)).all()
        return {state: states.count(state) for state in sorted(set(states))}

    def _loop(self, run_id: int, executor, started: float) -> str:
        """Claim ready jobs, hand them to the executor, and learn outcomes from the workers' replies.

        States live in memory between looks at the repository; every ``poll`` seconds the loop reads them back
        so that pauses, resumes, cancels and reruns from other processes take effect.
        """
        in_flight: dict[Future, int] = {}
        repo = self.site.repository
        self._recover(run_id, in_flight_ids=set())
        with repo.session() as s:  # names, batches and dependencies do not change during a run
            shape = {r.id: r for r in s.execute(select(JobRow.id, JobRow.name, JobRow.batch, JobRow.depends_on)
                                                  .where(JobRow.run_id == run_id))}
        state_by_id: dict[int, str] = {}
        paused: set[int] = set()
        cancelling = False
        last_look = -1e9
        last_counts: dict[str, int] = {}
        while True:
            if time.monotonic() - last_look >= self.poll:
                with repo.session() as s:
                    run = s.get(Run, run_id)
                    run.lock_heartbeat = datetime.now()
                    cancelling = run.state == "cancelling"
                    paused = set(run.paused_batches or ())
                    states = s.execute(select(JobRow.id, JobRow.state).where(JobRow.run_id == run_id))
                    state_by_id = {job_id: state for job_id, state in states}
                last_look = time.monotonic()
            state_of = {shape[i].name: st for i, st in state_by_id.items()}
            elapsed = time.monotonic() - started
            free = executor.workers - len(in_flight)
            changes: dict[str, list[int]] = {}
            for job_id, state in state_by_id.items():
                if state not in ("pending", "waiting", "paused"):
                    continue
                row = shape[job_id]
                new = self._next_state(row, state_of, paused, cancelling, elapsed)
                if new == "ready":
                    if free <= 0:
                        new = "pending" if state == "paused" else state
                    else:
                        free -= 1
                        new = "running"
                if new != state:
                    changes.setdefault(new, []).append(job_id)
                    state_by_id[job_id] = state_of[row.name] = new
            if changes:
                with repo.session() as s:
                    for new, ids in changes.items():
                        values = {"state": new}
                        if new == "running":
                            values.update(heartbeat_at=datetime.now(), attempts=JobRow.attempts + 1,
                                          started_at=None, finished_at=None, error=None)
                        s.execute(update(JobRow).where(JobRow.id.in_(ids)).values(**values))
                        if new != "running":
                            for job_id in ids:
                                record_event(s, job_id, new,
                                             "an upstream job did not succeed" if new == "skipped" else None)
            for job_id in changes.get("running", ()):
                in_flight[executor.submit(execute_job, str(self.site.root), job_id, self.date, self.lease)] = job_id
            counts: dict[str, int] = {}
            for state in state_by_id.values():
                counts[state] = counts.get(state, 0) + 1
            if counts != last_counts and self.on_change:
                self.on_change(counts)
            last_counts = counts
            if not in_flight and not any(counts.get(st) for st in ("pending", "waiting", "paused", "running")):
                return "cancelled" if cancelling else ("failed" if counts.get("failed") or counts.get("skipped")
                                                       else "succeeded")
            if in_flight:
                done, _ = wait(list(in_flight), timeout=self.poll, return_when=FIRST_COMPLETED)
                for future in done:
                    job_id = in_flight.pop(future)
                    if future.exception() is not None:
                        self._worker_lost(job_id, future.exception(), executor)
                        state_by_id[job_id] = "pending"
                    else:
                        state_by_id[job_id] = future.result()
            else:
                time.sleep(self.poll)
                self._recover(run_id, in_flight_ids=set(in_flight.values()))
                last_look = -1e9

    def _next_state(self, r, state_of: dict[str, str], paused: set[int], cancelling: bool, elapsed: float) -> str:
        if cancelling:
            return "cancelled"
        deps = [state_of.get(d) for d in r.depends_on or ()]
        if any(d in BLOCKING for d in deps):
            return "skipped"
        if r.batch in paused:
            return "paused"
        if not all(d == "succeeded" for d in deps):
            return "waiting"
        if r.batch and len(self.batch_offsets) >= r.batch and elapsed < self.batch_offsets[r.batch - 1]:
            return "waiting"
        return "ready"

    def _worker_lost(self, job_id: int, exc: BaseException, executor) -> None:
        """The worker process died under the job (SIGKILL, OOM): put it back to run again."""
        if hasattr(executor, "reset"):
            executor.reset()
        with self.site.repository.session() as s:
            row = s.get(JobRow, job_id)
            if row.state == "running":
                row.state = "pending"
                record_event(s, job_id, "pending", f"worker lost ({type(exc).__name__}: {exc}); will run again")

    def _recover(self, run_id: int, in_flight_ids: set[int]) -> None:
        """Jobs left running by a dead worker (stale heartbeat) go back to pending."""
        stale = datetime.now() - timedelta(seconds=self.lease)
        with self.site.repository.session() as s:
            rows = s.scalars(select(JobRow).where(JobRow.run_id == run_id, JobRow.state == "running",
                                                  JobRow.heartbeat_at < stale)).all()
            for row in rows:
                if row.id in in_flight_ids:
                    continue
                row.state = "pending"
                record_event(s, row.id, "pending", f"heartbeat from {row.worker or 'a worker'} stale since "
                                                   f"{row.heartbeat_at:%H:%M:%S}; will run again")


# --- operator actions, used by the CLI and the dashboard --------------------------------------------------------


def _run(session, date: str) -> Run:
    run = session.scalar(select(Run).where(Run.date == date))
    if run is None:
        raise LookupError(f"no run for {date}: start it with `esomp run --date {date}`")
    return run


def pause_batch(site, date: str, batch: int) -> None:
    with site.repository.session() as s:
        run = _run(s, date)
        run.paused_batches = sorted({*(run.paused_batches or ()), batch})
        s.execute(update(JobRow).where(JobRow.run_id == run.id, JobRow.batch == batch,
                                       JobRow.state.in_(("pending", "waiting"))).values(state="paused"))
    site.pm.hook.batch_paused(date=date, batch=batch, site=site)


def resume_batch(site, date: str, batch: int) -> None:
    with site.repository.session() as s:
        run = _run(s, date)
        run.paused_batches = [b for b in run.paused_batches or () if b != batch]
        s.execute(update(JobRow).where(JobRow.run_id == run.id, JobRow.batch == batch, JobRow.state == "paused")
                  .values(state="pending"))
    site.pm.hook.batch_resumed(date=date, batch=batch, site=site)


def cancel_run(site, date: str) -> None:
    with site.repository.session() as s:
        run = _run(s, date)
        if run.lock_holder:
            run.state = "cancelling"  # the engine holding the run cancels what has not started
        else:
            s.execute(update(JobRow).where(JobRow.run_id == run.id,
                                           JobRow.state.in_(("pending", "waiting", "paused")))
                      .values(state="cancelled"))
            run.state = "cancelled"


def reset_for_rerun(site, date: str, *, job_id: int | None = None, failed: bool = False) -> list[str]:
    """Put the chosen jobs (a job, or every failed/cancelled one) and everything downstream back to pending."""
    with site.repository.session() as s:
        run = _run(s, date)
        rows = s.scalars(select(JobRow).where(JobRow.run_id == run.id)).all()
        by_name = {r.name: r for r in rows}
        if job_id is not None:
            roots = [r for r in rows if r.id == job_id]
            if not roots:
                raise LookupError(f"no job {job_id} in the run of {date}")
        else:
            roots = [r for r in rows if r.state in ("failed", "cancelled", "skipped")] if failed else []
        downstream: dict[str, list[str]] = {}
        for r in rows:
            for dep in r.depends_on or ():
                downstream.setdefault(dep, []).append(r.name)
        chosen, todo = set(), [r.name for r in roots]
        while todo:
            name = todo.pop()
            if name not in chosen:
                chosen.add(name)
                todo.extend(downstream.get(name, []))
        for name in sorted(chosen):
            row = by_name[name]
            if row.state == "running":
                continue
            row.state, row.error = "pending", None
            record_event(s, row.id, "pending", "rerun requested")
        if run.state in ("cancelled", "cancelling", "failed", "succeeded"):
            run.state = "pending"
        return sorted(chosen)
