"""The trading calendar knows the exchanges' closures, and a day it refuses runs only when forced (and recorded)."""
import json
from datetime import date

import pytest
from sqlalchemy import select

from esomp_core import hookimpl
from esomp_core.calendar import shipped_closures
from esomp_core.config import ConfigError, parse_config
from esomp_core.model import BusinessType, JobResult, JobSpec
from esomp_core.repository.models import Alert as AlertRow
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run
from esomp_core.testing import StageHooks

DIRS = {k: f"d/{k}" for k in (
    "send_temp", "trust_send_temp", "extract_temp", "unpack_temp", "bcp_root", "compressed_root",
    "collection_root", "clearing_root", "monitoring_centre")}

# The SSE and SZSE notice of 2025-12-22 on the 2026 closures (关于2026年部分节假日休市安排的通知), weekdays only.
CLOSURES_2026 = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 18),
                 date(2026, 2, 19), date(2026, 2, 20), date(2026, 2, 23), date(2026, 4, 6), date(2026, 5, 1),
                 date(2026, 5, 4), date(2026, 5, 5), date(2026, 6, 19), date(2026, 9, 25), date(2026, 10, 1),
                 date(2026, 10, 2), date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)]
# Weekend days that are working days (调休上班日) in 2026: the exchanges stay closed on them.
MAKE_UP_WORKING_DAYS_2026 = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                             date(2026, 9, 20), date(2026, 10, 10)]


class OneJob(StageHooks):
    """A business type whose day is one collection job that fails when asked to."""

    def __init__(self):
        self.fail = False

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("one", "One", plan=lambda site, date: [JobSpec("collect-x", "collect", "one")]))

    def work(self, job, site):
        if self.fail:
            raise ValueError("input is corrupt")
        return JobResult(files=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    if request.param == "sqlite":
        return {}
    return {"database": {"url": request.getfixturevalue("esomp_postgres_url")}}


@pytest.fixture
def one_site(esomp_site_factory, esomp_pm_factory, database):
    plugin = OneJob()

    def make(**tables):
        site = esomp_site_factory(esomp_pm_factory(plugin), engine={"poll": 0.01}, **database, **tables)
        return site, plugin

    return make


def cli(esomp_cli, site, plugin, *args):
    return esomp_cli(list(args), site=site, plugins=[plugin])


# --- the shipped closures -------------------------------------------------------------------------------------------

def test_a_new_site_knows_national_day(tmp_path, esomp_cli):
    assert esomp_cli(["init", tmp_path / "s"]).exit_code == 0
    result = esomp_cli(["calendar", "--date", "20261001", "--json"], site=tmp_path / "s")
    data = json.loads(result.output)
    assert data["trading_day"] is False and data["covered"] is True and "XSHG" in data["closed"]
    assert (data["previous"], data["next"]) == ("20260930", "20261008")


@pytest.mark.parametrize("day, t_plus_1", [
    (date(2026, 9, 30), date(2026, 10, 8)),   # National Day
    (date(2026, 2, 13), date(2026, 2, 24)),   # Spring Festival
    (date(2026, 9, 24), date(2026, 9, 28)),   # Mid-Autumn Festival
    (date(2025, 9, 30), date(2025, 10, 9)),
    (date(2025, 1, 27), date(2025, 2, 5)),
    (date(2026, 11, 20), date(2026, 11, 23)),  # an ordinary weekend
])
def test_t_plus_one_across_holidays(esomp_site, day, t_plus_1):
    calendar = esomp_site.calendar
    assert calendar.next_trading_day(day) == t_plus_1
    assert calendar.previous_trading_day(t_plus_1) == day


def test_shipped_2026_closures_are_the_exchanges_notice(esomp_site):
    shipped = sorted(d for d in shipped_closures()["XSHG"].days if d.year == 2026)
    assert shipped == CLOSURES_2026
    for day in MAKE_UP_WORKING_DAYS_2026:
        assert not esomp_site.calendar.is_trading_day(day), day


def test_shenzhen_shares_the_shanghai_closures(esomp_site_factory):
    closures = shipped_closures()
    assert closures["XSHE"].days == closures["XSHG"].days and closures["XSHE"].name != closures["XSHG"].name
    site = esomp_site_factory(calendar={"exchange": "XSHE"})
    assert not site.calendar.is_trading_day(date(2026, 10, 1))
    assert "XSHE" in site.calendar.closed_because(date(2026, 10, 1))


def test_a_site_adds_holidays_and_opens_shipped_closures(esomp_site_factory):
    site = esomp_site_factory(calendar={"holidays": ["2026-11-19"], "open_days": ["2026-10-02"]})
    calendar = site.calendar
    assert not calendar.is_trading_day(date(2026, 11, 19)) and "site holiday" in calendar.closed_because(
        date(2026, 11, 19))
    assert calendar.next_trading_day(date(2026, 11, 18)) == date(2026, 11, 20)
    assert calendar.is_trading_day(date(2026, 10, 2))
    assert calendar.next_trading_day(date(2026, 9, 30)) == date(2026, 10, 2)


@pytest.mark.parametrize("table, path, expected", [
    ({"open_days": ["2026-10-10"]}, "calendar.open_days", "Saturday"),
    ({"holidays": ["2026-11-19"], "open_days": ["2026-11-19"]}, "calendar.open_days", "also in holidays"),
    ({"holidays": ["2026-02-30"]}, "calendar.holidays", "no such date"),
    ({"exchange": "XNYS"}, "calendar.exchange", "unknown exchange"),
    ({"listed_years": [27]}, "calendar.listed_years", "a year"),
    ({"workdays": ["2026-10-10"]}, "calendar.workdays", "unknown key"),
])
def test_bad_calendar_settings_name_the_key(table, path, expected):
    with pytest.raises(ConfigError) as info:
        parse_config({"directories": DIRS, "calendar": table}, "site/esomp.toml")
    assert info.value.path == path and expected in info.value.message


# --- beyond the shipped years ---------------------------------------------------------------------------------------

def test_a_date_beyond_the_shipped_years_is_not_covered(esomp_site_factory, esomp_cli):
    site = esomp_site_factory()
    last_year = shipped_closures()["XSHG"].last_year
    day = f"{last_year + 1}0104"
    result = esomp_cli(["calendar", "--date", day], site=site)
    assert result.exit_code == 0 and "not covered" in result.output
    assert json.loads(esomp_cli(["calendar", "--date", day, "--json"], site=site).output)["covered"] is False
    assert "not covered" in site.calendar.run_day_problem(date(last_year + 1, 1, 4))
    year_end = esomp_cli(["calendar", "--date", f"{last_year}1231"], site=site)  # covered, but T+1 is not
    assert "not covered" in year_end.output and f"{last_year + 1}01" in year_end.output.split("warning")[1]
    assert json.loads(esomp_cli(["calendar", "--date", f"{last_year}1231", "--json"], site=site).output)[
        "not_covered"] != []
    listed = esomp_site_factory(calendar={"listed_years": [last_year + 1], "holidays": [f"{last_year + 1}-01-04"]})
    assert listed.calendar.covers(date(last_year + 1, 1, 4))
    assert "site holiday" in listed.calendar.run_day_problem(date(last_year + 1, 1, 4))
    assert listed.calendar.run_day_problem(date(last_year + 1, 1, 5)) is None


# --- running a day the calendar refuses ---------------------------------------------------------------------------

def run_of(site, date):
    with site.repository.session() as s:
        return s.scalar(select(Run).where(Run.date == date))


def test_run_refuses_a_holiday_unless_forced_and_records_who_and_why(one_site, esomp_cli):
    site, plugin = one_site()
    refused = cli(esomp_cli, site, plugin, "run", "--date", "20261001", "--executor", "inline", "--quiet")
    assert refused.exit_code == 1 and "20261001 is not a trading day" in refused.output
    assert "--force" in refused.output and run_of(site, "20261001") is None
    no_reason = cli(esomp_cli, site, plugin, "run", "--date", "20261001", "--executor", "inline", "--force")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output and run_of(site, "20261001") is None

    forced = cli(esomp_cli, site, plugin, "run", "--date", "20261001", "--executor", "inline", "--quiet",
                 "--force", "--reason", "make-up clearing for a late file", "--by", "alice")
    assert forced.exit_code == 0, forced.output
    assert run_of(site, "20261001").state == "succeeded"
    with site.repository.session() as s:
        alert = s.scalar(select(AlertRow).where(AlertRow.rule == "calendar.forced_run"))
        assert alert.subject == "20261001" and alert.state == "open"
        assert "alice" in alert.message and "make-up clearing for a late file" in alert.message
        assert "not a trading day" in alert.message
    status = cli(esomp_cli, site, plugin, "status", "--date", "20261001")
    assert "FORCED" in status.output and "alice" in status.output
    as_json = json.loads(cli(esomp_cli, site, plugin, "status", "--date", "20261001", "--json").output)
    assert [f["alert"] for f in as_json["forced"]] == [alert.id]


def test_a_trading_day_runs_without_force_and_records_nothing(one_site, esomp_cli):
    site, plugin = one_site()
    result = cli(esomp_cli, site, plugin, "run", "--date", "20261120", "--executor", "inline", "--quiet")
    assert result.exit_code == 0, result.output
    with site.repository.session() as s:
        assert s.scalars(select(AlertRow)).all() == []


def test_run_refuses_a_date_the_calendar_does_not_cover(one_site, esomp_cli):
    site, plugin = one_site()
    day = f"{shipped_closures()['XSHG'].last_year + 1}0104"
    refused = cli(esomp_cli, site, plugin, "run", "--date", day, "--executor", "inline", "--quiet")
    assert refused.exit_code == 1 and "not covered" in refused.output and run_of(site, day) is None


def test_rerun_refuses_a_holiday_unless_forced(one_site, esomp_cli):
    site, plugin = one_site()
    plugin.fail = True
    first = cli(esomp_cli, site, plugin, "run", "--date", "20261001", "--executor", "inline", "--quiet", "--force",
                "--reason", "drill", "--by", "alice")
    assert first.exit_code == 1 and run_of(site, "20261001").state == "failed"
    plugin.fail = False
    refused = cli(esomp_cli, site, plugin, "rerun", "20261001", "--failed", "--executor", "inline")
    assert refused.exit_code == 1 and "not a trading day" in refused.output
    with site.repository.session() as s:
        assert s.scalar(select(JobRow.state)) == "failed"
    forced = cli(esomp_cli, site, plugin, "rerun", "20261001", "--failed", "--executor", "inline", "--force",
                 "--reason", "drill, second try", "--by", "bob")
    assert forced.exit_code == 0, forced.output
    with site.repository.session() as s:
        alert = s.scalar(select(AlertRow).where(AlertRow.rule == "calendar.forced_run"))
        assert alert.count == 2 and "bob" in alert.message and "second try" in alert.message
