"""The "fs" channel kind: registration, the collect stage hook, and the ``esomp channels`` commands."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from esomp_core import ChannelKind, ConfigError, Job, JobResult, hookimpl, parse_date, ymd
from esomp_fs.channel import CollectError, DeliveryError, FsChannel
from esomp_fs.options import FsOptions, mask_url

KIND = "fs"


def open_channel(name: str, options: FsOptions, site: Any) -> FsChannel:
    """ChannelKind.open: a relative path is taken from the site directory; ``expected`` may name file types."""
    base = site.root if site is not None else "."
    file_types = site.registry.file_types if site is not None else {}
    return FsChannel(name, options, base=base, file_types=file_types)


@hookimpl
def register_channel_kinds(register) -> None:
    register(ChannelKind(name=KIND, options=FsOptions, open=open_channel,
                         description="Directories, file://, memory://, ftp:// and sftp:// through fsspec"))


def collect_channel(site: Any, channel: str, date: str, *, job_id: int | None = None,
                    now: datetime | None = None, wait: bool = False) -> Any:
    """Collect ``date`` from the configured channel into the site's collection root and unpack temp; with
    ``wait``, until the day's inputs are complete or the channel's deadline passed."""
    return site.channel(channel).collect(date, dest_root=site.directory("collection_root"),
                                         unpack_root=site.directory("unpack_temp"), record=site.repository,
                                         job_id=job_id, now=now, wait=wait)


def deliver(site: Any, channel: str, package_path: str, *, institution: str, date: str,
            manifest_path: str | None = None, name: str | None = None, sha256: str | None = None,
            manifest_sha256: str | None = None) -> Any:
    """Deliver a package through a configured fs channel; raises DeliveryError naming target and reason."""
    opened = site.channel(channel)
    if not isinstance(opened, FsChannel):
        raise DeliveryError(f"channel {channel}", f"not a channel of kind {KIND!r}")
    return opened.deliver(package_path, institution=institution, date=date, manifest_path=manifest_path,
                          name=name, sha256=sha256, manifest_sha256=manifest_sha256)


@hookimpl
def collect(job: Job, site: Any) -> JobResult | None:
    report = collect_channel(site, job.channel, job.date, job_id=job.id, wait=True)
    problem = report.problem()
    if problem:
        raise CollectError(problem)
    return JobResult(files=len(report.collected), bytes=report.bytes, detail=report.as_dict())


# --- esomp channels ---------------------------------------------------------------------------------------------


def _date(text: str) -> str:
    try:
        return ymd(parse_date(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--date") from None


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_core import json_option, pass_site, print_json, print_table

    @cli.group()
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
