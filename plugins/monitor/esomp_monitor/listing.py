"""Alerts as operators list them: newest first, each saying whether a silence holds it now."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from esomp_core import ALERT_STATES, AlertRow
from esomp_monitor.silences import active_silences, is_silenced


def as_dict(row: AlertRow) -> dict[str, Any]:
    return {"id": row.id, "rule": row.rule, "subject": row.subject, "severity": row.severity,
            "message": row.message, "business_type": row.business_type, "state": row.state, "count": row.count,
            "first_seen": row.first_seen, "last_seen": row.last_seen, "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at, "comment": row.comment, "resolved_at": row.resolved_at}


def list_alerts(site, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts newest first (by last seen), optionally of one state; each with ``silenced`` for now."""
    if state is not None and state not in ALERT_STATES:
        raise ValueError(f"unknown alert state {state!r} (expected one of {', '.join(ALERT_STATES)})")
    with site.repository.session() as s:
        query = select(AlertRow).order_by(AlertRow.last_seen.desc(), AlertRow.id.desc()).limit(limit)
        if state is not None:
            query = query.where(AlertRow.state == state)
        rows = s.scalars(query).all()
        silences = active_silences(s, datetime.now())
        return [{**as_dict(r), "silenced": r.state != "resolved" and is_silenced(r, silences)} for r in rows]
