import pytest

from esomp_core.config import ConfigError, load_config, parse_config
from esomp_core.testing import make_site

DIRS = {k: f"d/{k}" for k in (
    "send_temp", "trust_send_temp", "extract_temp", "unpack_temp", "bcp_root", "compressed_root",
    "collection_root", "clearing_root", "monitoring_centre")}


def error_of(data):
    with pytest.raises(ConfigError) as info:
        parse_config(data, "site/esomp.toml")
    return info.value


def test_minimal_config_parses():
    config = parse_config({"directories": DIRS}, "x.toml")
    assert config.database.url == "sqlite:///esomp.db"
    assert config.site.day_change == "06:00"


@pytest.mark.parametrize("data, path, expected", [
    ({"directories": DIRS, "site": {"nmae": "x"}}, "site.nmae", "unknown key"),
    ({"directories": DIRS, "site": {"day_change": "25:00"}}, "site.day_change", "HH:MM"),
    ({"directories": DIRS, "database": {"url": 5}}, "database.url", "expected a string"),
    ({"directories": DIRS, "calendar": {"holidays": "2026-10-01"}}, "calendar.holidays", "expected a list"),
    ({"directories": DIRS, "calendar": {"holidays": ["20261001x"]}}, "calendar.holidays", "YYYY-MM-DD"),
    ({"directories": {k: v for k, v in DIRS.items() if k != "bcp_root"}}, "directories.bcp_root", "missing"),
    ({"directories": DIRS, "channels": {"szse": {"url": "x"}}}, "channels.szse.kind", "missing required key"),
    ({"directories": DIRS, "plugins": {"load": "trust"}}, "plugins.load", "expected a list"),
])
def test_bad_config_names_key_path(data, path, expected):
    error = error_of(data)
    assert error.path == path
    assert expected in error.message
    assert str(error).startswith("site/esomp.toml: " + path)


def test_invalid_toml_names_file(tmp_path):
    (tmp_path / "esomp.toml").write_text("[site\nname=1")
    with pytest.raises(ConfigError, match="esomp.toml.*not valid TOML"):
        load_config(tmp_path)


def test_missing_directory_is_reported(tmp_path):
    site = make_site(tmp_path / "s")
    import shutil

    shutil.rmtree(site.directory("bcp_root"))
    with pytest.raises(ConfigError, match=r"directories\.bcp_root: directory does not exist"):
        site.check_directories()


def test_channel_options_checked_by_kind(esomp_site_factory, esomp_pm_factory):
    import attrs

    from esomp_core import hookimpl
    from esomp_core.model import ChannelKind

    @attrs.frozen
    class Options:
        url: str
        retries: int = 3

    class Plugin:
        @hookimpl
        def register_channel_kinds(self, register):
            register(ChannelKind("test", Options, lambda name, options, site: (name, options)))

    site = esomp_site_factory(esomp_pm_factory(Plugin()),
                              channels={"good": {"kind": "test", "url": "memory://a"},
                                        "bad": {"kind": "test", "url": "memory://a", "retrys": 2},
                                        "worse": {"kind": "test", "url": "memory://a", "retries": "two"},
                                        "odd": {"kind": "nosuch"}})
    assert site.channel("good") == ("good", Options("memory://a"))
    with pytest.raises(ConfigError, match=r"channels\.bad\.retrys: unknown key"):
        site.channel("bad")
    with pytest.raises(ConfigError, match=r"channels\.worse\.retries: expected an integer"):
        site.channel("worse")
    with pytest.raises(ConfigError, match=r"channels\.odd\.kind: unknown channel kind 'nosuch'"):
        site.channel("odd")
    with pytest.raises(ConfigError, match=r"channels\.missing: no such channel"):
        site.channel("missing")


def test_secret_names_variable_not_value(monkeypatch):
    from esomp_core.config import secret

    monkeypatch.setenv("ESOMP_T_PW", "hunter2")
    assert secret("ESOMP_T_PW") == "hunter2"
    monkeypatch.delenv("ESOMP_T_PW")
    with pytest.raises(ConfigError, match="ESOMP_T_PW is not set"):
        secret("ESOMP_T_PW", path="channels.ftp.password_env")


def test_env_name_refuses_a_value_in_place_of_a_name_without_echoing_it():
    import attrs

    from esomp_core import env_name, structure

    @attrs.frozen
    class Options:
        password_env: str | None = attrs.field(default=None, validator=env_name)

    assert structure(Options, {"password_env": "ESOMP_FTP_PASSWORD"}).password_env == "ESOMP_FTP_PASSWORD"
    with pytest.raises(ConfigError) as info:
        structure(Options, {"password_env": "hunter2 pass!"}, path="channels.x", source="esomp.toml")
    assert "password_env" in str(info.value) and "hunter2" not in str(info.value)
