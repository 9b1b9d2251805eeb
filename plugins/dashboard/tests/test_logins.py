"""Login attempts are limited per user and per address; a lockout is logged and raised as an alert."""
import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from esomp_core import AlertRow as Alert
from esomp_dashboard import logins, plugin
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.testing import login
from esomp_monitor import run_monitor

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
OPTIONS = DashboardOptions()


def lockout_alerts(site):
    with site.repository.session() as s:
        return {(a.subject, a.state) for a in s.scalars(select(Alert).where(Alert.rule == "dashboard.lockout"))}


@BOTH
def test_a_user_is_locked_out_after_failures_from_any_address_logged_and_alerted(client_for, day_site, heard,
                                                                                 caplog):
    caplog.set_level(logging.WARNING, logger="esomp.dashboard")
    for attempt in range(OPTIONS.login_failures_per_user):
        address = f"10.0.0.{attempt % 2 + 1}"  # spreading the guesses over addresses does not help
        assert login(client_for(address=address), "olga", "wrong password!")[0].status_code == 401
    refused, _ = login(client_for(address="10.0.0.3"), "olga")  # the right password, too late
    assert refused.status_code == 429 and "Too many failed logins for olga" in refused.text
    assert login(client_for(address="10.0.0.1"), "victor")[0].status_code == 303  # others still log in
    assert ("raised", "dashboard.lockout", "user olga") in heard.events
    assert lockout_alerts(day_site) == {("user olga", "open")}
    assert any("user olga locked out" in r.getMessage() for r in caplog.records)


@BOTH
def test_an_address_is_locked_out_after_failures_for_any_user(client_for, day_site, heard):
    for attempt in range(OPTIONS.login_failures_per_address):
        assert login(client_for(address="10.9.9.9"), f"guess{attempt}", "wrong password!")[0].status_code == 401
    refused, _ = login(client_for(address="10.9.9.9"), "olga")
    assert refused.status_code == 429 and "Too many failed logins from 10.9.9.9" in refused.text
    assert login(client_for(address="10.9.9.8"), "olga")[0].status_code == 303
    assert lockout_alerts(day_site) == {("address 10.9.9.9", "open")}


def test_a_success_clears_the_users_count_and_a_lockout_ends_with_its_alert(day_site):
    repository, now, limit = day_site.repository, datetime(2026, 12, 1, 9), OPTIONS.login_failures_per_user
    for _ in range(limit - 1):
        logins.record_failure(day_site, "olga", "10.0.0.1", now, OPTIONS)
    logins.record_success(repository, "olga", now)
    for _ in range(limit - 1):
        logins.record_failure(day_site, "olga", "10.0.0.1", now, OPTIONS)
    assert logins.refusal(repository, "olga", "10.0.0.1", now) is None
    logins.record_failure(day_site, "olga", "10.0.0.1", now, OPTIONS)
    assert "olga" in logins.refusal(repository, "olga", "10.0.0.1", now)
    later = now + timedelta(minutes=OPTIONS.lockout_minutes, seconds=1)
    assert logins.refusal(repository, "olga", "10.0.0.1", later) is None
    registered = []
    plugin.register_monitors(registered.append)  # register_monitors: the daemon runs it every 60 s
    [monitor] = registered
    run_monitor(day_site, monitor, later)  # the daemon's look: the lockout is over
    assert lockout_alerts(day_site) == {("user olga", "resolved")}


def test_failures_older_than_the_window_do_not_count(day_site):
    repository, now = day_site.repository, datetime(2026, 12, 1, 9)
    window = timedelta(minutes=OPTIONS.login_window_minutes)
    for step in range(OPTIONS.login_failures_per_user):
        logins.record_failure(day_site, "olga", "10.0.0.1", now + step * window, OPTIONS)
    assert logins.refusal(repository, "olga", "10.0.0.1", now + 4 * window) is None


def test_limits_are_checked_at_load(esomp_site_factory):
    from esomp_core import ConfigError
    from esomp_dashboard.config import dashboard_options

    with pytest.raises(ConfigError, match="dashboard.login_failures_per_user"):
        dashboard_options(esomp_site_factory(dashboard={"login_failures_per_user": 0}))
    with pytest.raises(ConfigError, match="dashboard.lockout_minutes"):
        dashboard_options(esomp_site_factory(dashboard={"lockout_minutes": -1}))
