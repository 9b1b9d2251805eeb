"""Alert policy against a real repository: listing with silences, grouped and repeated notifications,
inhibition, and the alerts commands."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

import esomp_monitor as monitor
from esomp_core import acknowledge_alert, hookimpl, sync_alerts
from esomp_core.config import ConfigError
from esomp_core.model import BusinessType, Finding, JobSpec
from esomp_core.plan import store_plan
from esomp_core.repository.models import Job as JobRow
from esomp_monitor import plugin

T0 = datetime(2026, 11, 20, 9, 0)


class Heard:
    def __init__(self):
        self.raised, self.acknowledged = [], []

    @hookimpl
    def alert_raised(self, alert, site):
        self.raised.append((alert.rule, alert.subject, alert.count))

    @hookimpl
    def alert_acknowledged(self, alert):
        self.acknowledged.append((alert.id, alert.acknowledged_by, alert.comment))


@pytest.fixture
def site(esomp_site_factory, esomp_pm_factory):
    heard = Heard()
    site = esomp_site_factory(esomp_pm_factory(plugin, heard), alerts={"group_interval": 60, "repeat_interval": 3600})
    site.heard = heard
    return site


def late(subject="20261120/batch 1", severity="warning"):
    return Finding("batch.late", subject, severity, f"{subject} is late")


def test_list_alerts_rejects_unknown_state(site):
    with pytest.raises(ValueError, match="unknown alert state 'closed'"):
        monitor.list_alerts(site, state="closed")


def keys(notifications):
    return [(n.group_key, n.reason, sorted(a["subject"] for a in n.alerts)) for n in notifications]


def test_grouping_group_interval_and_repeat_interval(site):
    sync_alerts(site, "late", [late()], T0)
    assert keys(monitor.due_notifications(site, T0)) == [("business_type=core,rule=batch.late", "new",
                                                         ["20261120/batch 1"])]
    assert monitor.due_notifications(site, T0 + timedelta(seconds=30)) == []
    sync_alerts(site, "late", [late(), late("20261120/batch 2")], T0 + timedelta(seconds=30))
    assert monitor.due_notifications(site, T0 + timedelta(seconds=59)) == []  # within the group interval
    assert keys(monitor.due_notifications(site, T0 + timedelta(seconds=60))) == [
        ("business_type=core,rule=batch.late", "new", ["20261120/batch 1", "20261120/batch 2"])]
    assert monitor.due_notifications(site, T0 + timedelta(minutes=30)) == []
    assert [n.reason for n in monitor.due_notifications(site, T0 + timedelta(seconds=60 + 3600))] == ["repeat"]


def test_acknowledged_alerts_are_not_repeated(site):
    [alert] = sync_alerts(site, "late", [late()], T0).raised
    monitor.due_notifications(site, T0)
    acknowledge_alert(site, alert.id, "li", "known")
    assert monitor.due_notifications(site, T0 + timedelta(hours=5)) == []


def test_silence_holds_notifications_during_the_window_only(site):
    monitor.add_silence(site, rule="batch.*", starts_at=T0, ends_at=T0 + timedelta(hours=1), created_by="li",
                       comment="exchange maintenance")
    sync_alerts(site, "late", [late()], T0)
    assert monitor.due_notifications(site, T0 + timedelta(minutes=10)) == []
    assert [s["rule"] for s in monitor.list_silences(site, T0)] == ["batch.*"]
    assert len(monitor.due_notifications(site, T0 + timedelta(hours=1))) == 1


def test_silence_refuses_backwards_window(site):
    with pytest.raises(ValueError, match="ends .* before it starts"):
        monitor.add_silence(site, rule="x", starts_at=T0, ends_at=T0, created_by="li")


class Chain:
    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("chain", "Chain", plan=lambda site, date: [
            JobSpec("collect-sz", "collect", "chain", channel="sz"),
            JobSpec("process-b1", "process", "chain", batch=1, depends_on=("collect-sz",)),
            JobSpec("process-b2", "process", "chain", batch=2)]))


def test_failed_collection_inhibits_lateness_downstream_only(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(Chain()))
    run_id = store_plan(site, "20261120", site.registry.business_types["chain"].plan(site, "20261120"))
    with site.repository.session() as s:
        s.execute(update(JobRow).where(JobRow.run_id == run_id, JobRow.name == "collect-sz").values(state="failed"))
    sync_alerts(site, "failed", [Finding("job.failed", "20261120/collect-sz", "error", "failed")], T0)
    sync_alerts(site, "late", [late("20261120/batch 1"), late("20261120/batch 2"),
                               Finding("job.late", "20261120/process-b1", "warning", "late")], T0)
    notified = {a["subject"] for n in monitor.due_notifications(site, T0) for a in n.alerts}
    assert notified == {"20261120/collect-sz", "20261120/batch 2"}
    assert len(monitor.list_alerts(site, state="open")) == 4  # inhibited alerts are still recorded


def test_alerts_cli_list_ack_silence(site, esomp_cli):
    [alert] = sync_alerts(site, "late", [late()], T0).raised
    result = esomp_cli(["alerts", "list", "--state", "open", "--json"], site=site, plugins=[plugin])
    assert result.exit_code == 0 and [r["id"] for r in json.loads(result.output)] == [alert.id]
    result = esomp_cli(["alerts", "ack", alert.id, "--comment", "rerun ordered", "--by", "chen"], site=site,
                       plugins=[plugin])
    assert result.exit_code == 0 and "acknowledged by chen" in result.output
    result = esomp_cli(["alerts", "ack", alert.id, "--comment", "again"], site=site, plugins=[plugin])
    assert result.exit_code == 1 and "only open alerts" in result.output
    result = esomp_cli(["alerts", "silence", "--rule", "disk.*", "--for", "1h30m", "--by", "chen"], site=site,
                       plugins=[plugin])
    assert result.exit_code == 0 and "silence 1" in result.output
    result = esomp_cli(["alerts", "silences", "--json"], site=site, plugins=[plugin])
    [silence] = json.loads(result.output)
    assert silence["rule"] == "disk.*" and silence["created_by"] == "chen"
    result = esomp_cli(["alerts", "silence", "--for", "soon"], site=site, plugins=[plugin])
    assert result.exit_code == 2 and "expected a duration" in result.output
    assert esomp_cli(["alerts", "unsilence", "1"], site=site, plugins=[plugin]).exit_code == 0
    assert json.loads(esomp_cli(["alerts", "silences", "--json"], site=site, plugins=[plugin]).output) == []


def test_inhibit_rules_and_group_by_from_config(esomp_site_factory):
    site = esomp_site_factory(alerts={"group_by": ["severity"], "inhibit": [{"sources": ["a"], "targets": ["b"]}]})
    policy = monitor.alert_policy(site)
    assert policy.group_by == ["severity"] and policy.inhibit == [monitor.InhibitRule(["a"], ["b"])]
    site = esomp_site_factory(alerts={"group_by": ["team"]})
    with pytest.raises(ConfigError, match=r"alerts.group_by: unknown label 'team'"):
        monitor.alert_policy(site)


def test_alert_raised_once_and_notifications_claimed_once_on_postgresql(esomp_site_factory, esomp_pm_factory,
                                                                         esomp_postgres_url):
    heard = Heard()
    site = esomp_site_factory(esomp_pm_factory(heard), database={"url": esomp_postgres_url})
    try:
        sync_alerts(site, "late", [late()], T0)
        sync_alerts(site, "late", [late()], T0 + timedelta(minutes=1))
        assert heard.raised == [("batch.late", "20261120/batch 1", 1)]
        assert len(monitor.due_notifications(site, T0 + timedelta(minutes=1))) == 1
        assert monitor.due_notifications(site, T0 + timedelta(minutes=2)) == []
        [row] = monitor.list_alerts(site)
        assert row["count"] == 2
    finally:
        site.repository.dispose()
