"""A business type posting from its post stage, run by the engine, then rerun: the journal is the same."""
from __future__ import annotations

from sqlalchemy import select

from esomp_core import BusinessType, Engine, JobResult, JobRow, JobSpec, hookimpl, reset_for_rerun
from esomp_ledger import Voucher, credit, debit, journal, post_vouchers

DAY = "20260105"


class Fees:
    """Posts a fee voucher per call; ``runs`` counts the post stage's calls."""

    runs = 0

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("fees", "手续费", plan=lambda site, date: [JobSpec("fees-post", "post", "fees")]))

    @hookimpl
    def post(self, job, site):
        Fees.runs += 1
        vouchers = [Voucher([debit("1001", "2.50"), credit("6001", "2.50")], memo="手续费")] * 2
        posted = post_vouchers(site, job, vouchers)
        return JobResult(records=posted.lines, detail={"vouchers": posted.vouchers, "replaced": posted.replaced})


def test_engine_rerun_of_a_post_job_leaves_the_journal_as_one_run(ledger_site):
    ledger_site.pm.register(Fees(), name="fees")
    Fees.runs = 0

    assert Engine(ledger_site, DAY, executor="inline").run().counts == {"succeeded": 1}
    first = [(r["voucher"], r["line"], r["amount"]) for r in journal(ledger_site, DAY)]
    with ledger_site.repository.session() as s:
        job_id = s.scalars(select(JobRow.id).where(JobRow.name == "fees-post")).one()
    reset_for_rerun(ledger_site, DAY, job_id=job_id)
    assert Engine(ledger_site, DAY, executor="inline").run().counts == {"succeeded": 1}

    assert Fees.runs == 2
    assert [(r["voucher"], r["line"], r["amount"]) for r in journal(ledger_site, DAY)] == first
    assert len(first) == 4 and first[0][0] == f"{job_id:08d}-000001"
