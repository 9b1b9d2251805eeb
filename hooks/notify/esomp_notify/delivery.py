"""Delivery: an outbox of messages in the repository (``deliveries``), sent to log, webhook or email and retried
with backoff. Nothing here runs in the engine's commit path: a background worker (worker.py) drives it.
"""
from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import delete, select, update

from esomp_core import AlertRow, secret
from esomp_monitor import Notification, as_dict, due_notifications

from esomp_notify.models import Delivery
from esomp_notify.options import NotifyOptions, Target, notify_options, route

log = logging.getLogger("esomp.notify")


class DeliveryError(Exception):
    """One attempt failed; the message says why (never a password)."""


# --- what is sent ------------------------------------------------------------------------------------------------


def _jsonable(alert: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(alert, default=str))


def outbox_rows(notifications: list[Notification], options: NotifyOptions, now: datetime) -> list[Delivery]:
    """One delivery per target per notification, holding only the alerts routed to that target."""
    rows = []
    for note in notifications:
        for target, routed in route(note.alerts, options).items():
            rows.append(Delivery(target=target, kind=options.targets[target].kind, group_key=note.group_key,
                                 payload={"event": "alerts", "reason": note.reason, "group": note.group_key,
                                          "alerts": [_jsonable(a) for a in routed]},
                                 state="pending", attempts=0, created_at=now, next_attempt_at=now))
    return rows


def enqueue_acknowledgement(site, alert, options: NotifyOptions, now: datetime) -> int:
    """Tell the acknowledged alert's routes who acknowledged it and why; returns the deliveries queued."""
    with site.repository.session() as s:
        row = s.get(AlertRow, alert.id)
        data = _jsonable(as_dict(row))
        queued = 0
        for target in route([data], options):
            s.add(Delivery(target=target, kind=options.targets[target].kind, group_key=f"ack:{alert.id}",
                           payload={"event": "acknowledged", "reason": "acknowledged", "group": f"ack:{alert.id}",
                                    "alerts": [data]},
                           state="pending", attempts=0, created_at=now, next_attempt_at=now))
            queued += 1
        return queued


def collect_due(site, options: NotifyOptions, now: datetime) -> int:
    """Turn the notifications due at ``now`` into outbox rows, in the transaction that marks them sent."""
    queued = []

    def record(session, notifications):
        rows = outbox_rows(notifications, options, now)
        session.add_all(rows)
        queued.extend(rows)

    due_notifications(site, now, record=record)
    return len(queued)


# --- how it is sent ---------------------------------------------------------------------------------------------------


def subject_line(payload: dict[str, Any], target: Target) -> str:
    items = payload["alerts"]
    if payload["event"] == "acknowledged":
        a = items[0]
        return f"{target.subject_prefix} acknowledged by {a['acknowledged_by']}: {a['rule']} {a['subject']}"
    worst = max((a["severity"] for a in items), key=("info", "warning", "error", "critical").index)
    repeat = " (still open)" if payload["reason"] == "repeat" else ""
    return f"{target.subject_prefix} {worst.upper()} {len(items)} alert(s){repeat}: {payload['group']}"


def text_body(payload: dict[str, Any]) -> str:
    lines = []
    for a in payload["alerts"]:
        lines.append(f"[{a['severity']}] {a['rule']} {a['subject']} (alert {a['id']}, seen {a['count']} time(s), "
                     f"first {a['first_seen']}, last {a['last_seen']})")
        lines.append(f"    {a['message']}")
        if a.get("acknowledged_by"):
            lines.append(f"    acknowledged by {a['acknowledged_by']}: {a['comment']}")
    return "\n".join(lines) + "\n"


def send_log(payload: dict[str, Any], target: Target, site) -> None:
    log.warning("%s\n%s", subject_line(payload, target), text_body(payload))


def send_webhook(payload: dict[str, Any], target: Target, site) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(target.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **target.headers})
    try:
        with urllib.request.urlopen(request, timeout=target.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook {target.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook {target.url}: {type(reason).__name__}: {reason}") from None


def send_email(payload: dict[str, Any], target: Target, site) -> None:
    message = EmailMessage()
    message["Subject"] = subject_line(payload, target)
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    message.set_content(text_body(payload))
    message.add_attachment(json.dumps(payload, ensure_ascii=False, indent=2), subtype="json",
                           filename="alerts.json")
    try:
        with smtplib.SMTP(target.host, target.port, timeout=target.timeout) as smtp:
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=target.ca_file))
            if target.username:
                password = secret(target.password_env, path="notify.targets.password_env",
                                  source=site.config.source) or ""
                smtp.login(target.username, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"email via {target.host}:{target.port}: {type(exc).__name__}: {exc}") from None


SENDERS = {"log": send_log, "webhook": send_webhook, "email": send_email}


def retry_delay(target: Target, attempts: int) -> float:
    return min(target.backoff * 2 ** (attempts - 1), target.max_backoff)


def attempt_due(site, options: NotifyOptions, now: datetime, clock=datetime.now) -> dict[str, int]:
    """Try every pending delivery due at ``now`` once; record the outcome of each. Returns counts by outcome."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    with site.repository.session() as s:
        due = [r.id for r in s.scalars(select(Delivery).where(Delivery.state == "pending",
                                                              Delivery.next_attempt_at <= now)
                                       .order_by(Delivery.id))]
    for delivery_id in due:
        with site.repository.session() as s:
            row = s.get(Delivery, delivery_id)
            target_name, payload, attempts = row.target, row.payload, row.attempts + 1
            target = options.targets.get(target_name)
            # Claim the try (another worker may be at it too) and count it before sending: a crash mid-send
            # still counts, and the delivery comes due again after the timeout plus the backoff.
            hold = now + timedelta(seconds=(target.timeout + retry_delay(target, attempts)) if target else 0)
            claimed = s.execute(update(Delivery).where(Delivery.id == delivery_id, Delivery.state == "pending",
                                                       Delivery.attempts == row.attempts)
                                .values(attempts=attempts, next_attempt_at=hold)).rowcount
        if not claimed:
            continue
        error = None
        if target is None:
            error = f"target {target_name!r} is no longer configured in [notify.targets]"
        else:
            try:
                SENDERS[target.kind](payload, target, site)
            except DeliveryError as exc:
                error = str(exc)
        with site.repository.session() as s:
            row = s.get(Delivery, delivery_id)
            if error is None:
                row.state, row.delivered_at, row.last_error = "delivered", clock(), None
                counts["delivered"] += 1
            elif target is None or attempts >= target.attempts:
                row.state, row.last_error = "failed", error
                counts["failed"] += 1
                log.error("delivery %s to %s given up after %s attempt(s): %s", delivery_id, target_name, attempts,
                          error)
            else:
                row.last_error, row.next_attempt_at = error, now + timedelta(seconds=retry_delay(target, attempts))
                counts["retrying"] += 1
                log.warning("delivery %s to %s failed (attempt %s), retrying: %s", delivery_id, target_name,
                            attempts, error)
    return counts


def deliver_once(site, now: datetime, options: NotifyOptions | None = None) -> dict[str, int]:
    """One pass: queue the notifications due at ``now``, try every delivery due, and drop finished deliveries
    older than ``keep_days``."""
    options = options or notify_options(site)
    queued = collect_due(site, options, now)
    return {"queued": queued, **attempt_due(site, options, now), "removed": prune(site, options, now)}


def prune(site, options: NotifyOptions, now: datetime) -> int:
    """Delivered and given-up deliveries older than ``[notify] keep_days``: the outbox does not grow without end."""
    if options.keep_days is None:
        return 0
    with site.repository.session() as s:
        return s.execute(delete(Delivery).where(Delivery.state.in_(("delivered", "failed")),
                                                Delivery.created_at < now - timedelta(days=options.keep_days))
                         ).rowcount
