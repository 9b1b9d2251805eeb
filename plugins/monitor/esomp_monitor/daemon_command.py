"""``esomp daemon``: run the day unattended (see esomp_monitor.daemon and docs/monitoring.md)."""
from __future__ import annotations

import logging
from datetime import datetime

import click

from esomp_core import ConfigError, Site, json_option, pass_site, print_json
from esomp_monitor.models import DaemonHeartbeat


def heartbeats(site: Site) -> list[dict]:
    with site.repository.session() as s:
        return [{"name": r.name, "host": r.host, "pid": r.pid, "at": r.at, "state": r.state, "detail": r.detail}
                for r in s.query(DaemonHeartbeat)]


def show_heartbeats(site: Site, as_json: bool) -> None:
    rows = heartbeats(site)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']}: {r['state']} at {r['at']:%Y-%m-%d %H:%M:%S} (pid {r['pid']} on {r['host']})")
    if not rows:
        click.echo("no daemon heartbeat yet")


def add_daemon_command(cli: click.Group) -> None:
    @cli.command()
    @click.option("--clock-start", metavar="YYYY-MM-DD HH:MM",
                  help="Pretend the clock reads this at start-up and runs on from there (replays, drills).")
    @click.option("--status", "show_status", is_flag=True, help="Print the last heartbeat instead of running.")
    @json_option
    @pass_site
    def daemon(site: Site, clock_start: str | None, show_status: bool, as_json: bool) -> None:
        """Run the day: start the plan at [daemon] start, run monitors, clean up, heartbeat; stop on SIGTERM."""
        from esomp_monitor.daemon import serve, shifted_clock

        if show_status:
            show_heartbeats(site, as_json)
            return
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            clock = shifted_clock(datetime.fromisoformat(clock_start)) if clock_start else datetime.now
        except ValueError:
            raise click.BadParameter(f"expected YYYY-MM-DD HH:MM, got {clock_start!r}",
                                     param_hint="--clock-start") from None
        try:
            serve(site, clock=clock)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
