"""The plugin manager: loads the core's default plugins and every installed ``esomp`` entry point.

A site's ``[plugins]`` table and the ESOMP_LOAD_PLUGINS environment variable (comma-separated names; empty for
none) restrict which installed plugins load; a name no installed plugin has is a configuration error. A plugin that
fails to import, or implements a hook the core does not define (a misspelling), is recorded with its error and the
others load as usual. Wherever the core calls implementations one by one it keeps pluggy's order: wrappers around
everything, then tryfirst, the others newest registration first, then trylast.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import traceback
from typing import Any, Callable, Iterable

import attrs
import pluggy

from esomp_core import __version__, hookspecs
from esomp_core.config import ConfigError, check_encoding, check_name

ENTRY_POINT_GROUP = "esomp"
ENV_LOAD = "ESOMP_LOAD_PLUGINS"

# The core's own behaviour, registered through the same hooks as any outside plugin.
DEFAULT_PLUGINS = (
    "esomp_core.builtin.commands",
    "esomp_core.builtin.day",
    "esomp_core.builtin.executors",
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

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """pluggy's register, then refuse a plugin that implements a hook no spec defines (check_pending, per
        plugin, so the error names it and the others still load)."""
        plugin_name = super().register(plugin, name)
        unknown = self.unknown_hooks(plugin) if plugin_name is not None else []
        if unknown:
            self.unregister(plugin)
            raise pluggy.PluginValidationError(plugin, unknown_hook_message(plugin_name, unknown[0]))
        return plugin_name

    def unknown_hooks(self, plugin: Any) -> list[str]:
        """The hooks ``plugin`` implements that no spec defines, unless marked ``optionalhook=True``."""
        return sorted(caller.name for caller in self.get_hookcallers(plugin) or ()
                      if not caller.has_spec() and any(impl.plugin is plugin and not impl.optionalhook
                                                       for impl in caller.get_hookimpls()))

    def records_with_hooks(self) -> list[PluginRecord]:
        for record in self.records.values():
            plugin = self.get_plugin(record.name)
            record.hooks = sorted(impl.name for impl in self.get_hookcallers(plugin) or ()) if plugin else []
        return sorted(self.records.values(), key=lambda r: (not r.default, r.name))


def unknown_hook_message(plugin_name: str, hook: str) -> str:
    """Names the plugin and the hook, and the hook it probably meant when one is close."""
    known = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "esomp_spec")]
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"plugin {plugin_name}: unknown hook {hook!r}{hint}; the hooks are listed in docs/hooks.md"


def env_names() -> set[str] | None:
    """The names in ESOMP_LOAD_PLUGINS, or None when it is not set."""
    env = os.environ.get(ENV_LOAD)
    return None if env is None else {n.strip() for n in env.split(",") if n.strip()}


def allowed_names(config_load: Iterable[str] | None, config_disable: Iterable[str] = ()) -> set[str] | None:
    """The names allowed to load, or None for all: the site's list narrowed by ESOMP_LOAD_PLUGINS."""
    allow = set(config_load) if config_load is not None else None
    from_env = env_names()
    if from_env is not None:
        allow = from_env if allow is None else allow & from_env
    if allow is not None:
        allow -= set(config_disable)
    return allow


def make_plugin_manager(
    *, load: Iterable[str] | None = None, disable: Iterable[str] = (), entry_points: bool = True,
    source: str | os.PathLike | None = None,
) -> PluginManager:
    """The core's default plugins and, with ``entry_points``, every installed plugin the site allows. ``load`` and
    ``disable`` are the site's ``[plugins]`` lists, ``source`` its esomp.toml (named in errors); a name there or
    in ESOMP_LOAD_PLUGINS that no installed plugin has is a ConfigError listing the installed ones."""
    pm = PluginManager()
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)  # a misspelled hook in the core itself is a bug: it raises
        pm.records[module_name] = PluginRecord(module_name, module_name, "esomp-core", __version__, default=True)
    if entry_points:
        installed = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        load, disable = (None if load is None else list(load)), list(disable)
        check_plugin_names({ep.name for ep in installed}, load, disable, source)
        _load_entry_points(pm, installed, allowed_names(load, disable), set(disable))
    pm.check_pending()  # every plugin left registered implements only hooks the core defines
    return pm


def check_plugin_names(installed: set[str], load: list[str] | None, disable: list[str],
                       source: str | os.PathLike | None) -> None:
    """A typo in a plugin list would silently load or keep the wrong set: refuse names no installed plugin has."""
    lists = [(source, "plugins.load", load or []), (source, "plugins.disable", disable),
             (ENV_LOAD, "", sorted(env_names() or ()))]
    for where, key, names in lists:
        unknown = [name for name in names if name not in installed]
        if unknown:
            raise UnknownPluginName(where, key, unknown[0], installed)


class UnknownPluginName(ConfigError):
    """A name in ``[plugins] load``/``disable`` or ESOMP_LOAD_PLUGINS that no installed plugin has."""

    def __init__(self, where: str | os.PathLike | None, key: str, name: str, installed: set[str]):
        hint = ""
        if name in DEFAULT_PLUGINS:
            hint = " (the core's own plugins always load)"
        close = difflib.get_close_matches(name, sorted(installed), n=1)
        if close:
            hint += f" (did you mean {close[0]!r}?)"
        message = f"unknown plugin {name!r}{hint}; installed: {', '.join(sorted(installed)) or 'none'}"
        super().__init__(where, key, message)
        if not key:  # the environment variable: no key path inside it
            self.args = (f"{where}: {message}",)


def _load_entry_points(pm: PluginManager, installed: list[importlib.metadata.EntryPoint],
                       allow: set[str] | None, disable: set[str]) -> None:
    for ep in installed:
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


def call_each(pm: PluginManager, hook_name: str, *, bind: Callable[[str], dict[str, Any]] | None = None,
              **kwargs: Any) -> list[tuple[str, BaseException]]:
    """Call a hook through pluggy (its order, its wrappers) with each implementation's failure caught and pinned
    on its plugin, so one broken plugin does not stop the others; return the failures. ``bind(plugin_name)``
    gives arguments of that plugin's own (a ``register`` callback that records who registered what)."""
    failures: list[tuple[str, BaseException]] = []
    raised_by: dict[int, str] = {}  # id of an exception a wrapper let out -> the first wrapper's plugin
    hook = getattr(pm.hook, hook_name)
    impls = [_pinned(impl, failures, raised_by, bind) for impl in hook.get_hookimpls()]
    firstresult = bool(hook.spec and hook.spec.opts.get("firstresult"))
    try:
        pm._hookexec(hook_name, impls, kwargs, firstresult)  # pluggy's own call loop: order, wrappers, tracing
    except Exception as exc:  # only a wrapper lets one out: the others' failures are caught where they happen
        failures.append((raised_by.get(id(exc), f"a wrapper of {hook_name}"), exc))
    return failures


def call_owner(pm: PluginManager, hook_name: str, owner: str, **kwargs: Any) -> Any:
    """Call a stage hook on its owner's implementation only, inside every wrapper of the hook (pluggy's order), so
    no implementation has to ask whether a job is its own."""
    hook = getattr(pm.hook, hook_name)
    impls = [impl for impl in hook.get_hookimpls()
             if impl.wrapper or impl.hookwrapper or impl.plugin_name == owner]
    return pm._hookexec(hook_name, impls, kwargs, True)


def _pinned(impl: pluggy.HookImpl, failures: list[tuple[str, BaseException]], raised_by: dict[int, str],
            bind: Callable[[str], dict[str, Any]] | None) -> pluggy.HookImpl:
    """A stand-in for ``impl`` that pluggy calls in its place: with its plugin's own arguments and, unless it is a
    wrapper (whose failure must reach the wrappers around it), its failure recorded instead of raised."""
    own = bind(impl.plugin_name) if bind else {}
    is_wrapper = impl.wrapper or impl.hookwrapper

    def call(*args: Any, **kwargs: Any) -> Any:
        values = [own.get(name, value) for name, value in zip(impl.argnames, args)]
        kwargs = {name: own.get(name, value) for name, value in kwargs.items()}
        if is_wrapper:
            return _tagged(impl.function(*values, **kwargs), impl.plugin_name, raised_by)
        try:
            return impl.function(*values, **kwargs)
        except Exception as exc:
            failures.append((impl.plugin_name, exc))
            return None

    stand_in = pluggy.HookImpl(impl.plugin, impl.plugin_name, call, impl.opts)
    # pluggy reads the parameter names to pass from these: the original function's, not call's
    stand_in.argnames, stand_in.kwargnames = impl.argnames, impl.kwargnames  # type: ignore[misc]
    return stand_in


def _tagged(wrapper: Any, plugin_name: str, raised_by: dict[int, str]) -> Any:
    """The wrapper's generator, unchanged, except that what it raises is pinned on its plugin (once: a wrapper
    outside it that lets the exception through is not to blame)."""
    try:
        return (yield from wrapper)
    except Exception as exc:
        raised_by.setdefault(id(exc), plugin_name)
        raise


class RegistrationError(ValueError):
    pass


def ownership(pm: PluginManager, registry: "Registry", cli: Any = None) -> dict[str, dict[str, list[str]]]:
    """What each plugin owns: what it registered, by kind ("business type", "channel kind", ...), and the
    commands it added to ``cli`` (found by the module their code is in)."""
    owned: dict[str, dict[str, list[str]]] = {}
    for (what, key), plugin in sorted(registry.owners.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        owned.setdefault(plugin, {}).setdefault(what, []).append(key if isinstance(key, str) else " ".join(key))
    for command, plugin in _command_owners(pm, cli):
        owned.setdefault(plugin, {}).setdefault("command", []).append(command)
    return owned


def _command_owners(pm: PluginManager, cli: Any) -> list[tuple[str, str]]:
    # the module a loaded plugin's code lives in: a module plugin's own name, else its class's module
    loaded = {name: pm.get_plugin(name) for name in pm.records if pm.get_plugin(name) is not None}
    modules = {getattr(p, "__name__", None) or type(p).__module__: name for name, p in loaded.items()}
    by_package = {module.partition(".")[0]: name for module, name in modules.items()
                  if not module.startswith("esomp_core.")}

    def owner(command: Any) -> str | None:
        module = getattr(command.callback, "__module__", "") or ""
        return modules.get(module) or by_package.get(module.partition(".")[0])

    found = []
    for name, command in sorted(getattr(cli, "commands", {}).items()):
        plugin = owner(command)
        if plugin is not None:
            found.append((name, plugin))
        else:  # a group of the core's (bench) that plugins add to
            found += [(f"{name} {sub}", owner(c)) for sub, c in sorted(getattr(command, "commands", {}).items())
                      if owner(c)]
    return found


# The registration hooks: (hook, what is registered, its key, the Registry table it goes to)
REGISTRATIONS: tuple[tuple[str, str, Callable[[Any], Any], str], ...] = (
    ("register_channel_kinds", "channel kind", lambda o: o.name, "channel_kinds"),
    ("register_file_types", "file type", lambda o: o.name, "file_types"),
    ("register_business_types", "business type", lambda o: o.name, "business_types"),
    ("register_executors", "executor", lambda o: o.name, "executors"),
    ("register_monitors", "monitor", lambda o: o.name, "monitors"),
    ("register_services", "service", lambda o: (o.domain, o.name, o.type), "services"),
)


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
    _replaced: set[tuple[str, Any]] = attrs.field(factory=set, repr=False)

    @classmethod
    def collect(cls, pm: PluginManager, site: Any = None) -> "Registry":
        """Call every registration hook in pluggy's order; each plugin gets a ``register`` of its own, so the
        registry knows who registered what and a failure is pinned on its plugin."""
        reg = cls()
        for hook_name, what, key_of, table in REGISTRATIONS:
            def bind(plugin: str, what: str = what, key_of: Callable[[Any], Any] = key_of,
                     table: str = table) -> dict[str, Any]:
                return {"register": reg._register_for(plugin, what, key_of, getattr(reg, table))}

            for plugin, exc in call_each(pm, hook_name, bind=bind, register=None, site=site):
                reg.errors.append(f"plugin {plugin}: {hook_name} failed: {type(exc).__name__}: {exc}")
        return reg

    def _register_for(self, plugin: str, what: str, key_of: Callable[[Any], Any],
                      table: dict[Any, Any]) -> Callable[..., None]:
        def register(obj: Any, *, replace: bool = False) -> None:
            """``replace=True``: this object stands in for any other of its name, whichever registers first (a
            site's own declaration of a file type replaces the one a plugin ships)."""
            key = key_of(obj)
            if what == "file type":  # file type names reach paths (BCP and report files)
                check_name(key, "file type name")
                check_encoding(obj.encoding, f"file type {key}")
            if key in table and not replace:
                if (what, key) in self._replaced:
                    return
                raise RegistrationError(f"{what} {key!r} registered by both {self.owners[(what, key)]} and {plugin}")
            if replace:
                self._replaced.add((what, key))
            table[key] = obj
            self.owners[(what, key)] = plugin

        return register
