"""The monitoring centre as a plugin: the built-in monitors, and the ``alerts``, ``monitor`` and ``daemon``
commands."""
from __future__ import annotations

import click

from esomp_core import ConfigTable, hookimpl
from esomp_monitor.commands import add_alert_commands, add_monitor_commands
from esomp_monitor.daemon_command import add_daemon_command
from esomp_monitor.monitors import MONITORS


@hookimpl
def register_monitors(register) -> None:
    for monitor, _options in MONITORS:
        register(monitor)


@hookimpl
def register_migrations(register) -> None:
    from esomp_monitor.models import MIGRATIONS

    register(MIGRATIONS)


@hookimpl
def register_config(register) -> None:
    register(ConfigTable("alerts", "how alerts are grouped, repeated and inhibited for notification"))
    register(ConfigTable("daemon", "the daemon: its engine start, heartbeat and cleanup"))


@hookimpl
def register_commands(cli: click.Group) -> None:
    add_alert_commands(cli)
    add_monitor_commands(cli)
    add_daemon_command(cli)
