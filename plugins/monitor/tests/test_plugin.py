"""The distribution as a site installs it: the entry point `monitor`, which a site restricting its plugins lists."""
import json

from esomp_core import make_plugin_manager


def test_the_entry_point_monitor_registers_the_built_in_monitors():
    pm = make_plugin_manager(load=["monitor"])
    assert pm.records["monitor"].distribution == "esomp-monitor" and pm.records["monitor"].enabled
    assert [impl.plugin_name for impl in pm.hook.register_monitors.get_hookimpls()] == ["monitor"]


def test_a_site_that_loads_the_monitor_plugin_has_its_commands_and_one_that_does_not_is_told(esomp_site_factory,
                                                                                            esomp_cli):
    site = esomp_site_factory(plugins={"load": ["monitor"]})
    result = esomp_cli(["alerts", "list", "--json"], site=site)
    assert result.exit_code == 0 and json.loads(result.output) == []
    site = esomp_site_factory(plugins={"load": ["fs"]})
    result = esomp_cli(["alerts", "list"], site=site)
    assert result.exit_code == 2 and "it comes from plugin monitor (esomp-monitor)" in result.output, result.output
