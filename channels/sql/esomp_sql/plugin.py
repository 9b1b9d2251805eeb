"""The "sql" channel kind: registration, its migration branch, and the collect stage hook."""
from __future__ import annotations

from typing import Any

from esomp_core import ChannelKind, Job, JobResult, hookimpl
from esomp_sql.channel import SqlChannel
from esomp_sql.models import MIGRATIONS
from esomp_sql.options import SqlOptions

KIND = "sql"


def open_channel(name: str, options: SqlOptions, site: Any) -> SqlChannel:
    """ChannelKind.open: nothing is connected yet; a relative SQLite path is taken from the site directory."""
    return SqlChannel(name, options, base=site.root if site is not None else ".")


@hookimpl
def register_channel_kinds(register) -> None:
    register(ChannelKind(name=KIND, options=SqlOptions, open=open_channel,
                         description="Tables and queries of a database (PostgreSQL, MariaDB/MySQL, SQLite) as CSV"))


@hookimpl
def register_migrations(register) -> None:
    register(MIGRATIONS)


@hookimpl
def collect(job: Job, site: Any) -> JobResult:
    report = site.channel(job.channel).collect(job.date, dest_root=site.directory("collection_root"),
                                               repository=site.repository, job_id=job.id)
    return JobResult(files=len(report.tables), records=report.records, bytes=report.bytes,
                     detail=report.as_dict())
