"""A pytest plugin for E-SOMP plugin authors (installed with esomp-core; active in any pytest run).

Fixtures:
- ``esomp_site_factory(**overrides)``: a new initialised site in a temporary directory; ``overrides`` are TOML
  tables merged into its esomp.toml (``channels={"in": {"kind": "fs", "url": ...}}``).
- ``esomp_site``: one such site with the defaults.
- ``esomp_pm_factory(*plugins, entry_points=False)``: a plugin manager with the core's default plugins and the
  given plugin objects or modules registered (no installed entry points unless asked).
- ``esomp_cli``: ``esomp_cli(args, site=..., plugins=..., input=...)`` runs the ``esomp`` command line in-process
  and returns click's Result (``exit_code``, ``output``).
- ``require_server(name, host, port)``: skip when a server is not listening, except under CI=true where a
  missing server is a failure.
- ``StageHooks``: a base for a test plugin whose business type answers the collect, process and send hooks with
  one method, ``work(job, site)`` returning a JobResult (it is called only for jobs its plugin owns).
- ``esomp_postgres_url``: the URL of a fresh database on the PostgreSQL server named by ``ESOMP_TEST_PG`` (default
  the machine's own, 127.0.0.1:5432, trust auth, database ``test``), dropped afterwards; pass it to a site as
  ``database={"url": esomp_postgres_url}``.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pytest

from esomp_core import hookimpl
from esomp_core.plugins import PluginManager, make_plugin_manager
from esomp_core.site import Site, create_site

make_site = create_site  # the name plugin tests know


class StageHooks:
    """Every stage hook answered by ``work(job, site)``, which a test's business type defines; register the business
    type from the same object, so the engine finds this object as the owner of its jobs."""

    def work(self, job, site):
        raise NotImplementedError(f"{type(self).__name__} must define work(job, site)")

    @hookimpl
    def collect(self, job, site):
        return self.work(job, site)

    @hookimpl
    def process(self, job, site):
        return self.work(job, site)

    @hookimpl
    def send(self, job, site):
        return self.work(job, site)


@pytest.fixture
def esomp_site_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Site]:
    def factory(pm: PluginManager | None = None, **tables: Any) -> Site:
        return create_site(tmp_path_factory.mktemp("site"), pm, **tables)

    return factory


@pytest.fixture
def esomp_site(esomp_site_factory: Callable[..., Site]) -> Site:
    return esomp_site_factory()


@pytest.fixture
def esomp_pm_factory() -> Callable[..., PluginManager]:
    def factory(*plugins: Any, entry_points: bool = False) -> PluginManager:
        pm = make_plugin_manager(entry_points=entry_points)
        for plugin in plugins:
            pm.register(plugin)
        return pm

    return factory


@pytest.fixture
def esomp_cli() -> Callable[..., Any]:
    from click.testing import CliRunner

    from esomp_core.cli import make_cli, plugin_manager_for

    def run(args: Sequence[str], *, site: Site | str | Path | None = None, plugins: Iterable[Any] | None = None,
            input: str | None = None, env: dict[str, str] | None = None) -> Any:
        args = [str(a) for a in args]
        if site is not None:
            args = ["--site", str(site.root if isinstance(site, Site) else site), *args]
        if plugins is None:
            pm = plugin_manager_for(str(site.root if isinstance(site, Site) else site) if site else None)
        else:
            pm = make_plugin_manager(entry_points=False)
            for plugin in plugins:
                pm.register(plugin)
        return CliRunner().invoke(make_cli(pm), args, input=input, env=env, catch_exceptions=False)

    return run


def server_available(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture
def require_server() -> Callable[[str, str, int], None]:
    def require(name: str, host: str, port: int) -> None:
        if server_available(host, port):
            return
        message = f"{name} is not listening on {host}:{port}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (under CI=true a missing server is a failure)")
        pytest.skip(message)

    return require


PG_ADMIN_URL = os.environ.get("ESOMP_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture
def esomp_postgres_url(require_server: Callable[[str, str, int], None]):
    from sqlalchemy import create_engine, make_url, text

    admin_url = make_url(PG_ADMIN_URL)
    require_server("PostgreSQL", admin_url.host or "127.0.0.1", admin_url.port or 5432)
    name = f"esomp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
