"""What gets notified, with Alertmanager's semantics; what delivers it lives in hooks/notify.

Open alerts are grouped (``group_by``); a group is notified after ``group_wait``, again when new alerts join it
(at most every ``group_interval``) and otherwise only every ``repeat_interval`` while open. Acknowledged alerts
are not repeated; alerts matching a silence are not notified; a lateness alert is inhibited while a job upstream
of it has failed.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

import attrs
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from esomp_core import ACTIVE_ALERT_STATES, AlertRow, JobRow, RunRow, structure
from esomp_monitor.models import NotificationGroup
from esomp_monitor.listing import as_dict
from esomp_monitor.silences import active_silences, is_silenced


@attrs.frozen
class InhibitRule:
    """Alerts of ``targets`` rules are not notified while an alert of ``sources`` rules is active upstream."""

    sources: list[str]
    targets: list[str]


def _default_inhibit() -> list[InhibitRule]:
    return [InhibitRule(sources=["job.failed", "files.missing", "fs.missing_files", "fs.collect_error"],
                        targets=["job.late", "batch.late", "job.overrun"])]


def _group_by(instance, attribute, value):
    allowed = {"rule", "subject", "severity", "business_type"}
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ValueError(f"{attribute.name}: unknown label {bad[0]!r} (expected some of {', '.join(sorted(allowed))})")


@attrs.frozen
class AlertPolicy:
    """``[alerts]`` in esomp.toml: grouping, repetition and inhibition of notifications (seconds)."""

    group_by: list[str] = attrs.field(factory=lambda: ["business_type", "rule"], validator=_group_by)
    group_wait: float = 0.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    inhibit: list[InhibitRule] = attrs.field(factory=_default_inhibit)


def alert_policy(site) -> AlertPolicy:
    return structure(AlertPolicy, site.section("alerts"), path="alerts", source=site.config.source)


# --- inhibition -------------------------------------------------------------------------------------------------------


def _split_subject(subject: str) -> tuple[str, str]:
    date, _, rest = subject.partition("/")
    return date, rest


def _day_jobs(session, date: str) -> dict[str, Any]:
    run_id = session.scalar(select(RunRow.id).where(RunRow.date == date))
    if not run_id:
        return {}
    rows = session.execute(select(JobRow.name, JobRow.batch, JobRow.channel, JobRow.depends_on)
                           .where(JobRow.run_id == run_id))
    return {j.name: j for j in rows}


def _upstream_names(jobs: dict[str, Any], what: str) -> set[str]:
    """The jobs a target alert covers (a job, or every job of ``batch N``), those upstream, and their channels."""
    covered = [n for n, j in jobs.items() if str(j.batch) == what[6:]] if what.startswith("batch ") \
        else [what] if what in jobs else []
    upstream, todo = set(), list(covered)
    while todo:
        name = todo.pop()
        if name not in upstream and name in jobs:
            upstream.add(name)
            todo.extend(jobs[name].depends_on or ())
    return upstream | {jobs[n].channel for n in upstream if jobs[n].channel}


def _inhibited(session, rows: list[AlertRow], active: list[AlertRow], rules: list[InhibitRule]) -> set[int]:
    """Ids of ``rows`` inhibited: a source alert is active on a job (or its channel) upstream of the target."""
    inhibited: set[int] = set()
    jobs_by_date: dict[str, dict[str, Any]] = {}
    for rule in rules:
        sources = {_split_subject(a.subject) for a in active if a.rule in rule.sources}
        for row in (r for r in rows if sources and r.rule in rule.targets):
            date, what = _split_subject(row.subject)
            if date not in jobs_by_date:
                jobs_by_date[date] = _day_jobs(session, date)
            if any((date, name) in sources for name in _upstream_names(jobs_by_date[date], what)):
                inhibited.add(row.id)
    return inhibited


# --- notifications ----------------------------------------------------------------------------------------------------


@attrs.define
class Notification:
    """One message about one group of alerts; delivery plugins route its alerts to their targets."""

    group_key: str
    reason: str  # "new": alerts joined the group; "repeat": still open after the repeat interval
    alerts: list[dict[str, Any]]


def _group_key(row: AlertRow, labels: list[str]) -> str:
    return ",".join(f"{label}={getattr(row, label)}" for label in labels) or "all"


def _claim(session, key: str, last: datetime | None, now: datetime, ids: list[int]) -> bool:
    """Mark a group sent, unless another worker did so since we looked (then it is theirs to send)."""
    same_last = NotificationGroup.last_sent_at.is_(None) if last is None else NotificationGroup.last_sent_at == last
    return session.execute(update(NotificationGroup).where(NotificationGroup.key == key, same_last)
                           .values(last_sent_at=now, alert_ids=ids)).rowcount == 1


def _ensure_groups(site, keys: set[str]) -> None:
    """Create the state rows of groups never seen, each in its own transaction (a concurrent creator wins)."""
    with site.repository.session() as s:
        keys = keys - set(s.scalars(select(NotificationGroup.key).where(NotificationGroup.key.in_(keys))))
    for key in sorted(keys):
        try:
            with site.repository.session() as s:
                s.add(NotificationGroup(key=key, last_sent_at=None, alert_ids=[]))
        except IntegrityError:
            pass


def _groups(session, now: datetime, policy: AlertPolicy) -> dict[str, list[AlertRow]]:
    """Open alerts that are neither silenced nor inhibited, by group key."""
    active = list(session.scalars(select(AlertRow).where(AlertRow.state.in_(ACTIVE_ALERT_STATES))
                                  .order_by(AlertRow.id)))
    silences = active_silences(session, now)
    candidates = [r for r in active if r.state == "open" and not is_silenced(r, silences)]
    blocked = _inhibited(session, candidates, active, policy.inhibit)
    groups: dict[str, list[AlertRow]] = {}
    for row in candidates:
        if row.id not in blocked:
            groups.setdefault(_group_key(row, policy.group_by), []).append(row)
    return groups


def _reason(state: NotificationGroup, rows: list[AlertRow], now: datetime, policy: AlertPolicy) -> str | None:
    """Why the group is notified now ("new" or "repeat"), or None when it waits."""
    last = state.last_sent_at
    if last is None:
        return "new" if now >= min(r.first_seen for r in rows) + timedelta(seconds=policy.group_wait) else None
    since = (now - last).total_seconds()
    if set(r.id for r in rows) - set(state.alert_ids or ()) and since >= policy.group_interval:
        return "new"
    return "repeat" if since >= policy.repeat_interval else None


def due_notifications(site, now: datetime, policy: AlertPolicy | None = None,
                      record: Callable[[Any, list[Notification]], None] | None = None) -> list[Notification]:
    """The notifications due at ``now``, marked as sent. ``record(session, notifications)`` runs in the same
    transaction, so a delivery plugin's outbox rows and the groups' "sent" marks commit together or not at all."""
    policy = policy or alert_policy(site)
    due: list[Notification] = []
    with site.repository.session() as s:
        keys = {_group_key(r, policy.group_by) for r in s.scalars(select(AlertRow).where(AlertRow.state == "open"))}
    _ensure_groups(site, keys)
    with site.repository.session() as s:
        for key, rows in sorted(_groups(s, now, policy).items()):
            state = s.get(NotificationGroup, key)
            if state is None:  # an alert opened since we created the groups: next pass
                continue
            reason = _reason(state, rows, now, policy)
            if reason and _claim(s, key, state.last_sent_at, now, [r.id for r in rows]):
                due.append(Notification(key, reason, [as_dict(r) for r in rows]))
        if record is not None and due:
            record(s, due)
    return due
