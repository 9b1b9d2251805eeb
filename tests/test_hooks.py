"""The stage and event hooks' contract: who answers a dispatch hook, who hears an event.

The engine's own tests show these hooks fired by a real run; here the contract itself is pinned down.
"""
import pluggy
import pytest

from sqlalchemy import select

from esomp_core import BusinessType, JobRow, JobSpec, PlanError, hookimpl, owning_plugin
from esomp_core.engine import Engine
from esomp_core.model import Alert, Finding, Job, JobResult
from esomp_core.plan import build_plan
from esomp_core.plugins import call_owner


def job(stage, business_type="trust", **kw):
    return Job(id=1, date="20261120", name=f"{stage}-1", stage=stage, business_type=business_type, **kw)


class Line:
    """A business type planning a process, a send and a post job; each answer names the business type."""

    def __init__(self, business_type):
        self.business_type = business_type

    @hookimpl
    def register_business_types(self, register):
        plan = lambda site, date: [JobSpec(f"{self.business_type}-{stage}", stage, self.business_type)  # noqa: E731
                                   for stage in ("process", "send", "post")]
        register(BusinessType(self.business_type, self.business_type, plan=plan))

    def answer(self, job):
        return JobResult(files=1, detail={"by": self.business_type})


class FullLine(Line):
    @hookimpl
    def collect(self, job):
        return self.answer(job)

    @hookimpl
    def process(self, job):
        return self.answer(job)

    @hookimpl
    def send(self, job):
        return self.answer(job)

    @hookimpl
    def post(self, job):
        return self.answer(job)


class NoPost(Line):
    @hookimpl
    def process(self, job):
        return self.answer(job)

    @hookimpl
    def send(self, job):
        return self.answer(job)


@pytest.mark.parametrize("stage", ["collect", "process", "send", "post"])
def test_hook_collect_process_send_post_reach_the_owner_only(stage, esomp_pm_factory, esomp_site_factory):
    pm = esomp_pm_factory()
    pm.register(FullLine("trust"), name="trust-plugin")
    pm.register(FullLine("rtgs"), name="rtgs-plugin")
    site = esomp_site_factory(pm)
    for business in ("trust", "rtgs"):
        j = job(stage, business)
        owner = owning_plugin(site, j)
        assert owner == f"{business}-plugin"
        assert call_owner(pm, stage, owner, job=j, site=site).detail == {"by": business}


def test_a_plan_with_an_unowned_job_is_refused_naming_the_job(esomp_pm_factory, esomp_site_factory):
    class Stray:
        @hookimpl
        def register_business_types(self, register):
            register(BusinessType("stray", "Stray", plan=lambda site, date: [JobSpec("x-1", "process", "ghost")]))

    site = esomp_site_factory(esomp_pm_factory(Stray()))
    with pytest.raises(PlanError, match="job x-1: no plugin registers the business type 'ghost'"):
        build_plan(site, "20261120")


def test_a_plan_whose_owner_lacks_the_stage_is_refused_naming_job_and_plugin(esomp_pm_factory,
                                                                              esomp_site_factory):
    pm = esomp_pm_factory()
    pm.register(NoPost("trust"), name="trust-plugin")
    site = esomp_site_factory(pm)
    with pytest.raises(PlanError, match="job trust-post: plugin trust-plugin owns the business type 'trust' but "
                                        "does not implement the 'post' hook"):
        build_plan(site, "20261120")


def test_a_monitor_job_is_refused_at_plan_time(esomp_pm_factory, esomp_site_factory):
    """monitor is a hook every plugin answers, not a job stage: such a job would reach every plugin."""
    class Watch:
        @hookimpl
        def register_business_types(self, register):
            register(BusinessType("w", "W", plan=lambda site, date: [JobSpec("watch", "monitor", "w")]))

    site = esomp_site_factory(esomp_pm_factory(Watch()))
    with pytest.raises(PlanError, match="job watch: unknown stage 'monitor'"):
        build_plan(site, "20261120")


def test_a_job_whose_owner_returns_nothing_fails_naming_the_plugin(esomp_pm_factory, esomp_site_factory):
    class Silent(FullLine):
        def answer(self, job):
            return None

    pm = esomp_pm_factory()
    pm.register(Silent("trust"), name="trust-plugin")
    site = esomp_site_factory(pm)
    summary = Engine(site, "20261120", executor="inline").run()
    assert summary.counts == {"failed": 3}
    with site.repository.session() as s:
        errors = sorted(s.scalars(select(JobRow.error)))
    assert errors == [f"NoResult: plugin trust-plugin returned None for {stage} job trust-{stage}, not a JobResult"
                      for stage in ("post", "process", "send")]


def test_hook_monitor_asks_every_plugin(esomp_pm_factory):
    class Disk:
        @hookimpl
        def monitor(self, now):
            return [Finding("disk_space", "/data", "warning", f"low at {now}")]

    class Quiet:
        @hookimpl
        def monitor(self, site, now):
            return None

    pm = esomp_pm_factory(Disk(), Quiet(), Disk())
    findings = [f for batch in pm.hook.monitor(site=None, now="09:00") for f in batch]
    assert [f.rule for f in findings] == ["disk_space", "disk_space"]


def test_job_started_job_finished_batch_paused_batch_resumed_alert_raised_alert_acknowledged(esomp_pm_factory):
    heard = []

    class Observer:
        @hookimpl
        def job_started(self, job):
            heard.append(("started", job.name))

        @hookimpl
        def job_finished(self, job, result):
            heard.append(("finished", job.state, result.files))

        @hookimpl
        def batch_paused(self, date, batch):
            heard.append(("paused", date, batch))

        @hookimpl
        def batch_resumed(self, batch):
            heard.append(("resumed", batch))

        @hookimpl
        def alert_raised(self, alert):
            heard.append(("raised", alert.rule))

        @hookimpl
        def alert_acknowledged(self, alert, site):
            heard.append(("acknowledged", alert.acknowledged_by, alert.comment))

    pm = esomp_pm_factory(Observer())
    j = job("process", state="succeeded")
    pm.hook.job_started(job=j, site=None)
    pm.hook.job_finished(job=j, result=JobResult(files=32), site=None)
    pm.hook.batch_paused(date="20261120", batch=2, site=None)
    pm.hook.batch_resumed(date="20261120", batch=2, site=None)
    alert = Alert(7, "job_failed", "process-1", "critical", "failed", acknowledged_by="op", comment="rerun")
    pm.hook.alert_raised(alert=alert, site=None)
    pm.hook.alert_acknowledged(alert=alert, site=None)
    assert heard == [("started", "process-1"), ("finished", "succeeded", 32), ("paused", "20261120", 2),
                     ("resumed", 2), ("raised", "job_failed"), ("acknowledged", "op", "rerun")]


def test_hookimpl_with_unknown_argument_is_refused(esomp_pm_factory):
    class Wrong:
        @hookimpl
        def job_finished(self, job, outcome):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="outcome"):
        esomp_pm_factory(Wrong())
