"""``esomp channels list|check|collect``: the site's channels, of every kind, from the command line."""
from __future__ import annotations

from typing import Any

import click

from esomp_core import ConfigError, json_option, parse_date, pass_site, print_json, print_table, ymd
from esomp_fs.channel import CollectError, FsChannel
from esomp_fs.options import mask_url
from esomp_fs.plugin import KIND


def _date(text: str) -> str:
    try:
        return ymd(parse_date(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--date") from None


@click.group()
def channels() -> None:
    """The site's channels: list them, check one, collect a date from one."""

@channels.command("list")
@json_option
@pass_site
def list_(site: Any, as_json: bool) -> None:
    """Configured channels: name, kind, URL (passwords masked), and whether the config is valid."""
    rows = []
    for name, section in sorted(site.config.channels.items()):
        url = section.options.get("url")
        try:
            site.channel(name)
            state = "ok"
        except ConfigError as exc:
            state = f"{exc.path}: {exc.message}"
        rows.append({"name": name, "kind": section.kind,
                     "url": mask_url(url) if isinstance(url, str) else "", "config": state})
    if as_json:
        print_json(rows)
    else:
        print_table("channels", ["name", "kind", "url", "config"], [tuple(r.values()) for r in rows])

def _open(site: Any, name: str) -> FsChannel:
    try:
        opened = site.channel(name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not isinstance(opened, FsChannel):
        raise click.ClickException(f"channel {name} is not of kind {KIND!r}")
    return opened

@channels.command()
@click.argument("name")
@click.option("--date", "day", help="Fill {date} in the channel's URL (YYYYMMDD).")
@json_option
@pass_site
def check(site: Any, name: str, day: str | None, as_json: bool) -> None:
    """Connect to a channel and list what is there."""
    channel = _open(site, name)
    try:
        files = channel.check(_date(day) if day else None)
    except CollectError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        print_json({"channel": name, "url": channel.url, "files": files})
        return
    click.echo(f"channel {name}: {channel.url}: reachable, {len(files)} file(s)")
    for f in files:
        click.echo(f"  {f['name']:40} {f['size']:>12}  {f['mtime'] or ''}")

@channels.command("collect")
@click.argument("name")
@click.option("--date", "day", required=True, help="Business date (YYYYMMDD).")
@json_option
@pass_site
def collect_(site: Any, name: str, day: str, as_json: bool) -> None:
    """Collect a business date's files from a channel into the collection root."""
    channel = _open(site, name)
    try:
        report = channel.collect(_date(day), dest_root=site.directory("collection_root"),
                                 unpack_root=site.directory("unpack_temp"), record=site.repository)
    except CollectError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(f"channel {name} {report.date}: {len(report.collected)} collected ({report.bytes} bytes), "
                   f"{len(report.unpacked)} unpacked, {len(report.skipped)} skipped, "
                   f"{len(report.pending)} pending")
        for f in report.collected:
            click.echo(f"  collected {f.name} ({f.size} bytes, {f.status})")
        for label in ("skipped", "pending", "ignored", "collapsed"):
            for s in getattr(report, label):
                click.echo(f"  {label:9} {s.name}: {s.reason}")
        for name in report.withdrawn:
            click.echo(f"  withdrawn {name}: its source is gone")
    problem = report.problem()
    if problem:
        raise click.ClickException(problem)
