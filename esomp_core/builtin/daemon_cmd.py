"""``esomp daemon``: run the day unattended (see esomp_core.daemon and docs/monitoring.md)."""
from __future__ import annotations

import logging

import click

from esomp_core import hookimpl
from esomp_core.cli import json_option, pass_site, print_json
from esomp_core.config import ConfigError
from esomp_core.site import Site


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--clock-start", metavar="YYYY-MM-DD HH:MM",
                  help="Pretend the clock reads this at start-up and runs on from there (replays, drills).")
    @click.option("--status", "show_status", is_flag=True, help="Print the last heartbeat instead of running.")
    @json_option
    @pass_site
    def daemon(site: Site, clock_start: str | None, show_status: bool, as_json: bool) -> None:
        """Run the day: start the plan at [daemon] start, run monitors, clean up, heartbeat; stop on SIGTERM."""
        from esomp_core.daemon import serve, shifted_clock
        from esomp_core.repository.monitoring_models import DaemonHeartbeat

        if show_status:
            with site.repository.session() as s:
                rows = [{"name": r.name, "host": r.host, "pid": r.pid, "at": r.at, "state": r.state,
                         "detail": r.detail} for r in s.query(DaemonHeartbeat)]
            if as_json:
                print_json(rows)
            for r in rows if not as_json else ():
                click.echo(f"{r['name']}: {r['state']} at {r['at']:%Y-%m-%d %H:%M:%S} (pid {r['pid']} on {r['host']})")
            if not rows and not as_json:
                click.echo("no daemon heartbeat yet")
            return
        from datetime import datetime

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
