"""Running monitors: the registered ones and the ``monitor`` hook, each when its schedule says, findings into
alerts through the core's alert store. A failing check is recorded against its monitor, never raised.
"""
from __future__ import annotations

import logging
import traceback
from datetime import datetime
from typing import Iterable

import attrs
from sqlalchemy import select

from esomp_core import ConfigError, Finding, Monitor, MonitorRunRow as MonitorRun, monitor_options, sync_alerts
from esomp_monitor.schedules import is_due, schedule_of

log = logging.getLogger("esomp.monitoring")


def check_config(site) -> None:
    """Fail at start-up, naming the key, on an unknown monitor name, a bad schedule or bad built-in options."""
    from esomp_monitor.monitors import OPTIONS  # the built-ins' own options are checked up front too

    registered = site.registry.monitors
    for name in site.section("monitors"):
        if name not in registered:
            raise ConfigError(site.config.source, f"monitors.{name}",
                              f"no such monitor (registered: {', '.join(sorted(registered)) or 'none'})")
    for monitor in registered.values():
        schedule_of(site, monitor)
    for name, cls in OPTIONS.items():
        if name in registered:
            monitor_options(site, name, cls)


def last_runs(site) -> dict[str, MonitorRun]:
    with site.repository.session() as s:
        return {r.name: r for r in s.scalars(select(MonitorRun))}


def record_run(site, name: str, now: datetime, error: str | None = None) -> None:
    """Remember that ``name`` ran at ``now`` (its alerts untouched): a failed check, or a daemon chore."""
    with site.repository.session() as s:
        run = s.get(MonitorRun, name) or MonitorRun(name=name, findings=0, conditions=[])
        s.add(run)
        run.last_run_at, run.error = now, error


@attrs.define
class MonitorOutcome:
    name: str
    findings: int = 0
    raised: int = 0
    updated: int = 0
    resolved: int = 0
    error: str | None = None


def _findings(site, monitor: Monitor, now: datetime) -> list[Finding]:
    """The check's findings, labelled with the monitor's business type unless they name their own."""
    return [f if f.business_type != "core" or monitor.business_type == "core"
            else attrs.evolve(f, business_type=monitor.business_type)
            for f in (monitor.check(site, now) or ())]


def run_monitor(site, monitor: Monitor, now: datetime) -> MonitorOutcome:
    """Run one monitor's check and sync its findings; a failing check is recorded and reported, not raised."""
    outcome = MonitorOutcome(monitor.name)
    try:
        findings = _findings(site, monitor, now)
    except Exception as exc:  # one broken monitor must not stop the others
        outcome.error = f"{type(exc).__name__}: {exc}"
        log.error("monitor %s failed: %s\n%s", monitor.name, outcome.error, traceback.format_exc(limit=5))
        record_run(site, monitor.name, now, outcome.error)  # its alerts stay as they are: we know nothing new
        return outcome
    result = sync_alerts(site, monitor.name, findings, now)
    outcome.findings = len(findings)
    outcome.raised, outcome.updated, outcome.resolved = len(result.raised), len(result.updated), len(result.resolved)
    return outcome


def _hook_monitor(site) -> Monitor:
    """The ``monitor`` hook as one more monitor: every plugin implementing it is asked together."""

    def check(site, now) -> Iterable[Finding]:
        found: list[Finding] = []
        for answer in site.pm.hook.monitor(site=site, now=now):
            found.extend(answer or ())
        return found

    return Monitor("hooks", check, description="findings of every plugin implementing the monitor hook")


def all_monitors(site) -> dict[str, Monitor]:
    monitors = dict(site.registry.monitors)
    if site.pm.hook.monitor.get_hookimpls():
        monitors.setdefault("hooks", _hook_monitor(site))
    return monitors


def _chosen(monitors: dict[str, Monitor], only: Iterable[str] | None) -> dict[str, Monitor]:
    if only is None:
        return monitors
    only = list(only)
    unknown = [n for n in only if n not in monitors]
    if unknown:
        raise LookupError(f"no monitor {unknown[0]!r} (registered: {', '.join(sorted(monitors))})")
    return {n: monitors[n] for n in only}


def run_due(site, now: datetime, *, force: bool = False, only: Iterable[str] | None = None) -> list[MonitorOutcome]:
    """Run every monitor due at ``now`` (every enabled one with ``force``), in name order."""
    runs = last_runs(site)
    outcomes = []
    for name, monitor in sorted(_chosen(all_monitors(site), only).items()):
        schedule = schedule_of(site, monitor)
        last = runs[name].last_run_at if name in runs else None
        if (force and schedule.enabled) or is_due(site, schedule, last, now):
            outcomes.append(run_monitor(site, monitor, now))
    return outcomes
