"""The plugin's hooks: channel kind, services and the `esomp dtaq` commands, on a real site."""
import json
import threading

import pytest

from esomp_core import ConfigError
from esomp_direct import plugin as direct_plugin
from esomp_direct.messages import Request
from esomp_dtaq import plugin
from esomp_dtaq.config import load_options
from esomp_dtaq.supervisor import Supervisor


@pytest.fixture
def site(esomp_site_factory, esomp_pm_factory):
    return esomp_site_factory(esomp_pm_factory(plugin, direct_plugin),
                              dtaq={"interval": 0.1, "heartbeat": 0.1, "state_ttl": 0.0})


def test_hook_register_services_ships_the_seed_table(site):
    services = site.registry.services
    codes = {".".join(k) for k in services}
    assert {"YHT.CTR.01", "YHT.CTR.02", "YHT.CTR.03", "YHT.BOA.01", "YHT.FLT.01", "YHT.PRT.01",
            "YHT.TPS.01", "ECHO.ECHO.01"} <= codes
    assert services[("YHT", "CTR", "01")].financial and not services[("YHT", "CTR", "02")].financial
    card = services[("YHT", "CTR", "03")].handler
    assert card(Request("YHT", "CTR", "03", data=b"4111111111111111|5500000000000004")).startswith("REPLACED")


def test_hook_register_channel_kinds_dtaq(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(plugin, direct_plugin),
                              channels={"counter": {"kind": "dtaq", "backend": "memory"},
                                        "bad": {"kind": "dtaq", "backend": "oracle"}})
    channel = site.channel("counter")
    assert channel.name == "counter" and channel.backend.kind == "memory"
    with pytest.raises(ConfigError, match=r"channels\.bad\.backend: expected one of"):
        site.channel("bad")


def test_a_dtaq_channel_table_is_checked_as_the_dtaq_table(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(plugin, direct_plugin), channels={
        "timeout": {"kind": "dtaq", "backend": "memory", "services": {"YHT.CTR.01": {"timeout": -1}}},
        "code": {"kind": "dtaq", "backend": "memory", "services": {"YHTCTR01": {}}},
        "shared": {"kind": "dtaq", "backend": "memory", "services": {"YHT.CTR.01": {"reply_queue": "R"},
                                                                     "YHT.CTR.02": {"reply_queue": "R"}}}})
    with pytest.raises(ConfigError, match=r"channels\.timeout\.services\.YHT\.CTR\.01\.timeout: expected"):
        site.channel("timeout")
    with pytest.raises(ConfigError, match=r"channels\.code\.services\.YHTCTR01: .*DOMAIN\.NAME\.TYPE"):
        site.channel("code")
    with pytest.raises(ConfigError, match=r"channels\.shared\.services\.YHT\.CTR\.02\.reply_queue: .*'R'"):
        site.channel("shared")


def test_bad_dtaq_table_names_the_key(esomp_site_factory):
    site = esomp_site_factory(dtaq={"services": {"YHT.CTR.01": {"handling": 7}}})
    with pytest.raises(ConfigError, match=r"dtaq\.services\.YHT\.CTR\.01\.handling: expected 0..3"):
        load_options(site)
    site = esomp_site_factory(dtaq={"services": {"YHTCTR01": {}}})
    with pytest.raises(ConfigError, match=r"dtaq\.services\.YHTCTR01: .*DOMAIN\.NAME\.TYPE"):
        load_options(site)


def test_hook_register_commands_call_status_blacklist_cutoff(site, esomp_cli):
    plugins = [plugin, direct_plugin]
    channel = plugin.open_channel(site, load_options(site))
    supervisor = Supervisor(channel, [("YHT", "CTR", "01"), ("ECHO", "ECHO", "01")])
    supervisor.start()  # fork the workers before other threads use SQLite (a fork copies their locks)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [supervisor.poll() for _ in iter(lambda: stop.wait(0.1), True)])
    thread.start()
    try:
        result = esomp_cli(["dtaq", "call", "YHT", "CTR", "01", "--data", "12345678|9.99", "--json"],
                           site=site, plugins=plugins)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert (answer["code"], answer["data"], answer["via"]) == ("0000", "POSTED|12345678|9.99", "dtaq")

        assert esomp_cli(["dtaq", "cutoff", "on"], site=site, plugins=plugins).exit_code == 0
        result = esomp_cli(["dtaq", "call", "YHT", "CTR", "01", "--data", "12345678|1"], site=site, plugins=plugins)
        assert result.exit_code == 1 and "系统状态为CUTOFF,不能做此交易" in result.output
        esomp_cli(["dtaq", "cutoff", "off"], site=site, plugins=plugins)

        result = esomp_cli(["dtaq", "status", "--json"], site=site, plugins=plugins)
        status = json.loads(result.output)
        ctr = next(s for s in status["services"] if s["service"] == "YHT.CTR.01")
        assert ctr["workers"] == 1 and ctr["breaker"]["state"] == "closed" and ctr["request_queue"] == "YHTCTR01I"
        assert status["cutoff"] is False
        table = esomp_cli(["dtaq", "status"], site=site, plugins=plugins).output
        assert "CUTOFF off" in table and "closed" in table and "running" in table
    finally:
        stop.set()
        thread.join()
        supervisor.shutdown()

    assert esomp_cli(["dtaq", "blacklist", "add", "02", "*", "YHTCTR02", "--note", "MSGW"],
                     site=site, plugins=plugins).exit_code == 0
    listed = json.loads(esomp_cli(["dtaq", "blacklist", "list", "--json"], site=site, plugins=plugins).output)
    assert listed[0]["opcode"] == "YHTCTR02" and listed[0]["note"] == "MSGW"
    result = esomp_cli(["dtaq", "call", "YHT", "CTR", "02", "--data", "12345678"], site=site, plugins=plugins)
    assert result.exit_code == 0 and "via direct blacklisted" in result.output
    assert esomp_cli(["dtaq", "blacklist", "remove", "02", "*", "YHTCTR02"], site=site, plugins=plugins).exit_code == 0
    result = esomp_cli(["dtaq", "blacklist", "remove", "02", "*", "YHTCTR02"], site=site, plugins=plugins)
    assert result.exit_code == 1 and "no blacklist entry" in result.output
    result = esomp_cli(["dtaq", "call", "NO", "SUCH", "01"], site=site, plugins=plugins)
    assert result.exit_code == 1 and "9002" in result.output


def test_hook_register_commands_stop_and_start(site, esomp_cli):
    plugins = [plugin, direct_plugin]
    result = esomp_cli(["dtaq", "stop", "ECHO.ECHO.01"], site=site, plugins=plugins)
    assert result.exit_code == 0 and "stopped" in result.output
    result = esomp_cli(["dtaq", "start", "ECHO.ECHO.01"], site=site, plugins=plugins)
    assert "running (queues rebuilt)" in result.output
    result = esomp_cli(["dtaq", "stop", "NOPE"], site=site, plugins=plugins)
    assert result.exit_code == 1 and "DOMAIN.NAME.TYPE" in result.output


def test_hook_register_commands_bench_runs_briefly(site, esomp_cli):
    result = esomp_cli(["dtaq", "bench", "--backend", "memory", "--seconds", "0.5", "--clients", "2",
                        "--workers", "1", "--json"], site=site, plugins=[plugin, direct_plugin])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dtaq"]["round_trips"] > 0 and report["raw"]["round_trips"] > 0 and report["overhead_ratio"] > 0


@pytest.mark.parametrize("table, key", [
    ({"services": {"YHT.CTR.01": {"timeout": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.timeout: expected"),
    ({"services": {"YHT.CTR.01": {"timeout": 0}}}, r"dtaq\.services\.YHT\.CTR\.01\.timeout: expected"),
    ({"services": {"YHT.CTR.01": {"stuck_after": -5}}}, r"dtaq\.services\.YHT\.CTR\.01\.stuck_after: "),
    ({"services": {"YHT.CTR.01": {"cooldown": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.cooldown: "),
    ({"services": {"YHT.CTR.01": {"open_seconds": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.open_seconds: "),
    ({"services": {"YHT.CTR.01": {"lease": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.lease: "),
    ({"services": {"YHT.CTR.01": {"max_entries": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.max_entries: "),
    ({"services": {"YHT.CTR.01": {"min_workers": -1}}}, r"dtaq\.services\.YHT\.CTR\.01\.min_workers: "),
    ({"services": {"YHT.CTR.01": {"min_workers": 3, "max_workers": 2}}},
     r"dtaq\.services\.YHT\.CTR\.01\.min_workers: 3 is above max_workers 2"),
    ({"services": {"YHT.CTR.01": {"request_queue": "../x"}}}, r"dtaq\.services\.YHT\.CTR\.01\.request_queue: "),
    ({"services": {"YHT.CTR.01": {"request_queue": "SAME", "reply_queue": "SAME"}}},
     r"dtaq\.services\.YHT\.CTR\.01\.reply_queue: .*SAME.*request queue"),
    ({"interval": -1}, r"dtaq\.interval: expected"),
    ({"interval": 0}, r"dtaq\.interval: expected"),
    ({"heartbeat": -1}, r"dtaq\.heartbeat: expected"),
    ({"state_ttl": -0.5}, r"dtaq\.state_ttl: expected"),
])
def test_every_dtaq_option_is_checked_at_load_with_its_key(esomp_site_factory, table, key):
    site = esomp_site_factory(dtaq=table)
    with pytest.raises(ConfigError, match=key):
        load_options(site)


def test_two_services_on_one_queue_are_refused_at_load(esomp_site_factory):
    site = esomp_site_factory(dtaq={"services": {"YHT.CTR.01": {"request_queue": "SHARED"},
                                                 "YHT.CTR.02": {"request_queue": "SHARED"}}})
    with pytest.raises(ConfigError, match=r"dtaq\.services\.YHT\.CTR\.02\.request_queue: .*SHARED.*YHT\.CTR\.01"):
        load_options(site)


def test_start_and_status_name_a_service_whose_queues_are_held_back(site, esomp_cli):
    import time

    import attrs

    from esomp_dtaq.channel import request_entry
    from esomp_dtaq.config import ServicePolicy

    plugins = [plugin, direct_plugin]
    options = load_options(site)
    before = plugin.open_channel(site, attrs.evolve(options, services={"ECHO.ECHO.01": ServicePolicy(lease=5.0)}))
    inq, _ = before.queues(("ECHO", "ECHO", "01"))
    inq.send(request_entry(Request("ECHO", "ECHO", "01", data=b"waiting").encode(), time.time() + 60))
    result = esomp_cli(["dtaq", "start"], site=site, plugins=plugins)
    assert result.exit_code == 1
    assert "ECHO.ECHO.01: not started: its queues are held back" in result.output
    assert "YHT.CTR.01: running" in result.output  # the other services start
    assert "queue ECHOECHO01I holds 1 entries" in result.output and "lease 5.0 -> 0.0" in result.output
    status = json.loads(esomp_cli(["dtaq", "status", "--json"], site=site, plugins=plugins).output)
    echo = next(s for s in status["services"] if s["service"] == "ECHO.ECHO.01")
    assert "holds 1 entries" in echo["error"] and echo["depth"] is None
    assert "held back: service ECHO.ECHO.01" in esomp_cli(["dtaq", "status"], site=site, plugins=plugins).output
    result = esomp_cli(["dtaq", "call", "ECHO", "ECHO", "01", "--data", "hi", "--timeout", "-1"],
                       site=site, plugins=plugins)
    assert result.exit_code == 1 and "timeout: expected seconds > 0" in result.output
