"""When monitors run: the schedule keys of ``[monitors.NAME]`` (``every`` seconds, ``at = "HH:MM"`` on trading
days, or a five-field ``cron``, and ``enabled``). Time is always passed in (``now``): the daemon, the CLI and
tests drive it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from esomp_core import ConfigError, Monitor, hhmm, structure

_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))


def _cron_values(part: str, text: str, name: str, low: int, high: int) -> set[int]:
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
    return values


def parse_cron(text: str) -> list[set[int]]:
    """Five fields (minute hour day month weekday, 0 = Sunday) of ``*``, ``N``, ``A-B``, ``*/S``, ``A-B/S``, lists."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"cron: expected 5 fields (minute hour day month weekday), got {text!r}")
    return [_cron_values(part, text, *field) for part, field in zip(parts, _CRON_FIELDS)]


def cron_matches(fields: list[set[int]], moment: datetime) -> bool:
    minute, hour, day, month, weekday = fields
    return (moment.minute in minute and moment.hour in hour and moment.day in day and moment.month in month
            and (moment.isoweekday() % 7) in weekday)


def _cron(instance, attribute, value):
    if value is not None:
        parse_cron(value)


def _positive_or_none(instance, attribute, value):
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name}: expected a number of seconds above 0, got {value!r}")


@attrs.frozen
class Schedule:
    """When a monitor runs. At most one of ``every``, ``at`` and ``cron``; none falls back to the monitor's own."""

    enabled: bool = True
    every: float | None = attrs.field(default=None, validator=_positive_or_none)
    at: str | None = attrs.field(default=None, validator=hhmm)
    cron: str | None = attrs.field(default=None, validator=_cron)

    def __attrs_post_init__(self):
        if sum(x is not None for x in (self.every, self.at, self.cron)) > 1:
            raise ValueError("give one of every, at and cron")


SCHEDULE_KEYS = tuple(attrs.fields_dict(Schedule))


def schedule_of(site, monitor: Monitor) -> Schedule:
    """The monitor's schedule: ``[monitors.NAME]`` keys over the monitor's own ``every``/``at``."""
    table = site.section("monitors").get(monitor.name, {})
    if not isinstance(table, dict):
        raise ConfigError(site.config.source, f"monitors.{monitor.name}", "expected a table")
    schedule = structure(Schedule, {k: v for k, v in table.items() if k in SCHEDULE_KEYS},
                         path=f"monitors.{monitor.name}", source=site.config.source)
    if schedule.every is None and schedule.at is None and schedule.cron is None:
        schedule = attrs.evolve(schedule, every=monitor.every if monitor.every or monitor.at else 60.0,
                                at=monitor.at)
    return schedule


def is_due(site, schedule: Schedule, last_run: datetime | None, now: datetime) -> bool:
    if not schedule.enabled:
        return False
    if schedule.every is not None:
        return last_run is None or (now - last_run).total_seconds() >= schedule.every
    if schedule.at is not None:
        return _at_is_due(site, schedule.at, last_run, now)
    return _cron_is_due(parse_cron(schedule.cron), last_run, now)


def _at_is_due(site, at: str, last_run: datetime | None, now: datetime) -> bool:
    """Once on each trading day, at or after its time node."""
    day = site.calendar.business_date(now)
    if not site.calendar.is_trading_day(day):
        return False
    hours, minutes = map(int, at.split(":"))
    moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=hours, minutes=minutes)
    if moment.time() < site.calendar.day_change:  # a time node after midnight belongs to the same day
        moment += timedelta(days=1)
    return now >= moment and (last_run is None or last_run < moment)


def _cron_is_due(fields: list[set[int]], last_run: datetime | None, now: datetime) -> bool:
    """Any minute since the last run (at most a day back) that the expression names."""
    minute = now.replace(second=0, microsecond=0)
    start = max(last_run.replace(second=0, microsecond=0) + timedelta(minutes=1), minute - timedelta(days=1)) \
        if last_run else minute
    while start <= minute:
        if cron_matches(fields, start):
            return True
        start += timedelta(minutes=1)
    return False
