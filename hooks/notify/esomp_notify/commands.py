"""``esomp notify deliveries|flush|retry|test``: the alert outbox from the command line."""
from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy import select, update

from esomp_core import json_option, pass_site, print_json, print_table
from esomp_notify.delivery import SENDERS, DeliveryError, deliver_once
from esomp_notify.models import Delivery
from esomp_notify.options import notify_options


@click.group()
def notify() -> None:
    """Alert delivery: the outbox, a synchronous flush, retries and a test message."""

@notify.command()
@click.option("--state", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_site
def deliveries(site, state, limit, as_json) -> None:
    """The outbox, newest first."""
    with site.repository.session() as s:
        query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if state:
            query = query.where(Delivery.state == state)
        rows = [{"id": r.id, "target": r.target, "kind": r.kind, "event": r.payload.get("event"),
                 "alerts": [a["id"] for a in r.payload.get("alerts", [])], "state": r.state,
                 "attempts": r.attempts, "created_at": r.created_at, "delivered_at": r.delivered_at,
                 "next_attempt_at": r.next_attempt_at, "last_error": r.last_error} for r in s.scalars(query)]
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} delivery(ies)", ["id", "target", "event", "alerts", "state", "attempts",
                                               "last error"],
                [(r["id"], r["target"], r["event"], ",".join(map(str, r["alerts"])), r["state"], r["attempts"],
                  r["last_error"]) for r in rows])

@notify.command()
@click.option("--now", "now_text", help="As of this moment (YYYY-MM-DD HH:MM); default: now.")
@json_option
@pass_site
def flush(site, now_text, as_json) -> None:
    """Queue due notifications and try due deliveries now, in this process (for cron without a daemon)."""
    now = datetime.fromisoformat(now_text) if now_text else datetime.now()
    counts = deliver_once(site, now)
    print_json(counts) if as_json else click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))

@notify.command()
@pass_site
def retry(site) -> None:
    """Put deliveries that were given up back in the queue."""
    with site.repository.session() as s:
        n = s.execute(update(Delivery).where(Delivery.state == "failed")
                      .values(state="pending", attempts=0, next_attempt_at=datetime.now())).rowcount
    click.echo(f"{n} delivery(ies) queued again")

@notify.command()
@click.argument("target_name")
@pass_site
def test(site, target_name) -> None:
    """Send a test message to one target now and say whether it arrived."""
    options = notify_options(site)
    target = options.targets.get(target_name)
    if target is None:
        raise click.ClickException(f"no target {target_name!r} in [notify.targets] "
                                   f"(configured: {', '.join(sorted(options.targets))})")
    now = datetime.now().isoformat(timespec="seconds")
    payload = {"event": "test", "reason": "test", "group": "test", "alerts": [
        {"id": 0, "rule": "notify.test", "subject": target_name, "severity": "info", "business_type": "core",
         "message": "a test message from esomp notify test", "count": 1, "first_seen": now, "last_seen": now}]}
    try:
        SENDERS[target.kind](payload, target, site)
    except DeliveryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"test message sent to {target_name}")
