"""The daemon (``esomp daemon``): runs the day unattended.

Every ``tick`` seconds it writes a heartbeat, starts the trading day's plan once the clock passes ``[daemon]
start`` (the engine staggers the batches by ``[engine] batch_offsets``), runs the monitors that are due, and
once a day cleans up per ``[daemon.cleanup]`` (the 清空模板: retention days per working directory, old job
events and resolved alerts). Restarted mid-day it simply starts the engine again: the engine skips
finished jobs and takes over jobs whose worker died. SIGTERM stops it cleanly: no new jobs start, jobs already
running finish (within ``stop_grace`` seconds), the heartbeat says "stopped".

The clock is injected (``clock()`` returns a naive local datetime): tests drive whole days through it.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import attrs
from sqlalchemy import select

from esomp_core import ConfigError, Finding, JobRow, RunRow, hhmm, structure, sync_alerts, ymd
from esomp_monitor.models import DaemonHeartbeat
from esomp_monitor.cleanup import CLEANUP_NAME, CleanupOptions, cleanup
from esomp_monitor.runner import check_config, last_runs, run_due
from esomp_monitor.schedules import Schedule, is_due

log = logging.getLogger("esomp.daemon")

UNFINISHED = ("pending", "waiting", "paused", "running")
CALENDAR_SOURCE = "daemon:calendar"
NOT_COVERED_RULE = "calendar.not_covered"
ENDING_RULE = "calendar.ending"
COVERAGE_NOTICE_DAYS = 30  # warn this long before the known closures run out, while there is time to add them


@attrs.frozen
class DaemonOptions:
    """``[daemon]`` in esomp.toml."""

    start: str = attrs.field(default="08:30", validator=hhmm)
    """Wall-clock time on each trading day at which the day's plan starts."""
    tick: float = 5.0
    executor: str | None = None
    workers: int | None = None
    stop_grace: float = 30.0
    """On SIGTERM, seconds to let running jobs finish before leaving them to the next start's recovery."""
    heartbeat_file: str = "daemon-heartbeat.json"
    """Written under the monitoring_centre directory (运营监控中心) for a dashboard or a watchdog."""
    cleanup: CleanupOptions = CleanupOptions()


def daemon_options(site) -> DaemonOptions:
    options = structure(DaemonOptions, site.section("daemon"), path="daemon", source=site.config.source)
    known = site.directories()  # the core's and the loaded plugins' (trust_send_temp ...)
    for key in options.cleanup.directories:
        if key not in known:
            raise ConfigError(site.config.source, f"daemon.cleanup.directories.{key}",
                              f"unknown directory (expected one of: {', '.join(known)})")
    return options


class Daemon:
    def __init__(self, site, *, clock: Callable[[], datetime] = datetime.now, name: str = "daemon"):
        self.site, self.clock, self.name = site, clock, name
        self.options = daemon_options(site)
        check_config(site)
        self.stopping = threading.Event()
        self.engine_thread: threading.Thread | None = None
        self.engine = None
        self.engine_date: str | None = None
        self.engine_error: str | None = None
        self.last: dict[str, Any] = {}
        self.calendar_alerts: list[tuple[str, str]] | None = None

    # --- the day ----------------------------------------------------------------------------------------------------
    def start_moment(self, day) -> datetime:
        hours, minutes = map(int, self.options.start.split(":"))
        return datetime.combine(day, datetime.min.time()) + timedelta(hours=hours, minutes=minutes)

    def day_to_run(self, now: datetime) -> str | None:
        """The business date whose plan should be running at ``now``, if any.

        A date the calendar refuses (not a trading day, or not covered by the known closures) is not started; why
        goes into the heartbeat. Only an operator runs such a date, with ``esomp run --force``."""
        calendar = self.site.calendar
        day = calendar.business_date(now)
        self.last["calendar"] = calendar.run_day_problem(day)
        if self.last["calendar"] or now < self.start_moment(day):
            return None
        return ymd(day)

    def alert_not_covered(self, now: datetime) -> None:
        """A weekday past its start time that the calendar does not cover raises an alert: the day would
        otherwise pass unrun and unnoticed. The alert resolves once the calendar covers the date."""
        calendar = self.site.calendar
        day = calendar.business_date(now)
        findings = []
        if now >= self.start_moment(day) and calendar.is_trading_day(day) and not calendar.covers(day):
            findings.append(Finding(NOT_COVERED_RULE, ymd(day), "error", calendar.run_day_problem(day)))
        ahead = day + timedelta(days=COVERAGE_NOTICE_DAYS)
        if calendar.covers(day) and not calendar.covers(ahead):
            findings.append(Finding(ENDING_RULE, str(ahead.year), "warning",
                                    f"the trading calendar ends before {ahead.year} (it knows {calendar.coverage()}): "
                                    f"add {ahead.year}'s closures before its first day (docs/configuration.md)"))
        seen = [(f.rule, f.subject) for f in findings]
        if seen != self.calendar_alerts:  # write only when the condition changes, not every tick
            sync_alerts(self.site, CALENDAR_SOURCE, findings, now)
            self.calendar_alerts = seen

    def needs_engine(self, date: str) -> bool:
        """No run yet, or jobs not finished (a restart, a rerun, a resumed batch)."""
        with self.site.repository.session() as s:
            run_id = s.scalar(select(RunRow.id).where(RunRow.date == date))
            if run_id is None:
                return True
            return s.scalar(select(JobRow.id).where(JobRow.run_id == run_id, JobRow.state.in_(UNFINISHED))
                            .limit(1)) is not None

    def engine_running(self) -> bool:
        return self.engine_thread is not None and self.engine_thread.is_alive()

    def start_engine(self, date: str) -> None:
        from esomp_core import Engine

        def on_change(counts: dict[str, int]) -> None:
            self.last["counts"] = counts
            if self.stopping.is_set():
                engine.stop()

        engine = Engine(self.site, date, executor=self.options.executor, workers=self.options.workers,
                        on_change=on_change)

        self.engine = engine

        def run() -> None:
            try:
                summary = engine.run()
                self.last["run"] = {"date": date, "state": summary.state, "counts": summary.counts}
                self.engine_error = None
                if summary.state == "stopped":
                    log.info("engine for %s stopped: the daemon is stopping", date)
            except Exception as exc:  # RunLocked (another engine holds the day), a bad plan ...: retried next tick
                self.engine_error = f"{type(exc).__name__}: {exc}"
                log.warning("engine for %s: %s", date, self.engine_error)

        self.engine_date = date
        self.engine_thread = threading.Thread(target=run, name=f"esomp-engine-{date}", daemon=True)
        self.engine_thread.start()

    # --- one pass ---------------------------------------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        now = self.clock()
        date = self.day_to_run(now)
        self.alert_not_covered(now)
        if date and not self.stopping.is_set() and not self.engine_running() and self.needs_engine(date):
            self.start_engine(date)
        outcomes = run_due(self.site, now)
        if outcomes:
            self.last["monitors"] = {o.name: {"findings": o.findings, "error": o.error} for o in outcomes}
        if self.cleanup_due(now):
            self.last["cleanup"] = cleanup(self.site, self.options.cleanup, now)
        state = "running-day" if self.engine_running() else "idle"
        self.heartbeat(now, state)
        return {"now": now, "date": date, "state": state, "monitors": [o.name for o in outcomes]}

    def wait_for_engine(self, timeout: float | None = None) -> None:
        if self.engine_thread is not None:
            self.engine_thread.join(timeout)

    # --- housekeeping -----------------------------------------------------------------------------------------------
    def cleanup_due(self, now: datetime) -> bool:
        last = last_runs(self.site).get(CLEANUP_NAME)
        return is_due(self.site, Schedule(at=self.options.cleanup.at), last.last_run_at if last else None, now)

    # --- heartbeat ----------------------------------------------------------------------------------------------------
    def heartbeat(self, now: datetime, state: str) -> None:
        detail = {"clock": now.isoformat(timespec="seconds"), "engine_date": self.engine_date,
                  "engine_error": self.engine_error, "start": self.options.start, **self.last}
        with self.site.repository.session() as s:
            row = s.get(DaemonHeartbeat, self.name) or DaemonHeartbeat(name=self.name)
            s.add(row)
            row.host, row.pid, row.at, row.state = socket.gethostname(), os.getpid(), datetime.now(), state
            row.detail = json.loads(json.dumps(detail, default=str))
        centre = self.site.directory("monitoring_centre")
        if "://" not in centre:
            path = Path(centre) / self.options.heartbeat_file
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps({"name": self.name, "host": socket.gethostname(), "pid": os.getpid(),
                                       "at": datetime.now().isoformat(timespec="seconds"), "state": state,
                                       **detail}, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
            tmp.replace(path)

    # --- the loop -------------------------------------------------------------------------------------------------------
    def serve(self) -> None:
        """Tick until asked to stop; then let the engine finish its running jobs and say "stopped"."""
        log.info("daemon %s started (pid %s); the day starts at %s", self.name, os.getpid(), self.options.start)
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a bad tick (database busy ...) is logged; the next one tries again
                log.exception("daemon tick failed")
            self.stopping.wait(self.options.tick)
        self.heartbeat(self.clock(), "stopping")
        self.wait_for_engine(self.options.stop_grace)
        self.heartbeat(self.clock(), "stopped")
        log.info("daemon %s stopped", self.name)

    def stop(self, *_args: Any) -> None:
        self.stopping.set()
        if self.engine is not None:
            self.engine.stop()


def shifted_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at ``start`` and runs at real speed: replaying a day, or testing a subprocess."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def serve(site, *, clock: Callable[[], datetime] = datetime.now) -> Daemon:
    """Run the daemon in this process until SIGTERM or SIGINT."""
    daemon = Daemon(site, clock=clock)
    previous = {sig: signal.signal(sig, daemon.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        daemon.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return daemon
