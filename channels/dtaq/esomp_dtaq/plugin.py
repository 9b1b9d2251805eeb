"""The ``dtaq`` plugin: channel kind ``dtaq``, the example services, and ``esomp dtaq ...``."""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import click

from esomp_core import ChannelKind, ConfigError, ConfigTable, hookimpl, json_option, pass_site, print_json, print_table

from esomp_direct import MessageError, Request
from esomp_dtaq.backends import open_backend
from esomp_dtaq.channel import CallTimeout, DtaqChannel, QueuesChanged
from esomp_dtaq.config import DtaqOptions, check_services, load_options, parse_service_code, service_code
from esomp_dtaq.control import CATEGORIES
from esomp_dtaq.examples import SERVICES
from esomp_dtaq.supervisor import Supervisor, service_status


def open_channel(site: Any, options: DtaqOptions, name: str = "dtaq") -> DtaqChannel:
    backend = open_backend(options.backend, path=options.path, url=options.url, prefix=options.prefix)
    return DtaqChannel(backend, site.registry.services, options, name)


def open_dtaq(name: str, options: DtaqOptions, site: Any) -> DtaqChannel:
    """The ChannelKind.open of kind ``dtaq``: ``[channels.NAME]`` takes the same keys as ``[dtaq]``."""
    check_services(options, f"channels.{name}", site.config.source)
    if options.backend == "sqlite" and not options.path:
        options = attrs.evolve(options, path=str(Path(site.directory("monitoring_centre")) / "dtaq.sqlite"))
    return open_channel(site, options, name)


@hookimpl
def register_channel_kinds(register) -> None:
    register(ChannelKind("dtaq", DtaqOptions, open_dtaq,
                         "IBM i style data queues (SQLite, Redis, memory): request FIFO + keyed reply per service"))


@hookimpl
def register_config(register) -> None:
    register(ConfigTable("dtaq", "the data queues' backend and the service workers"))


@hookimpl
def register_services(register) -> None:
    for service in SERVICES:
        register(service)


def _channel(site: Any) -> DtaqChannel:
    try:
        return open_channel(site, load_options(site))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _service_keys(channel: DtaqChannel, codes: tuple[str, ...]) -> list[tuple[str, str, str]]:
    keys = []
    for code in codes:
        try:
            key = parse_service_code(code)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if key not in channel.services:
            raise click.ClickException(f"service {code} is not registered (registered: "
                                       f"{', '.join(service_code(k) for k in sorted(channel.services))})")
        keys.append(key)
    return keys


def _day_services(channel: DtaqChannel, codes: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """The services a day start or end acts on: those named, else every one restarted daily (restart 1)."""
    if codes:
        return _service_keys(channel, codes)
    return [key for key in sorted(channel.services) if channel.policy(key).restart == 1]


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(dtaq)


@click.group()
def dtaq() -> None:
    """DTAQ services of seed 003: serve, call, status, blacklist, CUTOFF, bench."""


@dtaq.command()
@click.argument("services", nargs=-1)
@pass_site
def serve(site: Any, services: tuple[str, ...]) -> None:
    """Run the service pools and their job monitor until interrupted (SERVICES: DOMAIN.NAME.TYPE ...)."""
    channel = _channel(site)
    codes = services or tuple(channel.options.serve or ())
    keys = _service_keys(channel, codes) if codes else sorted(channel.services)
    supervisor = Supervisor(channel, keys)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"serving {', '.join(service_code(k) for k in keys)} on {channel.backend}")
    try:
        supervisor.run(stop)
    finally:
        supervisor.shutdown()
        click.echo("all workers ended")


@dtaq.command()
@click.argument("domain")
@click.argument("name")
@click.argument("type")
@click.option("--data", default="", help="The interface area as text (GBK).")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the reply.")
@json_option
@pass_site
def call(site: Any, domain: str, name: str, type: str, data: str, timeout: float | None, as_json: bool) -> None:
    """Send one request and print its reply."""
    channel = _channel(site)
    try:
        reply = channel.call(Request(domain, name, type, data=data.encode("gbk")), timeout)
    except (MessageError, CallTimeout, ValueError) as exc:  # ValueError: a timeout of 0 or less
        raise click.ClickException(str(exc)) from None
    result = {"comid": reply.comid, "code": reply.code, "message": reply.message,
              "data": reply.data.decode("gbk", errors="replace").rstrip(), "via": channel.last_route.via,
              "reason": channel.last_route.reason}
    if as_json:
        print_json(result)
    else:
        click.echo(f"{reply.code} {reply.message} via {result['via']} {result['reason']}".rstrip())
        click.echo(result["data"])
    if not reply.ok:
        raise SystemExit(1)


@dtaq.command()
@json_option
@pass_site
def status(site: Any, as_json: bool) -> None:
    """Services, workers, queue depth and breaker state, as every process sees them."""
    summary = _status_summary(_channel(site))
    if as_json:
        print_json(summary)
    else:
        _print_status(summary)


def _status_summary(channel: DtaqChannel) -> dict[str, Any]:
    rows = service_status(channel)
    return {"backend": str(channel.backend), "cutoff": channel.control.cutoff(),
            "expired_replies": channel.control.counted("expired"),
            "expired_requests": channel.control.counted("expired-requests"),
            "dropped": channel.control.dropped_requests(), "services": rows}


def _print_status(summary: dict[str, Any]) -> None:
    rows = summary["services"]
    click.echo(f"backend {summary['backend']}  CUTOFF {'on' if summary['cutoff'] else 'off'}  "
               f"expired replies {summary['expired_replies']}  "
               f"expired requests (dropped, never run) {summary['expired_requests']}")
    print_table("DTAQ services", ["service", "fin", "run", "queues", "depth", "max", "workers", "abnormal",
                                  "breaker", "dropped"],
                [(r["service"], "Y" if r["financial"] else "", "running" if r["running"] else "stopped",
                  f"{r['request_queue']}/{r['reply_queue']}" if not r["error"] else "held back",
                  "-" if r["depth"] is None else r["depth"], r["max_entries"] or "-", r["workers"], r["abnormal"],
                  r["breaker"]["state"], r["expired_requests"]) for r in rows])
    for row in rows:
        if row["error"]:
            click.echo(f"held back: {row['error']}")
    for drop in summary["dropped"]:
        click.echo(f"dropped {drop['service']} comid {drop['comid']}: its caller gave up at "
                   f"{time.strftime('%H:%M:%S', time.localtime(drop['deadline']))}")


@dtaq.group()
def blacklist() -> None:
    """The control blacklist (CNJYKPF): matching requests are called directly."""


category_argument = click.argument("category", type=click.Choice(sorted(CATEGORIES)))


@blacklist.command("add")
@category_argument
@click.argument("channel")
@click.argument("opcode")
@click.option("--note", default="")
@pass_site
def blacklist_add(site: Any, category: str, channel: str, opcode: str, note: str) -> None:
    """Add CATEGORY (01 financial, 02 non-financial) CHANNEL OPCODE (* matches any)."""
    _channel(site).control.blacklist_add(category, channel, opcode, note)
    click.echo(f"blacklisted {category} {channel} {opcode}")


@blacklist.command("remove")
@category_argument
@click.argument("channel")
@click.argument("opcode")
@pass_site
def blacklist_remove(site: Any, category: str, channel: str, opcode: str) -> None:
    """Remove an entry."""
    if not _channel(site).control.blacklist_remove(category, channel, opcode):
        raise click.ClickException(f"no blacklist entry {category} {channel} {opcode}")
    click.echo(f"removed {category} {channel} {opcode}")


@blacklist.command("list")
@json_option
@pass_site
def blacklist_list(site: Any, as_json: bool) -> None:
    """List the entries."""
    rows = _channel(site).control.blacklist()
    if as_json:
        print_json(rows)
    else:
        print_table("control blacklist (CNJYKPF)", ["category", "channel", "opcode", "note"],
                    [(r["category"], r["channel"], r["opcode"], r["note"]) for r in rows])


@dtaq.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@pass_site
def cutoff(site: Any, state: str) -> None:
    """Turn CUTOFF on (financial requests refused) or off."""
    _channel(site).control.set_cutoff(state == "on")
    click.echo(f"CUTOFF {state}")


@dtaq.command("stop")
@click.argument("services", nargs=-1)
@pass_site
def stop(site: Any, services: tuple[str, ...]) -> None:
    """Day end: mark services stopped and send one end sentinel per live worker."""
    channel = _channel(site)
    keys = _day_services(channel, services)
    table = channel.control.workers()
    held = []
    for key in keys:
        live = sum(1 for w in table.values() if w.get("service") == service_code(key))
        try:
            channel.stop_service(key, live)
        except QueuesChanged as exc:  # the others are still stopped
            channel.control.set_running(service_code(key), False)
            held.append(str(exc))
            click.echo(f"{service_code(key)}: stopped, no end sentinel sent: its queues are held back")
            continue
        click.echo(f"{service_code(key)}: stopped, {live} end sentinel(s) sent")
    if held:
        raise click.ClickException("\n".join(held))


@dtaq.command("start")
@click.argument("services", nargs=-1)
@pass_site
def start(site: Any, services: tuple[str, ...]) -> None:
    """Day start: rebuild empty queues and mark services running (the monitor restarts their workers)."""
    channel = _channel(site)
    held = []
    for key in _day_services(channel, services):
        try:
            rebuilt = channel.start_service(key)
        except QueuesChanged as exc:  # the others still start
            held.append(str(exc))
            click.echo(f"{service_code(key)}: not started: its queues are held back")
            continue
        click.echo(f"{service_code(key)}: running{' (queues rebuilt)' if rebuilt else ''}")
    if held:
        raise click.ClickException("\n".join(held))


@dtaq.command()
@click.option("--backend", type=click.Choice(["sqlite", "redis", "memory"]), default=None,
              help="Default: the site's [dtaq] backend.")
@click.option("--clients", default=8, show_default=True)
@click.option("--workers", default=4, show_default=True)
@click.option("--seconds", default=60.0, show_default=True)
@json_option
@pass_site
def bench(site: Any, backend: str | None, clients: int, workers: int, seconds: float, as_json: bool) -> None:
    """Round trips per second of the ECHO service, next to a raw loop on the same backend."""
    from esomp_dtaq.bench import print_report, run_bench

    options = load_options(site)
    result = run_bench(site, options, backend or options.backend, clients=clients, workers=workers,
                       seconds=seconds)
    print_json(result) if as_json else print_report(result)
