"""The options of a ``[channels.NAME]`` table of kind "sql", checked when the site opens the channel.

Validators raise ValueError starting with the key name; the core's ``structure`` adds the file and table path,
so an error reads ``esomp.toml: channels.counter: tables.postings.watermark: ...``.
"""
from __future__ import annotations

import re
from typing import Any

import attrs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from esomp_core import check_name, env_name, hhmm

DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")
IDENTIFIER = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)?")  # a table or column, optionally schema.table
QUERY = re.compile(r"\s*(select|with)\b", re.I)


def is_query(source: str) -> bool:
    """A SELECT (or WITH ... SELECT) query rather than a table name."""
    return bool(QUERY.match(source))


def _url(instance, attribute, value: str) -> None:
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"{attribute.name}: expected an SQLAlchemy URL such as "
                         f"postgresql+psycopg2://USER@HOST:5432/DB, got {value!r}") from None
    if url.get_backend_name() not in DIALECTS:
        raise ValueError(f"{attribute.name}: unsupported database {url.get_backend_name()!r} "
                         f"(expected one of: {', '.join(DIALECTS)})")
    if url.password is not None:
        raise ValueError(f"{attribute.name}: a password in the URL {url.render_as_string(hide_password=True)!r} "
                         f"is not allowed: put it in an environment variable and name that variable in password_env")


def _source(instance, attribute, value: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{attribute.name}: expected a table name or a SELECT query, got {value!r}")
    if is_query(value):
        if ";" in value.strip().rstrip(";"):
            raise ValueError(f"{attribute.name}: expected one SELECT statement, got several (';')")
        return
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(f"{attribute.name}: expected a table name (TABLE or SCHEMA.TABLE) or a SELECT query, "
                         f"got {value!r}")


def _column(instance, attribute, value: str | None) -> None:
    if value is not None and (not IDENTIFIER.fullmatch(value) or "." in value):
        raise ValueError(f"{attribute.name}: expected a column name, got {value!r}")


def _positive(instance, attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name}: expected a number of seconds above 0, got {value!r}")


@attrs.frozen
class TableOptions:
    """``[channels.NAME.tables.TABLE]``: where the rows come from, and the column that orders new rows."""

    source: str = attrs.field(validator=_source)
    watermark: str | None = attrs.field(default=None, validator=_column)


def _table_options(value: dict[str, Any]) -> dict[str, str | TableOptions]:
    """``name = "TABLE"``, ``name = "SELECT ..."`` or ``name = {source = ..., watermark = ...}``; an error names
    its key (``tables.NAME.watermark: ...``)."""
    converted = {}
    for name, table in value.items():
        if isinstance(table, dict):
            unknown = sorted(set(table) - {"source", "watermark"})
            if unknown:
                raise ValueError(f"tables.{name}.{unknown[0]}: unknown key (expected one of: source, watermark)")
            if "source" not in table:
                raise ValueError(f"tables.{name}.source: missing required key (a table name or a SELECT query)")
            try:
                table = TableOptions(**table)
            except ValueError as exc:
                raise ValueError(f"tables.{name}.{exc}") from None
        elif not isinstance(table, (str, TableOptions)):
            raise ValueError(f"tables.{name}: expected a table name, a SELECT query or a table "
                             f"{{source = ..., watermark = ...}}, got {table!r}")
        converted[name] = table
    return converted


def _tables(instance, attribute, value: dict[str, str | TableOptions]) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: expected at least one table (name = \"TABLE\" or \"SELECT ...\")")
    for name, table in value.items():
        try:
            check_name(name, "name")
            if isinstance(table, str):
                _source(instance, attrs.fields(TableOptions).source, table)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}.{name}: {exc}") from None


@attrs.frozen
class SqlOptions:
    """``[channels.NAME]`` with ``kind = "sql"``; docs/channels-sql.md describes every option with an example."""

    url: str = attrs.field(validator=_url)
    # Any: the converter checks each table, so that an error names its key (tables.NAME.watermark).
    tables: dict[str, Any] = attrs.field(converter=_table_options, validator=_tables)
    password_env: str | None = attrs.field(default=None, validator=env_name)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    deadline: str | None = attrs.field(default=None, validator=hhmm)

    def table_options(self) -> dict[str, TableOptions]:
        """Every table as TableOptions, in name order (the order they are read and written in)."""
        return {name: TableOptions(table) if isinstance(table, str) else table
                for name, table in sorted(self.tables.items())}
