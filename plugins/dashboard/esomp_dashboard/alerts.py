"""Alerts as the dashboard needs them: the monitoring centre's list (which says what is silenced), or the alerts
table directly when filtering by severity; acknowledging goes through the core's alert store, so
``alert_acknowledged`` fires from one place.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from esomp_core import AlertRow as Alert, acknowledge_alert
from esomp_monitor import list_alerts as monitor_list_alerts

SEVERITIES = ("critical", "error", "warning", "info")
STATES = ("open", "acknowledged", "resolved")


def as_dict(row: Alert) -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "subject": row.subject, "severity": row.severity,
            "message": row.message, "business_type": row.business_type, "state": row.state, "count": row.count,
            "first_seen": row.first_seen, "last_seen": row.last_seen, "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at, "comment": row.comment, "resolved_at": row.resolved_at}


def list_alerts(site, *, state: str | None = None, severity: str | None = None, limit: int = 200) -> list[dict]:
    if severity is None:  # the monitoring centre's list also says which alerts are silenced
        return monitor_list_alerts(site, state=state, limit=limit)
    with site.repository.session() as s:
        stmt = select(Alert)
        if state:
            stmt = stmt.where(Alert.state == state)
        if severity:
            stmt = stmt.where(Alert.severity == severity)
        rows = s.scalars(stmt.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)).all()
        return [as_dict(r) for r in rows]


def open_by_severity(site) -> dict[str, int]:
    with site.repository.session() as s:
        rows = s.execute(select(Alert.severity, func.count()).where(Alert.state == "open")
                         .group_by(Alert.severity)).all()
    return {severity: count for severity, count in rows}


class AlertNotFound(LookupError):
    pass


class AlertNotOpen(ValueError):
    pass


def acknowledge(site, alert_id: int, user: str, comment: str) -> dict[str, Any]:
    """Acknowledge an open alert with a comment; returns the alert as stored."""
    with site.repository.session() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id}")
        if row.state != "open":
            raise AlertNotOpen(f"alert {alert_id} is {row.state}, not open")
    acknowledge_alert(site, alert_id, user, comment)
    with site.repository.session() as s:
        return as_dict(s.get(Alert, alert_id))
