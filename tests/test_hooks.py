"""The stage and event hooks' contract: who answers a dispatch hook, who hears an event.

The engine's own tests show these hooks fired by a real run; here the contract itself is pinned down.
"""
import pluggy
import pytest

from esomp_core import hookimpl
from esomp_core.model import Alert, Finding, Job, JobResult


def job(stage, business_type="trust", **kw):
    return Job(id=1, date="20261120", name=f"{stage}-1", stage=stage, business_type=business_type, **kw)


class Owner:
    """Answers only the jobs of its own business type, as every stage plugin must."""

    def __init__(self, business_type):
        self.business_type = business_type

    def _mine(self, job):
        return JobResult(files=1, detail={"by": self.business_type}) if job.business_type == self.business_type \
            else None

    @hookimpl
    def collect(self, job, site):
        return self._mine(job)

    @hookimpl
    def process(self, job, site):
        return self._mine(job)

    @hookimpl
    def send(self, job, site):
        return self._mine(job)

    @hookimpl
    def post(self, job, site):
        return self._mine(job)


@pytest.mark.parametrize("stage", ["collect", "process", "send", "post"])
def test_collect_process_send_post_dispatch_to_the_owner(stage, esomp_pm_factory):
    pm = esomp_pm_factory(Owner("trust"), Owner("rtgs"))
    hook = getattr(pm.hook, stage)
    assert hook(job=job(stage, "trust"), site=None).detail == {"by": "trust"}
    assert hook(job=job(stage, "rtgs"), site=None).detail == {"by": "rtgs"}
    assert hook(job=job(stage, "gold"), site=None) is None  # nobody owns it: the engine reports that


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
