"""`esomp users`, `esomp serve` and `esomp bench dashboard`, as registered through register_commands."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from esomp_core import ConfigError
from esomp_dashboard import plugin, users
from esomp_dashboard.config import dashboard_options
from esomp_dashboard.testing import free_port


def test_hook_register_commands_users_add_passwd_list(esomp_cli, esomp_site):
    add = esomp_cli(["users", "add", "olga", "--role", "operator"], site=esomp_site, plugins=[plugin],
                    input="s3cret-pass\ns3cret-pass\n")
    assert add.exit_code == 0, add.output
    assert users.authenticate(esomp_site.repository, "olga", "s3cret-pass") == {"username": "olga",
                                                                                 "role": "operator"}
    again = esomp_cli(["users", "add", "olga", "--password", "whatever-long"], site=esomp_site, plugins=[plugin])
    assert again.exit_code != 0 and "user olga exists" in again.output
    short = esomp_cli(["users", "add", "vic", "--password", "short"], site=esomp_site, plugins=[plugin])
    assert short.exit_code != 0 and "password for user vic: at least 8 characters" in short.output
    bad_name = esomp_cli(["users", "add", "a b", "--password", "long-enough"], site=esomp_site, plugins=[plugin])
    assert bad_name.exit_code != 0 and "user name 'a b'" in bad_name.output
    passwd = esomp_cli(["users", "passwd", "olga", "--role", "viewer", "--password", "new-password"],
                       site=esomp_site, plugins=[plugin])
    assert passwd.exit_code == 0, passwd.output
    assert users.authenticate(esomp_site.repository, "olga", "s3cret-pass") is None
    assert users.authenticate(esomp_site.repository, "olga", "new-password")["role"] == "viewer"
    missing = esomp_cli(["users", "passwd", "nobody", "--password", "new-password"], site=esomp_site,
                        plugins=[plugin])
    assert missing.exit_code != 0 and "no user nobody" in missing.output
    listed = esomp_cli(["users", "list", "--json"], site=esomp_site, plugins=[plugin])
    assert [(u["username"], u["role"]) for u in json.loads(listed.output)] == [("olga", "viewer")]


def test_passwords_are_salted_scrypt_hashes(esomp_site):
    users.add_user(esomp_site.repository, "a", "same-password")
    users.add_user(esomp_site.repository, "b", "same-password")
    with esomp_site.repository.session() as s:
        hashes = [s.get(users.User, name).password_hash for name in ("a", "b")]
    assert hashes[0] != hashes[1] and all(h.startswith("scrypt$") and "same-password" not in h for h in hashes)
    assert users.check_password("same-password", hashes[0]) and not users.check_password("other", hashes[0])
    assert not users.check_password("same-password", "garbage")


def test_dashboard_config_defaults_to_localhost_and_names_bad_keys(esomp_site_factory):
    assert (dashboard_options(esomp_site_factory()).host, dashboard_options(esomp_site_factory()).port) == (
        "127.0.0.1", 8710)
    with pytest.raises(ConfigError, match="dashboard.port"):
        dashboard_options(esomp_site_factory(dashboard={"port": "eighty"}))
    with pytest.raises(ConfigError, match="dashboard.colour"):
        dashboard_options(esomp_site_factory(dashboard={"colour": "red"}))


def test_hook_register_commands_serve_answers_on_the_configured_port(esomp_site_factory):
    port = free_port()
    site = esomp_site_factory(dashboard={"port": port})
    esomp = shutil.which("esomp", path=str(Path(sys.executable).parent))
    process = subprocess.Popen([esomp, "--site", str(site.root), "serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "ESOMP_SITE": ""})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    assert response.status == 200 and b'name="csrf"' in response.read()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "esomp serve did not answer within 30 s"
                time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert "no dashboard users yet" in output


def test_hook_register_commands_bench_dashboard(esomp_cli):
    result = esomp_cli(["bench", "dashboard", "--products", "120", "--requests", "3", "--json"], plugins=[plugin])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["products"] == 120 and report["jobs"] == 43
    assert set(report["endpoints"]) == {"overview", "tree", "suggest", "jobs", "job", "alerts"}
    assert all(r["requests"] == 3 and r["p99_ms"] >= r["p50_ms"] > 0 for r in report["endpoints"].values())
