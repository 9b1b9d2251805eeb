"""Alerts as the dashboard needs them: prefer esomp_core.alerts when it exists, else the alerts table directly.

Going through the core's functions when they are importable means ``alert_acknowledged`` fires from one place.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from esomp_core import Alert as AlertEvent, AlertRow as Alert

SEVERITIES = ("critical", "error", "warning", "info")
STATES = ("open", "acknowledged", "resolved")


def _core():
    try:
        from esomp_core import alerts
    except ImportError:
        return None
    return alerts if hasattr(alerts, "acknowledge") and hasattr(alerts, "list_alerts") else None


def as_dict(row: Alert) -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "subject": row.subject, "severity": row.severity,
            "message": row.message, "business_type": row.business_type, "state": row.state, "count": row.count,
            "first_seen": row.first_seen, "last_seen": row.last_seen, "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at, "comment": row.comment, "resolved_at": row.resolved_at}


def list_alerts(site, *, state: str | None = None, severity: str | None = None, limit: int = 200) -> list[dict]:
    core = _core()
    if core is not None and severity is None:  # the core's list also says which alerts are silenced
        return core.list_alerts(site, state=state, limit=limit)
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
    core = _core()
    if core is not None:
        core.acknowledge(site, alert_id, user, comment)
    else:
        with site.repository.session() as s:
            row = s.get(Alert, alert_id)
            row.state, row.acknowledged_by, row.acknowledged_at, row.comment = (
                "acknowledged", user, datetime.now(), comment)
            event = AlertEvent(id=row.id, rule=row.rule, subject=row.subject, severity=row.severity,
                               message=row.message, state=row.state, count=row.count,
                               business_type=row.business_type, acknowledged_by=user, comment=comment)
        site.pm.hook.alert_acknowledged(alert=event, site=site)
    with site.repository.session() as s:
        return as_dict(s.get(Alert, alert_id))
