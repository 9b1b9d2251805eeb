"""Each distribution owns its tables: the core's migrations are one Alembic branch, every plugin's another, and a
site made by an older release keeps every row when today's branches take its tables over."""
import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from esomp_core import Migrations, hookimpl
from esomp_core.plugins import RegistrationError
from esomp_core.repository import Repository, collect_migrations
from esomp_core.site import template_text

OLD_SITE = Path(__file__).with_name("fixtures") / "site_2d0b607"
CORE_TABLES = {"runs", "jobs", "job_events", "files", "products", "institutions", "classifications", "accounts",
               "alerts", "monitor_runs"}
PLUGIN_TABLES = {"packages", "receipts", "deliveries", "dashboard_users", "dashboard_sessions", "dashboard_audit",
                 "silences", "notification_groups", "daemon_heartbeats"}

REVISION = '''"""{doc}

Revision ID: {revision}
"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade():
    op.create_table("{table}", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade():
    op.drop_table("{table}")
'''


def write_branch(folder: Path, name: str, tables: list[str], depends_on: str | None = "0001") -> Migrations:
    """A migration branch of revisions NAME_0001, NAME_0002 ..., each creating one table."""
    folder.mkdir(parents=True)
    down = None
    for number, table in enumerate(tables, 1):
        revision = f"{name}_{number:04d}"
        (folder / f"{revision}.py").write_text(REVISION.format(
            doc=f"{table} for the {name} plugin", revision=revision, down=down, table=table,
            labels=(name,) if down is None else None, depends=depends_on if down is None else None))
        down = revision
    return Migrations(name, folder, f"the {name} plugin's tables")


class Reports:
    """A plugin with a table of its own, created by its migration branch."""

    def __init__(self, migrations: Migrations):
        self.migrations = migrations

    @hookimpl
    def register_migrations(self, register):
        register(self.migrations)


# --- the registration hook -------------------------------------------------------------------------------------


def test_hook_register_migrations_applies_the_branch_and_lists_it(esomp_site_factory, esomp_pm_factory, tmp_path,
                                                                   esomp_cli):
    branch = write_branch(tmp_path / "reports", "reports", ["report_runs", "report_lines"])
    site = esomp_site_factory(esomp_pm_factory(Reports(branch)))
    assert "report_runs" not in site.repository.tables()  # created by a site whose plugins do not include it

    site.repository.upgrade()
    assert {"report_runs", "report_lines"} <= set(site.repository.tables())
    assert "reports_0002" in site.repository.current_heads()

    result = esomp_cli(["db", "history", "--json"], site=site, plugins=[Reports(branch)])
    assert result.exit_code == 0, result.output
    history = {b["branch"]: b for b in json.loads(result.output)}
    assert history["core"]["revisions"][0]["revision"] == "0001"
    assert [(r["revision"], r["applied"], r["description"]) for r in history["reports"]["revisions"]] == [
        ("reports_0001", True, "report_runs for the reports plugin"),
        ("reports_0002", True, "report_lines for the reports plugin")]

    table = esomp_cli(["db", "history"], site=site, plugins=[Reports(branch)])
    assert table.exit_code == 0 and "reports_0002" in table.output


def test_hook_register_migrations_refuses_a_branch_name_taken(esomp_pm_factory, tmp_path):
    first = write_branch(tmp_path / "a", "reports", ["reports_a"])
    second = Migrations("reports", tmp_path / "a")
    with pytest.raises(RegistrationError, match=r"migrations 'reports' registered by both .* and "):
        collect_migrations(esomp_pm_factory(Reports(first), Reports(second)))
    with pytest.raises(RegistrationError, match="'core' registered by both the core and"):
        collect_migrations(esomp_pm_factory(Reports(Migrations("core", tmp_path / "a"))))
    with pytest.raises(RegistrationError, match="no such folder"):
        collect_migrations(esomp_pm_factory(Reports(Migrations("gone", tmp_path / "missing"))))


def test_a_branch_of_a_plugin_no_longer_loaded_is_left_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'esomp.db'}"
    branch = write_branch(tmp_path / "reports", "reports", ["report_runs"])
    Repository(url, migrations=[branch]).upgrade()

    without = Repository(url)  # the plugin was disabled since: its version row is not resolved, nor dropped
    without.upgrade()
    assert "reports_0001" in without.current_heads() and "report_runs" in without.tables()
    history = {b["branch"] for b in without.history()}
    assert history == {"core"}


def test_one_branch_is_applied_on_its_own(tmp_path):
    repository = Repository(f"sqlite:///{tmp_path / 'esomp.db'}")
    repository.upgrade()
    branch = write_branch(tmp_path / "reports", "reports", ["report_runs"])
    repository.upgrade(branch)  # what the dashboard does on first use
    assert "report_runs" in repository.tables()
    assert "reports_0001" in repository.current_heads()


def test_a_new_site_has_only_its_own_tables_in_the_core_branch(tmp_path):
    repository = Repository(f"sqlite:///{tmp_path / 'esomp.db'}")
    repository.upgrade()
    assert set(repository.tables()) - {"alembic_version"} == CORE_TABLES


def test_a_new_site_gets_every_enabled_plugins_tables(esomp_site):
    assert CORE_TABLES | PLUGIN_TABLES <= set(esomp_site.repository.tables())
    assert "ledger_entries" not in esomp_site.repository.tables()
    branches = {b["branch"]: b for b in esomp_site.repository.history()}
    assert {"core", "trust", "notify", "dashboard", "monitor"} <= set(branches)
    assert all(r["applied"] for b in branches.values() for r in b["revisions"])


# --- a site made by the previous release -----------------------------------------------------------------------


def old_site_database(url: str) -> None:
    """The schema as commit 2d0b607 left it (its own migrations and the dashboard's create_all), with a row in
    each table an operator would miss."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(OLD_SITE / "migrations"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        old_dashboard_tables().metadata.create_all(engine)
        at = datetime(2026, 11, 20, 16, 30)
        with engine.begin() as c:
            c.execute(text("INSERT INTO runs (id, date, state, paused_batches) VALUES (1, '20261120', 'succeeded', "
                           "'[]')"))
            c.execute(text(
                "INSERT INTO jobs (id, run_id, name, stage, business_type, batch, category, channel, products, "
                "depends_on, after, params, state, attempts, files, records, bytes, detail) VALUES (7, 1, "
                "'trust-send-1-1', 'send', 'trust', 1, 'trust/send', '', '[\"P001\"]', '[]', '[]', '{}', "
                "'succeeded', 1, 1, 0, 2048, '{}')"))
            c.execute(text("INSERT INTO packages (id, date, name, institution_code, product_code, path, size, sha256, "
                           "members, job_id) VALUES (3, '20261120', 'P001_20261120.tar.zst', 'I001', 'P001', "
                           "'/srv/p.tar.zst', 2048, :sha, 32, 7)"), {"sha": "a" * 64})
            c.execute(text("INSERT INTO receipts (id, package_id, target, remote_path, size, sha256, attempts, "
                           "delivered_at) VALUES (5, 3, 'outbox', 'I001/20261120/P001_20261120.tar.zst', 2048, "
                           ":sha, 1, :at)"), {"sha": "a" * 64, "at": at})
            c.execute(text("INSERT INTO alerts (id, rule, subject, severity, message, business_type, state, count, "
                           "first_seen, last_seen) VALUES (9, 'job.failed', 'trust-process-1-1', 'error', 'boom', "
                           "'trust', 'open', 1, :at, :at)"), {"at": at})
            c.execute(text("INSERT INTO deliveries (id, target, kind, group_key, payload, state, attempts, "
                           "created_at, next_attempt_at) VALUES (4, 'ops', 'webhook', 'g', '{}', 'delivered', 1, "
                           ":at, :at)"), {"at": at})
            c.execute(text("INSERT INTO dashboard_users (username, role, password_hash, created_at, updated_at) "
                           "VALUES ('ops', 'operator', 'scrypt$x', :at, :at)"), {"at": at})
    finally:
        engine.dispose()


def old_dashboard_tables():
    """The old dashboard's DashboardBase: it created its tables itself, on first use."""
    name = "old_dashboard_tables"
    spec = importlib.util.spec_from_file_location(name, OLD_SITE / "dashboard_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its annotations are resolved through its module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module.DashboardBase


def rows(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return {
                "runs": c.execute(text("SELECT id, date, state FROM runs")).all(),
                "jobs": c.execute(text("SELECT id, run_id, name, state FROM jobs")).all(),
                "packages": c.execute(text("SELECT id, name, size, job_id FROM packages")).all(),
                "receipts": c.execute(text("SELECT id, package_id, target, size FROM receipts")).all(),
                "alerts": c.execute(text("SELECT id, rule, subject, state FROM alerts")).all(),
                "deliveries": c.execute(text("SELECT id, target, state FROM deliveries")).all(),
                "dashboard_users": c.execute(text("SELECT username, role FROM dashboard_users")).all(),
            }
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_site(request, tmp_path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'esomp.db'}"
    else:
        url = request.getfixturevalue("esomp_postgres_url")
    text_ = template_text("old").replace('url = "sqlite:///esomp.db"', f"url = {json.dumps(url)}")
    # the old template wrote the trust directory among the core's: it stays valid, now declared by trust
    (root / "esomp.toml").write_text(text_.replace('monitoring_centre = "data/monitor"',
                                                   'monitoring_centre = "data/monitor"\n'
                                                   'trust_send_temp = "work/trust-send-temp"'), encoding="utf-8")
    old_site_database(url)
    root.joinpath("url").write_text(url)
    return root


def test_a_site_of_the_previous_release_keeps_every_row(old_site, esomp_cli):
    url = old_site.joinpath("url").read_text()
    before = rows(url)
    assert all(before.values()), before  # a row in every table
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0003"]
    assert "ledger_entries" in inspect(engine).get_table_names()
    engine.dispose()

    result = esomp_cli(["db", "upgrade"], site=old_site)
    assert result.exit_code == 0, result.output

    assert rows(url) == before
    engine = create_engine(url)
    try:
        assert "ledger_entries" not in inspect(engine).get_table_names()
        with engine.connect() as c:
            versions = set(c.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
    assert {"0004", "trust_0001", "notify_0001", "dashboard_0001"} <= versions

    history = esomp_cli(["db", "history", "--json"], site=old_site)
    assert history.exit_code == 0, history.output
    branches = {b["branch"]: b for b in json.loads(history.output)}
    assert {"core", "trust", "notify", "dashboard"} <= set(branches)
    assert [r["revision"] for r in branches["core"]["revisions"]] == ["0001", "0002", "0003", "0004"]
    assert [(r["revision"], r["applied"]) for r in branches["trust"]["revisions"]] == [("trust_0001", True)]
    assert all(r["applied"] for b in branches.values() for r in b["revisions"])

    again = esomp_cli(["db", "upgrade"], site=old_site)  # nothing left to do, nothing lost
    assert again.exit_code == 0, again.output
    assert rows(url) == before
