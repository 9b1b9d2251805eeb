"""The engine against a real repository and real worker processes, with a small business type of its own."""
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest
from sqlalchemy import select, update

from esomp_core import hookimpl
from esomp_core.config import ConfigError
from esomp_core.engine import (
    WAITING,
    Engine,
    RunLocked,
    cancel_run,
    pause_batch,
    reset_for_rerun,
    resume_batch,
)
from esomp_core.model import BusinessType, ChannelKind, Executor, JobResult, JobSpec
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import JobEvent, Run
from esomp_core.testing import StageHooks

DATE = "20261120"
TOY_CHANNELS = {"x": {"kind": "toy"}}


@attrs.define
class NoOptions:
    pass


class Toy(StageHooks):
    """collect -> process per batch (2 jobs each) -> send per batch; outputs written atomically."""

    def __init__(self, batches=3, on_finish=None):
        self.batches = batches
        self.on_finish = on_finish
        self.heard = []

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("toy", "Toy", plan=self.plan))

    @hookimpl
    def register_channel_kinds(self, register):  # its collection job names channel x, of this kind
        register(ChannelKind("toy", options=NoOptions, open=lambda name, options, site: None))

    def plan(self, site, date):
        specs = [JobSpec("collect-x", "collect", "toy", channel="x", category="toy/采集")]
        for b in range(1, self.batches + 1):
            for j in (1, 2):
                specs.append(JobSpec(f"process-b{b}-j{j}", "process", "toy", batch=b, category=f"toy/加工/批次{b}",
                                     products=(f"P{b}{j}",), depends_on=("collect-x",)))
            specs.append(JobSpec(f"send-b{b}", "send", "toy", batch=b, category=f"toy/发送/批次{b}",
                                 depends_on=(f"process-b{b}-j1", f"process-b{b}-j2")))
        return specs

    def work(self, job, site):
        out = Path(site.directory("clearing_root")) / job.date
        out.mkdir(parents=True, exist_ok=True)
        marker = out / f"{job.name}.kill"
        if job.params.get("kill_once") and not marker.exists():
            marker.write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        if (out / f"{job.name}.corrupt").exists():
            raise ValueError(f"input {out / 'x.dbf'} is corrupt")
        tmp = out / f".{job.name}.tmp"
        tmp.write_text(f"{job.name} {','.join(job.products)}")
        tmp.replace(out / f"{job.name}.out")
        return JobResult(files=1, records=len(job.products), bytes=tmp.stat().st_size if tmp.exists() else 10)

    @hookimpl
    def job_finished(self, job, site):
        self.heard.append((job.name, job.state))
        if self.on_finish:
            self.on_finish(job, site)


def states(site):
    with site.repository.session() as s:
        return dict(s.execute(select(JobRow.name, JobRow.state)).all())


@pytest.fixture
def toy_site(esomp_site_factory, esomp_pm_factory):
    def make(toy=None, **engine):
        toy = toy or Toy()
        site = esomp_site_factory(esomp_pm_factory(toy), engine={"poll": 0.02, **engine}, channels=TOY_CHANNELS)
        return site, toy
    return make


def test_hook_job_started_and_job_finished_fire_as_run_inline_commits_every_state(toy_site):
    site, toy = toy_site()
    started = []

    class Watch:
        @hookimpl
        def job_started(self, job):
            started.append(job.name)

    site.pm.register(Watch())
    summary = Engine(site, DATE, executor="inline").run()
    assert summary.state == "succeeded" and summary.counts == {"succeeded": 10}
    assert len(started) == 10 and started[0] == "collect-x"
    assert sorted(toy.heard) == sorted((name, "succeeded") for name in states(site))
    with site.repository.session() as s:
        rows = s.scalars(select(JobRow)).all()
        assert all(r.started_at and r.finished_at and r.files == 1 and r.attempts == 1 for r in rows)
        assert s.scalar(select(Run)).lock_holder is None
        events = s.scalars(select(JobEvent.state).where(JobEvent.job_id == rows[0].id)).all()
        assert events == ["running", "succeeded"]


def test_local_executor_runs_in_worker_processes(toy_site):
    site, _ = toy_site()
    summary = Engine(site, DATE, executor="local", workers=2).run()
    assert summary.state == "succeeded"
    with site.repository.session() as s:
        workers = set(s.scalars(select(JobRow.worker)))
    assert all(w and not w.endswith(f":{os.getpid()}") for w in workers)


def test_failure_skips_downstream_only_and_rerun_completes(toy_site):
    site, _ = toy_site()
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "process-b2-j1.corrupt").write_text("")
    summary = Engine(site, DATE, executor="inline").run()
    st = states(site)
    assert summary.state == "failed"
    assert st["process-b2-j1"] == "failed" and st["send-b2"] == "skipped"
    assert st["process-b2-j2"] == st["send-b1"] == st["send-b3"] == "succeeded"
    with site.repository.session() as s:
        error = s.scalar(select(JobRow.error).where(JobRow.name == "process-b2-j1"))
    assert "x.dbf is corrupt" in error
    (out / "process-b2-j1.corrupt").unlink()
    assert reset_for_rerun(site, DATE, failed=True) == ["process-b2-j1", "send-b2"]
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"


def test_hook_batch_paused_holds_its_jobs_batch_resumed_releases_them(toy_site):
    seen = {}

    def on_finish(job, site):
        st = states(site)
        if job.name == "process-b1-j1":
            pause_batch(site, job.date, 2)
        others = [n for n in st if n != "collect-x" and "-b2" not in n]
        if "held" not in seen and all(st[n] == "succeeded" for n in others):
            seen["held"] = {n: s for n, s in st.items() if "-b2" in n}
            resume_batch(site, job.date, 2)

    toy = Toy(batches=4, on_finish=on_finish)
    site, _ = toy_site(toy)
    paused, resumed = [], []

    class Watch:
        @hookimpl
        def batch_paused(self, date, batch):
            paused.append((date, batch))

        @hookimpl
        def batch_resumed(self, batch):
            resumed.append(batch)

    site.pm.register(Watch())
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"
    assert seen["held"] == {"process-b2-j1": "paused", "process-b2-j2": "paused", "send-b2": "paused"}
    assert paused == [(DATE, 2)] and resumed == [2]
    order = [name for name, _ in toy.heard]
    assert order.index("send-b4") < order.index("process-b2-j1")


def test_killed_worker_loses_no_work(toy_site):
    class Killer(Toy):
        def plan(self, site, date):
            specs = super().plan(site, date)
            specs[1].params["kill_once"] = True  # process-b1-j1 dies by SIGKILL on its first attempt
            return specs

    site, _ = toy_site(Killer())
    summary = Engine(site, DATE, executor="local", workers=2).run()
    assert summary.state == "succeeded"
    with site.repository.session() as s:
        row = s.scalar(select(JobRow).where(JobRow.name == "process-b1-j1"))
        messages = s.scalars(select(JobEvent.message).where(JobEvent.job_id == row.id)).all()
    assert row.attempts == 2
    assert any("worker lost" in (m or "") for m in messages)
    with site.repository.session() as s:  # only the killed worker's job ran again; the other worker went on
        others = s.execute(select(JobRow.name, JobRow.attempts).where(JobRow.name != "process-b1-j1")).all()
        events = s.execute(select(JobEvent.state, JobEvent.message).where(JobEvent.job_id == row.id)
                           .order_by(JobEvent.id)).all()
    assert {attempts for _, attempts in others} == {1}
    events = events[[state for state, _ in events].index("running"):]  # from its first start on
    assert [state for state, _ in events] == ["running", "pending", "running", "succeeded"]
    assert events[0].message.split(" on ")[1] != events[2].message.split(" on ")[1]  # a new worker process
    out = Path(site.directory("clearing_root")) / DATE
    assert (out / "process-b1-j1.out").read_text() == "process-b1-j1 P11"
    assert not list(out.glob(".*.tmp"))


def test_stale_heartbeat_job_runs_again(toy_site):
    site, _ = toy_site(lease=1)
    Engine(site, DATE, executor="inline").run()
    with site.repository.session() as s:
        s.execute(update(JobRow).where(JobRow.name == "send-b1").values(
            state="running", worker="deadhost:1", heartbeat_at=datetime.now() - timedelta(minutes=5)))
        s.execute(update(Run).values(state="running"))
    assert Engine(site, DATE, executor="inline", lease=1).run().state == "succeeded"
    with site.repository.session() as s:
        row = s.scalar(select(JobRow).where(JobRow.name == "send-b1"))
        messages = s.scalars(select(JobEvent.message).where(JobEvent.job_id == row.id)).all()
    assert row.state == "succeeded" and row.attempts == 2
    assert any("heartbeat from deadhost:1 stale" in (m or "") for m in messages)


def test_second_run_says_who_holds_the_lock(toy_site, esomp_cli):
    site, _ = toy_site()
    Engine(site, DATE, executor="inline").run()
    with site.repository.session() as s:
        s.execute(update(Run).values(lock_holder="opshost:4242", lock_heartbeat=datetime.now()))
    with pytest.raises(RunLocked, match="held by opshost:4242"):
        Engine(site, DATE, executor="inline").run()


def test_cli_run_status_jobs_and_cancel(toy_site, esomp_cli):
    site, toy = toy_site()
    plugins = [toy]
    result = esomp_cli(["run", "--date", DATE, "--executor", "inline", "--json"], site=site, plugins=plugins)
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    groups = [(line["stage"], line["group"]) for line in status["lines"]]
    assert ("collect", "x") in groups and ("process", "batch 3") in groups and ("send", "batch 1") in groups
    assert status["counts"] == {"succeeded": 10}
    found = json.loads(esomp_cli(["jobs", "--query", "P22", "--json"], site=site, plugins=plugins).output)
    assert [j["name"] for j in found] == ["process-b2-j2"]
    by_category = json.loads(esomp_cli(["jobs", "--category", "发送", "--json"], site=site, plugins=plugins).output)
    assert len(by_category) == 3
    plan = json.loads(esomp_cli(["plan", "--date", DATE, "--json"], site=site, plugins=plugins).output)
    assert plan[0]["name"] == "collect-x" and plan[-1]["depends_on"] == ["process-b3-j1", "process-b3-j2"]
    table = esomp_cli(["status", "--date", DATE], site=site, plugins=plugins)
    assert "batch 2" in table.output and "wall time" in table.output
    reset_for_rerun(site, DATE, failed=False, job_id=None)
    assert esomp_cli(["cancel", DATE], site=site, plugins=plugins).exit_code == 0
    with site.repository.session() as s:
        assert s.scalar(select(Run.state)) == "cancelled"


def test_stop_lets_running_jobs_finish_and_the_next_run_goes_on(toy_site):
    holder = {}

    class StopWhileCollecting(Toy):
        @hookimpl
        def collect(self, job, site):
            holder["engine"].stop()  # as the daemon does on SIGTERM, while a job runs
            return self.work(job, site)

    site, _ = toy_site(StopWhileCollecting())
    holder["engine"] = Engine(site, DATE, executor="inline")
    summary = holder["engine"].run()
    assert summary.state == "stopped" and summary.counts.get("succeeded") == 1
    with site.repository.session() as s:
        run = s.scalar(select(Run))
        assert (run.state, run.lock_holder) == ("stopped", None)
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_run_on_postgresql_with_a_failure_and_a_rerun(esomp_site_factory, esomp_pm_factory, esomp_postgres_url,
                                                      executor):
    site = esomp_site_factory(esomp_pm_factory(Toy()), engine={"poll": 0.02}, database={"url": esomp_postgres_url},
                              channels=TOY_CHANNELS)
    assert site.repository.engine.dialect.name == "postgresql"
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "process-b1-j2.corrupt").write_text("")
    assert Engine(site, DATE, executor=executor, workers=2).run().state == "failed"
    assert states(site)["send-b1"] == "skipped"
    (out / "process-b1-j2.corrupt").unlink()
    assert reset_for_rerun(site, DATE, failed=True) == ["process-b1-j2", "send-b1"]
    assert Engine(site, DATE, executor=executor, workers=2).run().state == "succeeded"
    site.repository.dispose()


class Threads:
    """An executor with only what the ``register_executors`` contract asks: ``workers``, ``submit``, ``shutdown``."""

    def __init__(self, site, workers=None):
        self.site, self.workers = site, workers or 2
        self.pool = ThreadPoolExecutor(self.workers)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args, site=self.site)

    def shutdown(self):
        self.pool.shutdown()


def test_hook_register_executors_with_only_submit_runs_the_day_its_workers_recording_each_start(toy_site):
    class ThreadedToy(Toy):
        @hookimpl
        def register_executors(self, register):
            register(Executor("threads", Threads))

    site, _ = toy_site(ThreadedToy())
    assert Engine(site, DATE, executor="threads").run().state == "succeeded"
    with site.repository.session() as s:
        rows = s.scalars(select(JobRow)).all()
        events = s.execute(select(JobEvent.job_id, JobEvent.state, JobEvent.message).order_by(JobEvent.id)).all()
    assert all(r.attempts == 1 and r.started_at and r.worker == f"{os.uname().nodename}:{os.getpid()}" for r in rows)
    for r in rows:
        mine = [(state, message) for job_id, state, message in events if job_id == r.id and state not in WAITING]
        assert mine == [("running", f"attempt 1 on {r.worker}"), ("succeeded", None)]


def test_a_failed_collection_skips_everything_downstream_in_the_same_run(toy_site):
    site, _ = toy_site(poll=60)  # no look at the repository during the run: the skips follow from the failure
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "collect-x.corrupt").write_text("")
    summary = Engine(site, DATE, executor="inline").run()
    assert summary.state == "failed" and summary.counts == {"failed": 1, "skipped": 9}
    with site.repository.session() as s:
        messages = s.scalars(select(JobEvent.message).where(JobEvent.state == "skipped")).all()
    assert messages == ["an upstream job did not succeed"] * 9


def test_cancel_during_the_run_cancels_what_has_not_started(toy_site):
    def on_finish(job, site):
        if job.name == "collect-x":  # batches 2 and 3 are held, so the run cannot end before it sees the cancel
            pause_batch(site, job.date, 2)
            pause_batch(site, job.date, 3)
        if job.name == "send-b1":
            cancel_run(site, job.date)

    site, _ = toy_site(Toy(on_finish=on_finish))
    summary = Engine(site, DATE, executor="inline").run()
    assert summary.state == "cancelled"
    st = states(site)
    assert {name for name, state in st.items() if state == "succeeded"} == {
        "collect-x", "process-b1-j1", "process-b1-j2", "send-b1"}
    assert {state for name, state in st.items() if "-b1" not in name and name != "collect-x"} == {"cancelled"}
    with site.repository.session() as s:
        assert s.scalar(select(Run.state)) == "cancelled"


def test_a_rerun_asked_for_during_the_run_is_taken_up_by_it(toy_site):
    def on_finish(job, site):
        out = Path(site.directory("clearing_root")) / job.date
        if job.name == "process-b2-j1":  # batch 1's failure is known by now, and its send skipped
            assert states(site)["send-b1"] == "skipped"
            (out / "process-b1-j1.corrupt").unlink()
            assert reset_for_rerun(site, job.date, failed=True) == ["process-b1-j1", "send-b1"]

    site, toy = toy_site(Toy(on_finish=on_finish))
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "process-b1-j1.corrupt").write_text("")
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"
    assert [name for name, _ in toy.heard].count("process-b1-j1") == 2
    with site.repository.session() as s:
        assert s.scalar(select(JobRow.attempts).where(JobRow.name == "process-b1-j1")) == 2


def test_an_executor_error_that_is_not_a_lost_worker_stops_the_run_and_frees_the_day(toy_site):
    class Broken(Threads):
        def submit(self, fn, *args):
            return self.pool.submit(self.fail)

        def fail(self):
            raise RuntimeError("database is gone")

    class BrokenToy(Toy):
        @hookimpl
        def register_executors(self, register):
            register(Executor("broken", Broken))

    site, _ = toy_site(BrokenToy())
    with pytest.raises(RuntimeError, match="database is gone"):
        Engine(site, DATE, executor="broken").run()
    with site.repository.session() as s:
        run = s.scalar(select(Run))
        assert (run.state, run.lock_holder) == ("failed", None)
    assert states(site)["collect-x"] == "running"  # left to the lease, as a crashed engine would


def test_hook_job_finished_listener_that_raises_does_not_stop_the_day(toy_site, caplog):
    def on_finish(job, site):
        raise LookupError("listener bug")

    site, _ = toy_site(Toy(on_finish=on_finish))
    assert Engine(site, DATE, executor="local", workers=2).run().state == "succeeded"
    assert "a job_finished hook failed for collect-x" in caplog.text


class Staggered(Toy):
    """Each batch's processing starts after the previous batch's processing has ended (``after``), whatever its
    state: ordering only, not a dependency."""

    def plan(self, site, date):
        specs = super().plan(site, date)
        for spec in specs:
            if spec.name.startswith("process-b") and spec.batch > 1:
                spec.after = (f"process-b{spec.batch - 1}-j1", f"process-b{spec.batch - 1}-j2")
        return specs


def first_event(site, name, state):
    with site.repository.session() as s:
        job_id = s.scalar(select(JobRow.id).where(JobRow.name == name))
        return s.scalar(select(JobEvent.id).where(JobEvent.job_id == job_id, JobEvent.state == state)
                        .order_by(JobEvent.id))


def test_a_failure_holds_only_its_dependents_not_the_jobs_ordered_after_it(toy_site):
    site, _ = toy_site(Staggered(batches=3))
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "process-b1-j1.corrupt").write_text("")
    summary = Engine(site, DATE, executor="local", workers=2).run()
    st = states(site)
    assert summary.state == "failed"
    assert {n for n, s in st.items() if s == "skipped"} == {"send-b1"}
    assert {n for n, s in st.items() if s == "failed"} == {"process-b1-j1"}
    # batch 2 still started only once both of batch 1's processing jobs had ended
    started_b2 = min(first_event(site, f"process-b2-j{j}", "running") for j in (1, 2))
    assert started_b2 > first_event(site, "process-b1-j1", "failed")
    assert started_b2 > first_event(site, "process-b1-j2", "succeeded")
    (out / "process-b1-j1.corrupt").unlink()
    assert reset_for_rerun(site, DATE, failed=True) == ["process-b1-j1", "send-b1"]  # not what was ordered after
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"


def test_plan_refuses_an_unknown_or_cyclic_after():
    from esomp_core.plan import PlanError, check_plan

    with pytest.raises(PlanError, match="after unknown job 'nope'"):
        check_plan([JobSpec("a", "process", "toy", after=("nope",))])
    with pytest.raises(PlanError, match="cycle"):
        check_plan([JobSpec("a", "process", "toy", after=("b",)), JobSpec("b", "process", "toy", depends_on=("a",))])
    ordered = check_plan([JobSpec("a", "process", "toy", after=("b",)), JobSpec("b", "process", "toy")])
    assert [s.name for s in ordered] == ["b", "a"]


def test_after_orders_and_a_failure_skips_only_dependents_on_postgresql(esomp_site_factory, esomp_pm_factory,
                                                                          esomp_postgres_url):
    site = esomp_site_factory(esomp_pm_factory(Staggered(batches=2)), engine={"poll": 0.02},
                              database={"url": esomp_postgres_url}, channels=TOY_CHANNELS)
    out = Path(site.directory("clearing_root")) / DATE
    out.mkdir(parents=True)
    (out / "process-b1-j2.corrupt").write_text("")
    assert Engine(site, DATE, executor="local", workers=2).run().state == "failed"
    st = states(site)
    assert {n for n, s in st.items() if s == "skipped"} == {"send-b1"}
    assert st["process-b2-j1"] == st["process-b2-j2"] == st["send-b2"] == "succeeded"
    with site.repository.session() as s:
        assert s.scalar(select(JobRow.after).where(JobRow.name == "process-b2-j1")) == ["process-b1-j1",
                                                                                        "process-b1-j2"]
    site.repository.dispose()


class OnlyTheProtocol:
    """An executor with the protocol's required members and nothing else; it notes every attribute the engine
    asks of it, and has a ``wait`` of its own that is not the engine's optional capability."""

    def __init__(self, site, workers=None):
        self.asked = set()
        self.site, self.workers = site, 2
        self.pool = ThreadPoolExecutor(self.workers)
        OnlyTheProtocol.last = self

    def __getattribute__(self, name):
        if not name.startswith("_") and name not in ("asked", "site", "pool"):
            object.__getattribute__(self, "asked").add(name)
        return object.__getattribute__(self, name)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args, site=self.site)

    def shutdown(self):
        self.pool.shutdown()

    def wait(self):
        """Block until the pool is idle: a method of this executor's own, never the engine's ``wait``."""
        raise AssertionError("the engine called a method the executor protocol does not name")


def test_hook_register_executors_with_only_the_protocol_runs_the_day_asked_nothing_else(toy_site):
    class PlainToy(Toy):
        @hookimpl
        def register_executors(self, register):
            register(Executor("plain", OnlyTheProtocol))

    site, _ = toy_site(PlainToy())
    assert Engine(site, DATE, executor="plain").run().state == "succeeded"
    assert OnlyTheProtocol.last.asked == {"workers", "submit", "shutdown"}


class NoSubmit:
    def __init__(self, site, workers=None):
        self.workers = 1

    def shutdown(self):
        pass


def test_hook_register_executors_without_submit_is_refused_naming_the_plugin_and_the_method(
        esomp_site_factory, esomp_pm_factory):
    class Acme:
        @hookimpl
        def register_executors(self, register):
            register(Executor("acme", NoSubmit))

    pm = esomp_pm_factory()
    pm.register(Acme(), name="esomp-acme")
    site = esomp_site_factory(pm)
    assert "acme" not in site.registry.executors
    [error] = site.registry.errors
    assert error.startswith("plugin esomp-acme: register_executors failed: ")
    assert "executor 'acme'" in error and "NoSubmit has no submit method" in error
    with pytest.raises(ValueError, match="NoSubmit has no submit method"):  # who asks for it is told why it is missing
        Engine(site, DATE, executor="acme").run()
    site = esomp_site_factory(pm, engine={"executor": "acme"})
    with pytest.raises(ConfigError) as info:
        Engine(site, DATE)
    assert info.value.path == "engine.executor" and "NoSubmit has no submit method" in info.value.message


def test_hook_register_executors_factory_whose_executor_lacks_submit_fails_the_run_naming_it(toy_site):
    class FactoryToy(Toy):
        @hookimpl
        def register_executors(self, register):
            register(Executor("made", lambda site, workers: NoSubmit(site, workers)))

    site, _ = toy_site(FactoryToy())
    with pytest.raises(TypeError, match=r"executor 'made' \(plugin \d+\): NoSubmit has no submit method"):
        Engine(site, DATE, executor="made").run()
    with site.repository.session() as s:
        run = s.scalar(select(Run))
        assert (run.state, run.lock_holder) == ("failed", None)  # the day is free for the next engine


def test_hook_register_executors_options_class_checks_the_sites_executors_table(esomp_site_factory, esomp_pm_factory):
    import attrs

    from esomp_core.engine import engine_options

    @attrs.frozen
    class RemoteOptions:
        scheduler: str = "tcp://127.0.0.1:8786"

    class Remote:
        @hookimpl
        def register_executors(self, register):
            register(Executor("remote", OnlyTheProtocol, "test", options=RemoteOptions))

    pm = esomp_pm_factory(Remote())
    assert engine_options(esomp_site_factory(pm, executors={"remote": {"scheduler": "tcp://h:1"}})).executor == "local"
    with pytest.raises(ConfigError) as info:
        engine_options(esomp_site_factory(pm, executors={"remote": {"schedular": "tcp://h:1"}}))
    assert info.value.path.startswith("executors.remote")
