"""Helpers to run a trust day without the engine (tests and benchmarks): a site with generated inputs, and a
runner that calls each planned job's stage hook in plan order, as the engine would."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from esomp_core import Job, JobSpec, create_site as make_site, run_stage

DATE = "20240105"
CHANNELS = ("szse", "sse", "site")


def site_tables(extra_channels: dict[str, Any] | None = None, **trust: Any) -> dict[str, Any]:
    channels = {c: {"kind": "fs", "url": f"exchange/{c}/{{date}}"} for c in CHANNELS}
    channels["out"] = {"kind": "fs", "url": "outbox", "retries": 0}
    channels.update(extra_channels or {})
    return {"channels": channels,
            "business": {"trust": {"delivery_channel": "out", "products_per_job": 20, "jobs_per_batch": 2, **trust}}}


def as_job(index: int, spec: JobSpec, date: str = DATE) -> Job:
    return Job(id=index + 1, date=date, name=spec.name, stage=spec.stage, business_type=spec.business_type,
               batch=spec.batch, category=spec.category, channel=spec.channel, products=spec.products,
               params=spec.params)


def run_plan(site, date: str = DATE, *, only: tuple[str, ...] = ("collect", "process", "send", "post")) -> dict[str, Any]:
    """Call each planned job's stage hook in plan order; return name -> JobResult (or the exception raised)."""
    results: dict[str, Any] = {}
    for index, spec in enumerate(site.registry.business_types["trust"].plan(site, date)):
        if spec.stage not in only:
            continue
        try:
            results[spec.name] = run_stage(site, as_job(index, spec, date))
        except Exception as exc:  # the engine would mark the job failed with this text
            results[spec.name] = exc
    return results


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def new_day(root: Path, products: int, *, extra_channels: dict[str, Any] | None = None, **trust: Any):
    """A site at ``root`` with fs channels szse, sse, site (inputs) and out (delivery), and a generated day."""
    from esomp_gen import generate_day

    site = make_site(root, **site_tables(extra_channels, **trust))
    report = generate_day(site, DATE, products, seed=7)
    return site, report


