"""Delivery against a real HTTP receiver and a real SMTP server (aiosmtpd) on 127.0.0.1."""
import json
import socket
import threading
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from esomp_core import BusinessType, ConfigError, Finding, JobResult, JobSpec, alerts, hookimpl
from esomp_core.engine import Engine
from esomp_notify.models import Delivery

from esomp_monitor import plugin as monitor_plugin  # declares [alerts], which these sites set
from esomp_notify import plugin
from esomp_notify.delivery import deliver_once
from esomp_notify.options import notify_options
from esomp_notify.worker import Notifier, notifier_for, stop_all

T0 = datetime(2026, 11, 20, 10, 0)


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTed JSON; it can fail the first N requests or hold them."""

    def __init__(self, fail_first=0):
        self.bodies, self.fail_first, self.requests = [], fail_first, 0
        self.release = threading.Event()
        self.release.set()
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if not receiver.release.is_set():
                    receiver.holding.set()
                    receiver.release.wait(30)
                if receiver.requests <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subjects(self):
        return sorted(a["subject"] for body in self.bodies for a in body["alerts"])

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()
    stop_all(5)


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def smtp_server(**kwargs):
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
            return "250 OK"

    handler = Handler()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port, **kwargs)
    controller.start()
    return handler, controller


@pytest.fixture
def smtp():
    handler, controller = smtp_server()
    yield handler
    controller.stop()


@pytest.fixture
def smtp_starttls(tls_files):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, tls_files))
    handler, controller = smtp_server(tls_context=context, require_starttls=True)
    handler.cert = tls_files[0]
    yield handler
    controller.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def findings():
    return [Finding("job.failed", "20261120/collect-sz", "error", "collect-sz failed"),
            Finding("accounts.unmatched", "20261120/process-b1", "warning", "3 accounts", "trust"),
            Finding("disk.low", "bcp_root", "warning", "5 % free")]


def site_with(esomp_site_factory, esomp_pm_factory, targets, routes, *, hooks=False, **notify):
    """A site with [notify]; with ``hooks`` the plugin's hooks are registered (a background worker delivers),
    without them the test drives every delivery pass itself."""
    return esomp_site_factory(esomp_pm_factory(*([plugin] if hooks else [])),
                              notify={"targets": targets, "routes": routes, **notify}, alerts={"group_by": ["rule"]})


def eventually(predicate, what):
    for _ in range(600):  # bounded: 30 s
        if predicate():
            return
        threading.Event().wait(0.05)
    pytest.fail(f"gave up waiting for {what}")


def test_routes_send_webhook_and_email_exactly_the_routed_alerts(esomp_site_factory, esomp_pm_factory, receiver, smtp):
    hook = receiver()
    site = site_with(esomp_site_factory, esomp_pm_factory,
                     {"ops-hook": {"kind": "webhook", "url": hook.url, "timeout": 5},
                      "trust-mail": {"kind": "email", "host": "127.0.0.1", "port": smtp.port,
                                     "sender": "esomp@example.com", "to": ["trust-ops@example.com"]}},
                     [{"severity": ["error", "critical"], "targets": ["ops-hook"]},
                      {"business_type": ["trust"], "targets": ["trust-mail", "ops-hook"]},
                      {"targets": ["log"]}])
    alerts.sync(site, "test", findings(), T0)
    counts = deliver_once(site, T0)
    assert counts == {"queued": 4, "delivered": 4, "retrying": 0, "failed": 0, "removed": 0}  # trust goes to two
    assert hook.subjects() == ["20261120/collect-sz", "20261120/process-b1"]
    [(rcpt, message)] = smtp.messages
    assert rcpt == ["trust-ops@example.com"]
    assert message["Subject"] == "[E-SOMP] WARNING 1 alert(s): rule=accounts.unmatched"
    assert "20261120/process-b1" in message.get_body(("plain",)).get_content()
    assert deliver_once(site, T0 + timedelta(minutes=1))["queued"] == 0  # nothing new, no repeat yet


def test_finished_deliveries_older_than_keep_days_are_removed_pending_ones_kept(esomp_site_factory, esomp_pm_factory):
    site = site_with(esomp_site_factory, esomp_pm_factory, {}, [{"targets": ["log"]}], keep_days=30)
    with site.repository.session() as s:
        for state, age in (("delivered", 31), ("failed", 31), ("pending", 31), ("delivered", 29)):
            s.add(Delivery(target="log", kind="log", payload={}, state=state, created_at=T0 - timedelta(days=age),
                           next_attempt_at=T0 + timedelta(days=1)))
    assert deliver_once(site, T0)["removed"] == 2
    with site.repository.session() as s:
        kept = sorted((d.state, (T0 - d.created_at).days) for d in s.scalars(select(Delivery)))
    assert kept == [("delivered", 29), ("pending", 31)]
    keep_all = site_with(esomp_site_factory, esomp_pm_factory, {}, [{"targets": ["log"]}])
    assert deliver_once(keep_all, T0)["removed"] == 0


def test_hook_alert_raised_and_alert_acknowledged_reach_the_routes_through_the_worker(esomp_site_factory,
                                                                                 esomp_pm_factory, receiver, smtp):
    hook = receiver()
    site = site_with(esomp_site_factory, esomp_pm_factory,
                     {"ops-hook": {"kind": "webhook", "url": hook.url},
                      "trust-mail": {"kind": "email", "host": "127.0.0.1", "port": smtp.port,
                                     "sender": "esomp@example.com", "to": ["trust-ops@example.com"]}},
                     [{"severity": ["error"], "targets": ["ops-hook"]},
                      {"business_type": ["trust"], "targets": ["trust-mail"]}], hooks=True, interval=3600)
    notifier_for(site, clock=lambda: T0)  # the worker's clock is the test's
    [failed, unmatched, _disk] = alerts.sync(site, "test", findings(), T0).raised  # alert_raised wakes it
    eventually(lambda: hook.bodies and smtp.messages, "the routed alerts")
    assert hook.subjects() == ["20261120/collect-sz"]
    assert [m["Subject"] for _, m in smtp.messages] == ["[E-SOMP] WARNING 1 alert(s): rule=accounts.unmatched"]
    alerts.acknowledge(site, failed.id, "ops.li", "rerun after the exchange resent the file")
    eventually(lambda: len(hook.bodies) == 2, "the acknowledgement")
    acked = hook.bodies[1]
    assert acked["event"] == "acknowledged" and len(smtp.messages) == 1  # only the alert's own route hears it
    assert (acked["alerts"][0]["acknowledged_by"], acked["alerts"][0]["comment"]) == (
        "ops.li", "rerun after the exchange resent the file")


def test_webhook_down_is_retried_with_backoff_then_given_up_and_alerted(esomp_site_factory, esomp_pm_factory):
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    site = site_with(esomp_site_factory, esomp_pm_factory,
                     {"dead": {"kind": "webhook", "url": url, "attempts": 3, "backoff": 10, "timeout": 2}},
                     [{"severity": ["error"], "targets": ["dead"]}])
    alerts.sync(site, "test", findings()[:1], T0)
    assert deliver_once(site, T0)["retrying"] == 1
    assert deliver_once(site, T0 + timedelta(seconds=9))["retrying"] == 0  # not due before the backoff
    assert deliver_once(site, T0 + timedelta(seconds=10))["retrying"] == 1
    assert deliver_once(site, T0 + timedelta(seconds=30))["failed"] == 1  # 10 then 20 s: third and last try
    with site.repository.session() as s:
        [row] = s.scalars(select(Delivery))
        assert (row.state, row.attempts) == ("failed", 3) and "ConnectionRefusedError" in row.last_error
    [finding] = plugin.check_deliveries(site, T0)
    assert finding.rule == "notify.failed" and "given up after 3 attempt(s)" in finding.message


def test_webhook_failing_twice_delivers_once_on_the_third_try(esomp_site_factory, esomp_pm_factory, receiver):
    hook = receiver(fail_first=2)
    site = site_with(esomp_site_factory, esomp_pm_factory, {"ops": {"kind": "webhook", "url": hook.url,
                                                                    "backoff": 0}},
                     [{"targets": ["ops"]}])
    alerts.sync(site, "test", findings()[:1], T0)
    outcomes = [deliver_once(site, T0) for _ in range(3)]
    assert [o["retrying"] for o in outcomes] == [1, 1, 0] and outcomes[2]["delivered"] == 1
    assert hook.requests == 3 and hook.subjects() == ["20261120/collect-sz"]


class FailingDay:
    """A day whose finished jobs raise alerts as they go: the engine path that must never wait on delivery."""

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("fd", "FD", plan=lambda site, date: [
            JobSpec(f"job-{i}", "process", "fd", batch=1) for i in range(4)]))

    @hookimpl
    def process(self, job):
        return JobResult(files=1)

    @hookimpl
    def job_finished(self, job, site):
        alerts.sync(site, f"watch-{job.name}", [Finding("job.slow", f"{job.date}/{job.name}", "error", "slow")],
                    datetime.now())


def test_hook_alert_raised_during_a_run_does_not_wait_for_a_hanging_webhook(esomp_site_factory, esomp_pm_factory,
                                                                       receiver):
    hook = receiver()
    hook.release.clear()  # the receiver holds every request until released
    site = esomp_site_factory(esomp_pm_factory(plugin, FailingDay()), engine={"poll": 0.01},
                              notify={"targets": {"ops": {"kind": "webhook", "url": hook.url, "timeout": 30}},
                                      "routes": [{"targets": ["ops"]}], "interval": 0.05},
                              alerts={"group_by": ["rule"], "group_interval": 0})
    summary = Engine(site, "20261120", executor="inline").run()
    assert summary.state == "succeeded"
    assert hook.holding.wait(20)  # the worker is stuck in the webhook while the run has already finished
    assert hook.bodies == []
    hook.release.set()
    everyone = {f"20261120/job-{i}" for i in range(4)}
    eventually(lambda: set(hook.subjects()) == everyone, "every alert, in one or more grouped messages")


def test_background_notifier_delivers_after_wake(esomp_site_factory, esomp_pm_factory, receiver):
    hook = receiver()
    site = site_with(esomp_site_factory, esomp_pm_factory, {"ops": {"kind": "webhook", "url": hook.url}},
                     [{"targets": ["ops"]}], interval=3600)
    notifier = Notifier(site, clock=lambda: T0)
    try:
        alerts.sync(site, "test", findings()[:1], T0)
        notifier.wake()
        eventually(lambda: hook.bodies, "a delivery")
        assert hook.subjects() == ["20261120/collect-sz"]
    finally:
        notifier.stop(5)


def test_notify_options_errors_name_the_key(esomp_site_factory):
    site = esomp_site_factory(notify={"targets": {"m": {"kind": "email", "host": "h", "to": ["a@b"]}}})
    with pytest.raises(ConfigError, match=r"notify\.targets\.m\.sender: missing required key"):
        notify_options(site)
    site = esomp_site_factory(notify={"routes": [{"targets": ["pager"]}]})
    with pytest.raises(ConfigError, match=r"notify\.routes\[0\]\.targets: unknown target 'pager'"):
        notify_options(site)
    site = esomp_site_factory(notify={"routes": [{"targets": ["log"], "severity": ["fatal"]}]})
    with pytest.raises(ConfigError, match=r"notify\.routes\[0\]\.severity: unknown severity 'fatal'"):
        notify_options(site)


def test_hook_register_monitors_and_commands_of_notify(esomp_site_factory, esomp_pm_factory, esomp_cli, receiver):
    hook = receiver()
    site = site_with(esomp_site_factory, esomp_pm_factory, {"ops": {"kind": "webhook", "url": hook.url}},
                     [{"targets": ["ops"]}])
    assert "notify.deliveries" in site_with(esomp_site_factory, esomp_pm_factory, {}, [{"targets": ["log"]}],
                                            hooks=True).registry.monitors
    result = esomp_cli(["notify", "test", "ops"], site=site, plugins=[plugin, monitor_plugin])
    assert result.exit_code == 0 and hook.bodies[0]["event"] == "test"
    alerts.sync(site, "test", findings()[:1], T0)
    result = esomp_cli(["notify", "flush", "--json"], site=site, plugins=[plugin, monitor_plugin])
    assert json.loads(result.output)["delivered"] == 1
    result = esomp_cli(["notify", "deliveries", "--json"], site=site, plugins=[plugin, monitor_plugin])
    assert [r["state"] for r in json.loads(result.output)] == ["delivered"]
    assert esomp_cli(["notify", "test", "nope"], site=site, plugins=[plugin, monitor_plugin]).exit_code == 1


def test_email_with_starttls_verified_against_the_ca_file(esomp_site_factory, esomp_pm_factory, smtp_starttls):
    mail = {"kind": "email", "host": "127.0.0.1", "port": smtp_starttls.port, "sender": "esomp@example.com",
            "to": ["ops@example.com"], "attempts": 1}
    site = site_with(esomp_site_factory, esomp_pm_factory,
                     {"tls": {**mail, "starttls": True, "ca_file": str(smtp_starttls.cert)}, "plain": mail},
                     [{"targets": ["tls", "plain"]}])
    alerts.sync(site, "test", findings()[:1], T0)
    assert deliver_once(site, T0) == {"queued": 2, "delivered": 1, "retrying": 0, "failed": 1, "removed": 0}
    assert [m["To"] for _, m in smtp_starttls.messages] == ["ops@example.com"]
    with site.repository.session() as s:
        failed = s.scalars(select(Delivery).where(Delivery.state == "failed")).one()
    assert failed.target == "plain" and "STARTTLS" in failed.last_error  # the server refuses mail in clear
