"""Running monitors: their schedules, their options from ``[monitors.NAME]``, and their findings into alerts.

Each ``[monitors.NAME]`` table may set the schedule (``every`` seconds, ``at = "HH:MM"`` on trading days, or a
five-field ``cron``), ``enabled``, and the monitor's own options, which its plugin parses with
:func:`monitor_options` so a bad value names ``monitors.NAME.KEY``. Time is always passed in (``now``): the
daemon, the CLI and tests drive it.
"""
from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta
from typing import Any, Iterable

import attrs
from sqlalchemy import select

from esomp_core import alerts
from esomp_core.config import ConfigError, _hhmm, structure
from esomp_core.model import Finding, Monitor
from esomp_core.repository.monitoring_models import MonitorRun

log = logging.getLogger("esomp.monitoring")

SCHEDULE_KEYS = ("enabled", "every", "at", "cron")


# --- cron ---------------------------------------------------------------------------------------------------------

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))


def parse_cron(text: str) -> list[set[int]]:
    """Five fields (minute hour day month weekday, 0 = Sunday) of ``*``, ``N``, ``A-B``, ``*/S``, ``A-B/S``, lists."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"cron: expected 5 fields (minute hour day month weekday), got {text!r}")
    fields = []
    for part, (name, low, high) in zip(parts, _CRON_FIELDS):
        values: set[int] = set()
        for item in part.split(","):
            span, _, step_text = item.partition("/")
            try:
                step = int(step_text) if step_text else 1
                if span == "*":
                    start, end = low, high
                elif "-" in span:
                    start, end = map(int, span.split("-"))
                else:
                    start = end = int(span)
            except ValueError:
                raise ValueError(f"cron: bad {name} field {part!r} in {text!r}") from None
            if step < 1 or not (low <= start <= end <= high):
                raise ValueError(f"cron: {name} field {part!r} outside {low}-{high} in {text!r}")
            values.update(range(start, end + 1, step))
        fields.append(values)
    return fields


def cron_matches(fields: list[set[int]], moment: datetime) -> bool:
    minute, hour, day, month, weekday = fields
    return (moment.minute in minute and moment.hour in hour and moment.day in day and moment.month in month
            and (moment.isoweekday() % 7) in weekday)


def _cron(instance, attribute, value):
    if value is not None:
        parse_cron(value)


def _hhmm_or_none(instance, attribute, value):
    if value is not None:
        _hhmm(instance, attribute, value)


def _positive_or_none(instance, attribute, value):
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name}: expected a number of seconds above 0, got {value!r}")


@attrs.frozen
class Schedule:
    """When a monitor runs. At most one of ``every``, ``at`` and ``cron``; none falls back to the monitor's own."""

    enabled: bool = True
    every: float | None = attrs.field(default=None, validator=_positive_or_none)
    at: str | None = attrs.field(default=None, validator=_hhmm_or_none)
    cron: str | None = attrs.field(default=None, validator=_cron)

    def __attrs_post_init__(self):
        if sum(x is not None for x in (self.every, self.at, self.cron)) > 1:
            raise ValueError("give one of every, at and cron")


def monitors_table(site) -> dict[str, Any]:
    return site.section("monitors")


def schedule_of(site, monitor: Monitor) -> Schedule:
    """The monitor's schedule: ``[monitors.NAME]`` keys over the monitor's own ``every``/``at``."""
    table = monitors_table(site).get(monitor.name, {})
    if not isinstance(table, dict):
        raise ConfigError(site.config.source, f"monitors.{monitor.name}", "expected a table")
    schedule = structure(Schedule, {k: v for k, v in table.items() if k in SCHEDULE_KEYS},
                         path=f"monitors.{monitor.name}", source=site.config.source)
    if schedule.every is None and schedule.at is None and schedule.cron is None:
        schedule = attrs.evolve(schedule, every=monitor.every if monitor.every or monitor.at else 60.0,
                                at=monitor.at)
    return schedule


def monitor_options(site, name: str, cls: type) -> Any:
    """A monitor's own options: ``[monitors.NAME]`` without the schedule keys, checked against ``cls``."""
    table = monitors_table(site).get(name, {})
    return structure(cls, {k: v for k, v in table.items() if k not in SCHEDULE_KEYS},
                     path=f"monitors.{name}", source=site.config.source)


def check_config(site) -> None:
    """Fail at start-up, naming the key, on an unknown monitor name or a bad schedule."""
    registered = site.registry.monitors
    for name in monitors_table(site):
        if name not in registered:
            raise ConfigError(site.config.source, f"monitors.{name}",
                              f"no such monitor (registered: {', '.join(sorted(registered)) or 'none'})")
    for monitor in registered.values():
        schedule_of(site, monitor)
    from esomp_core.builtin.monitors import OPTIONS  # the built-ins' own options are checked up front too

    for name, cls in OPTIONS.items():
        if name in registered:
            monitor_options(site, name, cls)


def is_due(site, schedule: Schedule, last_run: datetime | None, now: datetime) -> bool:
    if not schedule.enabled:
        return False
    if schedule.every is not None:
        return last_run is None or (now - last_run).total_seconds() >= schedule.every
    if schedule.at is not None:
        day = site.calendar.business_date(now)
        if not site.calendar.is_trading_day(day):
            return False
        hours, minutes = map(int, schedule.at.split(":"))
        moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=hours, minutes=minutes)
        if moment.time() < site.calendar.day_change:  # a time node after midnight belongs to the same day
            moment += timedelta(days=1)
        return now >= moment and (last_run is None or last_run < moment)
    fields = parse_cron(schedule.cron)
    minute = now.replace(second=0, microsecond=0)
    start = max(last_run.replace(second=0, microsecond=0) + timedelta(minutes=1), minute - timedelta(days=1)) \
        if last_run else minute
    while start <= minute:  # any minute since the last run that the expression names
        if cron_matches(fields, start):
            return True
        start += timedelta(minutes=1)
    return False


def last_runs(site) -> dict[str, MonitorRun]:
    with site.repository.session() as s:
        return {r.name: r for r in s.scalars(select(MonitorRun))}


@attrs.define
class MonitorOutcome:
    name: str
    findings: int = 0
    raised: int = 0
    updated: int = 0
    resolved: int = 0
    error: str | None = None


def run_monitor(site, monitor: Monitor, now: datetime) -> MonitorOutcome:
    """Run one monitor's check and sync its findings; a failing check is recorded and reported, not raised."""
    outcome = MonitorOutcome(monitor.name)
    try:
        findings = [f if f.business_type != "core" or monitor.business_type == "core"
                    else attrs.evolve(f, business_type=monitor.business_type)
                    for f in (monitor.check(site, now) or ())]
    except Exception as exc:  # one broken monitor must not stop the others
        outcome.error = f"{type(exc).__name__}: {exc}"
        log.error("monitor %s failed: %s\n%s", monitor.name, outcome.error, traceback.format_exc(limit=5))
        alerts.record_failure(site, monitor.name, outcome.error, now)
        return outcome
    result = alerts.sync(site, monitor.name, findings, now)
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


def run_due(site, now: datetime, *, force: bool = False, only: Iterable[str] | None = None) -> list[MonitorOutcome]:
    """Run every monitor due at ``now`` (every enabled one with ``force``), in name order."""
    monitors = all_monitors(site)
    if only is not None:
        only = list(only)
        unknown = [n for n in only if n not in monitors]
        if unknown:
            raise LookupError(f"no monitor {unknown[0]!r} (registered: {', '.join(sorted(monitors))})")
        monitors = {n: monitors[n] for n in only}
    runs = last_runs(site)
    outcomes = []
    for name, monitor in sorted(monitors.items()):
        schedule = schedule_of(site, monitor)
        last = runs[name].last_run_at if name in runs else None
        if (force and schedule.enabled) or is_due(site, schedule, last, now):
            outcomes.append(run_monitor(site, monitor, now))
    return outcomes
