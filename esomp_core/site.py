"""A site: its directory, its esomp.toml, its plugins and its repository, opened together."""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from esomp_core.calendar import TradingCalendar
from esomp_core.config import (CONFIG_NAME, DIRECTORIES, ConfigError, ConfigTable, Directory, SiteConfig,
                               declared_config, load_config, structure)
from esomp_core.plugins import PluginManager, Registry, make_plugin_manager

ENV_SITE = "ESOMP_SITE"


def find_site(path: str | os.PathLike | None = None) -> Path:
    """The site directory: the given path, else $ESOMP_SITE, else the current directory if it holds esomp.toml."""
    if path is None:
        path = os.environ.get(ENV_SITE) or None
    if path is None:
        if (Path.cwd() / CONFIG_NAME).exists():
            return Path.cwd()
        raise ConfigError(None, "", "no site given: pass --site DIR, set ESOMP_SITE, or run in a site directory")
    path = Path(path)
    return path.parent if path.name == CONFIG_NAME else path


class Site:
    def __init__(self, root: Path, config: SiteConfig, pm: PluginManager | None = None):
        self.root = root.resolve()
        self.config = config
        self._pm = pm

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, pm: PluginManager | None = None) -> "Site":
        root = find_site(path)
        return cls(root, load_config(root / CONFIG_NAME), pm)

    # --- plugins -------------------------------------------------------------------------------------------------
    @property
    def pm(self) -> PluginManager:
        if self._pm is None:
            self._pm = make_plugin_manager(load=self.config.plugins.load, disable=self.config.plugins.disable,
                                           source=self.config.source)
        return self._pm

    @cached_property
    def registry(self) -> Registry:
        return Registry.collect(self.pm, self)

    def channel(self, name: str) -> Any:
        """Open the configured channel ``name`` through its kind; config errors name ``channels.NAME``."""
        section = self.config.channels.get(name)
        if section is None:
            raise ConfigError(self.config.source, f"channels.{name}",
                              f"no such channel (configured: {', '.join(self.config.channels) or 'none'})")
        kind = self.registry.channel_kinds.get(section.kind)
        if kind is None:
            raise ConfigError(self.config.source, f"channels.{name}.kind",
                              f"unknown channel kind {section.kind!r} (installed: "
                              f"{', '.join(sorted(self.registry.channel_kinds)) or 'none'})")
        options = structure(kind.options, section.options, path=f"channels.{name}", source=self.config.source)
        return kind.open(name, options, self)

    @cached_property
    def _declared(self) -> tuple[dict[str, ConfigTable], dict[str, Directory]]:
        return declared_config(self.pm)

    @property
    def config_tables(self) -> dict[str, ConfigTable]:
        """The top-level tables the loaded plugins declare, by name (the core's are config.CORE_TABLES)."""
        return self._declared[0]

    @property
    def plugin_directories(self) -> dict[str, Directory]:
        """The working directories the loaded plugins declare, by key."""
        return self._declared[1]

    @cached_property
    def migrations(self) -> list[Any]:
        """The migration branches the loaded plugins register (the core's own is always applied)."""
        from esomp_core.repository import collect_migrations

        return collect_migrations(self.pm)

    def section(self, name: str) -> dict[str, Any]:
        """A plugin-owned table of esomp.toml (``business``, ``monitors`` ...), empty if absent."""
        return self.config.sections.get(name, {})

    # --- directories ---------------------------------------------------------------------------------------------
    def directories(self) -> dict[str, str]:
        """Every working directory's key and description: the core's, then the loaded plugins'."""
        return {**DIRECTORIES, **{key: d.description for key, d in self.plugin_directories.items()}}

    def directory(self, name: str) -> str:
        """A working directory as an absolute path (relative ones are taken from the site) or an fsspec URL; a
        plugin's directory the site does not set is at its declared default."""
        if name in self.config.directories:
            value = self.config.directories[name]
        elif name in self.plugin_directories:
            value = self.plugin_directories[name].default
        else:
            raise KeyError(f"unknown working directory {name!r} (expected one of: {', '.join(self.directories())})")
        if "://" in value:
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.root / path)

    def check_directories(self) -> None:
        """Fail, naming the key, when a local working directory is missing."""
        for name in self.directories():
            value = self.directory(name)
            if "://" not in value and not Path(value).is_dir():
                raise ConfigError(self.config.source, f"directories.{name}",
                                  f"directory does not exist: {value} (create it, or run `esomp init` again)")

    # --- repository and calendar ---------------------------------------------------------------------------------
    @cached_property
    def repository(self):
        from esomp_core.repository import Repository

        return Repository(self.config.database.url, base=self.root, migrations=self.migrations)

    @cached_property
    def calendar(self) -> TradingCalendar:
        cal = self.config.calendar
        return TradingCalendar.for_exchange(cal.exchange, holidays=cal.holidays, open_days=cal.open_days,
                                            listed_years=cal.listed_years, day_change=self.config.site.day_change)


TEMPLATE = Path(__file__).resolve().parent / "templates" / CONFIG_NAME
TEMPLATE_BASE = ("site", "database", "directories", "plugins", "calendar", "classifications")


def init_site(path: str | Path, *, name: str | None = None, force: bool = False) -> Site:
    """Write a commented esomp.toml, create the working directories and the database (the core's tables and the
    enabled plugins')."""
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / CONFIG_NAME
    if config_path.exists() and not force:
        raise FileExistsError(f"{config_path} exists (use --force to keep it and only create what is missing)")
    if not config_path.exists():
        _, directories = declared_config(make_plugin_manager())  # no site yet: the plugins installed here
        config_path.write_text(template_text(name or root.name, directories.values()), encoding="utf-8")
    site = Site.open(root)
    _make_local_directories(site)
    site.repository.upgrade()
    from esomp_core.products import sync_classifications

    sync_classifications(site.repository, site.config.classifications)
    return site


PLUGIN_DIRECTORIES = "# {plugin directories}\n"


def template_text(name: str, directories: Iterable[Directory] = ()) -> str:
    """The commented esomp.toml a new site starts from, named ``name``, with the plugins' ``directories`` at their
    defaults. Only these placeholders are filled: channels use ``{name}`` and ``{date}`` of their own (a package's
    file name, the business date)."""
    import json

    placeholder = 'name = "{name}"'
    text = TEMPLATE.read_text(encoding="utf-8")
    # a JSON string is a valid TOML basic string, quotes and backslashes escaped
    text = text.replace(placeholder, f"name = {json.dumps(name, ensure_ascii=False)}", 1)
    lines = "".join(f"{d.key} = {json.dumps(d.default, ensure_ascii=False)}  # {d.description}\n"
                    for d in directories)
    return text.replace(PLUGIN_DIRECTORIES, lines, 1)


def _make_local_directories(site: Site) -> None:
    """The working directories that are local paths; fsspec URLs are left to their filesystems."""
    for key in site.directories():
        target = site.directory(key)
        if "://" not in target:
            Path(target).mkdir(parents=True, exist_ok=True)


def create_site(root: Path, pm: PluginManager | None = None, **tables: Any) -> Site:
    """Initialise a site at ``root`` whose esomp.toml is the template's core tables plus ``tables`` (same-named
    tables merge)."""
    import tomllib

    import tomli_w

    # Only the template's core tables: its channels and business tables are a fresh site's day, which a made
    # site (tests, benchmarks, the demo) declares itself.
    base = {key: value for key, value in tomllib.loads(template_text(root.name)).items() if key in TEMPLATE_BASE}
    for key, value in tables.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_NAME).write_text(tomli_w.dumps(base), encoding="utf-8")
    init_site(root, force=True)
    return Site.open(root, pm=pm)
