"""Commands for alerts and monitors: ``esomp alerts list|ack|silence|silences|unsilence``, ``esomp monitor run|list``."""
from __future__ import annotations

import getpass
import re
from datetime import datetime, timedelta

import attrs
import click

from esomp_core import ConfigError, Site, acknowledge_alert, json_option, pass_site, print_json, print_table
from esomp_monitor.listing import list_alerts
from esomp_monitor.runner import all_monitors, check_config, last_runs, run_due
from esomp_monitor.schedules import schedule_of
from esomp_monitor.silences import add_silence, expire_silence, list_silences

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1d``, ``45s`` or a combination (``1h30m``)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise click.BadParameter(f"expected a duration like 30m, 2h, 1d or 1h30m, got {text!r}", param_hint="--for")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def parse_moment(text: str, hint: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD HH:MM[:SS], got {text!r}", param_hint=hint) from None


def operator_name(given: str | None) -> str:
    return given or getpass.getuser()


@click.group()
def alerts() -> None:
    """Alerts raised by monitors: list, acknowledge (确认), silence for maintenance."""

@alerts.command("list")
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved"]), help="Only this state.")
@click.option("--limit", type=int, default=200, show_default=True)
@json_option
@pass_site
def list_(site: Site, state: str | None, limit: int, as_json: bool) -> None:
    """Alerts, most recently seen first."""
    rows = list_alerts(site, state=state, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} alert(s)" + (f" {state}" if state else ""),
                ["id", "state", "severity", "rule", "subject", "count", "last seen", "message", "ack"],
                [(r["id"], r["state"] + (" (silenced)" if r["silenced"] else ""), r["severity"], r["rule"],
                  r["subject"], r["count"], f"{r['last_seen']:%m-%d %H:%M:%S}", r["message"],
                  f"{r['acknowledged_by']}: {r['comment']}" if r["acknowledged_by"] else "") for r in rows])

@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--comment", required=True, help="Why: what is being done about it.")
@click.option("--by", "user", help="Operator name (default: the login name).")
@json_option
@pass_site
def ack(site: Site, alert_id: int, comment: str, user: str | None, as_json: bool) -> None:
    """Acknowledge (确认) an open alert: it is no longer repeated; its condition is still watched."""
    try:
        alert = acknowledge_alert(site, alert_id, operator_name(user), comment)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    if as_json:
        print_json({"id": alert.id, "state": alert.state, "acknowledged_by": alert.acknowledged_by,
                    "comment": alert.comment})
        return
    click.echo(f"alert {alert.id} ({alert.rule} {alert.subject}) acknowledged by {alert.acknowledged_by}")

@alerts.command()
@click.option("--rule", default="*", show_default=True, help="Rule to silence (shell wildcards).")
@click.option("--subject", default="*", show_default=True, help="Subject to silence (shell wildcards).")
@click.option("--start", help="Start of the window (default: now), YYYY-MM-DD HH:MM.")
@click.option("--until", help="End of the window, YYYY-MM-DD HH:MM.")
@click.option("--for", "duration", help="Length of the window instead of --until: 30m, 2h, 1d.")
@click.option("--comment", default="", help="Why (required when silencing everything).")
@click.option("--by", "user", help="Operator name (default: the login name).")
@pass_site
def silence(site: Site, rule: str, subject: str, start: str | None, until: str | None, duration: str | None,
            comment: str, user: str | None) -> None:
    """Declare a maintenance window: matching alerts are still recorded but not notified."""
    if (until is None) == (duration is None):
        raise click.UsageError("give exactly one of --until and --for")
    starts = parse_moment(start, "--start") if start else datetime.now()
    ends = parse_moment(until, "--until") if until else starts + parse_duration(duration)
    try:
        silence_id = add_silence(site, rule=rule, subject=subject, starts_at=starts, ends_at=ends,
                                 created_by=operator_name(user), comment=comment)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"silence {silence_id}: rule {rule} subject {subject} from {starts:%Y-%m-%d %H:%M} "
               f"until {ends:%Y-%m-%d %H:%M}")

@alerts.command()
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@json_option
@pass_site
def silences(site: Site, show_all: bool, as_json: bool) -> None:
    """Silences in force now or later."""
    rows = list_silences(site, None if show_all else datetime.now())
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} silence(s)", ["id", "rule", "subject", "from", "until", "by", "comment"],
                [(r["id"], r["rule"], r["subject"], f"{r['starts_at']:%Y-%m-%d %H:%M}",
                  f"{r['ends_at']:%Y-%m-%d %H:%M}", r["created_by"], r["comment"]) for r in rows])

@alerts.command()
@click.argument("silence_id", type=int)
@pass_site
def unsilence(site: Site, silence_id: int) -> None:
    """End a silence now."""
    try:
        expire_silence(site, silence_id, datetime.now())
    except LookupError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    click.echo(f"silence {silence_id} ended")


def add_alert_commands(cli: click.Group) -> None:
    cli.add_command(alerts)


@click.group()
def monitor() -> None:
    """Monitors: list them with their schedules, or run them now."""

@monitor.command("run")
@click.option("--now", "now_text", help="Check as of this moment (YYYY-MM-DD HH:MM); default: now.")
@click.option("--due", is_flag=True, help="Only the monitors due by their schedule (default: every one).")
@click.option("--name", "names", multiple=True, help="Only this monitor (repeatable).")
@json_option
@pass_site
def run_(site: Site, now_text: str | None, due: bool, names: tuple[str, ...], as_json: bool) -> None:
    """Run monitors once and store their findings as alerts."""
    now = parse_moment(now_text, "--now") if now_text else datetime.now()
    try:
        check_config(site)
        outcomes = run_due(site, now, force=not due, only=names or None)
    except (ConfigError, LookupError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    if as_json:
        print_json([attrs.asdict(o) for o in outcomes])
    else:
        print_table(f"monitors at {now:%Y-%m-%d %H:%M:%S}", ["monitor", "findings", "raised", "updated",
                                                             "resolved", "error"],
                    [(o.name, o.findings, o.raised, o.updated, o.resolved, o.error) for o in outcomes])
    if any(o.error for o in outcomes):
        raise SystemExit(1)

@monitor.command("list")
@json_option
@pass_site
def list_monitors(site: Site, as_json: bool) -> None:
    """Every registered monitor, its schedule and its last run."""
    runs = last_runs(site)
    rows = []
    try:
        for name, m in sorted(all_monitors(site).items()):
            sched = schedule_of(site, m)
            when = (f"every {sched.every:g} s" if sched.every else f"at {sched.at}" if sched.at
                    else f"cron {sched.cron}") + ("" if sched.enabled else " (disabled)")
            last = runs.get(name)
            rows.append({"name": name, "business_type": m.business_type, "schedule": when,
                         "last_run_at": last.last_run_at if last else None,
                         "findings": last.findings if last else None, "error": last.error if last else None,
                         "description": m.description})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        print_json(rows)
        return
    print_table("monitors", ["monitor", "business type", "schedule", "last run", "findings", "error",
                             "description"],
                [(r["name"], r["business_type"], r["schedule"],
                  f"{r['last_run_at']:%m-%d %H:%M:%S}" if r["last_run_at"] else "", r["findings"], r["error"],
                  r["description"]) for r in rows])


def add_monitor_commands(cli: click.Group) -> None:
    cli.add_command(monitor)
