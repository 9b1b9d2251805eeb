"""The plugin manager: loads the core's default plugins and every installed ``esomp`` entry point.

A site's ``[plugins]`` table and the ESOMP_LOAD_PLUGINS environment variable (comma-separated names; empty for
none) restrict which installed plugins load. A plugin that fails to import is recorded with its error and the
others load as usual.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import traceback
from typing import Any, Callable, Iterable

import attrs
import pluggy

from esomp_core import __version__, hookspecs
from esomp_core.config import check_encoding, check_name

ENTRY_POINT_GROUP = "esomp"
ENV_LOAD = "ESOMP_LOAD_PLUGINS"

# The core's own behaviour, registered through the same hooks as any outside plugin.
DEFAULT_PLUGINS = (
    "esomp_core.builtin.commands",
    "esomp_core.builtin.day",
    "esomp_core.builtin.executors",
    "esomp_core.builtin.bench",
    "esomp_core.builtin.monitors",
    "esomp_core.builtin.alerting",
    "esomp_core.builtin.daemon_cmd",
)


@attrs.define
class PluginRecord:
    name: str
    module: str
    distribution: str
    version: str
    enabled: bool = True
    default: bool = False
    error: str | None = None
    hooks: list[str] = attrs.field(factory=list)
    traceback: str | None = attrs.field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, filter=lambda a, v: a.name != "traceback")


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus a record of every plugin seen, loaded or not."""

    def __init__(self) -> None:
        super().__init__("esomp")
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}

    def records_with_hooks(self) -> list[PluginRecord]:
        for record in self.records.values():
            plugin = self.get_plugin(record.name)
            record.hooks = sorted(impl.name for impl in self.get_hookcallers(plugin) or ()) if plugin else []
        return sorted(self.records.values(), key=lambda r: (not r.default, r.name))


def allowed_names(config_load: Iterable[str] | None, config_disable: Iterable[str] = ()) -> set[str] | None:
    """The names allowed to load, or None for all: the site's list narrowed by ESOMP_LOAD_PLUGINS."""
    allow = set(config_load) if config_load is not None else None
    env = os.environ.get(ENV_LOAD)
    if env is not None:
        env_names = {n.strip() for n in env.split(",") if n.strip()}
        allow = env_names if allow is None else allow & env_names
    if allow is not None:
        allow -= set(config_disable)
    return allow


def make_plugin_manager(
    *, load: Iterable[str] | None = None, disable: Iterable[str] = (), entry_points: bool = True,
) -> PluginManager:
    pm = PluginManager()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        pm.records[module_name] = PluginRecord(module_name, module_name, "esomp-core", __version__, default=True)
    if entry_points:
        _load_entry_points(pm, allowed_names(load, disable), set(disable))
    return pm


def _load_entry_points(pm: PluginManager, allow: set[str] | None, disable: set[str]) -> None:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in pm.records:
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        record = PluginRecord(ep.name, ep.value, dist, version)
        pm.records[ep.name] = record
        if ep.name in disable or (allow is not None and ep.name not in allow):
            record.enabled = False
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            record.enabled = False
            record.error = f"{type(exc).__name__}: {exc}"
            record.traceback = traceback.format_exc()


def call_each(pm: PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, BaseException]]:
    """Call a hook's implementations one by one so a failure is pinned on its plugin; return the failures."""
    failures = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():  # registration order: defaults first
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            failures.append((impl.plugin_name, exc))
    return failures


class RegistrationError(ValueError):
    pass


@attrs.define
class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    channel_kinds: dict[str, Any] = attrs.field(factory=dict)
    file_types: dict[str, Any] = attrs.field(factory=dict)
    business_types: dict[str, Any] = attrs.field(factory=dict)
    executors: dict[str, Any] = attrs.field(factory=dict)
    monitors: dict[str, Any] = attrs.field(factory=dict)
    services: dict[tuple[str, str, str], Any] = attrs.field(factory=dict)
    owners: dict[tuple[str, Any], str] = attrs.field(factory=dict)
    errors: list[str] = attrs.field(factory=list)

    @classmethod
    def collect(cls, pm: PluginManager, site: Any = None) -> "Registry":
        reg = cls()
        kinds: list[tuple[str, str, Callable[[Any], Any], dict[str, Any]]] = [
            ("register_channel_kinds", "channel kind", lambda o: o.name, reg.channel_kinds),
            ("register_file_types", "file type", lambda o: o.name, reg.file_types),
            ("register_business_types", "business type", lambda o: o.name, reg.business_types),
            ("register_executors", "executor", lambda o: o.name, reg.executors),
            ("register_monitors", "monitor", lambda o: o.name, reg.monitors),
            ("register_services", "service", lambda o: (o.domain, o.name, o.type), reg.services),
        ]
        replaced: set[tuple[str, Any]] = set()
        for hook_name, what, key_of, table in kinds:
            for impl in getattr(pm.hook, hook_name).get_hookimpls():  # registration order: first one wins
                def register(obj: Any, *, replace: bool = False, _plugin: str = impl.plugin_name,
                             _what: str = what, _key_of: Callable[[Any], Any] = key_of,
                             _table: dict[str, Any] = table) -> None:
                    """``replace=True``: this object stands in for any other of its name, whichever registers
                    first (a site's own declaration of a file type replaces the one a plugin ships)."""
                    key = _key_of(obj)
                    if _what == "file type":  # file type names reach paths (BCP and report files)
                        check_name(key, "file type name")
                        check_encoding(obj.encoding, f"file type {key}")
                    if key in _table and not replace:
                        if (_what, key) in replaced:
                            return
                        raise RegistrationError(f"{_what} {key!r} registered by both "
                                                f"{reg.owners[(_what, key)]} and {_plugin}")
                    if replace:
                        replaced.add((_what, key))
                    _table[key] = obj
                    reg.owners[(_what, key)] = _plugin

                args = {"register": register, "site": site}
                try:
                    impl.function(*[args[name] for name in impl.argnames])
                except Exception as exc:
                    reg.errors.append(f"plugin {impl.plugin_name}: {hook_name} failed: {type(exc).__name__}: {exc}")
        return reg
