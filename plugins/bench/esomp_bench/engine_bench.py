"""`esomp bench engine`: the engine's own cost per job, with no-op jobs through the real plan and repository."""
from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import click

from esomp_core import BusinessType, JobResult, JobSpec, hookimpl, print_json, print_table


class NoopDay:
    """A business type of ``jobs`` independent no-op processing jobs in batches of 50."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("noop", "no-op jobs", plan=self.plan))

    def plan(self, site, date):
        return [JobSpec(f"noop-{i:05d}", "process", "noop", batch=1 + i // 50) for i in range(self.jobs)]

    @hookimpl
    def process(self, job):
        return JobResult()


def bench_engine(jobs: int, executor: str, workers: int | None, repeat: int) -> dict:
    from esomp_core import Engine, create_site, make_plugin_manager

    seconds, cpu = [], []
    for attempt in range(repeat):
        with tempfile.TemporaryDirectory(prefix="esomp-bench-engine-") as tmp:
            pm = make_plugin_manager(entry_points=False)
            pm.register(NoopDay(jobs))
            site = create_site(Path(tmp) / "site", pm, engine={"poll": 0.05})
            began, began_cpu = time.perf_counter(), _cpu_seconds()
            summary = Engine(site, "20261120", executor=executor, workers=workers).run()
            seconds.append(time.perf_counter() - began)
            cpu.append(_cpu_seconds() - began_cpu)  # the engine's and its (joined) workers': steadier than wall
            if summary.counts != {"succeeded": jobs}:
                raise click.ClickException(f"bench run did not succeed: {summary.counts}")
            site.repository.dispose()
    median = statistics.median(seconds)
    return {"jobs": jobs, "executor": executor, "workers": workers, "runs": seconds, "median_seconds": median,
            "ms_per_job": 1000 * median / jobs, "cpu_runs": cpu,
            "cpu_ms_per_job": 1000 * statistics.median(cpu) / jobs, "load": os.getloadavg()[0]}


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@click.command("engine")
@click.option("--jobs", default=1000, show_default=True)
@click.option("--executor", default="local", show_default=True)
@click.option("--workers", type=int)
@click.option("--repeat", default=3, show_default=True, help="Runs; the median is reported.")
@click.option("--json", "as_json", is_flag=True)
def engine_cmd(jobs: int, executor: str, workers: int | None, repeat: int, as_json: bool) -> None:
    """No-op jobs through the real plan, engine and SQLite repository: overhead per job."""
    results = [bench_engine(jobs, name, workers, repeat) for name in executor.split(",")]
    if as_json:
        print_json(results)
        return
    print_table(f"engine overhead, {jobs} no-op jobs, median of {repeat}",
                ["executor", "median s", "ms/job", "runs s", "CPU ms/job", "load"],
                [(r["executor"], f"{r['median_seconds']:.2f}", f"{r['ms_per_job']:.2f}",
                  " ".join(f"{s:.2f}" for s in r["runs"]), f"{r['cpu_ms_per_job']:.2f}", f"{r['load']:.1f}")
                 for r in results])
