"""What the pages show, read from the site's repository with a few aggregate queries per view."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, func, or_, select

from esomp_core.repository.models import Alert, File, JobEvent, Product, Run
from esomp_trust import PackageRow as Package, ReceiptRow as Receipt
from esomp_core import JobRow

from esomp_dashboard import alerts

STAGES = ("collect", "process", "send", "monitor", "post")
DONE = ("succeeded", "failed", "cancelled", "skipped")
HEARTBEAT_FILE = "daemon-heartbeat.json"


class NotFound(LookupError):
    pass


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def seconds(start: datetime | None, end: datetime | None, now: datetime | None = None) -> float | None:
    if start is None:
        return None
    end = end or now
    return round((end - start).total_seconds(), 3) if end else None


def runs(site, limit: int = 30) -> list[dict[str, Any]]:
    with site.repository.session() as s:
        rows = s.scalars(select(Run).order_by(Run.date.desc()).limit(limit)).all()
        return [{"date": r.date, "state": r.state, "started_at": iso(r.started_at),
                 "finished_at": iso(r.finished_at)} for r in rows]


def latest_date(site) -> str | None:
    with site.repository.session() as s:
        return s.scalar(select(func.max(Run.date)))


def _run(s, date: str) -> Run:
    run = s.scalar(select(Run).where(Run.date == date))
    if run is None:
        raise NotFound(f"no run for {date}")
    return run


def daemon_heartbeat(site) -> dict[str, Any] | None:
    """The daemon's heartbeat file in the monitoring centre, if a daemon writes one."""
    path = Path(site.directory("monitoring_centre")) / HEARTBEAT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {exc}"}
    age = datetime.now().timestamp() - path.stat().st_mtime
    return {"age_seconds": round(age, 1), **(data if isinstance(data, dict) else {"value": data})}


def overview(site, date: str) -> dict[str, Any]:
    """The wall screen: progress by stage and batch, the timeline, counts, open alerts, the daemon."""
    now = datetime.now()
    with site.repository.session() as s:
        run = _run(s, date)
        rows = s.execute(select(JobRow.id, JobRow.name, JobRow.stage, JobRow.batch, JobRow.state,
                                JobRow.started_at, JobRow.finished_at)
                         .where(JobRow.run_id == run.id).order_by(JobRow.id)).all()
        # a plain count is answered from the (date, channel, name) index; a count by role would read every row
        files = s.scalar(select(func.count()).select_from(File).where(File.date == date))
        products = s.scalar(select(func.count()).select_from(Product).where(Product.status == "active"))
        packages = s.scalar(select(func.count()).select_from(Package).where(Package.date == date))
        sent = s.scalar(select(func.count(func.distinct(Receipt.package_id))).join(Package)
                        .where(Package.date == date))
        run_info = {"date": run.date, "state": run.state, "started_at": iso(run.started_at),
                    "finished_at": iso(run.finished_at), "paused_batches": list(run.paused_batches or ()),
                    "engine": run.lock_holder if engine_alive(site, run, now) else None}
    states: dict[str, int] = {}
    stages: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
        for bucket in (stages.setdefault(r.stage, _bucket()), groups.setdefault((r.stage, r.batch), _bucket())):
            _add(bucket, r)
    stage_list = [{"stage": st, **_finish(stages[st], now)} for st in STAGES if st in stages]
    batches = [{"stage": st, "batch": b, **_finish(g, now)} for (st, b), g in
               sorted(groups.items(), key=lambda kv: (STAGES.index(kv[0][0]) if kv[0][0] in STAGES else 9,
                                                      kv[0][1]))]
    starts = [r.started_at for r in rows if r.started_at]
    ends = [r.finished_at or now for r in rows if r.started_at]
    timeline_jobs = [{"id": r.id, "name": r.name, "stage": r.stage, "batch": r.batch, "state": r.state,
                      "start": iso(r.started_at), "end": iso(r.finished_at)} for r in rows if r.started_at]
    timeline = {"start": iso(min(starts)) if starts else None, "end": iso(max(ends)) if ends else None,
                "jobs": timeline_jobs,
                "groups": [{**b, "label": f"{b['stage']} {b['batch'] or ''}".strip(),
                            "jobs": [j for j in timeline_jobs if (j["stage"], j["batch"]) == (b["stage"], b["batch"])]}
                           for b in batches if b["start"]]}
    total = len(rows)
    return {"run": run_info, "jobs": total, "done": sum(states.get(s, 0) for s in DONE),
            "percent": round(100 * sum(states.get(s, 0) for s in DONE) / total, 1) if total else 0.0,
            "states": states, "stages": stage_list, "batches": batches, "timeline": timeline,
            "counts": {"files": files or 0, "products": products or 0,
                       "packages": packages or 0, "packages_sent": sent or 0},
            "alerts": alerts.open_by_severity(site), "daemon": daemon_heartbeat(site), "now": iso(now)}


def _bucket() -> dict[str, Any]:
    return {"jobs": 0, "states": {}, "start": None, "end": None, "open": False}


def _add(bucket: dict[str, Any], r) -> None:
    bucket["jobs"] += 1
    bucket["states"][r.state] = bucket["states"].get(r.state, 0) + 1
    if r.started_at and (bucket["start"] is None or r.started_at < bucket["start"]):
        bucket["start"] = r.started_at
    if r.finished_at and (bucket["end"] is None or r.finished_at > bucket["end"]):
        bucket["end"] = r.finished_at
    bucket["open"] = bucket["open"] or r.state not in DONE


def _finish(bucket: dict[str, Any], now: datetime) -> dict[str, Any]:
    done = sum(bucket["states"].get(s, 0) for s in DONE)
    end = None if bucket["open"] else bucket["end"]
    return {"jobs": bucket["jobs"], "done": done, "percent": round(100 * done / bucket["jobs"], 1),
            "states": bucket["states"], "state": summary_state(bucket["states"]), "start": iso(bucket["start"]),
            "end": iso(end), "seconds": seconds(bucket["start"], end, now)}


def summary_state(states: dict[str, int]) -> str:
    """One word for a group of jobs: the most pressing state among them."""
    for state in ("failed", "running", "paused", "skipped", "cancelled", "waiting", "pending"):
        if states.get(state):
            return state
    return "succeeded" if states else "pending"


def engine_alive(site, run: Run, now: datetime) -> bool:
    """Whether an engine holds the run, by the engine's own rule: a lock heartbeat fresher than max(lease, 5 s)."""
    from esomp_core import engine_options

    fresh = timedelta(seconds=max(engine_options(site).lease, 5))
    return bool(run.lock_holder and run.lock_heartbeat and now - run.lock_heartbeat < fresh)


def tree(site, date: str) -> dict[str, Any]:
    """The job monitor's four levels: business type -> batch -> job -> product."""
    now = datetime.now()
    with site.repository.session() as s:
        run = _run(s, date)
        rows = s.execute(select(JobRow.id, JobRow.name, JobRow.stage, JobRow.business_type, JobRow.batch,
                                JobRow.category, JobRow.products, JobRow.state, JobRow.attempts,
                                JobRow.started_at, JobRow.finished_at, JobRow.files, JobRow.records,
                                JobRow.bytes, JobRow.error)
                         .where(JobRow.run_id == run.id).order_by(JobRow.business_type, JobRow.batch, JobRow.id)
                         ).all()
        paused = list(run.paused_batches or ())
        run_state = run.state
    types: dict[str, dict[str, Any]] = {}
    for r in rows:
        business = types.setdefault(r.business_type, {"name": r.business_type, "states": {}, "batches": {}})
        batch = business["batches"].setdefault(r.batch, {"batch": r.batch, "states": {}, "jobs": []})
        for group in (business, batch):
            group["states"][r.state] = group["states"].get(r.state, 0) + 1
        batch["jobs"].append({
            "id": r.id, "name": r.name, "stage": r.stage, "category": r.category, "state": r.state,
            "attempts": r.attempts, "started_at": iso(r.started_at), "finished_at": iso(r.finished_at),
            "seconds": seconds(r.started_at, r.finished_at, now), "files": r.files, "records": r.records,
            "bytes": r.bytes, "error": r.error.splitlines()[0] if r.error else None,
            "products": list(r.products or ())})
    business_types = []
    for business in types.values():
        batches = [{**b, "state": summary_state(b["states"]), "paused": b["batch"] in paused}
                   for b in sorted(business["batches"].values(), key=lambda b: b["batch"])]
        business_types.append({"name": business["name"], "states": business["states"],
                               "state": summary_state(business["states"]), "batches": batches})
    all_batches = sorted({r.batch for r in rows if r.batch})
    return {"date": date, "state": run_state, "paused_batches": paused, "batches": all_batches,
            "categories": sorted({r.category for r in rows if r.category}), "business_types": business_types}


def suggest(site, date: str, query: str, limit: int = 12) -> list[dict[str, Any]]:
    """Jobs, categories and products whose name or code contains ``query``, for the search box."""
    query = query.strip()
    if not query:
        return []
    like = f"%{_escape(query)}%"
    with site.repository.session() as s:
        run = _run(s, date)
        jobs = s.execute(select(JobRow.id, JobRow.name, JobRow.state, JobRow.category)
                         .where(JobRow.run_id == run.id, JobRow.name.ilike(like, escape="\\"))
                         .order_by(JobRow.name).limit(limit)).all()
        categories = s.scalars(select(JobRow.category).distinct()
                               .where(JobRow.run_id == run.id, JobRow.category.ilike(like, escape="\\"))
                               .order_by(JobRow.category).limit(limit)).all()
        products = s.execute(select(Product.code, Product.name)
                             .where(or_(Product.code.ilike(like, escape="\\"), Product.name.ilike(like, escape="\\")))
                             .order_by(Product.code).limit(limit)).all()
        known = {p.code for p in products}
        carried = s.scalars(select(JobRow.products).where(
            JobRow.run_id == run.id, cast(JobRow.products, String).ilike(like, escape="\\"))).all()
    # products a job carries that the products table does not know (sites without product data)
    planned = sorted({code for codes in carried for code in codes or ()
                      if query.lower() in code.lower() and code not in known})[:max(0, limit - len(products))]
    found = [{"kind": "job", "value": j.name, "label": j.name, "id": j.id, "state": j.state,
              "category": j.category} for j in jobs]
    found += [{"kind": "category", "value": c, "label": c} for c in categories if c]
    found += [{"kind": "product", "value": p.code, "label": f"{p.code} {p.name}".strip()} for p in products]
    found += [{"kind": "product", "value": c, "label": c} for c in planned]
    return found[:limit * 3]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def job_detail(site, job_id: int) -> dict[str, Any]:
    """One job: its counters, error, files in and out, packages and event history."""
    now = datetime.now()
    with site.repository.session() as s:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFound(f"no job {job_id}")
        run = s.get(Run, row.run_id)
        files = s.scalars(select(File).where(File.job_id == job_id).order_by(File.role, File.name).limit(1000)).all()
        packages = s.scalars(select(Package).where(Package.job_id == job_id).order_by(Package.name)
                             .limit(1000)).all()
        events = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)).all()
        upstream = s.execute(select(JobRow.id, JobRow.name, JobRow.state).where(
            JobRow.run_id == row.run_id, JobRow.name.in_(row.depends_on or ()))).all()
        before = s.execute(select(JobRow.id, JobRow.name, JobRow.state).where(
            JobRow.run_id == row.run_id, JobRow.name.in_(row.after or ()))).all()
        return {
            "id": row.id, "date": run.date, "name": row.name, "stage": row.stage,
            "business_type": row.business_type, "batch": row.batch, "category": row.category,
            "channel": row.channel, "state": row.state, "attempts": row.attempts, "worker": row.worker,
            "started_at": iso(row.started_at), "finished_at": iso(row.finished_at),
            "seconds": seconds(row.started_at, row.finished_at, now), "files": row.files, "records": row.records,
            "bytes": row.bytes, "error": row.error, "products": list(row.products or ()),
            "depends_on": [{"id": u.id, "name": u.name, "state": u.state} for u in upstream],
            "after": [{"id": u.id, "name": u.name, "state": u.state} for u in before],
            "detail": row.detail or {},
            "file_list": [{"role": f.role, "name": f.name, "size": f.size, "records": f.records,
                           "file_type": f.file_type, "sha256": f.sha256} for f in files],
            "packages": [{"name": p.name, "institution": p.institution_code, "product": p.product_code,
                          "size": p.size, "members": p.members} for p in packages],
            "events": [{"at": iso(e.at), "state": e.state, "message": e.message} for e in events],
        }


def fingerprint(site, date: str | None) -> str:
    """A short value that changes whenever anything a page shows changes (for server-sent events)."""
    with site.repository.session() as s:
        alert_mark = s.execute(select(func.count(), func.max(Alert.last_seen), func.max(Alert.acknowledged_at))
                               .select_from(Alert)).one()
        parts = [str(tuple(alert_mark)), str(s.scalar(select(func.max(Run.date))))]
        if date:
            run = s.scalar(select(Run).where(Run.date == date))
            if run is not None:
                parts.append(f"{run.state}:{run.paused_batches}")
                parts.append(str(s.execute(select(JobRow.state, func.count()).where(JobRow.run_id == run.id)
                                           .group_by(JobRow.state).order_by(JobRow.state)).all()))
                parts.append(str(s.scalar(select(func.max(JobEvent.id)))))
    return "|".join(parts)
