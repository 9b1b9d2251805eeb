"""The dashboard's audit trail: every login, logout, operator action and user change, whatever its outcome."""
from __future__ import annotations

import getpass
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from esomp_dashboard.tables import AuditEntry, ensure_tables

OUTCOMES = ("ok", "denied", "failed", "locked", "error")
log = logging.getLogger("esomp.dashboard.audit")


def record(repository, *, actor: str, action: str, target: str, outcome: str, origin: str,
           reason: str | None = None, ticket: str | None = None, detail: str | None = None) -> None:
    """Store one entry (and log it, so the trail also reaches the site's log collection)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    ensure_tables(repository)
    with repository.session() as s:
        s.add(AuditEntry(at=datetime.now(), actor=actor[:100], action=action, target=target[:200],
                         outcome=outcome, origin=origin[:100], reason=reason, ticket=ticket and ticket[:100],
                         detail=detail))
    log.info("%s %s %s: %s%s", actor, action, target, outcome, f" ({detail})" if detail else "")


def cli_actor() -> str:
    """Who runs a command: the operating-system account (the command line has no login of its own)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def entries(repository, *, limit: int = 200, actor: str | None = None, action: str | None = None) -> list[dict]:
    """Entries newest first, optionally of one actor or action."""
    ensure_tables(repository)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    with repository.session() as s:
        return [_as_dict(e) for e in s.scalars(query)]


def _as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at, "actor": entry.actor, "action": entry.action, "target": entry.target,
            "outcome": entry.outcome, "origin": entry.origin, "reason": entry.reason, "ticket": entry.ticket,
            "detail": entry.detail}
