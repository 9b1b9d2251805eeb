"""SqlChannel: read a client database's tables and queries for a business date into CSV files.

Every table of a collection is read in one transaction (one consistent snapshot where the database offers it) and
written under temporary names; the files replace the earlier ones only when every table was read, and the
repository records them (files table) and the watermarks in one transaction afterwards.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import attrs
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from esomp_core import FileRow, JobRow, atomic_open, secret, sha256_file
from esomp_sql import watermarks
from esomp_sql.models import MIGRATIONS
from esomp_sql.options import SqlOptions, TableOptions, is_query

BATCH = 2000  # rows fetched at a time: memory stays bounded whatever the table's size


class SqlCollectError(RuntimeError):
    """A collection that failed: names the channel, the table and the server (password masked)."""


@attrs.define
class TableOutput:
    """One table collected: its CSV file and what was read."""

    name: str
    path: str
    source: str
    rows: int = 0
    size: int = 0
    sha256: str = ""
    watermark: str | None = None
    low: Any = None
    high: Any = None

    def as_dict(self) -> dict[str, Any]:
        found = {"name": self.name, "path": self.path, "rows": self.rows, "size": self.size, "sha256": self.sha256}
        if self.watermark:
            found["watermark"] = {"column": self.watermark, "above": text_of(self.low), "up_to": text_of(self.high)}
        return found


@attrs.define
class SqlReport:
    channel: str
    date: str
    server: str
    tables: list[TableOutput] = attrs.field(factory=list)

    @property
    def records(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.size for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "date": self.date, "server": self.server, "records": self.records,
                "bytes": self.bytes, "tables": [t.as_dict() for t in self.tables]}


def text_of(value: Any) -> str:
    """A value as the CSV holds it: exact decimals, ISO dates and times, empty for NULL."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E+2: the digits as stored
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


class SqlChannel:
    """A configured channel of kind "sql". ``base`` resolves a relative SQLite path (the site's directory)."""

    def __init__(self, name: str, options: SqlOptions, *, base: str | os.PathLike = "."):
        self.name, self.options = name, options
        url = make_url(options.url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
                and not os.path.isabs(url.database):
            url = url.set(database=str(Path(base) / url.database))
        self._url = url

    @property
    def url(self) -> str:
        """The server's URL, safe to show (a password is ``***``)."""
        # With password_env the URL shows ***, whether or not the variable is set.
        shown = self._url.set(password="-") if self.options.password_env else self._url
        return shown.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"SqlChannel({self.name!r}, {self.url!r})"

    def _connect_url(self) -> Any:
        password = secret(self.options.password_env, path=f"channels.{self.name}.password_env")
        return self._url.set(password=password) if password is not None else self._url

    def _redact(self, message: str) -> str:
        password = os.environ.get(self.options.password_env) if self.options.password_env else None
        return message.replace(password, "***") if password else message

    def _engine(self) -> Engine:
        """A connection of its own, never pooled, that gives up after ``connect_timeout``."""
        url = self._connect_url()
        timeout = self.options.connect_timeout
        backend = url.get_backend_name()
        if backend == "sqlite" and url.database not in (None, "", ":memory:") and not os.path.exists(url.database):
            raise FileNotFoundError(f"no database file {url.database}")  # sqlite3 would create an empty one
        if backend == "postgresql":
            args: dict[str, Any] = {"connect_timeout": max(1, math.ceil(timeout))}
        elif backend in ("mysql", "mariadb"):
            # PyMySQL's connect_timeout covers only the TCP connection; read_timeout covers the server's greeting
            # and login, and is lifted once connected (a large table may take longer than that to read).
            args = {"connect_timeout": timeout, "read_timeout": timeout}
        else:
            args = {"timeout": timeout}
        engine = create_engine(url, poolclass=NullPool, connect_args=args)
        if backend in ("mysql", "mariadb"):
            event.listen(engine, "connect", _no_read_timeout)
        return engine

    def expectations(self) -> tuple[list[str], str] | None:
        """The day's files (one per table) and the deadline (``HH:MM``) they must be collected by, for the monitor
        of missing collection files; None without a deadline."""
        if not self.options.deadline:
            return None
        return [f"{name}.csv" for name in self.options.table_options()], self.options.deadline

    # --- collect ------------------------------------------------------------------------------------------------
    def collect(self, day: str, *, dest_root: str | os.PathLike, repository: Any,
                job_id: int | None = None) -> SqlReport:
        """Read every table for business date ``day`` into ``{dest_root}/{day}/{channel}/{table}.csv`` and record
        the files and watermarks in ``repository``. Raises SqlCollectError; then no file and no watermark changed."""
        if "sql_watermarks" not in repository.tables():
            repository.upgrade(MIGRATIONS)  # a site made before this plugin was enabled
        dest = Path(dest_root) / day / self.name
        dest.mkdir(parents=True, exist_ok=True)
        report = SqlReport(self.name, day, self.url)
        tables = self.options.table_options()
        with repository.session() as session:
            ranges = {name: watermarks.bounds(session, self.name, name, day)
                      for name, table in tables.items() if table.watermark}
        with contextlib.ExitStack() as outputs:  # every file is renamed into place only if every table was read
            with self._reading(tables) as reader:
                for name, table in tables.items():
                    reader.table = name
                    output = TableOutput(name, str(dest / f"{name}.csv"), self._inner(table, reader.connection),
                                         watermark=table.watermark)
                    fh = outputs.enter_context(atomic_open(output.path, "wb"))
                    self._read_table(reader.connection, table, output, ranges.get(name), day, fh)
                    report.tables.append(output)
        for output in report.tables:
            output.size, output.sha256 = os.path.getsize(output.path), sha256_file(output.path)
        self._record(report, repository, job_id)
        return report

    @contextlib.contextmanager
    def _reading(self, tables: dict[str, TableOptions]) -> Iterator["_Reader"]:
        """One connection and one read-only transaction for every table; any failure becomes a SqlCollectError
        naming the table being read."""
        reader = _Reader(next(iter(tables)))
        engine = None
        try:
            engine = self._engine()
            with engine.connect() as connection:
                if connection.dialect.name in ("postgresql", "mysql", "mariadb"):
                    connection = connection.execution_options(isolation_level="REPEATABLE READ")
                reader.connection = connection
                with connection.begin() as transaction:
                    yield reader
                    transaction.rollback()  # nothing was meant to change on the client's server
        except (SQLAlchemyError, OSError, ValueError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise SqlCollectError(self._redact(
                f"channel {self.name}: table {reader.table}: collecting from {self.url} failed: "
                f"{type(reason).__name__}: {str(reason).strip()}")) from None
        finally:
            if engine is not None:
                engine.dispose()

    def _inner(self, table: TableOptions, connection: Connection) -> str:
        """The table's query as configured: the SELECT itself, or every column of the table."""
        if is_query(table.source):
            return table.source.strip().rstrip(";").strip()
        quote = connection.dialect.identifier_preparer.quote
        return "SELECT * FROM " + ".".join(quote(part) for part in table.source.split("."))

    def _read_table(self, connection: Connection, table: TableOptions, output: TableOutput,
                    bounds: watermarks.Bounds | None, day: str, fh: Any) -> None:
        """Stream the table's rows, in a stable order, into ``fh`` as CSV."""
        params = _date_params(output.source, day)
        probe = connection.execute(text(f"SELECT * FROM ({output.source}) esomp_src WHERE 1 = 0"), params)
        columns = list(probe.keys())
        probe.close()
        statement, params = self._ordered(connection, columns, table, bounds, output, params)
        out = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        if bounds is None or not bounds.nothing:
            result = connection.execute(text(statement).execution_options(yield_per=BATCH), params)
            at = columns.index(table.watermark) if table.watermark else None
            for row in result:
                writer.writerow([text_of(v) for v in row])
                output.rows += 1
                if at is not None:
                    output.high = row[at]  # rows come in watermark order: the last is the largest
        if output.high is not None:
            watermarks.encode(output.high)  # a type that cannot be kept fails here, before any file is replaced
        out.flush()
        out.detach()  # the file itself is closed, and renamed, by atomic_open

    def _ordered(self, connection: Connection, columns: list[str], table: TableOptions,
                 output_bounds: watermarks.Bounds | None, output: TableOutput,
                 params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The query over the table's rows, in a total order (every column; the watermark first), above the
        watermark when there is one."""
        order = list(range(1, len(columns) + 1))
        where = ""
        if table.watermark:
            if table.watermark not in columns:
                raise ValueError(f"no column {table.watermark!r} (the watermark) in its result; columns: "
                                 f"{', '.join(columns)}")
            position = columns.index(table.watermark) + 1
            order = [position] + [p for p in order if p != position]
            column = "esomp_src." + connection.dialect.identifier_preparer.quote(table.watermark)
            where = f" WHERE {column} IS NOT NULL"  # a row without a value belongs to no day
            bounds = output_bounds or watermarks.Bounds()
            output.low = output.high = bounds.low
            if bounds.low is not None:
                where += f" AND {column} > :esomp_low"
                params = {**params, "esomp_low": bounds.low}
            if bounds.high is not None:
                where += f" AND {column} <= :esomp_high"
                params = {**params, "esomp_high": bounds.high}
        statement = f"SELECT * FROM ({output.source}) esomp_src{where} ORDER BY {', '.join(map(str, order))}"
        return statement, params

    def _record(self, report: SqlReport, repository: Any, job_id: int | None) -> None:
        """Each file in the core's files table (as fs records its files) and each watermark, in one transaction."""
        with repository.session() as session:
            job = job_id if job_id is not None and session.get(JobRow, job_id) is not None else None
            for output in report.tables:
                row = session.scalars(select(FileRow).where(
                    FileRow.date == report.date, FileRow.channel == self.name, FileRow.role == "collected",
                    FileRow.name == f"{output.name}.csv").order_by(FileRow.id.desc()).limit(1)).first()
                if row is None:
                    row = FileRow(date=report.date, channel=self.name, role="collected", name=f"{output.name}.csv")
                    session.add(row)
                row.path, row.size, row.sha256, row.records = output.path, output.size, output.sha256, output.rows
                row.source, row.mtime, row.collected_at = output.source, None, datetime.now()
                if job is not None:
                    row.job_id = job
                if output.watermark:
                    watermarks.save(session, self.name, output.name, report.date, output.low, output.high,
                                    output.rows)


def _no_read_timeout(dbapi_connection: Any, _record: Any) -> None:
    """After login, PyMySQL reads without a timeout again (it applies ``_read_timeout`` before every read)."""
    if hasattr(dbapi_connection, "_read_timeout"):
        dbapi_connection._read_timeout = None


@attrs.define
class _Reader:
    table: str
    connection: Any = None


def _date_params(query: str, day: str) -> dict[str, str]:
    """The business date for a query that asks for it: ``:date`` (YYYYMMDD) and ``:day`` (YYYY-MM-DD)."""
    wanted = set(text(query).compile().params)
    values = {"date": day, "day": f"{day[:4]}-{day[4:6]}-{day[6:]}"}
    return {k: v for k, v in values.items() if k in wanted}

