"""`esomp bench dashboard`: overview load time and API latency with a 4,000-product day in a scratch site."""
from __future__ import annotations

import http.cookiejar
import json
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DATE = "20240105"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_bench(products: int = 4000, requests: int = 200, repeats: int = 10) -> dict[str, Any]:
    from esomp_core import create_site

    from esomp_dashboard import data, users
    from esomp_dashboard.app import create_app
    from esomp_dashboard.config import DashboardOptions
    from esomp_dashboard.testing import seed_day, serve_in_thread

    with tempfile.TemporaryDirectory(prefix="esomp-bench-dashboard-") as tmp:
        site = create_site(Path(tmp) / "site")
        seed_day(site, DATE, products)
        overview_times = []
        for _ in range(repeats):
            started = time.perf_counter()
            data.overview(site, DATE)
            overview_times.append((time.perf_counter() - started) * 1000)
        users.add_user(site.repository, "bench", "bench-password", "viewer")
        endpoints = {"overview": f"/api/overview?date={DATE}", "tree": f"/api/tree?date={DATE}",
                     "suggest": f"/api/suggest?date={DATE}&q=P0012", "jobs": f"/api/jobs?date={DATE}&q=send",
                     "job": "/api/jobs/5", "alerts": "/api/alerts?state=open"}
        results: dict[str, Any] = {}
        with serve_in_thread(create_app(site, DashboardOptions(poll=1.0))) as base:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            page = opener.open(base + "/login").read().decode()
            token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            form = urllib.parse.urlencode({"username": "bench", "password": "bench-password", "csrf": token})
            opener.open(base + "/login", data=form.encode()).read()
            for name, path in endpoints.items():
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    body = opener.open(base + path).read()
                    times.append((time.perf_counter() - started) * 1000)
                json.loads(body)
                results[name] = {"p50_ms": statistics.median(times), "p99_ms": _percentile(times, 0.99),
                                 "requests": requests}
        with site.repository.session() as s:
            from sqlalchemy import func, select

            from esomp_core import JobRow as Job

            jobs = s.scalar(select(func.count()).select_from(Job))
        site.repository.dispose()
    return {"products": products, "jobs": jobs, "repeats": repeats,
            "overview_ms": statistics.median(overview_times), "overview_max_ms": max(overview_times),
            "endpoints": results}
