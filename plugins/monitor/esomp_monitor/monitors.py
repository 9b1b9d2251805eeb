"""The built-in monitors (监控提醒): failed jobs, lateness against time nodes, overruns, missing files, disk space
and unmatched accounts. Each reads its options from ``[monitors.NAME]`` (see docs/monitoring.md).

Every check looks at the trading day under way at ``now`` and reports the conditions that hold now; the alert
store turns repeats into counts and vanished conditions into resolutions.
"""
from __future__ import annotations

import fnmatch
import shutil
import statistics
from datetime import date as Date
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import select

from esomp_core import (ALERT_SEVERITIES, DIRECTORIES, ConfigError, FileRow, Finding, JobRow, Monitor, RunRow,
                        expand_date_tokens, hhmm, monitor_options, ymd)

SEVERITY = attrs.validators.in_(ALERT_SEVERITIES)


def _positive(instance, attribute, value):
    if value <= 0:
        raise ValueError(f"{attribute.name}: expected a number above 0, got {value!r}")


def _not_negative(instance, attribute, value):
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name}: expected a number of 0 or more, got {value!r}")


# --- shared helpers ---------------------------------------------------------------------------------------------


def trading_day(site, now: datetime) -> Date:
    return site.calendar.current_trading_day(now)


def time_node(site, day: Date, hhmm: str) -> datetime:
    """The moment of a time node (时间节点) of business date ``day``; before the day change it is the next morning."""
    hours, minutes = map(int, hhmm.split(":"))
    moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=hours, minutes=minutes)
    return moment + timedelta(days=1) if moment.time() < site.calendar.day_change else moment


def day_jobs(site, date: str) -> list[JobRow]:
    with site.repository.session() as s:
        run_id = s.scalar(select(RunRow.id).where(RunRow.date == date))
        if run_id is None:
            return []
        return list(s.scalars(select(JobRow).where(JobRow.run_id == run_id).order_by(JobRow.id)))


# --- job failed ---------------------------------------------------------------------------------------------------


@attrs.frozen
class JobFailedOptions:
    severity: str = attrs.field(default="error", validator=SEVERITY)


def check_job_failed(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "job_failed", JobFailedOptions)
    date = ymd(trading_day(site, now))
    return [Finding("job.failed", f"{date}/{job.name}", options.severity,
                    f"job {job.name} ({job.category or job.stage}) failed: "
                    + ((job.error or "").splitlines() or ["no error recorded"])[0], job.business_type)
            for job in day_jobs(site, date) if job.state == "failed"]


# --- lateness against time nodes (数据报送时间节点提醒, 对账时间节点提醒) ------------------------------------------------


@attrs.frozen
class LateOptions:
    jobs: dict[str, str] = attrs.field(factory=dict, validator=hhmm)
    """Job name (shell wildcards) -> HH:MM by which it must have succeeded."""
    batches: dict[str, str] = attrs.field(factory=dict, validator=hhmm)
    """Batch number -> HH:MM by which every job of the batch must have succeeded."""
    severity: str = attrs.field(default="warning", validator=SEVERITY)


def check_late(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "job_late", LateOptions)
    for key in options.batches:
        if not key.isdigit():
            raise ConfigError(site.config.source, f"monitors.job_late.batches.{key}",
                              "expected a batch number as the key")
    day = trading_day(site, now)
    date = ymd(day)
    jobs = day_jobs(site, date)
    found = []
    for pattern, hhmm in options.jobs.items():
        deadline = time_node(site, day, hhmm)
        if now < deadline:
            continue
        for job in jobs:
            if fnmatch.fnmatchcase(job.name, pattern) and job.state != "succeeded":
                found.append(Finding("job.late", f"{date}/{job.name}", options.severity,
                                     f"job {job.name} is {job.state}, due by {hhmm}", job.business_type))
    for batch, hhmm in options.batches.items():
        deadline = time_node(site, day, hhmm)
        members = [j for j in jobs if str(j.batch) == batch]
        undone = [j for j in members if j.state != "succeeded"]
        if now >= deadline and undone:
            states = ", ".join(f"{s}={sum(j.state == s for j in undone)}" for s in sorted({j.state for j in undone}))
            found.append(Finding("batch.late", f"{date}/batch {batch}", options.severity,
                                 f"batch {batch}: {len(undone)} of {len(members)} jobs not done by {hhmm} ({states})",
                                 undone[0].business_type))
    return found


# --- overrun against a job's own history ------------------------------------------------------------------------------


@attrs.frozen
class OverrunOptions:
    factor: float = attrs.field(default=2.0, validator=_positive)
    """A running job is overrunning after p95 x factor of its own past durations."""
    history_days: int = attrs.field(default=20, validator=_positive)
    min_samples: int = attrs.field(default=3, validator=_positive)
    min_seconds: float = attrs.field(default=60.0, validator=_not_negative)
    """Never flag a job running less than this, whatever its history."""
    severity: str = attrs.field(default="warning", validator=SEVERITY)


def p95(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def check_overrun(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "job_overrun", OverrunOptions)
    date = ymd(trading_day(site, now))
    running = [j for j in day_jobs(site, date) if j.state == "running" and j.started_at]
    if not running:
        return []
    with site.repository.session() as s:
        dates = list(s.scalars(select(RunRow.date).where(RunRow.date < date).order_by(RunRow.date.desc())
                               .limit(options.history_days)))
        history: dict[str, list[float]] = {}
        rows = s.execute(select(JobRow.name, JobRow.started_at, JobRow.finished_at).join(RunRow)
                         .where(RunRow.date.in_(dates), JobRow.state == "succeeded",
                                JobRow.name.in_([j.name for j in running])))
        for name, started, finished in rows:
            if started and finished:
                history.setdefault(name, []).append((finished - started).total_seconds())
    found = []
    for job in running:
        past = history.get(job.name, [])
        seconds = (now - job.started_at).total_seconds()
        if len(past) < options.min_samples or seconds < options.min_seconds:
            continue
        limit = p95(past) * options.factor
        if seconds > limit:
            found.append(Finding("job.overrun", f"{date}/{job.name}", options.severity,
                                 f"job {job.name} running {seconds:.0f} s, over {options.factor:g} x p95 "
                                 f"({limit:.0f} s) of its last {len(past)} runs", job.business_type))
    return found


# --- expected collection files missing at their deadline ----------------------------------------------------------------


@attrs.frozen
class FilesMissingOptions:
    expected: dict[str, list[str]] = attrs.field(factory=dict)
    """Channel -> file-name patterns ({date}, {mdd} ... allowed) that must have been collected by ``deadline``."""
    deadline: str | None = attrs.field(default=None, validator=hhmm)
    severity: str = attrs.field(default="error", validator=SEVERITY)


def _channel_expectations(site) -> dict[str, tuple[list[str], str]]:
    """Channel -> (patterns or file type names, deadline HH:MM), as each configured channel answers through its
    ``expectations()`` method when opened. A channel whose kind is not loaded, or has no such method, or
    expects nothing by a deadline, is left out: only the channel's kind knows what its options mean."""
    found = {}
    for name, section in site.config.channels.items():
        if section.kind not in site.registry.channel_kinds:
            continue
        expectations = getattr(site.channel(name), "expectations", None)
        answer = expectations() if callable(expectations) else None
        if answer:
            patterns, deadline = answer
            found[name] = (list(patterns), deadline)
    return found


def _expectations(site, options: FilesMissingOptions) -> dict[str, tuple[list[str], str]]:
    """Channel -> (patterns or file type names, deadline): the channels' own, then this monitor's options."""
    if options.expected and not options.deadline:
        raise ConfigError(site.config.source, "monitors.files_missing.deadline",
                          "missing required key (HH:MM) when expected is given")
    found = _channel_expectations(site)
    for channel, patterns in options.expected.items():
        found[channel] = (list(patterns), options.deadline)
    return found


def _collected_as(site, expected: str, name: str, date: str) -> bool:
    """``name`` is of the expected file type, or matches the expected pattern (case-insensitively)."""
    file_type = site.registry.file_types.get(expected)
    if file_type is not None:
        return file_type.matches(name, date)
    return fnmatch.fnmatchcase(name.lower(), expand_date_tokens(expected, date).lower())


def check_files_missing(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "files_missing", FilesMissingOptions)
    day = trading_day(site, now)
    date = ymd(day)
    found = []
    for channel, (patterns, deadline) in sorted(_expectations(site, options).items()):
        if now < time_node(site, day, deadline):
            continue
        with site.repository.session() as s:
            names = [n.rsplit("/", 1)[-1] for n in s.scalars(select(FileRow.name).where(
                FileRow.date == date, FileRow.channel == channel, FileRow.role.in_(("collected", "unpacked"))))]
        missing = [p if p in site.registry.file_types else expand_date_tokens(p, date)
                   for p in patterns if not any(_collected_as(site, p, n, date) for n in names)]
        if missing:
            found.append(Finding("files.missing", f"{date}/{channel}", options.severity,
                                 f"channel {channel}: {len(missing)} expected file(s) not collected by {deadline}: "
                                 f"{', '.join(missing)}"))
    return found


# --- free disk space (磁盘空间提醒) ------------------------------------------------------------------------------------


@attrs.frozen
class DiskSpaceOptions:
    directories: list[str] = attrs.field(factory=lambda: list(DIRECTORIES))
    """Working-directory keys (collection_root ...) or paths; default: the nine working directories."""
    min_free_percent: float = attrs.field(default=10.0, validator=_not_negative)
    min_free_gb: float = attrs.field(default=0.0, validator=_not_negative)
    severity: str = attrs.field(default="warning", validator=SEVERITY)


def local_path(location: str) -> str | None:
    """The local path behind a path or file:// URL; None for remote fsspec URLs (they cannot report space)."""
    if location.startswith("file://"):
        return location[len("file://"):]
    return None if "://" in location else location


def check_disk_space(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "disk_space", DiskSpaceOptions)
    found = []
    for entry in options.directories:
        location = site.directory(entry) if entry in DIRECTORIES else entry
        path = local_path(location)
        if path is None:
            continue
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            found.append(Finding("disk.unavailable", entry, "error", f"cannot read free space of {path}: {exc}"))
            continue
        percent = 100.0 * usage.free / usage.total if usage.total else 0.0
        gb = usage.free / 1e9
        if percent < options.min_free_percent or gb < options.min_free_gb:
            label = f"{entry} ({DIRECTORIES[entry]})" if entry in DIRECTORIES else entry
            found.append(Finding("disk.low", entry, options.severity,
                                 f"{label}: {gb:.1f} GB free ({percent:.1f} %) at {path}; thresholds "
                                 f"{options.min_free_percent:g} % and {options.min_free_gb:g} GB"))
    return found


# --- unmatched accounts after processing ------------------------------------------------------------------------------


@attrs.frozen
class UnmatchedOptions:
    max_accounts: int = attrs.field(default=0, validator=_not_negative)
    """Alert when a job's records carry more unknown securities accounts than this."""
    max_records: int | None = attrs.field(default=None, validator=_not_negative)
    severity: str = attrs.field(default="warning", validator=SEVERITY)


def unmatched_counts(detail: dict[str, Any]) -> tuple[int, int]:
    """(accounts, records) a processing job could not match to a product, from its detail (trust's layout)."""
    accounts = records = 0
    for item in (detail.get("inputs") or {}).values():
        unmatched = item.get("unmatched") if isinstance(item, dict) else None
        if isinstance(unmatched, dict):
            accounts += int(unmatched.get("accounts", 0))
            records += int(unmatched.get("records", 0))
    return accounts, max(records, int(detail.get("unmatched_records", 0) or 0))


def check_unmatched(site, now: datetime) -> list[Finding]:
    options = monitor_options(site, "unmatched_accounts", UnmatchedOptions)
    date = ymd(trading_day(site, now))
    found = []
    for job in day_jobs(site, date):
        if job.state != "succeeded" or not job.detail:
            continue
        accounts, records = unmatched_counts(job.detail)
        if accounts > options.max_accounts or (options.max_records is not None and records > options.max_records):
            found.append(Finding("accounts.unmatched", f"{date}/{job.name}", options.severity,
                                 f"job {job.name}: {records} record(s) of {accounts} account(s) match no product",
                                 job.business_type))
    return found


MONITORS = (
    (Monitor("job_failed", check_job_failed, every=60, description="a job of the day failed"), JobFailedOptions),
    (Monitor("job_late", check_late, every=60,
             description="a job or batch has not succeeded by its time node (时间节点提醒)"), LateOptions),
    (Monitor("job_overrun", check_overrun, every=60,
             description="a job runs far longer than its own history (p95 x factor)"), OverrunOptions),
    (Monitor("files_missing", check_files_missing, every=60,
             description="expected collection files not there at their deadline"), FilesMissingOptions),
    (Monitor("disk_space", check_disk_space, every=300,
             description="free space below a threshold on a working directory (磁盘空间提醒)"), DiskSpaceOptions),
    (Monitor("unmatched_accounts", check_unmatched, every=60,
             description="records whose account matches no product, above a threshold"), UnmatchedOptions),
)
OPTIONS = {monitor.name: options for monitor, options in MONITORS}
