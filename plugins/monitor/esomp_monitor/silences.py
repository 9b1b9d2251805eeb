"""Silences (maintenance windows): open alerts whose rule and subject match (shell wildcards) are still recorded
but not notified while the window lasts."""
from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from sqlalchemy import select

from esomp_core import AlertRow
from esomp_monitor.models import Silence


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


def active_silences(session, now: datetime) -> list[Silence]:
    return list(session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)))


def is_silenced(row: AlertRow, silences: list[Silence]) -> bool:
    return any(fnmatch.fnmatchcase(row.rule, s.rule) and fnmatch.fnmatchcase(row.subject, s.subject)
               for s in silences)
