"""One engine per day: two engines started together on PostgreSQL, one runs the day, the other is told who holds it."""
import multiprocessing
import os
import socket
import time
import traceback
from pathlib import Path

import pytest

from esomp_core import hookimpl
from esomp_core.engine import Engine, RunLocked
from esomp_core.model import BusinessType, JobResult, JobSpec
from esomp_core.site import Site
from esomp_core.testing import StageHooks

DATE = "20260105"


class Holding(StageHooks):
    """One job that holds the day until the test creates the release file."""

    def __init__(self, release: Path):
        self.release = release

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("hold", "Hold", lambda site, date: [
            JobSpec(name=f"hold-{i}", stage="collect", business_type="hold") for i in range(20)]))

    def work(self, job, site):
        while not self.release.exists():  # a wait the test ends, not a timed assertion
            time.sleep(0.02)
        return JobResult()


def _engine(root, pm, barrier, results):
    try:
        site = Site.open(root, pm=pm)
        barrier.wait()
        summary = Engine(site, DATE, executor="inline").run()
        results.put(("ran", summary.state))
    except RunLocked as exc:
        results.put(("locked", str(exc)))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def race(site, pm, release):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    engines = [context.Process(target=_engine, args=(site.root, pm, barrier, results)) for _ in range(2)]
    for engine in engines:
        engine.start()
    first = results.get(timeout=120)  # the engine that lost the race answers while the other holds the day
    release.touch()
    second = results.get(timeout=120)
    for engine in engines:
        engine.join(timeout=60)
    return sorted([first, second])


@pytest.mark.parametrize("attempt", range(3))
def test_two_engines_racing_on_postgresql_one_runs_the_other_names_the_holder(
        esomp_site_factory, esomp_pm_factory, esomp_postgres_url, tmp_path, attempt):
    release = tmp_path / "release"
    pm = esomp_pm_factory(Holding(release))
    site = esomp_site_factory(pm, engine={"poll": 0.02}, database={"url": esomp_postgres_url})
    outcomes = race(site, pm, release)
    assert [kind for kind, _ in outcomes] == ["locked", "ran"], outcomes
    locked, ran = outcomes[0][1], outcomes[1][1]
    assert ran == "succeeded"
    assert f"the run of {DATE} is held by {socket.gethostname()}:" in locked
    assert f"(host {socket.gethostname()}, process " in locked and ") since " in locked and "heartbeat" in locked


def test_the_lock_message_names_host_process_and_since(esomp_site_factory, esomp_pm_factory, tmp_path):
    from datetime import datetime

    from sqlalchemy import update

    from esomp_core.repository.models import Run

    release = tmp_path / "release"
    release.touch()
    site = esomp_site_factory(esomp_pm_factory(Holding(release)))
    Engine(site, DATE, executor="inline").run()
    since = datetime(2026, 1, 5, 8, 30, 0)
    with site.repository.session() as s:
        s.execute(update(Run).values(lock_holder="opshost:4242", lock_heartbeat=datetime.now(), started_at=since))
    with pytest.raises(RunLocked) as info:
        Engine(site, DATE, executor="inline").run()
    assert str(info.value).startswith(f"the run of {DATE} is held by opshost:4242 (host opshost, process 4242) "
                                      "since 2026-01-05 08:30:00, last heartbeat ")
    assert os.getpid() != 4242
