"""Collection jobs of a sql channel run by the real engine (`esomp run`): the job owned by the channel's kind."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import esomp_sql.plugin
from esomp_core import BusinessType, JobSpec, hookimpl

DATE = "20240612"  # a trading day


class Collecting:
    """Plans one collection job from the channel ``counter``; the job belongs to the sql plugin."""

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("collecting", "collects the counter system", self.plan))

    def plan(self, site, date):
        return [JobSpec(name="collect-counter", stage="collect", business_type="collecting", channel="counter")]


@pytest.fixture
def plugins():
    return [esomp_sql.plugin, Collecting()]


def run_day(esomp_cli, site, plugins):
    result = esomp_cli(["run", "--date", DATE, "--executor", "inline", "--json"], site=site, plugins=plugins)
    return result.exit_code, json.loads(result.stdout)


def test_hook_collect_runs_as_a_job_of_the_day(esomp_site_factory, esomp_pm_factory, esomp_cli, plugins,
                                               run_sql, tmp_path):
    url = f"sqlite:///{tmp_path / 'counter.db'}"
    run_sql(url, "CREATE TABLE customers (customer_id VARCHAR(12), name VARCHAR(40))",
            "INSERT INTO customers VALUES (:id, :name)", rows=[{"id": "C1", "name": "张三"}])
    site = esomp_site_factory(esomp_pm_factory(*plugins), channels={
        "counter": {"kind": "sql", "url": url, "tables": {"customers": "customers"}}})

    code, status = run_day(esomp_cli, site, plugins)

    assert code == 0, status["failed"]
    collected = Path(site.directory("collection_root"), DATE, "counter", "customers.csv")
    assert collected.read_text("utf-8") == "customer_id,name\nC1,张三\n"


def test_hook_collect_fails_the_job_naming_channel_table_and_server(esomp_site_factory, esomp_pm_factory,
                                                                     esomp_cli, plugins):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg2://esomp@127.0.0.1:{port}/counter"
    site = esomp_site_factory(esomp_pm_factory(*plugins), channels={
        "counter": {"kind": "sql", "url": url, "tables": {"customers": "customers"}, "connect_timeout": 2}})

    code, status = run_day(esomp_cli, site, plugins)

    assert code == 1
    [failed] = status["failed"]
    assert f"channel counter: table customers: collecting from {url} failed" in failed["error"]
