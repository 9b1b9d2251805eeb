"""Helpers for tests and the benchmark: a plan's worth of rows in the repository, a server in a thread."""
from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import insert, select

from esomp_core.repository.models import Alert, File, Institution, Job, JobEvent, Product, Run
from esomp_trust import PackageRow as Package, ReceiptRow as Receipt


def seed_day(site, date: str, products: int = 4000, *, batches: int = 4, jobs_per_batch: int = 5,
             channels: tuple[str, ...] = ("szse", "sse", "site"), files_per_product: int = 32,
             finished: bool = True, alerts: int = 20, first_product: int = 0) -> int:
    """Insert a seed-000-shaped day (collect per channel, 4 batches of 5 processing and sending jobs, files,
    packages, receipts, alerts) directly; returns the run id."""
    codes = [f"P{i:05d}" for i in range(first_product, first_product + products)]
    per_job = -(-products // (batches * jobs_per_batch))
    now = datetime.now() - timedelta(hours=1)
    with site.repository.session() as s:
        known = set(s.scalars(select(Institution.code)))
        institutions = [{"code": f"I{i:03d}", "name": f"信托公司{i}", "status": "active"} for i in range(40)
                        if f"I{i:03d}" not in known]
        if institutions:
            s.execute(insert(Institution), institutions)
        s.execute(insert(Product), [{"code": c, "name": f"产品{c}", "institution_code": f"I{i % 40:03d}",
                                     "status": "active"} for i, c in enumerate(codes)])
        run = Run(date=date, state="succeeded" if finished else "running", created_at=now, started_at=now,
                  finished_at=now + timedelta(minutes=30) if finished else None, paused_batches=[])
        s.add(run)
        s.flush()
        jobs = [dict(name=f"collect-{c}", stage="collect", business_type="trust", batch=0, category=f"trust/采集/{c}",
                     channel=c, products=[], depends_on=[]) for c in channels]
        for b in range(1, batches + 1):
            for j in range(jobs_per_batch):
                chunk = codes[((b - 1) * jobs_per_batch + j) * per_job:][:per_job]
                jobs.append(dict(name=f"trust-process-b{b}-{j + 1}", stage="process", business_type="trust",
                                 batch=b, category=f"trust/加工/批次{b}", channel="", products=chunk,
                                 depends_on=[f"collect-{c}" for c in channels]))
                jobs.append(dict(name=f"trust-send-b{b}-{j + 1}", stage="send", business_type="trust", batch=b,
                                 category=f"trust/发送/批次{b}", channel="out", products=chunk,
                                 depends_on=[f"trust-process-b{b}-{j + 1}"]))
        for i, job in enumerate(jobs):
            started = now + timedelta(seconds=20 * i)
            job.update(run_id=run.id, params={}, detail={}, attempts=1 if finished else 0,
                       state="succeeded" if finished else "pending", started_at=started if finished else None,
                       finished_at=started + timedelta(seconds=90) if finished else None,
                       files=len(job["products"]) * files_per_product, records=len(job["products"]) * 500,
                       bytes=len(job["products"]) * 2_000_000)
        s.execute(insert(Job), jobs)
        ids = dict(s.execute(Job.__table__.select().with_only_columns(Job.name, Job.id)
                             .where(Job.run_id == run.id)).all())
        if finished:
            s.execute(insert(JobEvent), [{"job_id": ids[j["name"]], "at": j[k], "state": st, "message": None}
                                         for j in jobs for k, st in (("started_at", "running"),
                                                                     ("finished_at", "succeeded"))])
        files = []
        for b in range(1, batches + 1):
            for j in range(jobs_per_batch):
                job_id = ids[f"trust-process-b{b}-{j + 1}"]
                for c in codes[((b - 1) * jobs_per_batch + j) * per_job:][:per_job]:
                    files.extend({"date": date, "role": "written", "channel": "", "name": f"{c}/f{k:02d}.dbf",
                                  "path": f"clearing/{date}/{c}/f{k:02d}.dbf", "size": 4096, "sha256": "0" * 64,
                                  "records": 10, "job_id": job_id} for k in range(files_per_product))
        for start in range(0, len(files), 20_000):
            s.execute(insert(File), files[start:start + 20_000])
        s.execute(insert(Package), [{"date": date, "name": f"{c}.zip", "institution_code": f"I{i % 40:03d}",
                                     "product_code": c, "path": f"send/{c}.zip", "size": 100_000,
                                     "sha256": "0" * 64, "members": files_per_product,
                                     "job_id": ids[f"trust-send-b{1 + (i // per_job) // jobs_per_batch}-"
                                                   f"{1 + (i // per_job) % jobs_per_batch}"]}
                                    for i, c in enumerate(codes)])
        if finished:
            package_ids = s.execute(Package.__table__.select().with_only_columns(Package.id)
                                    .where(Package.date == date)).scalars().all()
            s.execute(insert(Receipt), [{"package_id": p, "target": "out", "remote_path": f"out/{p}.zip",
                                         "size": 100_000, "attempts": 1, "delivered_at": now} for p in package_ids])
        severities = ("critical", "error", "warning", "info")
        if alerts:
            s.execute(insert(Alert), [{"rule": f"rule-{i % 5}", "subject": f"subject-{i}",
                                       "severity": severities[i % 4], "message": f"synthetic alert {i}",
                                       "business_type": "trust", "state": "open", "count": 1, "first_seen": now, "last_seen": now}
                                      for i in range(alerts)])
        return run.id


DATE = "20240105"
PASSWORD = "correct horse battery"


def login(client, username: str, password: str = PASSWORD):
    """Log ``client`` (an httpx-style client) in through the form; returns the response and the CSRF token."""
    page = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": username, "password": password, "csrf": token,
                                           "next": "/"}, follow_redirects=False)
    csrf = client.get("/api/me").json()["csrf"] if response.status_code == 303 else None
    return response, csrf


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` under uvicorn on an ephemeral port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="esomp-dashboard-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the dashboard did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
