"""Monitors through a driven day: schedules, options by key path, every built-in monitor, the monitor hook."""
import json
from datetime import datetime, timedelta

import attrs
import pytest
from sqlalchemy import update

import esomp_monitor as monitoring
from esomp_core import acknowledge_alert, hookimpl, monitor_options
from esomp_core.config import ConfigError
from esomp_core.engine import Engine
from esomp_core.model import BusinessType, ChannelKind, FileType, Finding, JobResult, JobSpec, Monitor
from esomp_core.plan import build_plan, store_plan
from esomp_core.repository.models import File
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run
from esomp_core.testing import StageHooks
from esomp_fs import plugin as fs_plugin
from esomp_monitor import list_alerts, monitors as builtin, plugin

DATE = "20261120"  # a Friday
DAY_CHANNELS = {"sz": {"kind": "day"}}
AT = lambda hhmm: datetime(2026, 11, 20, *map(int, hhmm.split(":")))  # noqa: E731


@attrs.define
class NoOptions:
    pass


def plain_channel_kind(name):
    """A channel kind without options whose channel opens to nothing: the test business type registers it so that
    it owns the collection job naming a channel of it."""
    return ChannelKind(name, options=NoOptions, open=lambda channel, options, site: None)


class Day(StageHooks):
    """collect -> two batches of one processing job each; ``fail`` names jobs that fail, ``detail`` adds detail."""

    def __init__(self, fail=(), detail=None):
        self.fail, self.detail = set(fail), detail or {}

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("day", "Day", plan=lambda site, date: [
            JobSpec("collect-sz", "collect", "day", channel="sz"),
            JobSpec("process-b1", "process", "day", batch=1, depends_on=("collect-sz",)),
            JobSpec("process-b2", "process", "day", batch=2, depends_on=("collect-sz",))]))

    @hookimpl
    def register_channel_kinds(self, register):  # its collection job names channel sz, of this kind
        register(plain_channel_kind("day"))

    def work(self, job, site):
        if job.business_type != "day":
            return None
        if job.name in self.fail:
            raise ValueError(f"input for {job.name} is corrupt")
        return JobResult(files=1, detail=self.detail.get(job.name, {}))


@pytest.fixture
def day_site(esomp_site_factory, esomp_pm_factory):
    def make(day=None, *more_plugins, **tables):
        tables.setdefault("channels", DAY_CHANNELS)
        return esomp_site_factory(esomp_pm_factory(plugin, *more_plugins, day or Day()), engine={"poll": 0.01},
                                  **tables)
    return make


def plan_only(site):
    return store_plan(site, DATE, build_plan(site, DATE))


def open_alerts(site):
    return [(a["rule"], a["subject"], a["count"]) for a in list_alerts(site, state="open")]


def test_a_late_batch_through_the_day_raises_one_alert_counts_repeats_is_acknowledged_and_resolves(day_site):
    site = day_site(monitors={"job_late": {"batches": {"1": "10:00"}}})
    plan_only(site)
    assert monitoring.run_due(site, AT("09:59"))  # every monitor runs the first time
    assert open_alerts(site) == []
    for minute in range(0, 5):  # the job_late monitor runs every 60 s; the clock moves 61 s per look
        monitoring.run_due(site, AT("10:00") + timedelta(seconds=61 * minute))
    assert open_alerts(site) == [("batch.late", f"{DATE}/batch 1", 5)]
    [alert] = list_alerts(site, state="open")
    assert "1 of 1 jobs not done by 10:00 (pending=1)" in alert["message"]
    acknowledge_alert(site, alert["id"], "ops.li", "collection delayed by the exchange")
    assert Engine(site, DATE, executor="inline").run().state == "succeeded"
    monitoring.run_due(site, AT("10:30"))
    [closed] = list_alerts(site)
    assert (closed["state"], closed["acknowledged_by"], closed["comment"], closed["resolved_at"]) == (
        "resolved", "ops.li", "collection delayed by the exchange", AT("10:30"))


def test_monitor_job_failed_and_inhibited_lateness_of_its_dependents(day_site):
    site = day_site(Day(fail={"collect-sz"}), monitors={"job_late": {"batches": {"1": "10:00", "2": "10:00"}}})
    Engine(site, DATE, executor="inline").run()
    monitoring.run_due(site, AT("10:05"))
    assert sorted(open_alerts(site)) == [("batch.late", f"{DATE}/batch 1", 1), ("batch.late", f"{DATE}/batch 2", 1),
                                         ("job.failed", f"{DATE}/collect-sz", 1)]
    [note] = monitoring.due_notifications(site, AT("10:05"))
    assert [a["rule"] for a in note.alerts] == ["job.failed"]
    assert "input for collect-sz is corrupt" in note.alerts[0]["message"]


def test_monitor_job_late_by_job_pattern(day_site):
    site = day_site(monitors={"job_late": {"jobs": {"process-*": "11:00"}, "severity": "error"}})
    plan_only(site)
    assert monitoring.run_due(site, AT("10:59"), only=["job_late"])[0].findings == 0
    monitoring.run_due(site, AT("11:00"), only=["job_late"])
    assert sorted(open_alerts(site)) == [("job.late", f"{DATE}/process-b1", 1), ("job.late", f"{DATE}/process-b2", 1)]


def test_monitor_job_overrun_against_p95_of_its_history(day_site):
    site = day_site(monitors={"job_overrun": {"factor": 2.0, "min_seconds": 0}})
    with site.repository.session() as s:  # five past days in which process-b1 took 100 to 140 s
        for i, seconds in enumerate((100, 110, 120, 130, 140)):
            run = Run(date=f"202611{10 + i:02d}", state="succeeded", paused_batches=[])
            s.add(run)
            s.flush()
            start = datetime(2026, 11, 10 + i, 9)
            s.add(JobRow(run_id=run.id, name="process-b1", stage="process", business_type="day", state="succeeded",
                         started_at=start, finished_at=start + timedelta(seconds=seconds), products=[],
                         depends_on=[], params={}, detail={}))
    run_id = plan_only(site)
    with site.repository.session() as s:
        s.execute(update(JobRow).where(JobRow.run_id == run_id, JobRow.name == "process-b1")
                  .values(state="running", started_at=AT("10:00")))
    assert builtin.check_overrun(site, AT("10:04")) == []  # 240 s < 2 x p95 (~278 s)
    [finding] = builtin.check_overrun(site, AT("10:05"))
    assert finding.rule == "job.overrun" and "of its last 5 runs" in finding.message


def test_monitor_files_missing_from_channel_expected_and_monitor_option(day_site):
    site = day_site(Day(), fs_plugin, channels={"sz": {"kind": "fs", "url": "/nowhere", "expected": ["SJSMX1*.DBF", "sjsjg*.dbf"],
                                     "deadline": "16:00"}},
                    monitors={"files_missing": {"expected": {"sh": ["gh{mdd}.dbf"]}, "deadline": "16:30"}})
    with site.repository.session() as s:
        s.add(File(date=DATE, channel="sz", name="sjsmx1.dbf", path="/x", size=1, sha256="0" * 64))
    assert builtin.check_files_missing(site, AT("15:59")) == []
    [sz] = builtin.check_files_missing(site, AT("16:00"))
    assert (sz.subject, sz.message) == (f"{DATE}/sz", "channel sz: 1 expected file(s) not collected by 16:00: "
                                                      "sjsjg*.dbf")
    assert [f.message.split(": ")[-1] for f in builtin.check_files_missing(site, AT("16:30"))] == ["ghB20.dbf",
                                                                                                   "sjsjg*.dbf"]


class DayWithFileTypes(Day):
    @hookimpl
    def register_file_types(self, register):
        for name in ("SJSMX1", "SJSJG"):
            register(FileType(name=name, family="sz", channel="sz", patterns=(f"{name}{{mmdd}}.dbf",)))


def test_monitor_files_missing_defaults_to_the_channels_file_types(day_site):
    site = day_site(DayWithFileTypes(), fs_plugin, channels={"sz": {"kind": "fs", "url": "/nowhere", "deadline": "16:00"}})
    with site.repository.session() as s:
        s.add(File(date=DATE, channel="sz", name="day.zip/SJSMX11120.DBF", role="unpacked", path="/x", size=1,
                   sha256="0" * 64))
        s.add(File(date=DATE, channel="sz", name="SJSJG1120.dbf", role="duplicate", path="/y", size=1,
                   sha256="0" * 64))  # collapsed: not an input of the day
    [sz] = builtin.check_files_missing(site, AT("16:00"))
    assert sz.message == "channel sz: 1 expected file(s) not collected by 16:00: SJSJG"


@attrs.define
class QueueOptions:
    expect: list[str] = attrs.field(factory=list)
    due: str | None = None


class QueueChannel:
    """A channel of a kind the monitor knows nothing of: what it expects is its own business."""

    def __init__(self, options):
        self.options = options

    def expectations(self):
        return (self.options.expect, self.options.due) if self.options.due else None


class QueueKinds:
    @hookimpl
    def register_channel_kinds(self, register):
        register(ChannelKind("queue", QueueOptions, lambda name, options, site: QueueChannel(options)))
        register(plain_channel_kind("silent"))  # its channels answer no expectations at all


def test_monitor_files_missing_asks_each_opened_channel_what_it_expects(day_site):
    site = day_site(Day(), QueueKinds(), channels={
        "q": {"kind": "queue", "expect": ["batch{mmdd}.dat"], "due": "16:00"},
        "later": {"kind": "queue", "expect": ["x.dat"]},  # no deadline: nothing to miss yet
        "quiet": {"kind": "silent"}})
    assert builtin.check_files_missing(site, AT("15:59")) == []
    [q] = builtin.check_files_missing(site, AT("16:00"))
    assert (q.subject, q.message) == (f"{DATE}/q", "channel q: 1 expected file(s) not collected by 16:00: "
                                                   "batch1120.dat")
    with site.repository.session() as s:
        s.add(File(date=DATE, channel="q", name="BATCH1120.DAT", path="/x", size=1, sha256="0" * 64))
    assert builtin.check_files_missing(site, AT("16:01")) == []


def test_monitor_options_leave_out_every_schedule_key(day_site):
    @attrs.frozen
    class Limit:
        limit: int = 0

    schedule = {"enabled": True, "every": 30, "at": "10:00", "cron": "* * * * *"}
    assert set(schedule) == set(monitoring.SCHEDULE_KEYS)  # a schedule key the core keeps would fail Limit
    site = day_site(monitors={"job_failed": {**schedule, "limit": 5}})
    assert monitor_options(site, "job_failed", Limit) == Limit(5)


def test_monitor_files_missing_needs_a_deadline(day_site):
    site = day_site(monitors={"files_missing": {"expected": {"sh": ["gh*.dbf"]}}})
    with pytest.raises(ConfigError, match="monitors.files_missing.deadline: missing required key"):
        builtin.check_files_missing(site, AT("16:30"))


def test_monitor_disk_space_per_directory(day_site, tmp_path):
    free = __import__("shutil").disk_usage(tmp_path)
    percent = 100 * free.free / free.total
    site = day_site(monitors={"disk_space": {"directories": ["collection_root", str(tmp_path), "sftp://h/x"],
                                             "min_free_percent": min(percent + 1, 100.0)}})
    found = builtin.check_disk_space(site, AT("09:00"))
    assert [f.subject for f in found] == ["collection_root", str(tmp_path)]
    assert "采集文件存放根路径" in found[0].message
    site = day_site(monitors={"disk_space": {"min_free_percent": 0.0}})
    assert builtin.check_disk_space(site, AT("09:00")) == []


def test_monitor_unmatched_accounts_reads_trust_detail(day_site):
    detail = {"process-b1": {"inputs": {"SJSMX1.DBF": {"records": 10, "unmatched": {"records": 7, "accounts": 3}},
                                        "zqye.dbf": {"records": 5}}, "unmatched_records": 7}}
    site = day_site(Day(detail=detail), monitors={"unmatched_accounts": {"max_accounts": 2}})
    Engine(site, DATE, executor="inline").run()
    [finding] = builtin.check_unmatched(site, AT("12:00"))
    assert (finding.subject, finding.business_type) == (f"{DATE}/process-b1", "day")
    assert "7 record(s) of 3 account(s)" in finding.message
    assert builtin.unmatched_counts({"unmatched_records": 4, "inputs": {}}) == (0, 4)


def test_monitor_options_errors_name_the_key_path(day_site):
    site = day_site(monitors={"job_late": {"batches": {"1": "25:00"}}})
    with pytest.raises(ConfigError, match=r"monitors\.job_late\.batches\.1: expected a time HH:MM"):
        builtin.check_late(site, AT("10:00"))
    site = day_site(monitors={"disk_space": {"min_free": 5}})
    with pytest.raises(ConfigError, match=r"monitors\.disk_space\.min_free: unknown key"):
        builtin.check_disk_space(site, AT("10:00"))
    site = day_site(monitors={"disk_spaec": {}})
    with pytest.raises(ConfigError, match=r"monitors\.disk_spaec: no such monitor"):
        monitoring.check_config(site)
    site = day_site(monitors={"job_failed": {"every": 30, "at": "10:00"}})
    with pytest.raises(ConfigError, match="give one of every, at and cron"):
        monitoring.check_config(site)
    site = day_site(monitors={"job_failed": {"cron": "*/5 25 * * *"}})
    with pytest.raises(ConfigError, match=r"monitors\.job_failed\.cron: hour field '25' outside 0-23"):
        monitoring.check_config(site)


# --- schedules ---------------------------------------------------------------------------------------------------------


def test_schedules_every_at_on_trading_days_and_cron(day_site):
    site = day_site(calendar={"holidays": ["2026-11-23"]})
    every = monitoring.Schedule(every=60)
    assert monitoring.is_due(site, every, None, AT("09:00"))
    assert not monitoring.is_due(site, every, AT("09:00"), AT("09:00:59"))
    assert monitoring.is_due(site, every, AT("09:00"), AT("09:01"))
    at = monitoring.Schedule(at="15:30")
    assert not monitoring.is_due(site, at, None, AT("15:29"))
    assert monitoring.is_due(site, at, AT("15:29"), AT("15:45"))
    assert not monitoring.is_due(site, at, AT("15:45"), AT("16:00"))  # once a day
    assert not monitoring.is_due(site, at, None, datetime(2026, 11, 23, 16))  # a holiday
    assert monitoring.is_due(site, at, AT("15:45"), datetime(2026, 11, 24, 15, 30))
    cron = monitoring.Schedule(cron="*/15 9-17 * * 1-5")
    assert monitoring.is_due(site, cron, None, AT("09:15"))
    assert not monitoring.is_due(site, cron, AT("09:15"), AT("09:29"))
    assert monitoring.is_due(site, cron, AT("09:15"), AT("09:31"))  # 09:30 passed since the last run
    assert not monitoring.is_due(site, cron, None, datetime(2026, 11, 21, 10))  # Saturday
    assert not monitoring.is_due(site, monitoring.Schedule(enabled=False, every=1), None, AT("09:00"))


def test_cron_parse_errors():
    assert monitoring.parse_cron("0,30 8-18/2 * 1 0")[1] == {8, 10, 12, 14, 16, 18}
    with pytest.raises(ValueError, match="expected 5 fields"):
        monitoring.parse_cron("* * *")
    with pytest.raises(ValueError, match="bad minute field 'x'"):
        monitoring.parse_cron("x * * * *")


class Custom:
    def __init__(self):
        self.raise_it = False

    @hookimpl
    def register_monitors(self, register):
        register(Monitor("funds.overdraft", self.check, business_type="funds", at="15:00",
                         description="客户资金透支情况监控"))

    def check(self, site, now):
        if self.raise_it:
            raise RuntimeError("ledger unreachable")
        return [Finding("funds.overdraft", "C001", "critical", "client C001 overdrawn")]

    @hookimpl
    def monitor(self, site, now):
        return [Finding("custom.hook", f"at {now:%H}", "info", "seen by the monitor hook")]


def test_hook_register_monitors_plugin_schedule_business_type_and_failure(day_site, esomp_pm_factory,
                                                                    esomp_site_factory):
    custom = Custom()
    site = esomp_site_factory(esomp_pm_factory(plugin, custom), monitors={"funds.overdraft": {"at": "15:30"}})
    monitoring.check_config(site)
    assert monitoring.schedule_of(site, site.registry.monitors["funds.overdraft"]).at == "15:30"
    assert [o.name for o in monitoring.run_due(site, AT("15:00"), only=["funds.overdraft"])] == []
    [outcome] = monitoring.run_due(site, AT("15:30"), only=["funds.overdraft"])
    assert outcome.raised == 1
    [alert] = list_alerts(site)
    assert (alert["business_type"], alert["severity"]) == ("funds", "critical")
    custom.raise_it = True
    [outcome] = monitoring.run_due(site, AT("16:00"), force=True, only=["funds.overdraft"])
    assert outcome.error == "RuntimeError: ledger unreachable"
    assert list_alerts(site)[0]["state"] == "open"  # a failing check resolves nothing
    assert monitoring.last_runs(site)["funds.overdraft"].error == "RuntimeError: ledger unreachable"


def test_hook_monitor_findings_become_alerts(esomp_pm_factory, esomp_site_factory):
    site = esomp_site_factory(esomp_pm_factory(plugin, Custom()))
    outcomes = {o.name: o for o in monitoring.run_due(site, AT("09:00"))}
    assert outcomes["hooks"].raised == 1
    monitoring.run_due(site, AT("10:00"), only=["hooks"])  # a new subject; the old one resolves
    assert [(a["subject"], a["state"]) for a in list_alerts(site)] == [("at 10", "open"),
                                                                              ("at 09", "resolved")]


def test_monitor_cli_run_and_list(day_site, esomp_cli):
    site = day_site(Day(fail={"collect-sz"}))
    Engine(site, DATE, executor="inline").run()
    result = esomp_cli(["monitor", "run", "--now", "2026-11-20 10:00", "--name", "job_failed", "--json"],
                       site=site, plugins=[plugin])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"name": "job_failed", "findings": 1, "raised": 1, "updated": 0,
                                          "resolved": 0, "error": None}]
    result = esomp_cli(["monitor", "list", "--json"], site=site, plugins=[plugin])
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["disk_space"]["schedule"] == "every 300 s" and rows["job_failed"]["findings"] == 1
    result = esomp_cli(["monitor", "run", "--name", "nope"], site=site, plugins=[plugin])
    assert result.exit_code == 1 and "no monitor 'nope'" in result.output


def test_check_config_checks_built_in_options_up_front(day_site):
    site = day_site(monitors={"unmatched_accounts": {"max_accounts": -1}})
    with pytest.raises(ConfigError, match=r"monitors\.unmatched_accounts\.max_accounts: expected a number of 0"):
        monitoring.check_config(site)
