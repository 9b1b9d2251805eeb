"""The JSON API and pages through Starlette's test client, against a real SQLite repository."""
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from esomp_core import AlertRow as Alert, JobRow, RunRow as Run

from esomp_dashboard.testing import DATE, login


def job_states(site, batch):
    with site.repository.session() as s:
        return set(s.scalars(select(JobRow.state).where(JobRow.batch == batch)))


def test_everything_needs_a_login(client_for):
    client = client_for()
    assert client.get("/api/overview").status_code == 401
    assert client.post("/api/batches/3/pause", json={"date": DATE}).status_code == 401
    page = client.get("/jobs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_login_refuses_a_wrong_password_and_a_missing_csrf_token(client_for):
    client = client_for()
    response, _ = login(client, "olga", "wrong password!")
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    forged = client.post("/login", data={"username": "olga", "password": "correct horse battery", "csrf": "x"},
                         follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/api/me").status_code == 401


def test_hook_batch_resumed_after_batch_paused_from_the_api_releases_batch_3(client_for, day_site, heard):
    olga = client_for("olga")
    response = olga.post("/api/batches/3/pause", json={"date": DATE})
    assert response.status_code == 200 and response.json()["paused_batches"] == [3]
    assert job_states(day_site, 3) == {"paused"} and job_states(day_site, 2) == {"pending"}
    tree = olga.get("/api/tree").json()
    batch3 = [b for b in tree["business_types"][0]["batches"] if b["batch"] == 3][0]
    assert batch3["paused"] and {j["state"] for j in batch3["jobs"]} == {"paused"}
    assert olga.post("/api/batches/3/resume", json={"date": DATE}).json()["paused_batches"] == []
    assert job_states(day_site, 3) == {"pending"}
    assert heard.events == [("paused", DATE, 3), ("resumed", DATE, 3)]
    assert olga.post("/api/batches/9/pause", json={"date": DATE}).json()["error"] == f"no batch 9 in the run of {DATE}"


def test_viewer_cannot_pause_rerun_or_acknowledge(client_for, day_site):
    victor = client_for("victor")
    for url, body in (("/api/batches/3/pause", {"date": DATE}), ("/api/jobs/1/rerun", None),
                      ("/api/alerts/1/acknowledge", {"comment": "seen"})):
        response = victor.post(url, json=body)
        assert response.status_code == 403 and "only operators" in response.json()["error"]
    assert job_states(day_site, 3) == {"pending"}
    assert 'class="ack"' not in victor.get("/alerts").text
    assert "Rerun" not in victor.get("/jobs/1").text


def test_changes_need_the_csrf_header(client_for, day_site):
    olga = client_for("olga")
    response = olga.post("/api/batches/3/pause", json={"date": DATE}, headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403 and "X-CSRF-Token" in response.json()["error"]
    assert job_states(day_site, 3) == {"pending"}


def test_hook_alert_acknowledged_with_a_comment_from_the_api(client_for, day_site, heard):
    olga = client_for("olga")
    open_alerts = olga.get("/api/alerts?state=open").json()
    assert len(open_alerts) == 4
    alert_id = open_alerts[0]["id"]
    assert olga.post(f"/api/alerts/{alert_id}/acknowledge", json={"comment": " "}).status_code == 400
    stored = olga.post(f"/api/alerts/{alert_id}/acknowledge", json={"comment": "known: exchange late"}).json()
    assert stored["state"] == "acknowledged" and stored["acknowledged_by"] == "olga"
    assert heard.events == [("acknowledged", alert_id, "olga", "known: exchange late")]
    again = olga.post(f"/api/alerts/{alert_id}/acknowledge", json={"comment": "twice"})
    assert again.status_code == 409 and "not open" in again.json()["error"]
    assert olga.post("/api/alerts/99999/acknowledge", json={"comment": "x"}).status_code == 404


def test_rerun_starts_an_engine_unless_one_holds_the_day(client_for, day_site, launches):
    olga = client_for("olga")
    with day_site.repository.session() as s:
        s.execute(update(JobRow).where(JobRow.name == "trust-process-b2-1").values(state="failed", error="boom"))
        job_id = s.scalar(select(JobRow.id).where(JobRow.name == "trust-process-b2-1"))
    result = olga.post(f"/api/jobs/{job_id}/rerun").json()
    assert result["jobs"] == ["trust-process-b2-1", "trust-send-b2-1"] and result["engine"] == "started"
    (argv, log), = launches
    assert argv[-5:] == ["--site", str(day_site.root), "run", "--date", DATE]
    assert log.parent == Path(day_site.directory("monitoring_centre"))
    with day_site.repository.session() as s:
        s.execute(update(Run).values(lock_holder="host:123", lock_heartbeat=datetime.now()))
    assert olga.post(f"/api/jobs/{job_id}/rerun").json()["engine"] == "host:123"
    assert len(launches) == 1  # the running engine picks the reset jobs up itself
    with day_site.repository.session() as s:
        s.execute(update(Run).values(lock_heartbeat=datetime.now() - timedelta(hours=1)))
    assert olga.post(f"/api/jobs/{job_id}/rerun").json()["engine"] == "started"  # that engine is dead
    assert len(launches) == 2
    with day_site.repository.session() as s:
        assert s.get(JobRow, job_id).state == "pending"
        s.execute(update(JobRow).where(JobRow.id == job_id).values(state="running"))
    busy = olga.post(f"/api/jobs/{job_id}/rerun")
    assert busy.status_code == 409 and "trust-process-b2-1 is running" in busy.json()["error"]
    assert olga.post("/api/jobs/999999/rerun").status_code == 404


def test_suggest_offers_jobs_categories_and_products(client_for):
    olga = client_for("olga")
    kinds = {(s["kind"], s["value"]) for s in olga.get("/api/suggest", params={"q": "send-b3"}).json()}
    assert ("job", "trust-send-b3-1") in kinds
    assert ("category", "trust/发送/批次3") in {(s["kind"], s["value"]) for s in
                                            olga.get("/api/suggest", params={"q": "发送/批次3"}).json()}
    assert ("product", "P00042") in {(s["kind"], s["value"]) for s in
                                     olga.get("/api/suggest", params={"q": "P00042"}).json()}
    assert olga.get("/api/suggest", params={"q": "%_"}).json() == []
    assert olga.get("/api/suggest").status_code == 400


def test_job_detail_page_and_api(client_for, day_site):
    olga = client_for("olga")
    with day_site.repository.session() as s:
        job_id = s.scalar(select(JobRow.id).where(JobRow.name == "trust-process-b1-1"))
    detail = olga.get(f"/api/jobs/{job_id}").json()
    assert detail["name"] == "trust-process-b1-1" and len(detail["file_list"]) == 10
    assert [d["name"] for d in detail["depends_on"]] == ["collect-site", "collect-sse", "collect-szse"]
    page = olga.get(f"/jobs/{job_id}").text
    assert "Rerun" in page and "Event history" in page
    assert olga.get("/api/jobs/424242").status_code == 404
    assert olga.get("/jobs/424242").status_code == 404


def test_overview_counts_and_daemon_heartbeat(client_for, day_site):
    olga = client_for("olga")
    view = olga.get("/api/overview").json()
    assert view["jobs"] == 43 and view["counts"]["products"] == 100 and view["counts"]["files"] == 200
    assert view["alerts"] == {"critical": 1, "error": 1, "warning": 1, "info": 1}
    assert view["daemon"] is None and "no daemon" in olga.get("/").text
    path = Path(day_site.directory("monitoring_centre")) / "daemon-heartbeat.json"
    path.write_text('{"state": "watching", "pid": 4242}')
    view = olga.get("/api/overview").json()
    assert view["daemon"]["state"] == "watching" and view["daemon"]["age_seconds"] >= 0
    assert olga.get("/api/overview", params={"date": "2024"}).status_code == 400
    assert olga.get("/api/overview", params={"date": "19990101"}).status_code == 404


def test_events_stream_reports_a_change(client_for, day_site):
    olga = client_for("olga")
    with olga.stream("GET", f"/events?date={DATE}") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        with day_site.repository.session() as s:
            s.execute(update(Alert).where(Alert.id == 1).values(last_seen=datetime(2030, 1, 1)))
        for line in lines:  # the stream ends after stream_seconds, so this loop is bounded
            if line.startswith("event:"):
                assert line == "event: change"
                break
        else:
            raise AssertionError("the stream ended without reporting the change")


def test_launch_detached_runs_the_command_in_its_own_session_with_a_log(tmp_path):
    from esomp_dashboard.actions import launch_detached

    log = tmp_path / "logs" / "run.log"
    launch_detached([sys.executable, "-c", "import os; print('engine in session', os.getsid(0) == os.getpid())"],
                    log)
    deadline = time.monotonic() + 30
    while "engine in session" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the detached process wrote nothing"
        time.sleep(0.05)
    assert "engine in session True" in log.read_text()


def test_run_command_runs_the_day_of_this_site(day_site):
    from esomp_dashboard.actions import run_command

    argv = run_command(day_site, DATE)
    assert Path(argv[0]).name in ("esomp", Path(sys.executable).name)
    assert argv[-5:] == ["--site", str(day_site.root), "run", "--date", DATE]
