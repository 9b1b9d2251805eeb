"""The daemon and the trading calendar: it starts no day the calendar refuses, alerts a weekday the calendar does
not cover, and warns a month before the known closures run out."""
from datetime import datetime

import attrs
import pytest
from sqlalchemy import select

from esomp_core import hookimpl
from esomp_core.calendar import shipped_closures
from esomp_core.model import BusinessType, ChannelKind, JobResult, JobSpec
from esomp_core.repository.models import Alert as AlertRow
from esomp_core.repository.models import Run
from esomp_monitor.models import DaemonHeartbeat
from esomp_core.testing import StageHooks
from esomp_monitor import Daemon, plugin


@attrs.define
class NoOptions:
    pass


def plain_channel_kind(name):
    """A channel kind without options whose channel opens to nothing: the test business type registers it so that
    it owns the collection job naming a channel of it."""
    return ChannelKind(name, options=NoOptions, open=lambda channel, options, site: None)


class OneJob(StageHooks):
    """A business type whose day is one collection job."""

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("one", "One", plan=lambda site, date: [JobSpec("collect-x", "collect", "one",
                                                                             channel="x")]))

    @hookimpl
    def register_channel_kinds(self, register):  # its collection job names channel x, of this kind
        register(plain_channel_kind("one"))

    def work(self, job, site):
        return JobResult(files=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    if request.param == "sqlite":
        return {}
    return {"database": {"url": request.getfixturevalue("esomp_postgres_url")}}


@pytest.fixture
def one_site(esomp_site_factory, esomp_pm_factory, database):
    def make(**tables):
        site = esomp_site_factory(esomp_pm_factory(plugin, OneJob()), engine={"poll": 0.01},
                                  channels={"x": {"kind": "one"}}, **database, **tables)
        return site, None

    return make


def run_of(site, date):
    with site.repository.session() as s:
        return s.scalar(select(Run).where(Run.date == date))


def test_the_daemon_does_not_start_national_day(one_site):
    site, _ = one_site(daemon={"start": "09:00", "executor": "inline"})
    daemon = Daemon(site, clock=lambda: datetime(2026, 10, 1, 10, 0))
    assert daemon.tick()["date"] is None
    assert run_of(site, "20261001") is None
    with site.repository.session() as s:
        assert "not a trading day" in s.get(DaemonHeartbeat, "daemon").detail["calendar"]


def test_the_daemon_alerts_a_weekday_the_calendar_does_not_cover(one_site):
    year = shipped_closures()["XSHG"].last_year + 1
    site, _ = one_site(daemon={"start": "09:00", "executor": "inline"})
    now = [datetime(year, 1, 4, 8, 0)]
    daemon = Daemon(site, clock=lambda: now[0])
    daemon.tick()
    with site.repository.session() as s:
        assert s.scalars(select(AlertRow)).all() == []  # before the start time nothing is missed yet
    now[0] = datetime(year, 1, 4, 9, 30)
    assert daemon.tick()["date"] is None and run_of(site, f"{year}0104") is None
    daemon.tick()
    with site.repository.session() as s:
        alert = s.scalar(select(AlertRow).where(AlertRow.rule == "calendar.not_covered"))
        assert alert.subject == f"{year}0104" and alert.count == 1 and "not covered" in alert.message

    listed = Daemon(one_site(daemon={"start": "09:00", "executor": "inline"},
                             calendar={"listed_years": [year]})[0], clock=lambda: now[0])
    assert listed.tick()["date"] == f"{year}0104"
    listed.wait_for_engine(60)


def test_the_daemon_warns_a_month_before_the_calendar_runs_out(one_site):
    last = shipped_closures()["XSHG"].last_year
    site, _ = one_site(daemon={"start": "09:00", "executor": "inline"})
    now = [datetime(last, 11, 20, 8, 0)]
    daemon = Daemon(site, clock=lambda: now[0])
    daemon.tick()
    with site.repository.session() as s:
        assert s.scalars(select(AlertRow)).all() == []  # more than 30 days of closures still known
    now[0] = datetime(last, 12, 2, 8, 0)
    daemon.tick()
    with site.repository.session() as s:
        alert = s.scalar(select(AlertRow).where(AlertRow.rule == "calendar.ending"))
        assert alert.subject == str(last + 1) and alert.severity == "warning"
        assert f"ends before {last + 1}" in alert.message
