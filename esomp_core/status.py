"""The seed's measurement table for a run: collection per channel, processing and sending per batch."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run


def _span(rows) -> dict[str, Any]:
    starts = [r.started_at for r in rows if r.started_at]
    ends = [r.finished_at for r in rows if r.finished_at]
    states = sorted({r.state for r in rows})
    seconds = (max(ends) - min(starts)).total_seconds() if starts and ends and len(ends) == len(rows) else None
    return {"jobs": len(rows), "states": states, "seconds": seconds,
            "start": min(starts) if starts else None, "end": max(ends) if ends else None,
            "files": sum(r.files or 0 for r in rows), "records": sum(r.records or 0 for r in rows),
            "bytes": sum(r.bytes or 0 for r in rows)}


def run_status(site, date: str) -> dict[str, Any]:
    with site.repository.session() as s:
        run = s.scalar(select(Run).where(Run.date == date))
        if run is None:
            raise LookupError(f"no run for {date}: start it with `esomp run --date {date}`")
        rows = s.scalars(select(JobRow).where(JobRow.run_id == run.id).order_by(JobRow.id)).all()
        rows = list(rows)
    lines: list[dict[str, Any]] = []
    for channel in sorted({r.channel for r in rows if r.stage == "collect"}):
        lines.append({"stage": "collect", "group": channel,
                      **_span([r for r in rows if r.stage == "collect" and r.channel == channel])})
    for stage in ("process", "send", "post"):
        for batch in sorted({r.batch for r in rows if r.stage == stage}):
            lines.append({"stage": stage, "group": f"batch {batch}" if batch else "prepare",
                          **_span([r for r in rows if r.stage == stage and r.batch == batch])})
    for stage in ("collect", "process", "send", "post"):
        chosen = [r for r in rows if r.stage == stage]
        if chosen:
            lines.append({"stage": stage, "group": "total", **_span(chosen)})
    total = _span(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    return {"date": date, "state": run.state, "paused_batches": run.paused_batches or [],
            "started_at": run.started_at, "finished_at": run.finished_at, "counts": counts,
            "wall_seconds": total["seconds"], "lines": lines,
            "failed": [{"id": r.id, "name": r.name, "error": (r.error or "").splitlines()[0] if r.error else ""}
                       for r in rows if r.state == "failed"]}


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def fmt_bytes(value: int) -> str:
    return f"{value / 1e6:,.1f} MB" if value else "0"


def jobs_query(site, date: str | None = None, *, query: str | None = None, category: str | None = None,
               state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Quick lookup by partial name, product code, category or job id (自动作业查询)."""
    with site.repository.session() as s:
        stmt = select(JobRow, Run.date).join(Run)
        if date:
            stmt = stmt.where(Run.date == date)
        if category:
            stmt = stmt.where(JobRow.category.contains(category))
        if state:
            stmt = stmt.where(JobRow.state == state)
        if query:
            from sqlalchemy import String, cast, or_

            conditions = [JobRow.name.contains(query), JobRow.category.contains(query),
                          cast(JobRow.products, String).contains(f'"{query}')]
            if query.isdigit():
                conditions.append(JobRow.id == int(query))
            stmt = stmt.where(or_(*conditions))
        rows = s.execute(stmt.order_by(Run.date.desc(), JobRow.id).limit(limit)).all()
        return [{"id": r.id, "date": d, "name": r.name, "stage": r.stage, "batch": r.batch,
                 "category": r.category, "state": r.state, "products": len(r.products or []),
                 "seconds": (r.finished_at - r.started_at).total_seconds()
                 if r.started_at and r.finished_at else None,
                 "files": r.files, "records": r.records, "bytes": r.bytes, "attempts": r.attempts,
                 "error": (r.error or "").splitlines()[0] if r.error else None} for r, d in rows]
