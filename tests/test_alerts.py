"""The core's alert store against a real repository: raise, repeat, resolve, acknowledge, and the alert events."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from esomp_core import alerts, hookimpl
from esomp_core.model import Finding
from esomp_core.repository.models import Alert as AlertRow

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
    site = esomp_site_factory(esomp_pm_factory(heard))
    site.heard = heard
    return site


def list_alerts(site, state=None):
    """The stored alerts as dicts, most recently seen first."""
    with site.repository.session() as s:
        query = select(AlertRow).order_by(AlertRow.last_seen.desc(), AlertRow.id.desc())
        if state is not None:
            query = query.where(AlertRow.state == state)
        return [{c: getattr(r, c) for c in ("id", "rule", "subject", "state", "count", "first_seen", "last_seen",
                                            "acknowledged_by", "acknowledged_at", "resolved_at")}
                for r in s.scalars(query)]


def late(subject="20261120/batch 1", severity="warning"):
    return Finding("batch.late", subject, severity, f"{subject} is late")


def test_hook_alert_raised_fires_once_per_condition_and_repeats_update_count(site):
    first = alerts.sync(site, "late", [late()], T0)
    second = alerts.sync(site, "late", [late(), late()], T0 + timedelta(minutes=1))
    assert [a.rule for a in first.raised] == ["batch.late"] and not second.raised
    assert site.heard.raised == [("batch.late", "20261120/batch 1", 1)]
    [row] = list_alerts(site)
    assert (row["count"], row["state"], row["first_seen"], row["last_seen"]) == (2, "open", T0, T0 + timedelta(minutes=1))


def test_condition_gone_resolves_and_coming_back_opens_a_new_alert(site):
    alerts.sync(site, "late", [late(), late("20261120/batch 2")], T0)
    result = alerts.sync(site, "late", [late("20261120/batch 2")], T0 + timedelta(minutes=5))
    assert [a.subject for a in result.resolved] == ["20261120/batch 1"]
    assert list_alerts(site, state="resolved")[0]["resolved_at"] == T0 + timedelta(minutes=5)
    alerts.sync(site, "late", [late(), late("20261120/batch 2")], T0 + timedelta(minutes=6))
    assert len(list_alerts(site, state="open")) == 2 and len(site.heard.raised) == 3


def test_other_monitors_alerts_are_left_alone(site):
    alerts.sync(site, "late", [late()], T0)
    alerts.sync(site, "failed", [], T0)
    assert list_alerts(site)[0]["state"] == "open"


def test_hook_alert_acknowledged_records_who_and_why_and_the_condition_keeps_counting(site):
    [alert] = alerts.sync(site, "late", [late()], T0).raised
    acked = alerts.acknowledge(site, alert.id, "zhang.wei", "exchange file late; called SZSE")
    assert (acked.state, acked.acknowledged_by, acked.comment) == ("acknowledged", "zhang.wei",
                                                                 "exchange file late; called SZSE")
    assert site.heard.acknowledged == [(alert.id, "zhang.wei", "exchange file late; called SZSE")]
    alerts.sync(site, "late", [late()], T0 + timedelta(minutes=1))
    [row] = list_alerts(site)
    assert (row["state"], row["count"], row["acknowledged_by"]) == ("acknowledged", 2, "zhang.wei")
    assert row["acknowledged_at"] is not None
    alerts.sync(site, "late", [], T0 + timedelta(minutes=2))
    assert list_alerts(site)[0]["state"] == "resolved"


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


def test_two_monitors_reporting_one_rule_resolve_only_their_own(site):
    alerts.sync(site, "late-a", [late("20261120/batch 1")], T0)
    alerts.sync(site, "late-b", [late("20261120/batch 2")], T0)
    alerts.sync(site, "late-b", [], T0 + timedelta(minutes=1))
    assert [(a["subject"], a["state"]) for a in list_alerts(site)] == [("20261120/batch 2", "resolved"),
                                                                              ("20261120/batch 1", "open")]


def test_alert_raised_once_per_condition_on_postgresql(esomp_site_factory, esomp_pm_factory, esomp_postgres_url):
    heard = Heard()
    site = esomp_site_factory(esomp_pm_factory(heard), database={"url": esomp_postgres_url})
    try:
        alerts.sync(site, "late", [late()], T0)
        alerts.sync(site, "late", [late()], T0 + timedelta(minutes=1))
        assert heard.raised == [("batch.late", "20261120/batch 1", 1)]
        [row] = list_alerts(site)
        assert row["count"] == 2
    finally:
        site.repository.dispose()
