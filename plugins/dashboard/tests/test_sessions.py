"""Server-side sessions: a role change, a password change, a removed user and a logout end sessions at once;
the key that signs cookies is kept out of the database; /openapi.json needs a login."""
import os
import stat

import pytest

from esomp_dashboard import plugin, users
from esomp_dashboard.app import create_app
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.secret import SecretError
from esomp_dashboard.testing import DATE, PASSWORD

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def replayed(client_for, cookie, csrf):
    """A new client presenting a cookie saved earlier, as a thief or a stale browser tab would."""
    client = client_for()
    client.cookies.set("esomp_session", cookie)
    client.headers["X-CSRF-Token"] = csrf
    return client


def assert_refused(client):
    assert client.get("/api/me").status_code == 401
    assert client.post("/api/batches/3/pause", json={"date": DATE}).status_code == 401
    page = client.get("/jobs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


@BOTH
@pytest.mark.parametrize("change", [
    ["users", "role", "olga", "viewer"],
    ["users", "passwd", "olga", "--password", "another password"],
    ["users", "remove", "olga"],
])
def test_a_role_change_password_change_or_removal_ends_the_users_sessions_at_once(change, client_for, day_site,
                                                                                   esomp_cli):
    olga, olga_elsewhere, victor = client_for("olga"), client_for("olga", address="10.0.0.2"), client_for("victor")
    cookie, csrf = olga.cookies["esomp_session"], olga.headers["X-CSRF-Token"]
    assert olga.get("/api/me").json()["role"] == "operator"
    result = esomp_cli(change, site=day_site, plugins=[plugin])
    assert result.exit_code == 0, result.output
    assert_refused(olga)
    assert_refused(olga_elsewhere)
    assert_refused(replayed(client_for, cookie, csrf))
    assert victor.get("/api/me").status_code == 200  # other users keep their sessions


@BOTH
def test_logout_ends_the_session_even_for_a_copy_of_its_cookie(client_for, day_site):
    olga = client_for("olga")
    cookie, csrf = olga.cookies["esomp_session"], olga.headers["X-CSRF-Token"]
    response = olga.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert_refused(replayed(client_for, cookie, csrf))


def test_a_session_reads_the_role_on_every_request(client_for, day_site):
    """Even a change made behind the commands' back (straight in the table) takes effect at the next request."""
    olga = client_for("olga")
    with day_site.repository.session() as s:
        s.get(users.User, "olga").role = "viewer"
    response = olga.post("/api/batches/3/pause", json={"date": DATE})
    assert response.status_code == 403 and "is a viewer" in response.json()["error"]


def test_removing_an_unknown_user_names_it(esomp_cli, day_site):
    result = esomp_cli(["users", "remove", "nobody"], site=day_site, plugins=[plugin])
    assert result.exit_code != 0 and "no user nobody" in result.output


@BOTH
def test_the_session_secret_is_a_0600_file_beside_the_database_and_not_in_it(app, day_site):
    secret_file = day_site.root / "dashboard-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    with day_site.repository.session() as s:
        stored = [(setting.key, setting.value) for setting in s.query(users.Setting)]
        stored += [(session.username, session.token_hash) for session in s.query(users.Session)]
    assert all(secret not in value for _, value in stored)
    assert "session_secret" not in dict(stored)


def test_the_database_file_of_a_new_site_is_0600(day_site):
    assert stat.S_IMODE((day_site.root / "esomp.db").stat().st_mode) == 0o600


def test_a_database_file_others_can_read_is_warned_about(day_site):
    from esomp_dashboard.secret import open_database_warning

    path = day_site.root / "esomp.db"
    assert open_database_warning(day_site.repository) is None
    os.chmod(path, 0o644)
    assert open_database_warning(day_site.repository) == (
        f"{path}: readable by group or others (mode 0644); chmod 600 {path}*")


def test_a_secret_left_in_the_database_by_an_older_version_is_removed(day_site):
    users.ensure_tables(day_site.repository)
    with day_site.repository.session() as s:
        s.add(users.Setting(key="session_secret", value="0" * 64))
    create_app(day_site, DashboardOptions())
    with day_site.repository.session() as s:
        assert s.get(users.Setting, "session_secret") is None


def test_the_secret_can_come_from_an_environment_variable_instead(day_site, monkeypatch):
    monkeypatch.setenv("ESOMP_DASHBOARD_SECRET", "x" * 40)
    create_app(day_site, DashboardOptions())
    assert not (day_site.root / "dashboard-secret").exists()
    monkeypatch.setenv("ESOMP_DASHBOARD_SECRET", "short")
    with pytest.raises(SecretError, match="ESOMP_DASHBOARD_SECRET: at least 32 characters"):
        create_app(day_site, DashboardOptions())


def test_a_secret_file_others_can_read_is_refused_by_name(day_site):
    secret_file = day_site.root / "dashboard-secret"
    secret_file.write_text("y" * 64)
    os.chmod(secret_file, 0o644)
    with pytest.raises(SecretError, match=f"{secret_file}: readable by group or others .mode 0644.; chmod 600"):
        create_app(day_site, DashboardOptions())


def test_openapi_document_needs_a_login(client_for):
    assert client_for().get("/openapi.json").status_code == 401
    assert client_for("victor").get("/openapi.json").json()["openapi"].startswith("3.")


def test_the_event_stream_ends_when_the_session_does(client_for, day_site):
    olga = client_for("olga")
    with olga.stream("GET", f"/events?date={DATE}") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        users.set_role(day_site.repository, "olga", "viewer")
        # the stream would otherwise run for stream_seconds; it ends at the next look at the repository
        assert "event: logout" in list(lines)


def test_login_still_works_after_a_password_change(client_for, day_site):
    users.set_password(day_site.repository, "olga", "another password")
    from esomp_dashboard.testing import login

    assert login(client_for(), "olga", PASSWORD)[0].status_code == 401
    assert login(client_for(), "olga", "another password")[0].status_code == 303
