"""Site configuration: one esomp.toml per site, parsed into attrs classes.

Every error names the file, the key path and what was expected. Plugins parse their own tables with
``structure(OptionsClass, table, path=..., source=...)`` so their errors read the same way.
"""
from __future__ import annotations

import codecs
import os
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import attrs

CONFIG_NAME = "esomp.toml"

# The core's working directories, from seed 000's list; a plugin declares its own (``register_config``), like
# the trust business type's trust_send_temp.
DIRECTORIES = {
    "send_temp": "发送文件存放临时路径",
    "extract_temp": "文件提取临时存放路径",
    "unpack_temp": "解压文件临时存放路径",
    "bcp_root": "BCP文件存放根路径",
    "compressed_root": "压缩文件存放路径",
    "collection_root": "采集文件存放根路径",
    "clearing_root": "清算文件存放根路径",
    "monitoring_centre": "运营监控中心",
}


class ConfigError(ValueError):
    """A bad configuration value: where it is, and what was expected."""

    def __init__(self, source: str | os.PathLike | None, path: str, message: str):
        self.source, self.path, self.message = str(source or "<config>"), path, message
        super().__init__(f"{self.source}: {path or '(top level)'}: {message}")


def _kind(tp: Any) -> str:
    if isinstance(tp, type):
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                "dict": "a table", "list": "a list", "tuple": "a list"}.get(tp.__name__, tp.__name__)
    return str(tp)


def _convert(tp: Any, value: Any, path: str, source: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, path, source)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(source, path, " or ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(source, path, f"expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if attrs.has(tp):
        return structure(tp, value, path=path, source=source)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(source, path, f"expected a list, got {type(value).__name__} {value!r}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{path}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, path, f"expected a table, got {type(value).__name__} {value!r}")
        vtype = args[1] if len(args) == 2 else Any
        return {k: _convert(vtype, v, f"{path}.{k}", source) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type):
        if tp is int and isinstance(value, bool) or not isinstance(value, tp):
            raise ConfigError(source, path, f"expected {_kind(tp)}, got {type(value).__name__} {value!r}")
        return value
    return value


def structure(cls: type, data: Any, *, path: str = "", source: Any = None) -> Any:
    """Build attrs class ``cls`` from a TOML table, refusing unknown keys and wrong types by key path."""
    if not isinstance(data, dict):
        raise ConfigError(source, path, f"expected a table, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    fields = {f.name: f for f in attrs.fields(cls)}
    names = {f.alias or f.name: f for f in fields.values()}
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = unknown[0]
        raise ConfigError(source, _join(path, key), f"unknown key (expected one of: {', '.join(sorted(names))})")
    kwargs = {}
    for key, field in names.items():
        if key in data:
            kwargs[field.name] = _convert(hints.get(field.name, Any), data[key], _join(path, key), source)
        elif field.default is attrs.NOTHING:
            raise ConfigError(source, _join(path, key), f"missing required key ({_kind(hints.get(field.name))})")
    try:
        obj = cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(source, *_key_of(str(exc), path, fields, names)) from None
    return obj


def _key_of(message: str, path: str, fields: dict[str, Any], names: dict[str, Any]) -> tuple[str, str]:
    """A validator's "field: problem" names its key: move the field into the key path (field names -> aliases)."""
    head, sep, rest = message.partition(": ")
    field = re.match(r"\w+", head)  # "routes[1].targets" names the field routes
    if sep and field and field.group() in fields:
        name = field.group()
        alias = fields[name].alias or name
        return _join(path, (alias if alias in names else name) + head[len(name):]), rest
    return path, message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# A name that becomes one path component (a channel, product, institution, file type, job or site): letters of
# any script, digits, '_', '.', '-'; not starting with '.' or '-' (so never '.', '..', a hidden file or an option).
NAME = re.compile(r"[^\W][\w.-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


def name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a path component, or None when it can."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not NAME.fullmatch(value):
        return f"{value!r} cannot be used in a path ({NAME_RULE})"
    return None


def check_name(value: Any, what: str) -> str:
    """``value`` unchanged when it is safe as one path component; else ValueError naming ``what``."""
    problem = name_problem(value)
    if problem:
        raise ValueError(f"{what} {problem}")
    return value


def check_encoding(value: str, what: str) -> str:
    """``value`` when Python's codecs know it; else ValueError naming ``what``."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"{what}: unknown encoding {value!r} (a name Python's codecs know: gbk, gb18030, "
                         "utf-8 ...)") from None
    return value


def path_name(instance, attribute, value):
    """attrs validator: the field becomes a path component."""
    if value is not None:
        check_name(value, f"{attribute.name}:")


def hhmm(instance, attribute, value):
    """attrs validator: a time of day HH:MM, None, or a table whose values are such times."""
    for key, text in value.items() if isinstance(value, dict) else [(None, value)]:
        if text is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(text)):
            where = attribute.name if key is None else f"{attribute.name}.{key}"
            raise ValueError(f"{where}: expected a time HH:MM, got {text!r}")


@attrs.frozen
class SiteSection:
    name: str = attrs.field(default="site", validator=path_name)
    day_change: str = attrs.field(default="06:00", validator=hhmm)
    """Work started before this wall-clock time belongs to the previous business date (Control-M's New Day)."""


@attrs.frozen
class DatabaseSection:
    url: str = "sqlite:///esomp.db"
    """Any SQLAlchemy URL; a relative SQLite path is taken from the site directory."""


@attrs.frozen
class PluginsSection:
    load: list[str] | None = None
    """Only these installed plugins are loaded (None: all). ESOMP_LOAD_PLUGINS narrows it further."""
    disable: list[str] = attrs.field(factory=list)


def _iso_date(instance, attribute, value):
    from datetime import date

    for day in value:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ValueError(f"{attribute.name}: expected dates as YYYY-MM-DD, got {day!r}")
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"{attribute.name}: no such date: {day!r}") from None


def _exchange(instance, attribute, value):
    from esomp_core.calendar import shipped_closures

    if value not in shipped_closures():
        raise ValueError(f"{attribute.name}: unknown exchange {value!r} (expected one of: "
                         f"{', '.join(sorted(shipped_closures()))})")


def _open_days(instance, attribute, value):
    from datetime import date

    _iso_date(instance, attribute, value)
    for day in value:
        if date.fromisoformat(day).weekday() >= 5:  # 调休上班日 are working days, not trading days
            raise ValueError(f"{attribute.name}: {day} is a {date.fromisoformat(day):%A}: the exchanges do not "
                             "trade on weekends, make-up working days included")
        if day in instance.holidays:
            raise ValueError(f"{attribute.name}: {day} is also in holidays: keep it in one list")


def _years(instance, attribute, value):
    for year in value:
        if not 1990 <= year <= 2999:
            raise ValueError(f"{attribute.name}: expected a year like 2027, got {year!r}")


@attrs.frozen
class CalendarSection:
    """``[calendar]``: the exchange's shipped closures, and the site's changes to them."""

    exchange: str = attrs.field(default="XSHG", validator=_exchange)
    """Whose closures are shipped data: XSHG (SSE) or XSHE (SZSE), which share one schedule."""
    holidays: list[str] = attrs.field(factory=list, validator=_iso_date)
    """More closed days (YYYY-MM-DD) on top of the shipped ones."""
    open_days: list[str] = attrs.field(factory=list, validator=_open_days)
    """Shipped closures the site treats as trading days after all (weekdays only)."""
    listed_years: list[int] = attrs.field(factory=list, validator=_years)
    """Years beyond the shipped data whose closures ``holidays`` lists in full, so those dates are covered."""


@attrs.frozen
class ChannelSection:
    """``[channels.NAME]``: ``kind`` picks the channel kind, whose own options class checks the rest."""

    kind: str
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class SiteConfig:
    source: str
    site: SiteSection = SiteSection()
    directories: dict[str, str] = attrs.field(factory=dict)
    database: DatabaseSection = DatabaseSection()
    plugins: PluginsSection = PluginsSection()
    calendar: CalendarSection = CalendarSection()
    classifications: dict[str, Any] = attrs.field(factory=dict)
    channels: dict[str, ChannelSection] = attrs.field(factory=dict)
    sections: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Plugin-owned tables (``[filetypes]``, ``[business.trust]``, ``[monitors.X]`` ...), checked by their owners."""


@attrs.frozen
class ConfigTable:
    """A top-level table of esomp.toml a plugin reads (``[name]``), declared through ``register_config``."""

    name: str
    description: str = ""


@attrs.frozen
class Directory:
    """A working directory a plugin needs (``[directories] key``); ``default`` (relative to the site, or an
    fsspec URL) when the site sets none."""

    key: str
    description: str
    default: str


# Top-level tables the core parses itself, and those it reads through site.section(): the engine's, the
# executors', every business type's [business.NAME] and every monitor's [monitors.NAME].
CORE_TABLES = {
    "site": "the site's name and day change",
    "database": "the repository's URL",
    "directories": "working directories",
    "plugins": "which installed plugins load",
    "calendar": "trading calendar",
    "classifications": "the product classification tree",
    "channels": "channels by name and kind",
    "engine": "the engine's options",
    "executors": "executors' options",
    "business": "each business type's options ([business.NAME])",
    "monitors": "each monitor's options ([monitors.NAME])",
}


def parse_config(data: dict[str, Any], source: str | os.PathLike = "<config>") -> SiteConfig:
    """Parse the core's tables; every other top-level table is kept for its plugin. Which tables and directories
    exist is known once the plugins are loaded: ``check_declared`` refuses the unknown ones then."""
    source = str(source)
    core = {"site": SiteSection, "database": DatabaseSection, "plugins": PluginsSection,
            "calendar": CalendarSection}
    kwargs: dict[str, Any] = {name: structure(cls, data.get(name, {}), path=name, source=source)
                              for name, cls in core.items()}
    directories = _convert(dict[str, str], data.get("directories", {}), "directories", source)
    missing = [d for d in DIRECTORIES if d not in directories]
    if missing:
        raise ConfigError(source, f"directories.{missing[0]}",
                          f"missing required directory ({DIRECTORIES[missing[0]]}): a path or fsspec URL")
    channels = {}
    for name, table in _convert(dict, data.get("channels", {}), "channels", source).items():
        problem = name_problem(name)
        if problem:  # the name becomes a directory under the collection root
            raise ConfigError(source, f"channels.{name}", f"channel name {problem}")
        if not isinstance(table, dict):
            raise ConfigError(source, f"channels.{name}", "expected a table")
        if "kind" not in table:
            raise ConfigError(source, f"channels.{name}.kind", "missing required key (a channel kind, e.g. \"fs\")")
        options = {k: v for k, v in table.items() if k != "kind"}
        channels[name] = ChannelSection(kind=_convert(str, table["kind"], f"channels.{name}.kind", source),
                                        options=options)
    _check_core_tables(data, source)
    parsed = {*core, "directories", "classifications", "channels"}
    return SiteConfig(
        source=source,
        directories=directories,
        classifications=_convert(dict, data.get("classifications", {}), "classifications", source),
        channels=channels,
        sections={name: _convert(dict, value, name, source) for name, value in data.items() if name not in parsed},
        **kwargs,
    )


def check_declared(config: SiteConfig, tables: dict[str, ConfigTable], directories: dict[str, Directory]) -> None:
    """Refuse a top-level table or a directory that neither the core nor a loaded plugin declares."""
    known_tables = sorted({*CORE_TABLES, *tables})
    for name in config.sections:
        if name not in known_tables:
            raise ConfigError(config.source, name, f"unknown table (expected one of: {', '.join(known_tables)})")
    known_directories = [*DIRECTORIES, *directories]
    for key in config.directories:
        if key not in known_directories:
            raise ConfigError(config.source, f"directories.{key}",
                              f"unknown directory (expected one of: {', '.join(known_directories)})")


def declared_config(pm) -> tuple[dict[str, ConfigTable], dict[str, Directory]]:
    """The tables and directories the loaded plugins declare (``register_config``), by name; a name two plugins
    declare is refused naming both."""
    from esomp_core.plugins import RegistrationError, call_each

    tables: dict[str, ConfigTable] = {}
    directories: dict[str, Directory] = {}
    owners: dict[tuple[str, str], str] = {}

    def bind(plugin: str) -> dict[str, Any]:
        def register(declared: ConfigTable | Directory) -> None:
            if isinstance(declared, ConfigTable):
                what, key, table = "table", declared.name, tables
            elif isinstance(declared, Directory):
                what, key, table = "directory", declared.key, directories
            else:
                raise TypeError(f"register_config takes a ConfigTable or a Directory, got {declared!r}")
            if (what, key) in owners:
                raise RegistrationError(f"config {what} {key!r} declared by both {owners[(what, key)]} and {plugin}")
            owners[(what, key)] = plugin
            table[key] = declared

        return {"register": register}

    failures = call_each(pm, "register_config", bind=bind, register=None)
    if failures:
        plugin, exc = failures[0]
        raise RegistrationError(f"plugin {plugin}: register_config failed: {type(exc).__name__}: {exc}")
    return tables, directories


def _check_core_tables(data: dict[str, Any], source: str) -> None:
    """The core's own plugin-style tables are checked on load, not when the engine first reads them."""
    from esomp_core.engine import EngineOptions  # the engine imports this module

    structure(EngineOptions, data.get("engine", {}), path="engine", source=source)
    for name, table in _convert(dict, data.get("executors", {}), "executors", source).items():
        if not isinstance(table, dict):
            raise ConfigError(source, f"executors.{name}", f"expected a table, got {type(table).__name__} {table!r}")


def check_site_config(site) -> None:
    """Every table of the site's esomp.toml checked now, before any work: no table or directory that no loaded
    plugin declares, the core's own tables that need the registered plugins ([engine], [executors]), then each
    plugin's through the ``check_config`` hook."""
    from esomp_core.engine import engine_options

    check_declared(site.config, site.config_tables, site.plugin_directories)
    engine_options(site)
    site.pm.hook.check_config(site=site)


def load_config(path: str | os.PathLike) -> SiteConfig:
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file: run `esomp init SITE` to create a site") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, "", f"not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}): "
                                    "TOML files are UTF-8; save it as UTF-8") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return parse_config(table, path)


def env_name(instance, attribute, value):
    """attrs validator: the NAME of an environment variable holding a secret (or None)."""
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):  # never echo it: it may be the secret
        raise ValueError(f"{attribute.name}: expected the NAME of an environment variable (letters, digits, _), "
                         "not its value")


def secret(env_name: str | None, *, path: str = "", source: Any = None) -> str | None:
    """The value of a secret referenced by environment variable name; the error names the variable, never a value."""
    if not env_name:
        return None
    try:
        return os.environ[env_name]
    except KeyError:
        raise ConfigError(source, path, f"environment variable {env_name} is not set") from None
