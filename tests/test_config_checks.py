"""Everything checkable when a site's esomp.toml is loaded is checked then, naming the key path."""
import re

import pytest

from esomp_core import hookimpl
from esomp_core.config import ConfigError, check_name, check_site_config, parse_config
from esomp_core.engine import Engine, engine_options
from esomp_core.model import Executor

DIRS = {k: f"d/{k}" for k in (
    "send_temp", "trust_send_temp", "extract_temp", "unpack_temp", "bcp_root", "compressed_root",
    "collection_root", "clearing_root", "monitoring_centre")}


def error_of(**tables):
    with pytest.raises(ConfigError) as info:
        parse_config({"directories": DIRS, **tables}, "site/esomp.toml")
    return info.value


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "a\\b", "", "x\0y", ".hidden", "-rf", "a b",
                                  "x" * 65])
def test_a_name_that_would_leave_its_directory_is_refused(name):
    with pytest.raises(ValueError, match="channel name"):
        check_name(name, "channel name")


@pytest.mark.parametrize("name", ["szse", "SJSMX0", "P-001.a", "trust-process-1-2", "新意证券", "_x"])
def test_ordinary_names_pass(name):
    assert check_name(name, "name") == name


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b"])
def test_a_channel_named_like_a_path_is_refused_at_load(name):
    error = error_of(channels={name: {"kind": "fs", "url": "/tmp/in"}})
    assert error.path == f"channels.{name}"
    assert "channel name" in error.message


def test_a_site_name_like_a_path_is_refused_at_load():
    error = error_of(site={"name": "../other"})
    assert error.path == "site.name"


@pytest.mark.parametrize("key, value, expected", [
    ("poll", -1, "above 0"),       # a negative poll used to block the engine's wait forever
    ("poll", 0, "above 0"),
    ("lease", -5, "above 0"),
    ("workers", -2, "0 or more"),
    ("batch_offsets", [0, -1], "0 or more"),
    ("workers", "4", "expected an integer"),
])
def test_engine_options_are_checked_at_load(key, value, expected):
    error = error_of(engine={key: value})
    assert error.path.startswith(f"engine.{key}")
    assert expected in error.message


def test_an_unknown_engine_table_key_is_refused_at_load():
    assert error_of(engine={"pool": 1}).path == "engine.pool"


def test_an_unknown_executor_is_refused_before_the_day_starts(esomp_site_factory):
    site = esomp_site_factory(engine={"executor": "dask"})
    with pytest.raises(ConfigError) as info:
        Engine(site, "20260105")
    assert info.value.path == "engine.executor"
    assert "inline" in info.value.message and "local" in info.value.message


def test_executors_tables_name_registered_executors(esomp_site_factory, esomp_pm_factory):
    class Remote:
        @hookimpl
        def register_executors(self, register):
            register(Executor("remote", lambda site, workers: None, "test"))

    site = esomp_site_factory(esomp_pm_factory(Remote()), executors={"remote": {}})
    assert engine_options(site).executor == "local"
    site = esomp_site_factory(esomp_pm_factory(Remote()), executors={"remtoe": {}})
    with pytest.raises(ConfigError) as info:
        engine_options(site)
    assert info.value.path == "executors.remtoe"
    assert "remote" in info.value.message


def test_executors_table_must_hold_tables():
    assert error_of(executors={"local": 4}).path == "executors.local"


def test_an_executor_without_options_takes_no_keys(esomp_site_factory):
    site = esomp_site_factory(executors={"local": {"workers": 4}})
    with pytest.raises(ConfigError) as info:
        engine_options(site)
    assert info.value.path == "executors.local.workers"


class StrictTable:
    """A plugin whose ``[bench]`` table (declared by it, checked by it) must hold rounds >= 1."""

    @hookimpl
    def register_config(self, register):
        from esomp_core import ConfigTable

        register(ConfigTable("bench", "rounds of a benchmark"))

    @hookimpl
    def check_config(self, site):
        rounds = site.section("bench").get("rounds", 1)
        if not isinstance(rounds, int) or rounds < 1:
            raise ConfigError(site.config.source, "bench.rounds", f"expected a whole number of 1 or more, got "
                                                                   f"{rounds!r}")


def test_hook_check_config_runs_every_plugins_check_when_a_command_opens_the_site(esomp_site_factory, esomp_pm_factory,
                                                                             esomp_cli):
    site = esomp_site_factory(esomp_pm_factory(StrictTable()), bench={"rounds": 0})
    with pytest.raises(ConfigError, match=r"bench\.rounds: expected a whole number"):
        check_site_config(site)
    result = esomp_cli(["status", "--date", "20260105"], site=site, plugins=[StrictTable()])
    assert result.exit_code == 1
    assert result.output.strip().endswith("bench.rounds: expected a whole number of 1 or more, got 0")


def test_hook_check_config_covers_the_core_tables(esomp_site_factory, esomp_cli):
    site = esomp_site_factory(engine={"executor": "dask"})
    result = esomp_cli(["status", "--date", "20260105"], site=site)
    assert result.exit_code == 1 and "engine.executor: unknown executor 'dask'" in result.output


def test_a_bad_plugin_table_fails_before_the_day_not_at_the_first_alert(esomp_site_factory, esomp_cli):
    site = esomp_site_factory(notify={"targets": {"m": {"kind": "email", "host": "h", "sender": "e@x",
                                                         "to": ["a@b"], "port": 0}}})
    result = esomp_cli(["status", "--date", "20260105"], site=site)
    assert result.exit_code == 1 and "notify.targets.m.port: expected a port from 1 to 65535" in result.output


@pytest.mark.parametrize("name", ["../x", "..", "a/b"])
def test_a_job_name_like_a_path_is_refused_when_the_plan_is_checked(name):
    from esomp_core.model import JobSpec
    from esomp_core.plan import PlanError, check_plan

    with pytest.raises(PlanError, match=f"job name {re.escape(repr(name))} cannot be used in a path"):
        check_plan([JobSpec("collect-x", "collect", "t"), JobSpec(name, "process", "t")])


def test_a_file_type_name_like_a_path_is_refused_at_registration(esomp_pm_factory):
    from esomp_core.model import FileType
    from esomp_core.plugins import Registry

    class Types:
        @hookimpl
        def register_file_types(self, register):
            register(FileType("OK1", family="t", patterns=("ok1*.dbf",)))
            register(FileType("../evil", family="t", patterns=("evil*.dbf",)))

    registry = Registry.collect(esomp_pm_factory(Types()))
    assert "OK1" in registry.file_types and "../evil" not in registry.file_types
    assert any("file type name '../evil' cannot be used in a path" in e for e in registry.errors), registry.errors


def test_a_file_type_with_an_unknown_encoding_is_refused_at_registration(esomp_pm_factory):
    from esomp_core.model import FileType
    from esomp_core.plugins import Registry

    class Types:
        @hookimpl
        def register_file_types(self, register):
            register(FileType("TZXX", family="t", patterns=("tzxx*.dbf",), encoding="klingon"))

    registry = Registry.collect(esomp_pm_factory(Types()))
    assert "TZXX" not in registry.file_types
    assert any("file type TZXX: unknown encoding 'klingon'" in e for e in registry.errors), registry.errors
