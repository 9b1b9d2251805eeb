"""The plugin manager: default plugins, entry points, allow-lists, broken plugins, registration."""
import json
import textwrap

import pytest
from pluggy import PluginValidationError

from esomp_core import hookimpl
from esomp_core.config import ConfigError
from esomp_core.model import BusinessType, Executor, FileType, Monitor, Service
from esomp_core.plugins import DEFAULT_PLUGINS, Registry, make_plugin_manager


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Two installed distributions on sys.path: one plugin that imports, one that raises on import."""
    def dist(name, module, body):
        info = tmp_path / f"{name.replace('-', '_')}-0.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
        (info / "entry_points.txt").write_text(f"[esomp]\n{module.replace('esomp_t_', '')} = {module}\n")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))

    dist("esomp-t-good", "esomp_t_good", """
        from esomp_core import hookimpl
        from esomp_core.model import FileType

        @hookimpl
        def register_file_types(register):
            register(FileType("GOOD", "test", ("good*.dbf",)))
    """)
    dist("esomp-t-broken", "esomp_t_broken", "raise ImportError('needs libfoo 9')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ESOMP_LOAD_PLUGINS", raising=False)


def test_broken_plugin_is_reported_and_others_load(fake_dists):
    pm = make_plugin_manager()
    assert pm.records["broken"].error == "ImportError: needs libfoo 9"
    assert pm.records["broken"].enabled is False
    assert pm.records["good"].enabled is True
    assert pm.records["good"].distribution == "esomp-t-good" and pm.records["good"].version == "0.3"
    assert "GOOD" in Registry.collect(pm).file_types


def test_env_allow_list_restricts_plugins(fake_dists, monkeypatch):
    monkeypatch.setenv("ESOMP_LOAD_PLUGINS", "broken")
    pm = make_plugin_manager()
    assert pm.records["good"].enabled is False and pm.get_plugin("good") is None
    monkeypatch.setenv("ESOMP_LOAD_PLUGINS", "")
    pm = make_plugin_manager()
    assert not any(r.enabled for r in pm.records.values() if not r.default)
    assert all(pm.get_plugin(name) for name in DEFAULT_PLUGINS)


def test_site_config_restricts_plugins(fake_dists):
    assert make_plugin_manager(load=["broken"]).records["good"].enabled is False
    assert make_plugin_manager(disable=["good"]).records["good"].enabled is False


def test_plugins_command_lists_plugins(fake_dists, esomp_cli, esomp_site):
    result = esomp_cli(["plugins", "--json"], site=esomp_site)
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.output)}
    assert records["good"]["hooks"] == ["register_file_types"]
    assert records["broken"]["error"].startswith("ImportError")
    assert "register_commands" in records["esomp_core.builtin.commands"]["hooks"]
    table = esomp_cli(["plugins"], site=esomp_site)
    assert "FAILED" in table.output and "libfoo" in table.output


def test_plugins_command_shows_what_each_plugin_owns(esomp_cli, esomp_site):
    """Every installed plugin, with what it registered and the commands it added."""
    result = esomp_cli(["plugins", "--json"], site=esomp_site, plugins=None)
    assert result.exit_code == 0, result.output
    owns = {r["name"]: r["owns"] for r in json.loads(result.output)}
    assert owns["trust"]["business type"] == ["trust"]
    assert owns["fs"]["channel kind"] == ["fs"] and "channels" in owns["fs"]["command"]
    assert "SJSMX1" in owns["szse"]["file type"]
    assert "run" in owns["esomp_core.builtin.day"]["command"]
    assert owns["esomp_core.builtin.executors"]["executor"] == ["inline", "local"]
    assert {"bench day", "bench engine"} <= set(owns["bench"]["command"])
    table = esomp_cli(["plugins"], site=esomp_site, plugins=None).output
    assert "business type: trust" in table


class Registrations:
    @hookimpl
    def register_file_types(self, register, site):
        register(FileType("T1", "test", ("t1*",), key_fields=("K",)))

    @hookimpl
    def register_business_types(self, register):
        register(BusinessType("biz", "Business", plan=lambda site, date: []))

    @hookimpl
    def register_executors(self, register):
        register(Executor("serial", create=lambda site, workers: None))

    @hookimpl
    def register_monitors(self, register):
        register(Monitor("always", check=lambda site, now: [], every=60))

    @hookimpl
    def register_services(self, register):
        register(Service("YHT", "ECHO", "01", handler=lambda request: request))


@pytest.fixture
def registry(esomp_pm_factory):
    reg = Registry.collect(esomp_pm_factory(Registrations()))
    assert not reg.errors
    return reg


def test_register_file_types(registry):
    assert registry.file_types["T1"].split
    assert registry.owners[("file type", "T1")].startswith("esomp_core") is False


def test_register_business_types(registry):
    assert registry.business_types["biz"].plan(None, "20261120") == []


def test_register_executors(registry):
    assert {"serial", "inline", "local"} == set(registry.executors)


def test_register_monitors(registry):
    assert registry.monitors["always"].every == 60


def test_register_services(registry):
    assert registry.services[("YHT", "ECHO", "01")].handler(b"x") == b"x"


def test_register_channel_kinds_duplicate_names_both_plugins(esomp_pm_factory):
    from esomp_core.model import ChannelKind

    class A:
        @hookimpl
        def register_channel_kinds(self, register):
            register(ChannelKind("fs", dict, open=lambda *a: None))

    pm = esomp_pm_factory()
    pm.register(A(), name="first")
    pm.register(A(), name="second")
    reg = Registry.collect(pm)  # pluggy calls the newer registration first: the older one finds the name taken
    assert reg.errors == ["plugin first: register_channel_kinds failed: RegistrationError: "
                          "channel kind 'fs' registered by both second and first"]


def test_register_commands_failure_does_not_break_cli(esomp_cli):
    import click

    class Good:
        @hookimpl
        def register_commands(self, cli):
            @cli.command()
            def hello():
                click.echo("hello")

    class Bad:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("boom")

    result = esomp_cli(["hello"], plugins=[Good(), Bad()])
    assert result.exit_code == 0 and "hello" in result.output


def test_file_type_patterns():
    ft = FileType("jsmx", "sse", ("jsmx*.{mdd}",), case_sensitive=False)
    assert ft.matches("JSMX01_JS123.B21", "20261121")
    assert not ft.matches("jsmx01_JS123.B20", "20261121")
    assert ft.matches("jsmx01_JS123.713")  # no date: any
    upper = FileType("ZGH", "sse", ("ZGH*.dbf",), case_sensitive=True)
    assert upper.matches("ZGH123.dbf") and not upper.matches("Zgh123.dbf")


def test_register_file_types_replace_wins_in_either_order(esomp_pm_factory):
    class Shipped:
        @hookimpl
        def register_file_types(self, register):
            register(FileType("TZXX", "site", ("tzxx*",), placeholder=True))

    class Declared:
        @hookimpl
        def register_file_types(self, register):
            register(FileType("TZXX", "site", ("TZXX{mmdd}.dbf",), key_fields=("TZZQZH",)), replace=True)

    for first, second in ((Shipped(), Declared()), (Declared(), Shipped())):
        pm = esomp_pm_factory()
        pm.register(first, name="first")
        pm.register(second, name="second")
        reg = Registry.collect(pm)
        assert not reg.errors and reg.file_types["TZXX"].key_fields == ("TZZQZH",)
    twice = esomp_pm_factory()
    twice.register(Shipped(), name="a")
    twice.register(Shipped(), name="b")
    assert "registered by both b and a" in Registry.collect(twice).errors[0]


# --- hooks checked at load: a misspelled hook is refused -----------------------------------------------------------


def test_misspelled_hook_is_refused_naming_plugin_hook_and_the_likely_one(fake_dists, tmp_path):
    (tmp_path / "esomp_t_typo-0.3.dist-info").mkdir()
    (tmp_path / "esomp_t_typo-0.3.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: esomp-t-typo\n"
                                                                      "Version: 0.3\n")
    (tmp_path / "esomp_t_typo-0.3.dist-info" / "entry_points.txt").write_text("[esomp]\ntypo = esomp_t_typo\n")
    (tmp_path / "esomp_t_typo.py").write_text(textwrap.dedent("""
        from esomp_core import hookimpl

        @hookimpl
        def proces(job, site):
            return None
    """))
    pm = make_plugin_manager()
    record = pm.records["typo"]
    assert record.enabled is False and pm.get_plugin("typo") is None
    assert "plugin typo" in record.error and "unknown hook 'proces'" in record.error
    assert "did you mean 'process'?" in record.error
    assert pm.records["good"].enabled is True  # the others load as usual
    pm.check_pending()


def test_unknown_hook_far_from_any_name_has_no_suggestion(esomp_pm_factory):
    class Odd:
        @hookimpl
        def frobnicate(self):
            pass

    with pytest.raises(PluginValidationError, match=r"unknown hook 'frobnicate'") as info:
        esomp_pm_factory(Odd())
    assert "did you mean" not in str(info.value)


def test_optional_hook_of_another_spec_is_allowed(esomp_pm_factory):
    class Optional:
        @hookimpl(optionalhook=True)
        def some_other_plugins_hook(self):
            pass

    esomp_pm_factory(Optional()).check_pending()


def test_every_installed_plugin_passes_the_hook_check(monkeypatch):
    monkeypatch.delenv("ESOMP_LOAD_PLUGINS", raising=False)
    pm = make_plugin_manager()
    refused = {r.name: r.error for r in pm.records.values() if r.error and "hook" in r.error}
    assert refused == {}
    assert len([r for r in pm.records.values() if r.enabled and not r.default]) > 5
    pm.check_pending()


# --- plugin names in [plugins] and ESOMP_LOAD_PLUGINS ------------------------------------------------------------


@pytest.mark.parametrize("key", ["load", "disable"])
def test_unknown_plugin_name_in_site_config_names_the_key_and_the_known_names(fake_dists, key):
    with pytest.raises(ConfigError) as info:
        make_plugin_manager(**{key: ["god"]}, source="/site/esomp.toml")
    message = str(info.value)
    assert message.startswith(f"/site/esomp.toml: plugins.{key}: unknown plugin 'god'")
    assert "broken" in message and "good" in message


def test_unknown_plugin_name_in_environment_names_the_variable(fake_dists, monkeypatch):
    monkeypatch.setenv("ESOMP_LOAD_PLUGINS", "good,brokn")
    with pytest.raises(ConfigError) as info:
        make_plugin_manager()
    message = str(info.value)
    assert message.startswith("ESOMP_LOAD_PLUGINS: unknown plugin 'brokn'") and "good" in message


def test_known_plugin_names_still_load(fake_dists, monkeypatch):
    monkeypatch.setenv("ESOMP_LOAD_PLUGINS", " good , ")
    assert make_plugin_manager(load=["good", "broken"], disable=["broken"]).records["good"].enabled


def test_unknown_plugin_name_stops_the_command_line(fake_dists, esomp_site_factory, capsys):
    from esomp_core.cli import main

    import tomllib

    import tomli_w

    site = esomp_site_factory()  # creating a site already refuses the name: the typo comes after
    config = site.root / "esomp.toml"
    tables = tomllib.loads(config.read_text(encoding="utf-8"))
    tables["plugins"]["disable"] = ["godo"]
    config.write_text(tomli_w.dumps(tables), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["--site", str(site.root), "status"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"{config}: plugins.disable: unknown plugin 'godo'" in err and "good" in err


def test_core_plugin_name_in_a_plugin_list_says_the_core_always_loads(fake_dists):
    with pytest.raises(ConfigError, match=r"plugins\.disable: unknown plugin 'esomp_core\.builtin\.day' "
                                          r"\(the core's own plugins always load\)"):
        make_plugin_manager(disable=["esomp_core.builtin.day"], source="esomp.toml")
