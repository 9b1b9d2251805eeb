"""One failed job holds only what depends on it: the stagger between batches orders start times and never turns a
failure into skips."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from esomp_core import JobRow, hookimpl
from esomp_core.engine import Engine
from esomp_trust.testing import DATE, new_day


class Failing:
    """Fails the named jobs before their owner is reached (a wrapper around every stage); the others run."""

    def __init__(self, failing):
        self.failing = set(failing)

    def _check(self, job):
        if job.name in self.failing:
            raise ValueError(f"{job.name}: failed on purpose")

    @hookimpl(wrapper=True)
    def collect(self, job):
        self._check(job)
        return (yield)

    @hookimpl(wrapper=True)
    def process(self, job):
        self._check(job)
        return (yield)

    @hookimpl(wrapper=True)
    def send(self, job):
        self._check(job)
        return (yield)


def run_failing(tmp_path, failing, **options):
    # 8 products, 1 per job, 2 jobs per batch: 4 batches of 2 processing and 2 sending jobs
    site, _ = new_day(tmp_path, 8, products_per_job=1, jobs_per_batch=2, **options)
    site.pm.register(Failing(failing))
    Engine(site, DATE, executor="inline").run()
    with site.repository.session() as s:
        return dict(s.execute(select(JobRow.name, JobRow.state)).all())


@pytest.mark.parametrize("stagger", ["previous", "none"])
def test_plan_failed_processing_job_of_batch_1_skips_only_what_needs_it(tmp_path, stagger):
    states = run_failing(tmp_path, {"trust-process-b1-j1"}, stagger=stagger)
    skipped = sorted(name for name, state in states.items() if state == "skipped")
    # its products' sending job, and the day's accounting (which needs every product's files); nothing of batch 2-4
    assert skipped == ["trust-account", "trust-send-b1-j1"]
    assert all(state == "succeeded" for name, state in states.items()
               if "-b1-j1" not in name and name != "trust-account")


def test_plan_corrupt_input_holds_its_channel_and_the_rerun_keeps_the_other_partitions(tmp_path):
    from pathlib import Path

    from esomp_core.engine import reset_for_rerun

    site, _ = new_day(tmp_path, 6, products_per_job=2, jobs_per_batch=2)
    good = tmp_path / "zqye0105.dbf.good"  # a file, not memory: the hook runs in a worker process

    class CutAfterCollection:  # the sse file arrives whole, then is damaged in the collection root
        @hookimpl(wrapper=True)
        def collect(self, job):
            result = yield
            if job.name == "collect-sse" and not good.exists():
                path = next(Path(site.directory("collection_root")).rglob("zqye0105.dbf"))
                good.write_bytes(path.read_bytes())
                path.write_bytes(good.read_bytes()[:-500])
            return result

    site.pm.register(CutAfterCollection())
    assert Engine(site, DATE, executor="local", workers=2).run().state == "failed"
    with site.repository.session() as s:
        rows = {name: (state, error) for name, state, error in s.execute(select(JobRow.name, JobRow.state,
                                                                                  JobRow.error))}
    assert rows["trust-partition-sse"][0] == "failed" and "zqye0105.dbf" in rows["trust-partition-sse"][1]
    assert rows["trust-partition-szse"][0] == rows["trust-partition-site"][0] == "succeeded"
    # every processing job needs the file (each product gets one): held, with what depends on them
    assert {name for name, (state, _) in rows.items() if state == "skipped"} == {
        name for name in rows if name.startswith(("trust-process", "trust-send")) or name == "trust-account"}

    next(Path(site.directory("collection_root")).rglob("zqye0105.dbf")).write_bytes(good.read_bytes())
    reset = reset_for_rerun(site, DATE, failed=True)
    assert "trust-partition-sse" in reset and not {"trust-partition-szse", "trust-partition-site"} & set(reset)
    assert Engine(site, DATE, executor="local", workers=2).run().state == "succeeded"
    with site.repository.session() as s:
        attempts = dict(s.execute(select(JobRow.name, JobRow.attempts)).all())
    assert attempts["trust-partition-szse"] == attempts["trust-partition-site"] == 1
    assert attempts["trust-partition-sse"] == 2
