"""The "fs" channel kind: registration, the collect stage hook, and the ``esomp channels`` commands."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from esomp_core import ChannelKind, Job, JobResult, hookimpl
from esomp_fs.channel import CollectError, DeliveryError, FsChannel
from esomp_fs.options import FsOptions

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


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_fs.commands import channels

    cli.add_command(channels)
