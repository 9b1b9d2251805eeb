"""The cleanup template (清空模板) the daemon applies once a day: retention days per working directory, old job
events and resolved alerts."""
from __future__ import annotations

import logging
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import delete

from esomp_core import AlertRow, JobEventRow, hhmm
from esomp_monitor.runner import record_run

log = logging.getLogger("esomp.daemon")

CLEANUP_NAME = "daemon:cleanup"


def _keep_days(instance, attribute, value):
    # the keys are checked against the site's directories (the core's and its plugins'): see daemon_options
    for key, days in value.items():
        if days < 0:
            raise ValueError(f"{attribute.name}.{key}: expected days of 0 or more, got {days!r}")


@attrs.frozen
class CleanupOptions:
    """``[daemon.cleanup]``: the cleanup template (清空模板). Days are calendar days; absent means keep forever."""

    at: str = attrs.field(default="20:00", validator=hhmm)
    directories: dict[str, int] = attrs.field(factory=dict, validator=_keep_days)
    """Working-directory key -> days to keep its entries (date-named ones by name, others by modification time)."""
    job_events_days: int | None = None
    resolved_alerts_days: int | None = None


def _is_old(entry: Path, cutoff: datetime) -> bool:
    """By the entry's date name (YYYYMMDD...) when it has one, else by its modification time."""
    match = re.match(r"(\d{8})(?!\d)", entry.name)
    if match:
        try:
            day = datetime.strptime(match.group(1), "%Y%m%d")
            return day < cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
        except ValueError:
            pass
    return datetime.fromtimestamp(entry.lstat().st_mtime) < cutoff


def remove_older(root: Path, cutoff: datetime) -> list[str]:
    """Remove entries directly under ``root`` older than ``cutoff``; returns their names."""
    removed = []
    if not root.is_dir():
        return removed
    for entry in sorted(root.iterdir()):
        if not _is_old(entry, cutoff):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed


def _delete_old_rows(session, options: CleanupOptions, now: datetime) -> dict[str, int]:
    removed = {}
    if options.job_events_days is not None:
        removed["job_events"] = session.execute(delete(JobEventRow).where(
            JobEventRow.at < now - timedelta(days=options.job_events_days))).rowcount
    if options.resolved_alerts_days is not None:
        removed["resolved_alerts"] = session.execute(delete(AlertRow).where(
            AlertRow.state == "resolved",
            AlertRow.resolved_at < now - timedelta(days=options.resolved_alerts_days))).rowcount
    return removed


def cleanup(site, options: CleanupOptions, now: datetime) -> dict[str, Any]:
    """Apply the cleanup template at ``now``; returns what was removed."""
    removed: dict[str, Any] = {}
    for key, days in options.directories.items():
        location = site.directory(key)
        if "://" not in location:
            removed[key] = remove_older(Path(location), now - timedelta(days=days))
    with site.repository.session() as s:
        removed.update(_delete_old_rows(s, options, now))
    record_run(site, CLEANUP_NAME, now)
    log.info("cleanup at %s: %s", now, removed)
    return removed
