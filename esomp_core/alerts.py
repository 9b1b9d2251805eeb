"""The alert store, with Alertmanager's semantics.

A monitor's findings are synced against the open alerts it raised before: a new (rule, subject) opens an alert
and fires ``alert_raised``; a repeat only bumps ``count`` and ``last_seen``; a rule the monitor reports no longer
for a subject resolves that alert. Operators acknowledge alerts (消息服务 "确认") with a comment.

What gets notified is decided here, what delivers it lives in hooks/notify: open alerts are grouped (``group_by``),
a group is notified after ``group_wait``, again when new alerts join it (at most every ``group_interval``) and
otherwise only every ``repeat_interval`` while open. Acknowledged alerts are not repeated; alerts matching a
silence (maintenance window) are not notified; a lateness alert is inhibited while a job upstream of it has failed.
"""
from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

import attrs
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from esomp_core.model import Alert, Finding
from esomp_core.repository.models import Alert as AlertRow
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run
from esomp_core.repository.monitoring_models import MonitorRun, NotificationGroup, Silence

STATES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
SEVERITIES = ("info", "warning", "error", "critical")


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
    from esomp_core.config import structure

    return structure(AlertPolicy, site.section("alerts"), path="alerts", source=site.config.source)


def to_alert(row: AlertRow) -> Alert:
    return Alert(id=row.id, rule=row.rule, subject=row.subject, severity=row.severity, message=row.message,
                 state=row.state, count=row.count, business_type=row.business_type,
                 acknowledged_by=row.acknowledged_by, comment=row.comment)


def as_dict(row: AlertRow) -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "subject": row.subject, "severity": row.severity,
            "message": row.message, "business_type": row.business_type, "state": row.state, "count": row.count,
            "first_seen": row.first_seen, "last_seen": row.last_seen, "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at, "comment": row.comment, "resolved_at": row.resolved_at}


def _check_finding(finding: Finding, source: str) -> None:
    if finding.severity not in SEVERITIES:
        raise ValueError(f"monitor {source}: finding {finding.rule} {finding.subject}: unknown severity "
                         f"{finding.severity!r} (expected one of {', '.join(SEVERITIES)})")


# --- raising, updating, resolving ---------------------------------------------------------------------------------


@attrs.define
class SyncResult:
    raised: list[Alert] = attrs.field(factory=list)
    updated: list[Alert] = attrs.field(factory=list)
    resolved: list[Alert] = attrs.field(factory=list)


def sync(site, source: str, findings: Iterable[Finding], now: datetime) -> SyncResult:
    """Store what monitor ``source`` sees at ``now``; close the alerts it reported before and sees no more."""
    findings = list({(f.rule, f.subject): f for f in findings}.values())  # one per condition
    for finding in findings:
        _check_finding(finding, source)
    result = SyncResult()
    with site.repository.session() as s:
        run = s.get(MonitorRun, source) or MonitorRun(name=source, findings=0, conditions=[])
        s.add(run)
        before = {tuple(c) for c in run.conditions or ()}
        now_seen = {(f.rule, f.subject) for f in findings}
        run.last_run_at, run.findings, run.error = now, len(findings), None
        run.conditions = sorted([list(c) for c in now_seen])
        rules = sorted({rule for rule, _ in before | now_seen})
        active = {(r.rule, r.subject): r for r in s.scalars(
            select(AlertRow).where(AlertRow.rule.in_(rules), AlertRow.state.in_(ACTIVE)))
            if (r.rule, r.subject) in before | now_seen}
        for finding in findings:
            row = active.pop((finding.rule, finding.subject), None)
            if row is None:
                row = AlertRow(rule=finding.rule, subject=finding.subject, severity=finding.severity,
                               message=finding.message, business_type=finding.business_type, state="open",
                               count=1, first_seen=now, last_seen=now)
                s.add(row)
                s.flush()
                result.raised.append(to_alert(row))
            else:
                row.count += 1
                row.last_seen, row.message, row.severity = now, finding.message, finding.severity
                result.updated.append(to_alert(row))
        for row in active.values():  # this monitor reported it before, not now: the condition is over
            row.state, row.resolved_at = "resolved", now
            result.resolved.append(to_alert(row))
    for alert in result.raised:
        _fire(site, "alert_raised", alert)
    return result


def record_failure(site, source: str, error: str, now: datetime) -> None:
    """A monitor's check raised: remember the error; its alerts stay as they are (we know nothing new)."""
    with site.repository.session() as s:
        run = s.get(MonitorRun, source) or MonitorRun(name=source, findings=0, conditions=[])
        s.add(run)
        run.last_run_at, run.error = now, error


def _fire(site, hook: str, alert: Alert) -> None:
    from esomp_core.plugins import call_each

    for plugin, exc in call_each(site.pm, hook, alert=alert, site=site):
        # observers must not raise; one that does is reported and the others still hear the event
        import logging

        logging.getLogger("esomp.alerts").error("plugin %s failed in %s: %s: %s", plugin, hook,
                                                type(exc).__name__, exc)


def acknowledge(site, alert_id: int, user: str, comment: str) -> Alert:
    """An operator acknowledges an open alert (确认): who and why are recorded; ``alert_acknowledged`` fires."""
    if not user or not user.strip():
        raise ValueError("acknowledging needs the operator's name")
    if not comment or not comment.strip():
        raise ValueError(f"alert {alert_id}: acknowledging needs a comment saying why")
    with site.repository.session() as s:
        row = s.get(AlertRow, alert_id)
        if row is None:
            raise LookupError(f"no alert {alert_id}")
        if row.state != "open":
            by = f" by {row.acknowledged_by}" if row.acknowledged_by else ""
            raise ValueError(f"alert {alert_id} is {row.state}{by}; only open alerts can be acknowledged")
        row.state, row.acknowledged_by, row.acknowledged_at = "acknowledged", user.strip(), datetime.now()
        row.comment = comment.strip()
        alert = to_alert(row)
    _fire(site, "alert_acknowledged", alert)
    return alert


def list_alerts(site, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts newest first (by last seen), optionally of one state; each with ``silenced`` for now."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown alert state {state!r} (expected one of {', '.join(STATES)})")
    now = datetime.now()
    with site.repository.session() as s:
        query = select(AlertRow).order_by(AlertRow.last_seen.desc(), AlertRow.id.desc()).limit(limit)
        if state is not None:
            query = query.where(AlertRow.state == state)
        rows = s.scalars(query).all()
        silences = _active_silences(s, now)
        return [{**as_dict(r), "silenced": r.state != "resolved" and _silenced(r, silences)} for r in rows]


# --- silences -------------------------------------------------------------------------------------------------------


def add_silence(site, *, rule: str = "*", subject: str = "*", starts_at: datetime, ends_at: datetime,
                created_by: str, comment: str = "") -> int:
    """Declare a maintenance window; returns the silence's id."""
    if ends_at <= starts_at:
        raise ValueError(f"silence ends ({ends_at:%Y-%m-%d %H:%M}) before it starts ({starts_at:%Y-%m-%d %H:%M})")
    if rule == "*" and subject == "*" and not comment:
        raise ValueError("a silence of every alert needs a comment saying why")
    with site.repository.session() as s:
        row = Silence(rule=rule, subject=subject, starts_at=starts_at, ends_at=ends_at, created_by=created_by,
                      comment=comment)
        s.add(row)
        s.flush()
        return row.id


def list_silences(site, now: datetime | None = None) -> list[dict[str, Any]]:
    """Silences in force at ``now`` or later (all of them when ``now`` is None)."""
    with site.repository.session() as s:
        query = select(Silence).order_by(Silence.starts_at)
        if now is not None:
            query = query.where(Silence.ends_at > now)
        return [{"id": r.id, "rule": r.rule, "subject": r.subject, "starts_at": r.starts_at, "ends_at": r.ends_at,
                 "created_by": r.created_by, "comment": r.comment} for r in s.scalars(query)]


def expire_silence(site, silence_id: int, now: datetime) -> None:
    with site.repository.session() as s:
        row = s.get(Silence, silence_id)
        if row is None:
            raise LookupError(f"no silence {silence_id}")
        row.ends_at = min(row.ends_at, now)


def _active_silences(session, now: datetime) -> list[Silence]:
    return list(session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)))


def _silenced(row: AlertRow, silences: list[Silence]) -> bool:
    return any(fnmatch.fnmatchcase(row.rule, s.rule) and fnmatch.fnmatchcase(row.subject, s.subject)
               for s in silences)


# --- inhibition -------------------------------------------------------------------------------------------------------


def _split_subject(subject: str) -> tuple[str, str]:
    date, _, rest = subject.partition("/")
    return date, rest


def _inhibited(session, rows: list[AlertRow], active: list[AlertRow], rules: list[InhibitRule]) -> set[int]:
    """Ids of ``rows`` inhibited: a source alert is active on a job (or its channel) upstream of the target."""
    inhibited: set[int] = set()
    jobs_by_date: dict[str, list[Any]] = {}
    for rule in rules:
        sources = [a for a in active if a.rule in rule.sources]
        if not sources:
            continue
        for row in rows:
            if row.rule not in rule.targets:
                continue
            date, what = _split_subject(row.subject)
            if date not in jobs_by_date:
                run_id = session.scalar(select(Run.id).where(Run.date == date))
                jobs_by_date[date] = list(session.execute(
                    select(JobRow.name, JobRow.batch, JobRow.channel, JobRow.depends_on)
                    .where(JobRow.run_id == run_id))) if run_id else []
            jobs = {j.name: j for j in jobs_by_date[date]}
            if what.startswith("batch "):
                covered = [n for n, j in jobs.items() if str(j.batch) == what[6:]]
            else:
                covered = [what] if what in jobs else []
            upstream, todo = set(), list(covered)
            while todo:
                name = todo.pop()
                if name not in upstream and name in jobs:
                    upstream.add(name)
                    todo.extend(jobs[name].depends_on or ())
            names = upstream | {jobs[n].channel for n in upstream if jobs[n].channel}
            if any(_split_subject(src.subject) in {(date, n) for n in names} for src in sources):
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
    return session.execute(update(NotificationGroup).where(NotificationGroup.key == key,
                                                           NotificationGroup.last_sent_at.is_(None) if last is None
                                                           else NotificationGroup.last_sent_at == last)
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
        active = list(s.scalars(select(AlertRow).where(AlertRow.state.in_(ACTIVE)).order_by(AlertRow.id)))
        silences = _active_silences(s, now)
        candidates = [r for r in active if r.state == "open" and not _silenced(r, silences)]
        blocked = _inhibited(s, candidates, active, policy.inhibit)
        groups: dict[str, list[AlertRow]] = {}
        for row in candidates:
            if row.id not in blocked:
                groups.setdefault(_group_key(row, policy.group_by), []).append(row)
        for key, rows in sorted(groups.items()):
            state = s.get(NotificationGroup, key)
            ids = [r.id for r in rows]
            last = state.last_sent_at if state else None
            fresh = set(ids) - set(state.alert_ids or ()) if state else set(ids)
            if state is None:  # an alert opened since we created the groups: next pass
                continue
            since = (now - last).total_seconds() if last else None
            if since is None:
                reason = "new" if now >= min(r.first_seen for r in rows) + timedelta(seconds=policy.group_wait) \
                    else None
            elif fresh and since >= policy.group_interval:
                reason = "new"
            elif since >= policy.repeat_interval:
                reason = "repeat"
            else:
                reason = None
            if reason and _claim(s, key, last, now, ids):
                due.append(Notification(key, reason, [as_dict(r) for r in rows]))
        if record is not None and due:
            record(s, due)
    return due
