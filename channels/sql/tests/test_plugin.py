"""The sql channel's options, registration, migration branch, and how the site's commands show it."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

import esomp_sql.plugin
from esomp_core import ConfigError
from esomp_sql import MIGRATIONS, SqlChannel, SqlOptions, TableOptions


def test_hook_register_channel_kinds_registers_sql(sql_site, tmp_path):
    site = sql_site("sqlite:///counter.db", {"customers": "customers",
                                             "postings": {"source": "postings", "watermark": "serial_no"}})
    registered = []
    esomp_sql.plugin.register_channel_kinds(registered.append)

    channel = site.channel("counter")

    assert [k.name for k in registered] == ["sql"] and "sql" in site.registry.channel_kinds
    assert isinstance(channel, SqlChannel)
    assert channel.url == f"sqlite:///{site.root / 'counter.db'}"  # relative to the site, like the repository
    assert channel.options.table_options() == {"customers": TableOptions("customers"),
                                               "postings": TableOptions("postings", "serial_no")}


def test_hook_register_migrations_adds_the_sql_branch(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(esomp_sql.plugin))
    registered = []

    site.pm.hook.register_migrations(register=registered.append)
    site.repository.upgrade(MIGRATIONS)

    assert MIGRATIONS in registered and "sql_watermarks" in site.repository.tables()


@pytest.mark.parametrize("options, key, message", [
    ({"url": "postgresql+psycopg2://esomp:secret@db/counter"}, "url",
     "a password in the URL 'postgresql+psycopg2://esomp:***@db/counter' is not allowed"),
    ({"url": "oracle://db/counter"}, "url", "unsupported database 'oracle'"),
    ({"tables": {}}, "tables", "expected at least one table"),
    ({"tables": {"../x": "customers"}}, "tables.../x", "cannot be used in a path"),
    ({"tables": {"c": "customers; DROP TABLE customers"}}, "tables.c", "expected a table name"),
    ({"tables": {"c": "SELECT 1; DELETE FROM customers"}}, "tables.c", "expected one SELECT statement"),
    ({"tables": {"c": {"source": "customers", "watermark": "a.b"}}}, "tables.c.watermark",
     "expected a column name"),
    ({"tables": {"c": {"source": "customers", "column": "x"}}}, "tables.c.column", "unknown key"),
    ({"tables": {"c": {"watermark": "x"}}}, "tables.c.source", "missing required key"),
    ({"tables": {"c": 5}}, "tables.c", "expected a table name, a SELECT query or a table"),
    ({"password_env": "s3cret value"}, "password_env", "expected the NAME of an environment variable"),
    ({"connect_timeout": 0}, "connect_timeout", "expected a number of seconds above 0"),
    ({"deadline": "25:00"}, "deadline", "expected a time HH:MM"),
])
def test_bad_options_name_their_key(sql_site, options, key, message):
    table = {"url": "postgresql+psycopg2://esomp@db/counter", "tables": {"customers": "customers"}, **options}
    site = sql_site(table.pop("url"), table.pop("tables"), **table)

    with pytest.raises(ConfigError) as caught:
        site.channel("counter")

    assert caught.value.path == f"channels.counter.{key}" and message in caught.value.message
    assert "secret value" not in str(caught.value) and ":secret@" not in str(caught.value)


def test_a_deadline_tells_the_monitor_which_files_the_day_must_bring(sql_site):
    site = sql_site("sqlite:///counter.db", {"postings": "postings", "customers": "customers"}, deadline="17:30")
    assert site.channel("counter").expectations() == (["customers.csv", "postings.csv"], "17:30")
    plain = sql_site("sqlite:///counter.db", {"postings": "postings"})
    assert plain.channel("counter").expectations() is None


def test_channels_list_shows_a_sql_channel(esomp_site_factory, esomp_cli, monkeypatch):
    monkeypatch.setenv("COUNTER_PASSWORD", "Pa55-secret")
    site = esomp_site_factory(channels={
        "counter": {"kind": "sql", "url": "mysql+pymysql://esomp@10.1.2.3:3306/counter",
                    "password_env": "COUNTER_PASSWORD", "tables": {"customers": "customers"}},
        "broken": {"kind": "sql", "url": "mysql+pymysql://esomp@10.1.2.3/counter", "tables": {}},
        "szse": {"kind": "fs", "url": "/tmp"}})

    result = esomp_cli(["channels", "list", "--json"], site=site)  # the installed plugins: fs and sql

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["counter"] == {"name": "counter", "kind": "sql", "url": "mysql+pymysql://esomp@10.1.2.3:3306/counter",
                               "config": "ok"}
    assert rows["broken"]["config"].startswith("channels.broken.tables: expected at least one table")
    assert rows["szse"]["kind"] == "fs" and "Pa55-secret" not in result.output


def test_a_site_made_before_the_plugin_was_enabled_gets_its_table_on_first_use(esomp_site_factory, esomp_pm_factory,
                                                                                run_sql, tmp_path):
    esomp_site = esomp_site_factory(esomp_pm_factory())
    with esomp_site.repository.engine.begin() as conn:  # as a site made before this plugin was installed
        conn.execute(text("DROP TABLE sql_watermarks"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num LIKE 'sql_%'"))
    url = f"sqlite:///{tmp_path / 'counter.db'}"
    run_sql(url, "CREATE TABLE postings (serial_no INTEGER, amount INTEGER)", "INSERT INTO postings VALUES (1, 5)")
    assert "sql_watermarks" not in esomp_site.repository.tables()
    options = SqlOptions(url=url, tables={"postings": {"source": "postings", "watermark": "serial_no"}})

    report = SqlChannel("counter", options).collect("20261201", dest_root=tmp_path / "collected",
                                                    repository=esomp_site.repository)

    assert report.records == 1 and "sql_watermarks" in esomp_site.repository.tables()
