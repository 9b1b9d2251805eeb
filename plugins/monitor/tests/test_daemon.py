"""The daemon: starts the day at its time, runs the monitors, cleans up, survives SIGKILL, stops on SIGTERM.

Run as a script (``python test_daemon.py SITE CLOCK_START``) this file is the daemon process the subprocess tests
start: the monitor plugin's daemon with the small business type below registered.
"""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import attrs
import pytest
from sqlalchemy import select

from esomp_core import hookimpl
from esomp_core.model import BusinessType, ChannelKind, JobResult, JobSpec
from esomp_core.repository.models import Alert as AlertRow
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import JobEvent, Run
from esomp_core import MonitorRunRow as MonitorRun
from esomp_monitor.models import DaemonHeartbeat
from esomp_core.testing import StageHooks
from esomp_monitor import Daemon, plugin, remove_older

DATE = "20261120"  # a Friday


@attrs.define
class NoOptions:
    pass


def plain_channel_kind(name):
    """A channel kind without options whose channel opens to nothing: the test business type registers it so that
    it owns the collection job naming a channel of it."""
    return ChannelKind(name, options=NoOptions, open=lambda channel, options, site: None)


class Mini(StageHooks):
    """collect -> process and send in two batches. Every execution is logged to executions.log in the site;
    a job named in ``fail`` fails, a job listed in kill-once.txt kills its own process on its first attempt."""

    def __init__(self, fail=()):
        self.fail = set(fail)

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("mini", "Mini", plan=lambda site, date: [
            JobSpec("collect-x", "collect", "mini", channel="x"),
            JobSpec("process-b1", "process", "mini", batch=1, depends_on=("collect-x",)),
            JobSpec("send-b1", "send", "mini", batch=1, depends_on=("process-b1",)),
            JobSpec("process-b2", "process", "mini", batch=2, depends_on=("collect-x",)),
            JobSpec("send-b2", "send", "mini", batch=2, depends_on=("process-b2",))]))

    @hookimpl
    def register_channel_kinds(self, register):  # its collection job names channel x, of this kind
        register(plain_channel_kind("mini"))

    def work(self, job, site):
        if job.business_type != "mini":
            return None
        with open(site.root / "executions.log", "a") as log:
            log.write(job.name + "\n")
        kill_list = site.root / "kill-once.txt"
        marker = site.root / f"{job.name}.killed"
        if kill_list.exists() and job.name in kill_list.read_text().split() and not marker.exists():
            marker.write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        if job.name in self.fail:
            raise ValueError(f"{job.name}: input is corrupt")
        return JobResult(files=1)


TABLES = {"daemon": {"start": "09:00", "tick": 0.1, "executor": "inline"}, "engine": {"poll": 0.01, "lease": 1.0},
          "channels": {"x": {"kind": "mini"}}}


@pytest.fixture
def mini_site(esomp_site_factory, esomp_pm_factory):
    def make(mini=None, **tables):
        return esomp_site_factory(esomp_pm_factory(plugin, mini or Mini()), **{**TABLES, **tables})
    return make


def job_states(site):
    with site.repository.session() as s:
        return dict(s.execute(select(JobRow.name, JobRow.state)).all())


def executions(site):
    path = site.root / "executions.log"
    return path.read_text().split() if path.exists() else []


def test_daemon_starts_the_plan_at_its_time_then_the_monitors_see_the_day(mini_site):
    site = mini_site(Mini(fail={"send-b2"}))
    now = [datetime(2026, 11, 20, 8, 58)]
    daemon = Daemon(site, clock=lambda: now[0])
    assert daemon.tick()["date"] is None  # before the configured time: nothing runs
    assert job_states(site) == {}
    now[0] = datetime(2026, 11, 20, 9, 0)
    assert daemon.tick()["date"] == DATE
    daemon.wait_for_engine(60)
    assert job_states(site) == {"collect-x": "succeeded", "process-b1": "succeeded", "send-b1": "succeeded",
                                "process-b2": "succeeded", "send-b2": "failed"}
    now[0] = datetime(2026, 11, 20, 9, 1)
    daemon.tick()  # the job_failed monitor (every 60 s) runs again and sees the failure
    with site.repository.session() as s:
        assert s.scalars(select(AlertRow.subject).where(AlertRow.rule == "job.failed")).all() == [f"{DATE}/send-b2"]
        beat = s.get(DaemonHeartbeat, "daemon")
        assert beat.state == "idle" and beat.pid == os.getpid() and beat.detail["clock"] == "2026-11-20T09:01:00"
    heartbeat = json.loads((Path(site.directory("monitoring_centre")) / "daemon-heartbeat.json").read_text())
    assert heartbeat["engine_date"] == DATE and heartbeat["run"]["state"] == "failed"
    now[0] = datetime(2026, 11, 20, 9, 2)
    daemon.tick()  # a failed day is not started again (an operator's rerun would put jobs back to pending)
    daemon.wait_for_engine(60)
    assert executions(site).count("collect-x") == 1


def test_daemon_does_nothing_on_a_holiday(mini_site):
    site = mini_site(calendar={"holidays": ["2026-11-20"]})
    daemon = Daemon(site, clock=lambda: datetime(2026, 11, 20, 10, 0))
    assert daemon.tick()["date"] is None and job_states(site) == {}


def test_daemon_cleanup_template_removes_only_what_is_past_retention(mini_site):
    site = mini_site(daemon={**TABLES["daemon"], "cleanup": {"at": "20:00", "directories": {"send_temp": 7},
                                                             "job_events_days": 30}})
    send_temp = Path(site.directory("send_temp"))
    for name in ("20261101", "20261119", "20261112-extra"):
        (send_temp / name).mkdir()
        (send_temp / name / "f.txt").write_text("x")
    old_file = send_temp / "leftover.tmp"
    old_file.write_text("x")
    stamp = datetime(2026, 11, 1).timestamp()
    os.utime(old_file, (stamp, stamp))
    (send_temp / "fresh.tmp").write_text("x")
    with site.repository.session() as s:
        run = Run(date="20261001", state="succeeded", paused_batches=[])
        s.add(run)
        s.flush()
        job = JobRow(run_id=run.id, name="j", stage="collect", business_type="mini", products=[], depends_on=[],
                     params={}, detail={})
        s.add(job)
        s.flush()
        s.add_all([JobEvent(job_id=job.id, at=datetime(2026, 10, 1), state="succeeded"),
                   JobEvent(job_id=job.id, at=datetime(2026, 11, 19), state="succeeded")])
    daemon = Daemon(site, clock=lambda: datetime(2026, 11, 20, 19, 59))
    daemon.tick()
    assert "cleanup" not in daemon.last  # not before 20:00
    daemon.clock = lambda: datetime(2026, 11, 20, 20, 0)
    daemon.tick()
    assert daemon.last["cleanup"] == {"send_temp": ["20261101", "20261112-extra", "leftover.tmp"], "job_events": 1}
    assert sorted(p.name for p in send_temp.iterdir()) == ["20261119", "fresh.tmp"]
    daemon.last.clear()
    daemon.clock = lambda: datetime(2026, 11, 20, 21, 0)
    daemon.tick()
    assert "cleanup" not in daemon.last  # once a day
    with site.repository.session() as s:
        assert s.get(MonitorRun, "daemon:cleanup").last_run_at == datetime(2026, 11, 20, 20, 0)


def test_remove_older_ignores_a_missing_directory(tmp_path):
    assert remove_older(tmp_path / "absent", datetime(2026, 11, 20)) == []


def test_daemon_config_errors_name_the_key(mini_site):
    from esomp_core.config import ConfigError

    site = mini_site(daemon={"start": "9:00"})
    with pytest.raises(ConfigError, match=r"daemon.start: expected a time HH:MM"):
        Daemon(site)
    site = mini_site(daemon={"cleanup": {"directories": {"tmp": 3}}})
    with pytest.raises(ConfigError, match=r"daemon\.cleanup\.directories\.tmp: unknown directory"):
        Daemon(site)


class MiniWithReports(Mini):
    """Mini, and a directory of its own (declared like trust's trust_send_temp)."""

    @hookimpl
    def register_config(self, register):
        from esomp_core import Directory

        register(Directory("reports_root", "报表存放路径", "work/reports"))


def test_daemon_cleans_a_directory_a_plugin_declares(mini_site):
    site = mini_site(MiniWithReports(), daemon={"cleanup": {"directories": {"reports_root": 3, "send_temp": 7}}})
    assert Daemon(site).options.cleanup.directories == {"reports_root": 3, "send_temp": 7}


def test_daemon_cli_status_and_bad_clock(mini_site, esomp_cli):
    site = mini_site()
    assert "no daemon heartbeat yet" in esomp_cli(["daemon", "--status"], site=site, plugins=[plugin]).output
    Daemon(site, clock=lambda: datetime(2026, 11, 21, 12, 0)).tick()  # a Saturday: idle
    [beat] = json.loads(esomp_cli(["daemon", "--status", "--json"], site=site, plugins=[plugin]).output)
    assert beat["state"] == "idle" and beat["detail"]["clock"] == "2026-11-21T12:00:00"
    result = esomp_cli(["daemon", "--clock-start", "tomorrow"], site=site, plugins=[plugin])
    assert result.exit_code == 2 and "expected YYYY-MM-DD HH:MM" in result.output


# --- as a process: SIGKILL mid-day, restart, SIGTERM ----------------------------------------------------------------


def start_daemon(site, clock_start):
    return subprocess.Popen([sys.executable, __file__, str(site.root), clock_start], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, what, seconds=60):
    deadline = time.monotonic() + seconds  # bounded waits only; nothing here asserts a duration
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def test_daemon_killed_mid_day_resumes_without_rerunning_finished_jobs_and_stops_on_sigterm(mini_site):
    site = mini_site()
    (site.root / "kill-once.txt").write_text("send-b1")
    first = start_daemon(site, "2026-11-20 08:59:59")  # started before the configured 09:00
    output = first.communicate(timeout=60)[0]
    assert first.returncode == -signal.SIGKILL, output  # send-b1 killed the daemon mid-day
    before = executions(site)
    assert before[0] == "collect-x" and before[-1] == "send-b1" and "process-b1" in before
    assert job_states(site)["send-b1"] == "running"  # left behind by the dead process
    second = start_daemon(site, "2026-11-20 10:30:00")
    try:
        wait_for(lambda: set(job_states(site).values()) == {"succeeded"}, "the day to finish after the restart")
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=60)[0]
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, output
    after = executions(site)[len(before):]
    assert sorted(after) == sorted(set(job_states(site)) - set(before) | {"send-b1"})  # nothing finished reruns
    with site.repository.session() as s:
        attempts = dict(s.execute(select(JobRow.name, JobRow.attempts)).all())
        beat = s.get(DaemonHeartbeat, "daemon")
    assert attempts["collect-x"] == 1 and attempts["send-b1"] == 2
    assert beat.state == "stopped" and beat.pid == second.pid
    assert json.loads((Path(site.directory("monitoring_centre")) / "daemon-heartbeat.json").read_text())["state"] \
        == "stopped"


if __name__ == "__main__":
    from esomp_core.plugins import make_plugin_manager
    from esomp_core.site import Site
    from esomp_monitor import serve, shifted_clock

    pm = make_plugin_manager(entry_points=False)
    pm.register(plugin)
    pm.register(Mini())
    serve(Site.open(sys.argv[1], pm=pm), clock=shifted_clock(datetime.fromisoformat(sys.argv[2])))
