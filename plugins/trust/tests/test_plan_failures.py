"""One failed job holds only what depends on it: the stagger between batches orders start times and never turns a
failure into skips."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from esomp_core import hookimpl
from esomp_core.engine import Engine
from esomp_core.model import JobResult
from esomp_core.repository.models import Job as JobRow
from esomp_trust.testing import DATE, new_day


class Answered:
    """Answers every trust job at once without doing its work (the plan's shape is under test, not the work),
    failing the named jobs."""

    def __init__(self, failing):
        self.failing = set(failing)

    def _answer(self, job):
        if job.business_type != "trust":
            return None
        if job.name in self.failing:
            raise ValueError(f"{job.name}: failed on purpose")
        return JobResult()

    @hookimpl(tryfirst=True)
    def collect(self, job):
        return self._answer(job)

    @hookimpl(tryfirst=True)
    def process(self, job):
        return self._answer(job)

    @hookimpl(tryfirst=True)
    def send(self, job):
        return self._answer(job)


def run_failing(tmp_path, failing, **options):
    # 8 products, 1 per job, 2 jobs per batch: 4 batches of 2 processing and 2 sending jobs
    site, _ = new_day(tmp_path, 8, products_per_job=1, jobs_per_batch=2, **options)
    site.pm.register(Answered(failing))
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
