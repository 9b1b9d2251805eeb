"""Every state-changing action leaves an audit row: who, when, what, target, outcome, reason and ticket."""
import json

import pytest
from sqlalchemy import select, update

from esomp_core import JobRow
from esomp_dashboard import audit, plugin
from esomp_dashboard.testing import DATE, login

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def rows(site):
    return [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(audit.entries(site.repository))]


@BOTH
def test_every_dashboard_action_is_audited_with_its_outcome(client_for, day_site):
    with day_site.repository.session() as s:
        s.execute(update(JobRow).where(JobRow.name == "trust-process-b2-1").values(state="failed"))
        job_id = s.scalar(select(JobRow.id).where(JobRow.name == "trust-process-b2-1"))
    assert login(client_for(address="10.0.0.7"), "olga", "wrong password!")[0].status_code == 401
    olga, victor = client_for("olga"), client_for("victor")
    assert olga.post("/api/batches/3/pause", json={"date": DATE, "reason": "late SZSE file",
                                                   "ticket": "TD-1201"}).status_code == 200
    assert olga.post("/api/batches/3/resume", json={"date": DATE}).status_code == 200
    assert olga.post(f"/api/jobs/{job_id}/rerun", json={"reason": "file replaced"}).status_code == 200
    assert olga.post("/api/alerts/1/acknowledge", json={"comment": "known", "ticket": "TD-7"}).status_code == 200
    assert olga.post("/api/alerts/1/acknowledge", json={"comment": "again"}).status_code == 409
    assert victor.post("/api/batches/2/pause", json={"date": DATE}).status_code == 403
    assert olga.post("/logout", data={"csrf": olga.headers["X-CSRF-Token"]}).status_code == 200
    assert rows(day_site) == [
        ("olga", "login", "session", "failed"),
        ("olga", "login", "session", "ok"),
        ("victor", "login", "session", "ok"),
        ("olga", "batch.pause", f"batch 3 of {DATE}", "ok"),
        ("olga", "batch.resume", f"batch 3 of {DATE}", "ok"),
        ("olga", "job.rerun", f"job {job_id}", "ok"),
        ("olga", "alert.acknowledge", "alert 1", "ok"),
        ("olga", "alert.acknowledge", "alert 1", "error"),
        ("victor", "batch.pause", f"batch 2 of {DATE}", "denied"),
        ("olga", "logout", "session", "ok"),
    ]
    entries = {(e["action"], e["outcome"]): e for e in audit.entries(day_site.repository)}
    pause = entries[("batch.pause", "ok")]
    assert (pause["reason"], pause["ticket"], pause["origin"]) == ("late SZSE file", "TD-1201", "127.0.0.1")
    assert entries[("job.rerun", "ok")]["reason"] == "file replaced"
    assert (entries[("alert.acknowledge", "ok")]["reason"], entries[("alert.acknowledge", "ok")]["ticket"]) == (
        "known", "TD-7")
    assert "not open" in entries[("alert.acknowledge", "error")]["detail"]
    assert entries[("login", "failed")]["origin"] == "10.0.0.7"
    assert entries[("batch.pause", "denied")]["at"] is not None


@BOTH
def test_user_changes_from_the_command_line_are_audited_and_listed(esomp_cli, day_site):
    def cli(*args):
        return esomp_cli(list(args), site=day_site, plugins=[plugin])

    assert cli("users", "add", "nina", "--role", "viewer", "--password", "long enough").exit_code == 0
    assert cli("users", "role", "nina", "operator").exit_code == 0
    assert cli("users", "passwd", "nina", "--password", "longer still").exit_code == 0
    assert cli("users", "remove", "nina").exit_code == 0
    assert cli("users", "remove", "nina").exit_code != 0
    listed = cli("users", "audit", "--json")
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.output)
    assert [(e["action"], e["target"], e["outcome"]) for e in reversed(entries)][-5:] == [
        ("user.add", "user nina", "ok"), ("user.role", "user nina", "ok"), ("user.passwd", "user nina", "ok"),
        ("user.remove", "user nina", "ok"), ("user.remove", "user nina", "error")]
    assert all(e["origin"] == "cli" and e["actor"] for e in entries)
    only = json.loads(cli("users", "audit", "--json", "--action", "user.role").output)
    assert [e["detail"] for e in only] == ["role viewer -> operator"]
    table = cli("users", "audit")
    assert table.exit_code == 0 and "user.remove" in table.output


def test_the_audit_is_served_to_operators_only(client_for):
    olga = client_for("olga")
    olga.post("/api/batches/3/pause", json={"date": DATE})
    listed = olga.get("/api/audit", params={"action": "batch.pause"}).json()
    assert [(e["actor"], e["target"]) for e in listed] == [("olga", f"batch 3 of {DATE}")]
    assert client_for("victor").get("/api/audit").status_code == 403
    assert client_for().get("/api/audit").status_code == 401
