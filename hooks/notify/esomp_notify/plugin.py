"""The esomp-notify plugin: alert events wake a background delivery worker; a monitor watches the deliveries."""
from __future__ import annotations

import logging
from datetime import datetime

import click
from sqlalchemy import func, select

from esomp_core import ConfigTable, Finding, Monitor, hookimpl

from esomp_notify.delivery import enqueue_acknowledgement
from esomp_notify.models import MIGRATIONS, Delivery
from esomp_notify.options import notify_options
from esomp_notify.worker import notifier_for

log = logging.getLogger("esomp.notify")


@hookimpl
def register_migrations(register) -> None:
    register(MIGRATIONS)


@hookimpl
def register_config(register) -> None:
    register(ConfigTable("notify", "alert notification targets and routes"))


@hookimpl
def check_config(site) -> None:
    notify_options(site)  # a bad [notify] stops the command at start, not at the first alert


@hookimpl
def alert_raised(alert, site) -> None:
    try:
        notifier_for(site).wake()  # delivery happens on the worker's thread, never here
    except Exception as exc:  # observers must not raise
        log.error("notify: cannot wake the delivery worker for alert %s: %s", alert.id, exc)


@hookimpl
def alert_acknowledged(alert, site) -> None:
    try:
        options = notify_options(site)
        if options.acknowledgements:
            notifier = notifier_for(site)
            enqueue_acknowledgement(site, alert, options, notifier.clock())  # one row; sending is the worker's
            notifier.wake()
    except Exception as exc:
        log.error("notify: cannot queue the acknowledgement of alert %s: %s", alert.id, exc)


def check_deliveries(site, now: datetime) -> list[Finding]:
    """Targets with deliveries given up: an alert per target (it resolves after ``esomp notify retry``)."""
    notifier_for(site).wake()  # in the daemon, this keeps repeats and retries moving without new alerts
    with site.repository.session() as s:
        rows = s.execute(select(Delivery.target, func.count(), func.max(Delivery.id))
                         .where(Delivery.state == "failed").group_by(Delivery.target)).all()
        found = []
        for target, count, last_id in rows:
            last = s.get(Delivery, last_id)
            found.append(Finding("notify.failed", target, "error",
                                 f"{count} notification(s) to {target} given up after {last.attempts} attempt(s); "
                                 f"last error: {last.last_error}"))
    return found


@hookimpl
def register_monitors(register) -> None:
    register(Monitor("notify.deliveries", check_deliveries, every=30,
                     description="notifications that could not be delivered (and a nudge to the worker)"))


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_notify.commands import notify

    cli.add_command(notify)
