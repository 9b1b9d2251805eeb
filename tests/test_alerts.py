"""The alert store against a real repository: raise, repeat, resolve, acknowledge, silence, group, inhibit."""
import json
from datetime import datetime, timedelta

import pytest

from esomp_core import alerts, hookimpl
from esomp_core.model import BusinessType, Finding, JobSpec
from esomp_core.plan import store_plan
from esomp_core.repository.models import Job as JobRow
from sqlalchemy import update

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
    site = esomp_site_factory(esomp_pm_factory(heard), alerts={"group_interval": 60, "repeat_interval": 3600})
    site.heard = heard
    return site


def late(subject="20261120/batch 1", severity="warning"):
    return Finding("batch.late", subject, severity, f"{subject} is late")


def test_hook_alert_raised_fires_once_per_condition_and_repeats_update_count(site):
    first = alerts.sync(site, "late", [late()], T0)
    second = alerts.sync(site, "late", [late(), late()], T0 + timedelta(minutes=1))
    assert [a.rule for a in first.raised] == ["batch.late"] and not second.raised
    assert site.heard.raised == [("batch.late", "20261120/batch 1", 1)]
    [row] = alerts.list_alerts(site)
    assert (row["count"], row["state"], row["first_seen"], row["last_seen"]) == (2, "open", T0, T0 + timedelta(minutes=1))


def test_condition_gone_resolves_and_coming_back_opens_a_new_alert(site):
    alerts.sync(site, "late", [late(), late("20261120/batch 2")], T0)
    result = alerts.sync(site, "late", [late("20261120/batch 2")], T0 + timedelta(minutes=5))
    assert [a.subject for a in result.resolved] == ["20261120/batch 1"]
    assert alerts.list_alerts(site, state="resolved")[0]["resolved_at"] == T0 + timedelta(minutes=5)
    alerts.sync(site, "late", [late(), late("20261120/batch 2")], T0 + timedelta(minutes=6))
    assert len(alerts.list_alerts(site, state="open")) == 2 and len(site.heard.raised) == 3


def test_other_monitors_alerts_are_left_alone(site):
    alerts.sync(site, "late", [late()], T0)
    alerts.sync(site, "failed", [], T0)
    assert alerts.list_alerts(site)[0]["state"] == "open"


def test_hook_alert_acknowledged_records_who_and_why_and_the_condition_keeps_counting(site):
    [alert] = alerts.sync(site, "late", [late()], T0).raised
    acked = alerts.acknowledge(site, alert.id, "zhang.wei", "exchange file late; called SZSE")
    assert (acked.state, acked.acknowledged_by, acked.comment) == ("acknowledged", "zhang.wei",
                                                                 "exchange file late; called SZSE")
    assert site.heard.acknowledged == [(alert.id, "zhang.wei", "exchange file late; called SZSE")]
    alerts.sync(site, "late", [late()], T0 + timedelta(minutes=1))
    [row] = alerts.list_alerts(site)
    assert (row["state"], row["count"], row["acknowledged_by"]) == ("acknowledged", 2, "zhang.wei")
    assert row["acknowledged_at"] is not None
    alerts.sync(site, "late", [], T0 + timedelta(minutes=2))
    assert alerts.list_alerts(site)[0]["state"] == "resolved"


def test_acknowledge_refuses_unknown_closed_or_unexplained(site):
    [alert] = alerts.sync(site, "late", [late()], T0).raised
    with pytest.raises(ValueError, match="needs a comment"):
        alerts.acknowledge(site, alert.id, "li", "  ")
    with pytest.raises(LookupError, match="no alert 999"):
        alerts.acknowledge(site, 999, "li", "why")
    alerts.acknowledge(site, alert.id, "li", "on it")
    with pytest.raises(ValueError, match="acknowledged by li"):
        alerts.acknowledge(site, alert.id, "wang", "me too")


def test_unknown_severity_names_the_monitor(site):
    with pytest.raises(ValueError, match="monitor late: .*unknown severity 'loud'"):
        alerts.sync(site, "late", [late(severity="loud")], T0)


def test_list_alerts_rejects_unknown_state(site):
    with pytest.raises(ValueError, match="unknown alert state 'closed'"):
        alerts.list_alerts(site, state="closed")


# --- notifications --------------------------------------------------------------------------------------------------


def keys(notifications):
    return [(n.group_key, n.reason, sorted(a["subject"] for a in n.alerts)) for n in notifications]


def test_grouping_group_interval_and_repeat_interval(site):
    alerts.sync(site, "late", [late()], T0)
    assert keys(alerts.due_notifications(site, T0)) == [("business_type=core,rule=batch.late", "new",
                                                         ["20261120/batch 1"])]
    assert alerts.due_notifications(site, T0 + timedelta(seconds=30)) == []
    alerts.sync(site, "late", [late(), late("20261120/batch 2")], T0 + timedelta(seconds=30))
    assert alerts.due_notifications(site, T0 + timedelta(seconds=59)) == []  # within the group interval
    assert keys(alerts.due_notifications(site, T0 + timedelta(seconds=60))) == [
        ("business_type=core,rule=batch.late", "new", ["20261120/batch 1", "20261120/batch 2"])]
    assert alerts.due_notifications(site, T0 + timedelta(minutes=30)) == []
    assert [n.reason for n in alerts.due_notifications(site, T0 + timedelta(seconds=60 + 3600))] == ["repeat"]


def test_acknowledged_alerts_are_not_repeated(site):
    [alert] = alerts.sync(site, "late", [late()], T0).raised
    alerts.due_notifications(site, T0)
    alerts.acknowledge(site, alert.id, "li", "known")
    assert alerts.due_notifications(site, T0 + timedelta(hours=5)) == []


def test_silence_holds_notifications_during_the_window_only(site):
    alerts.add_silence(site, rule="batch.*", starts_at=T0, ends_at=T0 + timedelta(hours=1), created_by="li",
                       comment="exchange maintenance")
    alerts.sync(site, "late", [late()], T0)
    assert alerts.due_notifications(site, T0 + timedelta(minutes=10)) == []
    assert [s["rule"] for s in alerts.list_silences(site, T0)] == ["batch.*"]
    assert len(alerts.due_notifications(site, T0 + timedelta(hours=1))) == 1


def test_silence_refuses_backwards_window(site):
    with pytest.raises(ValueError, match="ends .* before it starts"):
        alerts.add_silence(site, rule="x", starts_at=T0, ends_at=T0, created_by="li")


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
    alerts.sync(site, "failed", [Finding("job.failed", "20261120/collect-sz", "error", "failed")], T0)
    alerts.sync(site, "late", [late("20261120/batch 1"), late("20261120/batch 2"),
                               Finding("job.late", "20261120/process-b1", "warning", "late")], T0)
    notified = {a["subject"] for n in alerts.due_notifications(site, T0) for a in n.alerts}
    assert notified == {"20261120/collect-sz", "20261120/batch 2"}
    assert len(alerts.list_alerts(site, state="open")) == 4  # inhibited alerts are still recorded


def test_alerts_cli_list_ack_silence(site, esomp_cli):
    [alert] = alerts.sync(site, "late", [late()], T0).raised
    result = esomp_cli(["alerts", "list", "--state", "open", "--json"], site=site, plugins=[])
    assert result.exit_code == 0 and [r["id"] for r in json.loads(result.output)] == [alert.id]
    result = esomp_cli(["alerts", "ack", alert.id, "--comment", "rerun ordered", "--by", "chen"], site=site,
                       plugins=[])
    assert result.exit_code == 0 and "acknowledged by chen" in result.output
    result = esomp_cli(["alerts", "ack", alert.id, "--comment", "again"], site=site, plugins=[])
    assert result.exit_code == 1 and "only open alerts" in result.output
    result = esomp_cli(["alerts", "silence", "--rule", "disk.*", "--for", "1h30m", "--by", "chen"], site=site,
                       plugins=[])
    assert result.exit_code == 0 and "silence 1" in result.output
    result = esomp_cli(["alerts", "silences", "--json"], site=site, plugins=[])
    [silence] = json.loads(result.output)
    assert silence["rule"] == "disk.*" and silence["created_by"] == "chen"
    result = esomp_cli(["alerts", "silence", "--for", "soon"], site=site, plugins=[])
    assert result.exit_code == 2 and "expected a duration" in result.output
    assert esomp_cli(["alerts", "unsilence", "1"], site=site, plugins=[]).exit_code == 0
    assert json.loads(esomp_cli(["alerts", "silences", "--json"], site=site, plugins=[]).output) == []


def test_two_monitors_reporting_one_rule_resolve_only_their_own(site):
    alerts.sync(site, "late-a", [late("20261120/batch 1")], T0)
    alerts.sync(site, "late-b", [late("20261120/batch 2")], T0)
    alerts.sync(site, "late-b", [], T0 + timedelta(minutes=1))
    assert [(a["subject"], a["state"]) for a in alerts.list_alerts(site)] == [("20261120/batch 2", "resolved"),
                                                                              ("20261120/batch 1", "open")]


def test_inhibit_rules_and_group_by_from_config(esomp_site_factory):
    from esomp_core.config import ConfigError

    site = esomp_site_factory(alerts={"group_by": ["severity"], "inhibit": [{"sources": ["a"], "targets": ["b"]}]})
    policy = alerts.alert_policy(site)
    assert policy.group_by == ["severity"] and policy.inhibit == [alerts.InhibitRule(["a"], ["b"])]
    site = esomp_site_factory(alerts={"group_by": ["team"]})
    with pytest.raises(ConfigError, match=r"alerts.group_by: unknown label 'team'"):
        alerts.alert_policy(site)


def test_alert_raised_once_and_notifications_claimed_once_on_postgresql(esomp_site_factory, esomp_pm_factory,
                                                                         esomp_postgres_url):
    heard = Heard()
    site = esomp_site_factory(esomp_pm_factory(heard), database={"url": esomp_postgres_url})
    try:
        alerts.sync(site, "late", [late()], T0)
        alerts.sync(site, "late", [late()], T0 + timedelta(minutes=1))
        assert heard.raised == [("batch.late", "20261120/batch 1", 1)]
        assert len(alerts.due_notifications(site, T0 + timedelta(minutes=1))) == 1
        assert alerts.due_notifications(site, T0 + timedelta(minutes=2)) == []
        [row] = alerts.list_alerts(site)
        assert row["count"] == 2
    finally:
        site.repository.dispose()
