"""The engine: runs a business date's plan with the repository as the system of record.

Every state change is committed before anything acts on it, so the CLI, the dashboard and a restarted engine all
see the same day. A job is claimed by the engine (``running``, a fresh heartbeat) and executed by a worker that
keeps the heartbeat fresh. With the built-in executors the engine is the only writer: it records the start (worker,
attempt, event) in the transaction that claims the job, and the outcome the worker sends back in the transaction
that also releases or skips what waits on it and starts the next jobs. Other executors' workers record the start
and the outcome themselves. A job whose heartbeat goes stale (its worker died) is put back to ``pending`` and run
again; stage hooks write atomically, so a rerun gives the same outputs.
"""
from __future__ import annotations

import collections
import heapq
import logging
import os
import selectors
import socket
import threading
import time
import traceback
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta
from typing import Any, Callable, NamedTuple

import attrs
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from esomp_core.model import BaseExecutor, ExecutorProtocol, Job, JobResult, check_executor
from esomp_core.plan import PlanError, build_plan, owning_plugin, store_plan
from esomp_core.plugins import call_owner
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import JobEvent, Run

log = logging.getLogger(__name__)

DONE = ("succeeded", "failed", "cancelled", "skipped")
WAITING = ("pending", "waiting", "paused")
BLOCKING = ("failed", "cancelled", "skipped")


class RunLocked(RuntimeError):
    """Another engine holds the day: the message names its host, process and since when."""


def held_by(date: str, run: Run) -> str:
    """Who holds ``run``: host and process from the holder's name (``host:pid``), since when, last heartbeat."""
    host, _, pid = (run.lock_holder or "?").rpartition(":")
    since = f"{run.started_at:%Y-%m-%d %H:%M:%S}" if run.started_at else "an unknown time"
    beat = f"{run.lock_heartbeat:%H:%M:%S}" if run.lock_heartbeat else "none"
    return (f"the run of {date} is held by {run.lock_holder} (host {host or '?'}, process {pid}) since {since}, "
            f"last heartbeat {beat}; wait for it to finish or stop that process")


class NoResult(RuntimeError):
    """A stage hook returned something other than a JobResult (it must raise to fail)."""


def _above_zero(instance, attribute, value):
    if value <= 0:  # a zero or negative wait blocks or spins the engine's loop
        raise ValueError(f"{attribute.name}: expected a number of seconds above 0, got {value!r}")


def _not_negative(instance, attribute, value):
    if value < 0:
        raise ValueError(f"{attribute.name}: expected a whole number of 0 or more, got {value!r}")


def _offsets(instance, attribute, value):
    for i, offset in enumerate(value):
        if offset < 0:
            raise ValueError(f"{attribute.name}: batch {i + 1}: expected seconds of 0 or more, got {offset!r}")


@attrs.frozen
class EngineOptions:
    """``[engine]`` in esomp.toml, checked when the site's configuration is loaded."""

    executor: str = "local"
    """Checked against the registered executors by ``engine_options(site)``."""
    workers: int = attrs.field(default=0, validator=_not_negative)
    """0: one per core."""
    lease: float = attrs.field(default=60.0, validator=_above_zero)
    """Seconds without a heartbeat after which a running job's worker is taken for dead."""
    poll: float = attrs.field(default=0.25, validator=_above_zero)
    batch_offsets: list[float] = attrs.field(factory=list, validator=_offsets)
    """Seconds after the run starts before each batch (1, 2, ...) may start; the seed's staggering."""


def engine_options(site) -> EngineOptions:
    """``[engine]``, with ``executor`` and every ``[executors.NAME]`` checked against the registered executors."""
    from esomp_core.config import ConfigError, structure

    source = site.config.source
    options = structure(EngineOptions, site.section("engine"), path="engine", source=source)
    registered = site.registry.executors
    if options.executor not in registered:
        raise ConfigError(source, "engine.executor", unknown_executor(site, options.executor))
    for name, table in site.section("executors").items():
        executor = registered.get(name)
        if executor is None:
            raise ConfigError(source, f"executors.{name}", unknown_executor(site, name))
        _executor_options(executor, table, f"executors.{name}", source)
    return options


def unknown_executor(site, name: str) -> str:
    """Why ``name`` can not run a day: the registered executors, and those a plugin registered but was refused."""
    refused = [e for e in site.registry.errors if "register_executors failed" in e]
    return (f"unknown executor {name!r} (registered: {', '.join(sorted(site.registry.executors)) or 'none'})"
            + "".join(f"; {e}" for e in refused))


def _executor_options(executor, table: dict[str, Any], path: str, source: str) -> Any:
    """An executor that declares an ``options`` attrs class has its table checked by it; others take no keys."""
    from esomp_core.config import ConfigError, structure

    if executor.options is not None:
        return structure(executor.options, table, path=path, source=source)
    if table:
        raise ConfigError(source, f"{path}.{sorted(table)[0]}",
                          f"unknown key (executor {executor.name} has no options)")
    return None


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


JOB_COLUMNS = (JobRow.id, JobRow.name, JobRow.stage, JobRow.business_type, JobRow.batch, JobRow.category,
               JobRow.channel, JobRow.products, JobRow.params, JobRow.state, JobRow.error, JobRow.attempts)


JobValues = collections.namedtuple("JobValues", [c.key for c in JOB_COLUMNS])
"""A job's row as the engine hands it to a worker: plain values, cheap to pickle."""


def to_job(row, date: str) -> Job:
    return Job(id=row.id, date=date, name=row.name, stage=row.stage, business_type=row.business_type,
               batch=row.batch, category=row.category, channel=row.channel, products=tuple(row.products or ()),
               params=dict(row.params or {}), state=row.state, error=row.error)


# Statements built once: every job of the day runs them, and building a statement costs more than running it.
_EVENT = insert(JobEvent)
_START = (update(JobRow).where(JobRow.id == bindparam("b_id"))
          .values(worker=bindparam("b_worker"), started_at=bindparam("b_now"), heartbeat_at=bindparam("b_now"),
                  attempts=JobRow.attempts + 1)
          .returning(*JOB_COLUMNS))
_FAIL = (update(JobRow).where(JobRow.id == bindparam("b_id"))
         .values(state=bindparam("b_state"), finished_at=bindparam("b_now"), error=bindparam("b_error")))
_FINISH = _FAIL.values(files=bindparam("b_files"), records=bindparam("b_records"), bytes=bindparam("b_bytes"),
                       detail=bindparam("b_detail", type_=JobRow.__table__.c.detail.type))
# The engine's own: claim jobs (compare-and-set on pending), move jobs between waiting states, look at the run.
_CLAIM = (update(JobRow).where(JobRow.id.in_(bindparam("b_ids", expanding=True)), JobRow.state == "pending")
          .values(state="running", heartbeat_at=bindparam("b_now"), worker=None, started_at=None, finished_at=None,
                  error=None)
          .returning(JobRow.id))
# Claim and start in one: for executors that say which worker will run the job (see ``idle_workers``).
_CLAIM_ON = (update(JobRow).where(JobRow.id == bindparam("b_id"), JobRow.state == "pending")
             .values(state="running", worker=bindparam("b_worker"), started_at=bindparam("b_now"),
                     heartbeat_at=bindparam("b_now"), attempts=JobRow.attempts + 1, finished_at=None, error=None)
             .returning(*JOB_COLUMNS))
_MOVE = (update(JobRow).where(JobRow.id.in_(bindparam("b_ids", expanding=True)), JobRow.state == bindparam("b_old"))
         .values(state=bindparam("b_new")).returning(JobRow.id))
_LOOK_RUN = (update(Run).where(Run.id == bindparam("b_run")).values(lock_heartbeat=bindparam("b_now"))
             .returning(Run.state, Run.paused_batches))
_LOOK_JOBS = select(JobRow.id, JobRow.state).where(JobRow.run_id == bindparam("b_run"))


def record_event(session, job_id: int, state: str, message: str | None = None) -> None:
    session.execute(_EVENT, {"job_id": job_id, "at": datetime.now(), "state": state, "message": message})


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
    """Start, run and finish one claimed job in this process: heartbeat, stage hook, committed outcome, events.

    Returns its state. This is the path for any executor; see ``run_started_job`` for the engine's own."""
    site = site or _worker_site(site_root)
    worker = holder_name()
    # A plain connection and prepared statements, not the ORM: this runs for every job of the day.
    with site.repository.engine.begin() as conn:
        row = conn.execute(_START, {"b_id": job_id, "b_worker": worker, "b_now": datetime.now()}).one()
        record_event(conn, job_id, "running", f"attempt {row.attempts} on {worker}")
    job = to_job(row, date)
    outcome = _work(site, job, lease)
    with site.repository.engine.begin() as conn:
        events: list[dict] = []
        write_outcomes(conn, [(job.id, *outcome)], events)
        conn.execute(_EVENT, events)
    job.state, job.error = outcome.state, outcome.error
    site.pm.hook.job_finished(job=job, result=outcome.result, site=site)
    return outcome.state


class Outcome(NamedTuple):
    """How a job ended, before it is committed."""

    state: str
    error: str | None
    result: JobResult | None
    at: datetime


def run_started_job(site_root: str, date: str, values: tuple, lease: float, site=None) -> Outcome:
    """Run a job whose start (running, on this worker, attempt, event) the engine has committed; the engine
    commits the outcome returned, with its other writes, then fires ``job_finished``.

    ``values`` are the job's ``JOB_COLUMNS``."""
    return _work(site or _worker_site(site_root), to_job(JobValues(*values), date), lease)


def _work(site, job: Job, lease: float) -> Outcome:
    site.pm.hook.job_started(job=job, site=site)
    heartbeat = _Heartbeat.of(site.repository, lease)
    heartbeat.add(job.id)
    result: JobResult | None = None
    error = None
    try:
        owner = owning_plugin(site, job)
        result = call_owner(site.pm, job.stage, owner, job=job, site=site)
        if not isinstance(result, JobResult):
            raise NoResult(f"plugin {owner} returned {result!r} for {job.stage} job {job.name}, not a JobResult")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (NoResult, PlanError, ValueError, OSError)):
            error += "\n" + traceback.format_exc(limit=8)
    finally:
        heartbeat.discard(job.id)
    return Outcome("failed" if error else "succeeded", error, result, datetime.now())


def write_outcomes(conn, outcomes: list[tuple[int, str, str | None, JobResult | None, datetime]],
                   events: list[dict]) -> None:
    """Record how jobs ended (state, times, counts, error) in the caller's transaction; add their events to
    ``events`` for the caller to insert with its own."""
    finished, failed = [], []
    for job_id, state, error, result, at in outcomes:
        values = {"b_id": job_id, "b_state": state, "b_now": at, "b_error": error}
        if result is None:
            failed.append(values)
        else:
            finished.append({**values, "b_files": result.files, "b_records": result.records,
                             "b_bytes": result.bytes, "b_detail": result.detail})
        events.append({"job_id": job_id, "at": at, "state": state,
                       "message": error.splitlines()[0] if error else None})
    if finished:
        conn.execute(_FINISH, finished)
    if failed:
        conn.execute(_FAIL, failed)


# --- executors -------------------------------------------------------------------------------------------------


class InlineExecutor(BaseExecutor):
    """Runs each job in the engine's own process, one at a time: for debugging and tests."""

    workers = 1
    names_workers = True

    def __init__(self, site, workers: int | None = None):
        self.site = site

    def idle_workers(self, busy: int) -> list[str]:
        return [holder_name()]  # a job submitted here is done before submit returns

    def submit(self, fn: Callable[..., Any], *args: Any, worker: str | None = None) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, site=self.site))
        except BaseException as exc:  # noqa: BLE001 - handed to the engine like a pool would
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        pass


class WorkerLost(RuntimeError):
    """The worker process running a job exited before it replied (SIGKILL, out of memory)."""


def _serve(conn, site, inherited) -> None:
    """A worker process: run each ``(fn, args)`` received on ``conn`` and send back ``(ok, result or error)``."""
    for end in inherited:  # the engine's ends of the pipes came along with the fork; EOF must not wait on us
        end.close()
    _adopt_site(site)
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:  # the engine closed the pipe: no more work
            return
        try:
            reply = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the engine like a pool would
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception:  # noqa: BLE001 - an error that does not pickle still reaches the engine, as text
            conn.send((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


class _Worker:
    def __init__(self, process, conn):
        self.process, self.conn = process, conn
        self.name = f"{socket.gethostname()}:{process.pid}"  # what holder_name() says inside it
        self.futures: collections.deque[Future] = collections.deque()


class LocalExecutor(BaseExecutor):
    """A pool of worker processes (default: one per core), each fed through a pipe of its own.

    Replies are read in the engine's thread (``wait``), with no feeder or manager threads between the engine and
    its workers. A killed worker fails only the jobs it held, and a new one takes its place.
    """

    names_workers = True

    def __init__(self, site, workers: int | None = None):
        self.site = site
        self.workers = workers or os.cpu_count() or 1
        self._slots: list[_Worker | None] = [None] * self.workers
        self._replies = selectors.DefaultSelector()  # every worker's pipe: a reply, or EOF when it died

    def _start(self, slot: int) -> _Worker:
        import multiprocessing

        # fork: workers start in milliseconds and inherit the engine's site with its plugins.
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        inherited = [ours, *(w.conn for w in self._slots if w is not None)]
        process = context.Process(target=_serve, args=(theirs, self.site, inherited), daemon=True,
                                  name=f"esomp-worker-{slot + 1}")
        process.start()
        theirs.close()
        self._slots[slot] = _Worker(process, ours)
        self._replies.register(ours, selectors.EVENT_READ, self._slots[slot])
        return self._slots[slot]

    def idle_workers(self, busy: int) -> list[str]:
        """The names of the workers with no job (starting any that are missing): the engine records each job's
        start on the worker it names before handing the job over."""
        return [(w or self._start(slot)).name for slot, w in enumerate(self._slots) if w is None or not w.futures]

    def submit(self, fn: Callable[..., Any], *args: Any, worker: str | None = None) -> Future:
        if worker is None:
            slot = min(range(self.workers), key=lambda i: len(self._slots[i].futures) if self._slots[i] else 0)
            target = self._slots[slot] or self._start(slot)
        else:
            target = next(w for w in self._slots if w is not None and w.name == worker)
        future: Future = Future()
        try:
            target.conn.send((fn, args))
        except OSError:  # the worker died since its last reply; its jobs fail when its pipe is read
            pass
        target.futures.append(future)
        return future

    def wait(self, futures, timeout: float) -> set[Future]:
        """Block until one of ``futures`` has its reply (or ``timeout`` passes); return those done."""
        for key, _ in self._replies.select(timeout):
            worker = key.data
            try:
                ok, value = worker.conn.recv()
            except (EOFError, OSError):
                self._lost(worker)
                continue
            future = worker.futures.popleft()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        return {f for f in futures if f.done()}

    def _lost(self, worker: _Worker) -> None:
        worker.process.join(timeout=5)
        error = WorkerLost(f"worker process {worker.process.pid} exited with code {worker.process.exitcode}")
        while worker.futures:
            worker.futures.popleft().set_exception(error)
        self._replies.unregister(worker.conn)
        worker.conn.close()
        self._slots[self._slots.index(worker)] = None  # started again when next needed

    def shutdown(self) -> None:
        workers = [w for w in self._slots if w is not None]
        for worker in workers:
            self._replies.unregister(worker.conn)
            worker.conn.close()  # the worker finishes its job, reads EOF and exits
        for worker in workers:
            worker.process.join()
        self._slots = [None] * self.workers


class _PlainExecutor(BaseExecutor):
    """An executor with only the protocol's required members, given the optional capabilities' defaults."""

    def __init__(self, executor: ExecutorProtocol):
        self.executor = executor

    @property
    def workers(self) -> int:
        return self.executor.workers

    def submit(self, fn: Callable[..., Any], /, *args: Any, worker: str | None = None) -> Future:
        return self.executor.submit(fn, *args)

    def shutdown(self) -> None:
        self.executor.shutdown()


def make_executor(site, name: str, workers: int | None) -> BaseExecutor:
    """The registered executor ``name``, created for ``workers`` and checked against the executor protocol."""
    registered = site.registry.executors.get(name)
    if registered is None:
        raise ValueError(unknown_executor(site, name))
    executor = registered.create(site, workers)
    check_executor(executor, f"executor {name!r} (plugin {site.registry.owners[('executor', name)]})")
    return executor if isinstance(executor, BaseExecutor) else _PlainExecutor(executor)


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
        self._stop = threading.Event()

    def stop(self) -> None:
        """Start no new job; the run returns 'stopped' once the running ones finish (the next run goes on)."""
        self._stop.set()

    # the lock: one engine per site and day
    def acquire(self) -> int:
        """Claim the day's run for this engine (creating the run if needed) and return its id.

        The claim is one conditional UPDATE, so of two engines starting together exactly one gets the day; the
        other raises RunLocked naming the holder's host, process and since when it holds the day."""
        run_id = self._run_id()
        now = datetime.now()
        stale = now - timedelta(seconds=max(self.lease, 5))
        with self.site.repository.session() as s:
            claimed = s.execute(
                update(Run).where(Run.id == run_id)
                .where((Run.lock_holder.is_(None)) | (Run.lock_holder == self.holder) | (Run.lock_heartbeat < stale))
                .values(lock_holder=self.holder, lock_heartbeat=now, state="running",
                        started_at=now)).rowcount
            if not claimed:
                raise RunLocked(held_by(self.date, s.get(Run, run_id)))
        return run_id

    def _run_id(self) -> int:
        """The day's run, created if missing; of two engines creating it at once, the second reads the first's
        (the date is unique, so its insert fails instead of making a second run)."""
        with self.site.repository.session() as s:
            run_id = s.scalar(select(Run.id).where(Run.date == self.date))
        if run_id is not None:
            return run_id
        try:
            with self.site.repository.session() as s:
                run = Run(date=self.date, state="pending", created_at=datetime.now(), paused_batches=[])
                s.add(run)
                s.flush()
                return run.id
        except IntegrityError:
            with self.site.repository.session() as s:
                return s.scalar(select(Run.id).where(Run.date == self.date))

    def release(self, run_id: int, state: str) -> None:
        with self.site.repository.session() as s:
            s.execute(update(Run).where(Run.id == run_id, Run.lock_holder == self.holder)
                      .values(lock_holder=None, state=state, finished_at=datetime.now()))

    def run(self) -> RunSummary:
        started = time.monotonic()
        specs = build_plan(self.site, self.date)
        run_id = self.acquire()  # before the jobs are stored, so two engines never add the same jobs at once
        try:
            store_plan(self.site, self.date, specs)
        except BaseException:
            self.release(run_id, "failed")
            raise
        try:
            executor = make_executor(self.site, self.executor_name, self.workers)
        except BaseException:
            self.release(run_id, "failed")
            raise
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

    def _loop(self, run_id: int, executor: BaseExecutor, started: float) -> str:
        self._recover(run_id, in_flight_ids=set())
        return _Loop(self, run_id, executor, started).run()

    def _next_state(self, batch: int, dep_states: list[str], paused: set[int], cancelling: bool,
                    elapsed: float, after_states: list[str] = ()) -> str:
        """``dep_states``: of the jobs it depends on (they must succeed); ``after_states``: of the jobs it is only
        ordered after (they must have ended, however)."""
        if cancelling:
            return "cancelled"
        if any(d in BLOCKING for d in dep_states):
            return "skipped"
        if batch in paused:
            return "paused"
        if not all(d == "succeeded" for d in dep_states) or not all(a in DONE for a in after_states):
            return "waiting"
        if batch and len(self.batch_offsets) >= batch and elapsed < self.batch_offsets[batch - 1]:
            return "waiting"
        return "ready"

    def _worker_lost(self, job_id: int, exc: BaseException, executor: BaseExecutor) -> None:
        """The worker process died under the job (SIGKILL, OOM): put it back to run again."""
        executor.worker_lost()
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


class _Graph:
    """The run's jobs as the loop needs them; names, batches and dependencies do not change during a run."""

    def __init__(self, repo, run_id: int):
        with repo.session() as s:
            rows = s.execute(select(JobRow.id, JobRow.name, JobRow.batch, JobRow.depends_on, JobRow.after)
                             .where(JobRow.run_id == run_id)).all()
        id_of = {r.name: r.id for r in rows}
        self.ids = [r.id for r in rows]
        self.batch = {r.id: r.batch for r in rows}
        self.deps = {r.id: [id_of[d] for d in r.depends_on or ()] for r in rows}
        self.afters = {r.id: [id_of[d] for d in r.after or ()] for r in rows}
        self.dependents: dict[int, list[int]] = {}  # what to re-evaluate when a job's state changes
        for job_id in self.ids:
            for up in (*self.deps[job_id], *self.afters[job_id]):
                self.dependents.setdefault(up, []).append(job_id)


class _Loop:
    """One run of the engine: claim ready jobs, hand them to the executor, learn outcomes from the replies.

    States live in memory between looks at the repository: a finished job re-evaluates only its dependents, so the
    cost per job does not grow with the day. Every ``poll`` seconds the loop reads all states back and re-evaluates
    the jobs that changed outside it (and their dependents), so pauses, resumes, cancels and reruns from other
    processes take effect.
    """

    def __init__(self, engine: Engine, run_id: int, executor: BaseExecutor, started: float):
        self.engine, self.run_id, self.executor, self.started = engine, run_id, executor, started
        self.repo = engine.site.repository
        self.graph = _Graph(self.repo, run_id)
        self.state: dict[int, str] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.paused: set[int] = set()
        self.cancelling = False
        self.waiting_on_clock = bool(engine.batch_offsets)
        self.ready: list[int] = []  # a heap of job ids: plan order
        self.changes: dict[tuple[str, str], list[int]] = {}  # (from, to) -> jobs, written compare-and-set
        self.in_flight: dict[Future, int] = {}
        self.started_here: dict[int, tuple] = {}  # job -> its values, for jobs started here on a named worker
        self.ended: list[tuple] = []  # (job, *Outcome) of those: committed with the next transaction
        self.last_look = -1e9
        self.stale = False
        self.looked_since_write = False
        self.last_counts: dict[str, int] = {}

    def run(self) -> str:
        stopping = self.engine._stop
        while True:
            if stopping.is_set():
                self.ready.clear()
            claimed, workers = self.claim()
            if self.ended or self.changes or claimed:
                launched = self.commit(claimed, workers)
                self.announce_ended()
                self.launch(launched)
            if stopping.is_set() and not self.in_flight:
                return "stopped"
            if self.stale or time.monotonic() - self.last_look >= self.engine.poll:
                self.look()
                if self.changes or (self.ready and len(self.in_flight) < self.executor.workers):
                    continue  # commit and start what the look found before waiting
            self.report_counts()
            if not self.in_flight and not any(self.counts[st] for st in (*WAITING, "running")):
                if not self.looked_since_write:  # an operator may have reset or rerun jobs since: make sure
                    self.last_look = -1e9
                    continue
                return self.final_state()
            self.receive()

    def final_state(self) -> str:
        if self.cancelling:
            return "cancelled"
        return "failed" if self.counts["failed"] or self.counts["skipped"] else "succeeded"

    def set_state(self, job_id: int, new: str) -> None:
        if job_id in self.state:
            self.counts[self.state[job_id]] -= 1
        self.counts[new] += 1
        self.state[job_id] = new

    def evaluate(self, job_id: int) -> None:
        old = self.state[job_id]
        if old not in WAITING:
            return
        graph = self.graph
        new = self.engine._next_state(graph.batch[job_id], [self.state[d] for d in graph.deps[job_id]], self.paused,
                                      self.cancelling, time.monotonic() - self.started,
                                      [self.state[a] for a in graph.afters[job_id]])
        if new == "ready":
            heapq.heappush(self.ready, job_id)
            new = "pending"
        if new != old:
            self.changes.setdefault((old, new), []).append(job_id)
            self.set_state(job_id, new)
            if new in BLOCKING:  # what needs a skipped or cancelled job is skipped in turn; what is only
                for below in graph.dependents.get(job_id, ()):  # ordered after it may start
                    self.evaluate(below)

    def look(self) -> None:
        """Read the run and every job's state back; re-evaluate what changed outside this loop."""
        with self.repo.engine.begin() as conn:
            run_state, paused_batches = conn.execute(_LOOK_RUN, {"b_run": self.run_id, "b_now": datetime.now()}).one()
            rows = conn.execute(_LOOK_JOBS, {"b_run": self.run_id}).all()
        todo: set[int] = set()
        if (run_state == "cancelling", set(paused_batches or ())) != (self.cancelling, self.paused):
            self.cancelling, self.paused = run_state == "cancelling", set(paused_batches or ())
            todo.update(self.graph.ids)
        running_here = set(self.in_flight.values())  # their workers' replies tell how they end
        for job_id, job_state in rows:
            if self.state.get(job_id) != job_state and job_id not in running_here:
                self.set_state(job_id, job_state)
                todo.add(job_id)
                todo.update(self.graph.dependents.get(job_id, ()))
        if self.waiting_on_clock:  # batches held back by [engine] batch_offsets until their time comes
            todo.update(job_id for job_id, job_state in self.state.items() if job_state == "waiting")
            self.waiting_on_clock = time.monotonic() - self.started < max(self.engine.batch_offsets)
        for job_id in sorted(todo):
            self.evaluate(job_id)
        self.last_look, self.stale, self.looked_since_write = time.monotonic(), False, True

    def claim(self) -> tuple[list[int], list[str | None]]:
        """Take as many ready jobs as the executor has idle workers (in memory; commit() writes the claim)."""
        claimed: list[int] = []
        workers = self.executor.idle_workers(len(self.in_flight)) if self.ready else []
        while self.ready and len(claimed) < len(workers):
            job_id = heapq.heappop(self.ready)
            if self.state[job_id] == "pending" and job_id not in claimed:
                self.set_state(job_id, "running")
                claimed.append(job_id)
        return claimed, workers

    def commit(self, claimed: list[int], workers: list[str | None]) -> list[tuple]:
        """One transaction: the outcomes the workers sent, what they mean downstream, and the next starts. Moves
        and claims are compare-and-set: an operator may have paused, cancelled or reset a job since we last looked;
        a change that no longer applies is dropped and the next look sets memory right."""
        now = datetime.now()
        events: list[dict] = []
        with self.repo.engine.begin() as conn:
            if self.ended:
                write_outcomes(conn, self.ended, events)
            self._write_moves(conn, now, events)
            launched = self._write_claims(conn, claimed, workers, now, events)
            if events:
                conn.execute(_EVENT, events)
        self.changes.clear()
        self.looked_since_write = False
        return launched

    def _write_moves(self, conn, now: datetime, events: list[dict]) -> None:
        for (old, new), ids in self.changes.items():
            wanted = sorted(set(ids))
            moved = conn.execute(_MOVE, {"b_ids": wanted, "b_old": old, "b_new": new}).scalars().all()
            self.stale = self.stale or len(moved) != len(wanted)
            message = "an upstream job did not succeed" if new == "skipped" else None
            events += [{"job_id": job_id, "at": now, "state": new, "message": message} for job_id in moved]

    def _write_claims(self, conn, claimed: list[int], workers: list[str | None], now: datetime,
                      events: list[dict]) -> list[tuple]:
        launched: list[tuple] = []
        if claimed and self.executor.names_workers:  # claimed and started on the named worker: it only runs it
            for job_id, worker in zip(claimed, workers):
                row = conn.execute(_CLAIM_ON, {"b_id": job_id, "b_worker": worker, "b_now": now}).first()
                if row is not None:
                    launched.append((tuple(row), worker))
                    events.append({"job_id": job_id, "at": now, "state": "running",
                                   "message": f"attempt {row.attempts} on {worker}"})
        elif claimed:  # the worker records the start itself
            got = set(conn.execute(_CLAIM, {"b_ids": claimed, "b_now": now}).scalars())
            launched = [(job_id, None) for job_id in claimed if job_id in got]
        self.stale = self.stale or len(launched) != len(claimed)
        return launched

    def announce_ended(self) -> None:
        """job_finished for the outcomes just committed."""
        site = self.engine.site
        for job_id, outcome_state, error, result, _ in self.ended:
            job = to_job(JobValues(*self.started_here.pop(job_id)), self.engine.date)
            job.state, job.error = outcome_state, error
            try:
                site.pm.hook.job_finished(job=job, result=result, site=site)
            except Exception:  # a listener's bug must not stop the day
                log.exception("a job_finished hook failed for %s", job.name)
        self.ended.clear()

    def launch(self, launched: list[tuple]) -> None:
        engine, root = self.engine, str(self.engine.site.root)
        for job, worker in launched:
            if worker is None:
                self.in_flight[self.executor.submit(execute_job, root, job, engine.date, engine.lease)] = job
            else:
                self.started_here[job[0]] = job
                self.in_flight[self.executor.submit(run_started_job, root, engine.date, job, engine.lease,
                                                    worker=worker)] = job[0]

    def report_counts(self) -> None:
        current = {st: n for st, n in self.counts.items() if n}
        if current != self.last_counts and self.engine.on_change:
            self.engine.on_change(current)
        self.last_counts = current

    def receive(self) -> None:
        """Wait for replies (or, with nothing running, for the next look) and take the outcomes in."""
        if not self.in_flight:
            time.sleep(self.engine.poll)
            self.engine._recover(self.run_id, in_flight_ids=set())
            self.last_look = -1e9
            return
        for future in self.executor.wait(list(self.in_flight), self.engine.poll):
            job_id = self.in_flight.pop(future)
            if isinstance(future.exception(), (WorkerLost, BrokenProcessPool)):
                self.engine._worker_lost(job_id, future.exception(), self.executor)
                self.set_state(job_id, "pending")
                heapq.heappush(self.ready, job_id)
                continue
            outcome = future.result()  # an error of the repository or the executor itself is raised here
            if isinstance(outcome, Outcome):  # committed with the next transaction
                self.ended.append((job_id, *outcome))
            self.set_state(job_id, outcome.state if isinstance(outcome, Outcome) else outcome)
            for below in self.graph.dependents.get(job_id, ()):
                self.evaluate(below)


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
    """Put the chosen jobs (a job, or every failed/cancelled one) and everything downstream back to pending.

    Returns the names reset; a job still running is left to its worker and not listed."""
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
        reset = []
        for name in sorted(chosen):
            row = by_name[name]
            if row.state == "running":  # its worker finishes it; resetting would run it twice at once
                continue
            row.state, row.error = "pending", None
            record_event(s, row.id, "pending", "rerun requested")
            reset.append(name)
        if run.state in ("cancelled", "cancelling", "failed", "succeeded", "stopped"):
            run.state = "pending"
        return reset
