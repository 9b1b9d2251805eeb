"""Request handling the other tests leave out: where a login sends the browser, a logout without its token,
a change that fails unforeseen, refused query values and bodies, and a site with no run yet."""
import pytest
from starlette.testclient import TestClient

from esomp_dashboard import audit, users
from esomp_dashboard.app import create_app
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.testing import DATE, PASSWORD, login


def last_audit(site):
    entry = audit.entries(site.repository, limit=1)[0]
    return entry["actor"], entry["action"], entry["target"], entry["outcome"], entry["detail"]


def login_to(client, next_url):
    token = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    return client.post("/login", data={"username": "olga", "password": PASSWORD, "csrf": token, "next": next_url},
                       follow_redirects=False)


@pytest.mark.parametrize("next_url, location", [("/alerts", "/alerts"), ("//elsewhere.example/x", "/"),
                                                ("https://elsewhere.example/", "/"), ("", "/")])
def test_a_login_goes_on_to_a_page_of_this_site_only(client_for, next_url, location):
    response = login_to(client_for(), next_url)
    assert response.status_code == 303 and response.headers["location"] == location


def test_a_logout_without_its_csrf_token_keeps_the_session_and_is_audited_as_denied(client_for, day_site):
    olga = client_for("olga")
    response = olga.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert olga.get("/api/me").status_code == 200
    assert last_audit(day_site) == ("olga", "logout", "session", "denied", "missing or wrong CSRF token")


def test_a_change_that_fails_unforeseen_is_audited_then_raised(client_for, day_site, monkeypatch):
    from esomp_dashboard import actions

    def broken(site, date, batch):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(actions, "pause", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        client_for("olga").post("/api/batches/3/pause", json={"date": DATE, "reason": "late file"})
    assert last_audit(day_site) == ("olga", "batch.pause", f"batch 3 of {DATE}", "error", "RuntimeError: disk gone")
    assert audit.entries(day_site.repository, limit=1)[0]["reason"] == "late file"


@pytest.mark.parametrize("url, message", [
    ("/api/jobs?limit=many", "limit 'many': expected an integer"),
    ("/api/jobs?limit=0", "limit 0: expected 1..1000"),
    ("/api/jobs?state=asleep", "state 'asleep': expected one of"),
    ("/api/alerts?state=asleep", "state 'asleep': expected one of"),
    ("/api/overview?date=2024-01-05", "date '2024-01-05': expected CCYYMMDD"),
    (f"/api/jobs/{2 ** 31}", f"job_id {2 ** 31}: out of range"),
])
def test_a_bad_query_value_is_refused_by_name(client_for, url, message):
    response = client_for("olga").get(url)
    assert response.status_code == 400 and response.json()["error"].startswith(message)


@pytest.mark.parametrize("body, message", [
    (b"not json", "the request body is not JSON"),
    (b"[1, 2]", "the request body must be a JSON object"),
    (b'{"when": "now"}', "unknown field 'when' (expected: date, reason, ticket)"),
    (b'{"reason": "' + b"x" * 2001 + b'"}', "reason: a string of at most 2000 characters"),
    (b'{"date": "soon"}', "date 'soon': expected CCYYMMDD"),
])
def test_a_bad_change_body_is_refused_and_audited(client_for, day_site, body, message):
    response = client_for("olga").post("/api/batches/3/pause", content=body,
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == message
    assert last_audit(day_site) == ("olga", "batch.pause", "batch 3", "error", message)


def test_a_site_with_no_run_yet_says_how_to_start_one(esomp_site):
    users.add_user(esomp_site.repository, "olga", PASSWORD, "operator")
    with TestClient(create_app(esomp_site, DashboardOptions()), base_url="http://127.0.0.1") as client:
        assert login(client, "olga")[0].status_code == 303
        response = client.get("/api/overview")
        assert response.status_code == 404 and "no run yet" in response.json()["error"]
        assert client.get("/").status_code == 404
