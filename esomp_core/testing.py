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
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pytest

from esomp_core.plugins import PluginManager, make_plugin_manager
from esomp_core.site import Site


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_tables(tables: dict[str, Any], prefix: str = "") -> str:
    """Write nested dicts as TOML tables (enough for test configs)."""
    lines: list[str] = []
    scalars = {k: v for k, v in tables.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in tables.items() if isinstance(v, dict)}
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    for key, value in scalars.items():
        lines.append(f'"{key}" = {_toml_value(value)}' if prefix else f"{key} = {_toml_value(value)}")
    for key, value in nested.items():
        name = f'{prefix}."{key}"' if prefix else f'"{key}"'
        if not value:
            lines.append(f"[{name}]")
        lines.append(toml_tables(value, name))
    return "\n".join(lines)


def make_site(root: Path, pm: PluginManager | None = None, **tables: Any) -> Site:
    """Initialise a site at ``root`` whose esomp.toml also holds ``tables``; replaces same-named core tables."""
    import tomllib

    from esomp_core.builtin.commands import TEMPLATE, init_site

    base = tomllib.loads(TEMPLATE.read_text(encoding="utf-8").replace("{name}", root.name))
    for key, value in tables.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    root.mkdir(parents=True, exist_ok=True)
    (root / "esomp.toml").write_text(toml_tables(base) + "\n", encoding="utf-8")
    init_site(root, force=True)
    return Site.open(root, pm=pm)


@pytest.fixture
def esomp_site_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Site]:
    def factory(pm: PluginManager | None = None, **tables: Any) -> Site:
        return make_site(tmp_path_factory.mktemp("site"), pm, **tables)

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
