"""Hooks are called in pluggy's order wherever the core calls them: wrappers around everything, then tryfirst,
the others newest registration first, then trylast (docs/hooks.md "Order")."""
import pytest
from sqlalchemy import select

from esomp_core import hookimpl
from esomp_core.engine import Engine
from esomp_core.model import BusinessType, FileType, Job, JobResult, JobSpec
from esomp_core.plugins import Registry, call_each
from esomp_core.repository.models import Job as JobRow
from esomp_core.testing import StageHooks

DATE = "20261120"


def observer(name, calls, **marks):
    """A plugin answering job_started, recording ``name`` when called."""
    class Observer:
        @hookimpl(**marks)
        def job_started(self, job):
            calls.append(name)
    Observer.__name__ = name
    return Observer()


class Wrapper:
    def __init__(self, calls):
        self.calls = calls

    @hookimpl(wrapper=True)
    def job_started(self, job):
        self.calls.append("wrapper before")
        result = yield
        self.calls.append("wrapper after")
        return result


class OldStyleWrapper:
    def __init__(self, calls):
        self.calls = calls

    @hookimpl(hookwrapper=True)
    def job_started(self, job):
        self.calls.append("old wrapper before")
        yield
        self.calls.append("old wrapper after")


def ordered_pm(esomp_pm_factory, calls):
    """Registered in an order unlike the call order, so only pluggy's rules put them right."""
    return esomp_pm_factory(observer("last", calls, trylast=True), observer("first", calls, tryfirst=True),
                            Wrapper(calls), observer("older", calls), OldStyleWrapper(calls),
                            observer("newer", calls))


EXPECTED = ["old wrapper before", "wrapper before", "first", "newer", "older", "last", "wrapper after",
            "old wrapper after"]


def test_hook_caller_order_is_the_documented_one(esomp_pm_factory):
    calls = []
    ordered_pm(esomp_pm_factory, calls).hook.job_started(job=None, site=None)
    assert calls == EXPECTED


def test_call_each_honours_tryfirst_trylast_and_wrappers(esomp_pm_factory):
    calls = []
    assert call_each(ordered_pm(esomp_pm_factory, calls), "job_started", job=None, site=None) == []
    assert calls == EXPECTED


def test_call_each_pins_a_failure_on_its_plugin_and_the_others_still_run(esomp_pm_factory):
    calls = []

    class Broken:
        @hookimpl
        def job_started(self, job):
            calls.append("broken")
            raise RuntimeError("observer down")

    pm = ordered_pm(esomp_pm_factory, calls)
    pm.register(Broken(), name="broken-observer")
    failures = call_each(pm, "job_started", job=None, site=None)
    assert [(plugin, str(exc)) for plugin, exc in failures] == [("broken-observer", "observer down")]
    assert calls == [*EXPECTED[:2], "first", "broken", *EXPECTED[3:]]


def test_call_each_pins_a_failing_wrapper_on_its_plugin(esomp_pm_factory):
    class FailingWrapper:
        @hookimpl(wrapper=True)
        def job_started(self):
            yield
            raise RuntimeError("wrapper down")

    calls = []
    pm = esomp_pm_factory(observer("plain", calls))
    pm.register(FailingWrapper(), name="failing-wrapper")
    failures = call_each(pm, "job_started", job=None, site=None)
    assert [(plugin, str(exc)) for plugin, exc in failures] == [("failing-wrapper", "wrapper down")]
    assert calls == ["plain"]


def file_type_registrar(name, calls, **marks):
    class Registrar:
        @hookimpl(**marks)
        def register_file_types(self, register):
            calls.append(name)
            register(FileType(name.upper(), "test", (f"{name}*",)))
    return Registrar()


def test_registry_collect_honours_tryfirst_trylast_and_wrappers(esomp_pm_factory):
    calls = []

    class CheckAfterAll:
        """A wrapper around registration: it sees every file type the others registered."""

        @hookimpl(wrapper=True)
        def register_file_types(self, register):
            calls.append("wrapper before")
            yield
            calls.append("wrapper after")
            register(FileType("WRAPPED", "test", ("wrapped*",)))

    pm = esomp_pm_factory()
    for name, plugin in (("late", file_type_registrar("late", calls, trylast=True)),
                         ("early", file_type_registrar("early", calls, tryfirst=True)),
                         ("older", file_type_registrar("older", calls)),
                         ("wrap", CheckAfterAll()),
                         ("newer", file_type_registrar("newer", calls))):
        pm.register(plugin, name=name)
    reg = Registry.collect(pm)
    assert not reg.errors, reg.errors
    assert calls == ["wrapper before", "early", "newer", "older", "late", "wrapper after"]
    assert {name: reg.owners[("file type", name)] for name in ("EARLY", "NEWER", "OLDER", "LATE", "WRAPPED")} == {
        "EARLY": "early", "NEWER": "newer", "OLDER": "older", "LATE": "late", "WRAPPED": "wrap"}


def test_registry_collect_pins_a_failing_registration_on_its_plugin(esomp_pm_factory):
    class Broken:
        @hookimpl(tryfirst=True)
        def register_file_types(self):
            raise RuntimeError("no layout")

    calls = []
    pm = esomp_pm_factory()
    pm.register(Broken(), name="broken")
    pm.register(file_type_registrar("fine", calls), name="fine")
    reg = Registry.collect(pm)
    assert reg.errors == ["plugin broken: register_file_types failed: RuntimeError: no layout"]
    assert "FINE" in reg.file_types


# --- a stage hook: process ---------------------------------------------------------------------------------------


class Toy(StageHooks):
    """One processing job; its result names who answered."""

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("toy", "Toy", plan=lambda site, date: [JobSpec("process-1", "process", "toy")]))

    def work(self, job, site):
        return JobResult(files=1, detail={"answered_by": "toy"})


def test_process_reaches_the_owner_only_whatever_tryfirst_or_trylast(esomp_site_factory, esomp_pm_factory):
    """Other plugins' tryfirst and trylast implementations of a stage hook are not asked: the engine calls the
    job's owner (the plugin that registered its business type), and pluggy's order among wrappers only."""
    calls = []

    class First:
        @hookimpl(tryfirst=True)
        def process(self, job):
            calls.append("first")
            return JobResult(detail={"answered_by": "first"})

    class Last:
        @hookimpl(trylast=True)
        def process(self, job):
            calls.append("last")
            return JobResult(detail={"answered_by": "last"})

    site = esomp_site_factory(esomp_pm_factory(Last(), First(), Toy()))
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"
    with site.repository.session() as s:
        assert s.scalar(select(JobRow.detail).where(JobRow.name == "process-1")) == {"answered_by": "toy"}
    assert calls == []


def test_process_wrapper_wraps_the_job_in_the_engine(esomp_site_factory, esomp_pm_factory):
    seen = []

    class Timing:
        @hookimpl(wrapper=True)
        def process(self, job):
            seen.append(("before", job.name))
            result = yield
            seen.append(("after", job.name, result.detail.get("answered_by")))
            result.detail["wrapped"] = True
            return result

    site = esomp_site_factory(esomp_pm_factory(Toy(), Timing()))
    summary = Engine(site, DATE, executor="inline").run()
    assert summary.state == "succeeded", summary.counts
    assert seen == [("before", "process-1"), ("after", "process-1", "toy")]
    with site.repository.session() as s:
        detail = s.scalar(select(JobRow.detail).where(JobRow.name == "process-1"))
    assert detail["wrapped"] is True


@pytest.mark.parametrize("stage", ["collect", "process", "send", "post"])
def test_stage_hooks_accept_wrappers(esomp_pm_factory, stage):
    """A wrapper on any stage registers (the signature check passes) and runs around the answer."""
    class Around:
        pass

    def wrapper(self, job):
        result = yield
        return result

    setattr(Around, stage, hookimpl(wrapper=True)(wrapper))
    pm = esomp_pm_factory(Around())
    assert any(impl.wrapper for impl in getattr(pm.hook, stage).get_hookimpls())
