"""Counter-system databases for the sql channel tests: SQLite files, and fresh databases on the machine's real
MariaDB (127.0.0.1:3306, root, no password; ESOMP_TEST_MARIADB) and PostgreSQL servers, dropped afterwards."""
from __future__ import annotations

import os
import uuid
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

import esomp_sql.plugin

MARIADB_ADMIN_URL = os.environ.get("ESOMP_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture
def esomp_mariadb_url(require_server) -> Iterator[str]:
    """The URL of a fresh database on the MariaDB server of ESOMP_TEST_MARIADB, dropped afterwards."""
    admin_url = make_url(MARIADB_ADMIN_URL)
    require_server("MariaDB", admin_url.host or "127.0.0.1", admin_url.port or 3306)
    name = f"esomp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def counter_url(request, tmp_path) -> str:
    """A counter system's database, empty, on each kind of server."""
    if request.param == "mariadb":
        return request.getfixturevalue("esomp_mariadb_url")
    if request.param == "postgresql":
        return request.getfixturevalue("esomp_postgres_url")
    url = f"sqlite:///{tmp_path / 'counter.db'}"
    run_sql(url, "CREATE TABLE esomp_probe (x INTEGER)", "DROP TABLE esomp_probe")  # the file now exists
    return url


@pytest.fixture(params=["mariadb", "postgresql"])
def server_url(request) -> str:
    """A counter system's database on a real server (exact decimals need one: SQLite keeps them as floats)."""
    return request.getfixturevalue("esomp_mariadb_url" if request.param == "mariadb" else "esomp_postgres_url")


def run_sql(url: str, *statements: str, rows: list[dict[str, Any]] | None = None) -> None:
    """Run statements on the counter database (the last one once per row, when rows are given)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements[:-1]:
                conn.execute(text(statement))
            conn.execute(text(statements[-1]), rows) if rows else conn.execute(text(statements[-1]))
    finally:
        engine.dispose()


@pytest.fixture(name="run_sql")
def run_sql_fixture():
    """``run_sql(url, *statements, rows=None)``: set up the counter database."""
    return run_sql


@pytest.fixture
def pm(esomp_pm_factory):
    return esomp_pm_factory(esomp_sql.plugin)


@pytest.fixture
def sql_site(esomp_site_factory, pm):
    """``sql_site(url, tables, **options)``: a site with one sql channel named ``counter``."""
    def make(url: str, tables: dict[str, Any], **options: Any):
        return esomp_site_factory(pm, channels={"counter": {"kind": "sql", "url": url, "tables": tables,
                                                            **options}})
    return make
