"""The core lists no plugin's tables or directories: plugins declare them (register_config), and a table or a
directory that nobody declares is refused when a command opens the site, naming the file and the key."""
import tomllib
from pathlib import Path

import pytest
import tomli_w

from esomp_core import ConfigError, ConfigTable, Directory, hookimpl
from esomp_core.config import CORE_TABLES, DIRECTORIES, check_site_config, parse_config
from esomp_core.plugins import RegistrationError
from esomp_core.site import Site, template_text


class Reports:
    """A plugin reading a table of its own and writing into a directory of its own."""

    @hookimpl
    def register_config(self, register):
        register(ConfigTable("reports", "daily reports"))
        register(Directory("reports_root", "报表存放路径", "work/reports"))


def reopen(site: Site, pm, **tables) -> Site:
    """The site with ``tables`` merged into its esomp.toml, opened with ``pm``."""
    path = site.root / "esomp.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, table in tables.items():
        data[name] = {**data.get(name, {}), **table}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return Site.open(site.root, pm=pm)


def test_hook_register_config_declares_a_table_and_a_directory(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(Reports()), reports={"title": "T+0"})
    check_site_config(site)  # [reports] is known while the plugin is loaded
    assert site.section("reports") == {"title": "T+0"}
    assert site.config_tables["reports"].description == "daily reports"
    assert site.directory("reports_root") == str(site.root / "work" / "reports")  # its default
    assert site.directories()["reports_root"] == "报表存放路径"

    moved = reopen(site, esomp_pm_factory(Reports()), directories={"reports_root": "/srv/reports"})
    check_site_config(moved)
    assert moved.directory("reports_root") == "/srv/reports"


def test_hook_register_config_refuses_a_name_two_plugins_declare(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(Reports(), Reports()))
    with pytest.raises(RegistrationError, match="config table 'reports' declared by both"):
        check_site_config(site)


def test_a_table_nobody_declares_is_refused_with_the_known_ones(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(Reports()), reports={"title": "T+0"})
    without = Site.open(site.root, pm=esomp_pm_factory())  # the plugin is not loaded now
    with pytest.raises(ConfigError) as info:
        check_site_config(without)
    assert info.value.path == "reports"
    assert str(info.value).startswith(f"{site.root / 'esomp.toml'}: reports: unknown table (expected one of: ")
    assert all(name in info.value.message for name in CORE_TABLES)

    typo = reopen(site, esomp_pm_factory(Reports()), sitee={})
    with pytest.raises(ConfigError, match=r"sitee: unknown table \(expected one of: .*reports"):
        check_site_config(typo)


def test_a_directory_nobody_declares_is_refused(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(Reports()), directories={"tmp": "x"})
    with pytest.raises(ConfigError) as info:
        check_site_config(site)
    assert info.value.path == "directories.tmp"
    assert "unknown directory (expected one of: send_temp" in info.value.message
    assert "reports_root" in info.value.message


def test_the_config_is_parsed_before_the_plugins_load():
    # [plugins] decides which plugins load, so parsing cannot know their tables: they are kept, checked later
    dirs = {key: f"d/{key}" for key in DIRECTORIES}
    config = parse_config({"directories": {**dirs, "reports_root": "r"}, "reports": {"x": 1}}, "e.toml")
    assert config.sections["reports"] == {"x": 1} and config.directories["reports_root"] == "r"


def test_the_core_lists_no_plugin_table_or_directory():
    assert "trust_send_temp" not in DIRECTORIES
    assert not {"notify", "dashboard", "dtaq", "filetypes", "alerts", "daemon", "bench", "products"} & set(CORE_TABLES)


def test_trust_declares_its_send_directory_and_a_new_site_writes_it(tmp_path):
    from esomp_core.site import init_site

    site = init_site(tmp_path / "s")
    assert site.plugin_directories["trust_send_temp"].default == "work/trust-send-temp"
    written = tomllib.loads((site.root / "esomp.toml").read_text(encoding="utf-8"))
    assert written["directories"]["trust_send_temp"] == "work/trust-send-temp"
    assert Path(site.directory("trust_send_temp")).is_dir()
    check_site_config(site)


def test_the_template_has_only_the_core_directories_without_plugins():
    directories = tomllib.loads(template_text("x"))["directories"]
    assert list(directories) == list(DIRECTORIES)
