"""The alert store: findings synced into alerts, and operators' acknowledgements, with the alert events.

A monitor's findings are synced against the open alerts it raised before: a new (rule, subject) opens an alert
and fires ``alert_raised``; a repeat only bumps ``count`` and ``last_seen``; a rule the monitor reports no longer
for a subject resolves that alert. Operators acknowledge alerts (消息服务 "确认") with a comment, which fires
``alert_acknowledged``. Running monitors on schedules, silences and notifications are a plugin's (esomp-monitor).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable

import attrs
from sqlalchemy import select

from esomp_core.model import Alert, Finding
from esomp_core.repository.models import Alert as AlertRow
from esomp_core.repository.models import MonitorRun

STATES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
SEVERITIES = ("info", "warning", "error", "critical")

log = logging.getLogger("esomp.alerts")


def to_alert(row: AlertRow) -> Alert:
    return Alert(id=row.id, rule=row.rule, subject=row.subject, severity=row.severity, message=row.message,
                 state=row.state, count=row.count, business_type=row.business_type,
                 acknowledged_by=row.acknowledged_by, comment=row.comment)


def _check_finding(finding: Finding, source: str) -> None:
    if finding.severity not in SEVERITIES:
        raise ValueError(f"monitor {source}: finding {finding.rule} {finding.subject}: unknown severity "
                         f"{finding.severity!r} (expected one of {', '.join(SEVERITIES)})")


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
        before = _remember_conditions(s, source, findings, now)
        active = _active_rows(s, before | {(f.rule, f.subject) for f in findings})
        for finding in findings:
            _store_finding(s, active.pop((finding.rule, finding.subject), None), finding, now, result)
        for row in active.values():  # this monitor reported it before, not now: the condition is over
            row.state, row.resolved_at = "resolved", now
            result.resolved.append(to_alert(row))
    for alert in result.raised:
        _fire(site, "alert_raised", alert)
    return result


def _remember_conditions(session, source: str, findings: list[Finding], now: datetime) -> set[tuple[str, str]]:
    """Record the conditions ``source`` sees now in its monitor run; return those it saw last time."""
    run = session.get(MonitorRun, source) or MonitorRun(name=source, findings=0, conditions=[])
    session.add(run)
    before = {tuple(c) for c in run.conditions or ()}
    run.last_run_at, run.findings, run.error = now, len(findings), None
    run.conditions = sorted([f.rule, f.subject] for f in findings)
    return before


def _active_rows(session, conditions: set[tuple[str, str]]) -> dict[tuple[str, str], AlertRow]:
    rules = sorted({rule for rule, _ in conditions})
    rows = session.scalars(select(AlertRow).where(AlertRow.rule.in_(rules), AlertRow.state.in_(ACTIVE)))
    return {(r.rule, r.subject): r for r in rows if (r.rule, r.subject) in conditions}


def _store_finding(session, row: AlertRow | None, finding: Finding, now: datetime, result: SyncResult) -> None:
    """Open an alert for a new condition, or count a repeat of an active one."""
    if row is None:
        row = AlertRow(rule=finding.rule, subject=finding.subject, severity=finding.severity,
                       message=finding.message, business_type=finding.business_type, state="open",
                       count=1, first_seen=now, last_seen=now)
        session.add(row)
        session.flush()
        result.raised.append(to_alert(row))
    else:
        row.count += 1
        row.last_seen, row.message, row.severity = now, finding.message, finding.severity
        result.updated.append(to_alert(row))


def _fire(site, hook: str, alert: Alert) -> None:
    from esomp_core.plugins import call_each

    for plugin, exc in call_each(site.pm, hook, alert=alert, site=site):
        # observers must not raise; one that does is reported and the others still hear the event
        log.error("plugin %s failed in %s: %s: %s", plugin, hook, type(exc).__name__, exc)


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
