"""``esomp channels list | check | collect``."""
from __future__ import annotations

import json

from esomp_fs import plugin

DATE = "20261120"


def test_hook_register_commands_channels_list(site_with, esomp_cli, tmp_path, password):
    site = site_with(szse={"kind": "fs", "url": str(tmp_path / "in")},
                     trust={"kind": "fs", "url": "sftp://ops@10.0.0.5:2222/inbox", "password_env": "TRUST_PW"},
                     broken={"kind": "fs", "url": f"ftp://ops:{password}@10.0.0.6/x"})
    result = esomp_cli(["channels", "list", "--json"], site=site, plugins=[plugin])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["trust"] == {"name": "trust", "kind": "fs", "url": "sftp://ops@10.0.0.5:2222/inbox", "config": "ok"}
    assert rows["szse"]["url"] == str(tmp_path / "in")
    assert rows["broken"]["url"] == "ftp://ops:***@10.0.0.6/x"
    assert rows["broken"]["config"].startswith("channels.broken.url: a password in the URL")
    assert password not in result.output

    table = esomp_cli(["channels", "list"], site=site, plugins=[plugin], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "sftp://ops@10.0.0.5:2222/inbox" in table.output
    assert password not in table.output


def test_hook_register_commands_channels_check_and_collect(site_with, esomp_cli, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / f"SJSMX1{DATE}.DBF").write_bytes(b"m" * 70)
    site = site_with(szse={"kind": "fs", "url": str(source), "expected": ["SJSMX1{date}.DBF", "SJSDZ*"],
                           "deadline": "16:00"})

    check = esomp_cli(["channels", "check", "szse"], site=site, plugins=[plugin])
    assert check.exit_code == 0, check.output
    assert "reachable, 1 file(s)" in check.output and f"SJSMX1{DATE}.DBF" in check.output

    collect = esomp_cli(["channels", "collect", "szse", "--date", "2026-11-20", "--json"], site=site,
                        plugins=[plugin])
    assert collect.exit_code == 1  # SJSDZ is missing, and the deadline of 2026-11-20 has passed
    assert "expected files missing past the deadline (deadline 2026-11-20 16:00): SJSDZ*" in collect.output
    report = json.loads(collect.output[: collect.output.rindex("}") + 1])
    assert [f["name"] for f in report["collected"]] == [f"SJSMX1{DATE}.DBF"] and report["missing"] == ["SJSDZ*"]

    (source / f"SJSDZ{DATE}.DBF").write_bytes(b"d")
    again = esomp_cli(["channels", "collect", "szse", "--date", DATE], site=site, plugins=[plugin])
    assert again.exit_code == 0, again.output
    assert "1 collected (1 bytes)" in again.output
    assert f"skipped   SJSMX1{DATE}.DBF: already collected; source unchanged" in again.output


def test_hook_register_commands_errors_are_clear(site_with, esomp_cli, tmp_path):
    site = site_with(szse={"kind": "fs", "url": "ftp://127.0.0.1:1/x", "retries": 0},
                     queue={"kind": "fs", "url": str(tmp_path), "colour": "red"})
    unknown = esomp_cli(["channels", "check", "nope"], site=site, plugins=[plugin])
    assert unknown.exit_code == 1 and "channels.nope: no such channel" in unknown.output
    bad = esomp_cli(["channels", "collect", "queue", "--date", DATE], site=site, plugins=[plugin])
    assert bad.exit_code == 1 and "channels.queue.colour: unknown key" in bad.output
    down = esomp_cli(["channels", "check", "szse"], site=site, plugins=[plugin])
    assert down.exit_code == 1 and "ftp://127.0.0.1:1/x failed after 1 attempt(s): ConnectionRefusedError" in down.output
    date = esomp_cli(["channels", "collect", "szse", "--date", "20261340"], site=site, plugins=[plugin])
    assert date.exit_code == 2 and "not a date" in date.output
