"""Errors at the command line: one line naming what and where, a non-zero exit, no traceback unless asked for."""
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click
import pytest
from sqlalchemy import text, update

from esomp_core import hookimpl
from esomp_core.cli import pass_site
from esomp_core.repository.models import Run

HEADER = "product,name,institution,institution_name,classification,status,sz_accounts,sh_accounts\n"


def one_line_error(result, *expected):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def set_database_url(site, url):
    config = site.root / "esomp.toml"
    lines = config.read_text(encoding="utf-8").splitlines()
    lines = [f'url = "{url}"' if line.replace('"', "").startswith("url = ") else line for line in lines]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Commands:
    """Commands that meet a full disk, a locked database and a bug, the way a plugin's command could."""

    def __init__(self, holder_db=None):
        self.holder_db = holder_db

    @hookimpl
    def register_commands(self, cli):
        @cli.command("fill")
        @click.argument("path")
        def fill(path):
            with open(path, "wb") as fh:
                fh.write(b"x" * 65536)

        @cli.command("write-db")
        @pass_site
        def write_db(site):
            with site.repository.session() as s:
                s.execute(text("PRAGMA busy_timeout=0"))  # fail at once instead of waiting out the lock
                s.execute(update(Run).values(state="pending"))

        @cli.command("bug")
        def bug():
            raise RuntimeError("something the code did not expect")


def test_a_full_disk_is_one_line(esomp_site, esomp_cli):
    result = esomp_cli(["fill", "/dev/full"], site=esomp_site, plugins=[Commands()])
    one_line_error(result, "no space left on device")


def test_a_locked_sqlite_database_is_one_line_naming_the_database(esomp_site, esomp_cli):
    holder = sqlite3.connect(esomp_site.root / "esomp.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing
        result = esomp_cli(["write-db"], site=esomp_site, plugins=[Commands()])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_line_error(result, "database sqlite:///", "esomp.db", "is locked")


def test_a_missing_sqlite_directory_is_one_line(esomp_site, esomp_cli, tmp_path):
    set_database_url(esomp_site, f"sqlite:///{tmp_path}/no/such/dir/esomp.db")
    result = esomp_cli(["status", "--date", "20260105"], site=esomp_site)
    one_line_error(result, f"{tmp_path}/no/such/dir/esomp.db", "unable to open database file")


def test_a_missing_postgresql_database_is_one_line_with_the_password_masked(esomp_site, esomp_cli, require_server):
    require_server("PostgreSQL", "127.0.0.1", 5432)
    set_database_url(esomp_site, "postgresql+psycopg2://postgres:s3cret@127.0.0.1:5432/esomp_no_such_database")
    result = esomp_cli(["status", "--date", "20260105"], site=esomp_site)
    line = one_line_error(result, "postgresql+psycopg2://postgres:***@127.0.0.1:5432/esomp_no_such_database",
                          "does not exist")
    assert "s3cret" not in line


def test_a_database_without_the_schema_says_how_to_create_it(esomp_site, esomp_cli, tmp_path):
    set_database_url(esomp_site, f"sqlite:///{tmp_path}/empty.db")
    result = esomp_cli(["status", "--date", "20260105"], site=esomp_site)
    one_line_error(result, "empty.db", "no such table", "esomp db upgrade")


def test_a_held_day_names_host_process_and_since(esomp_site, esomp_cli):
    with esomp_site.repository.session() as s:
        s.add(Run(date="20260105", state="running", created_at=datetime.now(), started_at=datetime(2026, 1, 5, 8),
                  lock_holder="opshost:4242", lock_heartbeat=datetime.now(), paused_batches=[]))
    result = esomp_cli(["run", "--date", "20260105", "--quiet"], site=esomp_site)
    one_line_error(result, "held by opshost:4242 (host opshost, process 4242) since 2026-01-05 08:00:00")


def test_a_products_file_in_neither_encoding_is_one_line_naming_file_and_line(esomp_site, esomp_cli, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes((HEADER + "P001,caf\xe9,INST1,,,,,\n").encode("latin-1"))
    result = esomp_cli(["products", "import", path], site=esomp_site)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}: import refused" in result.output
    assert "line 2: neither UTF-8 nor GBK (byte 0xe9 at column 9)" in result.output


def test_the_products_import_says_which_encoding_it_took(esomp_site, esomp_cli, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes((HEADER + "P001,家族信托,INST1,,,,0012345678,\n").encode("gbk"))
    result = esomp_cli(["products", "import", path], site=esomp_site)
    assert result.exit_code == 0, result.output
    assert "read as GBK" in result.output
    refused = esomp_cli(["products", "import", "--encoding", "klingon", path], site=esomp_site)
    assert refused.exit_code == 1 and "unknown encoding 'klingon'" in refused.output


def test_a_site_file_that_is_not_utf8_is_one_line(esomp_site, esomp_cli):
    config = esomp_site.root / "esomp.toml"
    config.write_bytes("# 站点\n".encode("gbk") + config.read_bytes())
    result = esomp_cli(["status", "--date", "20260105"], site=esomp_site)
    one_line_error(result, "esomp.toml", "not UTF-8", "line 1")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(esomp_site, esomp_cli):
    result = esomp_cli(["bug"], site=esomp_site, plugins=[Commands()])
    one_line_error(result, "RuntimeError: something the code did not expect", "--debug")
    with pytest.raises(RuntimeError):
        esomp_cli(["--debug", "bug"], site=esomp_site, plugins=[Commands()])
    with pytest.raises(RuntimeError):
        esomp_cli(["bug"], site=esomp_site, plugins=[Commands()], env={"ESOMP_DEBUG": "1"})


def test_the_installed_command_exits_non_zero_without_a_traceback(esomp_site, tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(b"\x00\x01binary")
    esomp = Path(sys.executable).parent / "esomp"
    done = subprocess.run([str(esomp), "--site", str(esomp_site.root), "products", "import", str(path)],
                          capture_output=True, text=True, env={**os.environ, "ESOMP_DEBUG": ""})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "line 1: contains a NUL character" in done.stderr


def test_a_command_of_an_installed_plugin_not_enabled_names_that_plugin(tmp_path):
    env = {**os.environ, "ESOMP_LOAD_PLUGINS": "fs", "ESOMP_SITE": str(tmp_path)}
    esomp = Path(sys.executable).with_name("esomp")
    result = subprocess.run([str(esomp), "gen", "--date", "20261120"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 2
    assert "No such command 'gen': it comes from plugin gen (esomp-gen), installed but not enabled" in result.stderr
    unknown = subprocess.run([str(esomp), "nosuch"], capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode == 2 and "No such command 'nosuch'." in unknown.stderr
