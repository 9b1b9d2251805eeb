"""A fresh site runs its day: the README's "A site" commands, run as an operator would, on the installed CLI."""
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

DATE = "20261120"
PRODUCTS = 40


def esomp_command() -> str:
    """The `esomp` script installed beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("esomp")
    found = str(beside) if beside.exists() else shutil.which("esomp")
    if found is None:
        pytest.fail("the esomp command is not installed (pip install -e . puts it beside the interpreter)")
    return found


class Operator:
    """Runs esomp commands in a working directory with ESOMP_SITE exported, as the README's example does."""

    def __init__(self, workdir: Path, site: Path):
        self.workdir, self.site = workdir, site
        self.env = {**os.environ, "ESOMP_SITE": str(site)}
        self.env.pop("ESOMP_LOAD_PLUGINS", None)  # every installed plugin, as on a new machine

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([esomp_command(), *args], cwd=self.workdir, env=env or self.env,
                              capture_output=True, text=True, timeout=600)

    def ok(self, *args: str, env: dict | None = None) -> str:
        done = self.run(*args, env=env)
        assert done.returncode == 0, f"esomp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--json"))

    def init(self, site: str | None = None) -> None:
        # `esomp init` comes before the site exists, so ESOMP_SITE is not needed for it
        self.ok("init", site or str(self.site), env={k: v for k, v in self.env.items() if k != "ESOMP_SITE"})


@pytest.fixture
def operator(tmp_path) -> Operator:
    return Operator(tmp_path, tmp_path / "site1")


def delivered_packages(outbox: Path) -> dict[str, str]:
    """product -> institution of every package in the outbox, read from the manifests delivered beside them;
    each package must be there whole (its flag holds its sha256)."""
    delivered = {}
    for manifest_path in sorted(outbox.rglob("*.manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        package = manifest_path.with_name(manifest["package"])
        flag = package.with_name(package.name + ".ok")
        assert package.is_file() and flag.is_file(), f"{package}: package or its flag missing"
        assert flag.read_text().split()[0] == hashlib.sha256(package.read_bytes()).hexdigest(), package
        assert manifest["product"] not in delivered, f"product {manifest['product']} delivered twice"
        delivered[manifest["product"]] = manifest["institution"]
    return delivered


def readme_site_commands() -> list[list[str]]:
    """The commands of README.md's "A site" example, in order, each split as the shell would."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## A site\n"):]
    block = section[section.index("```sh\n") + len("```sh\n"):]
    block = block[:block.index("```")]
    return [words for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def test_readme_site_runs_its_day_and_delivers_every_package(operator):
    readme_site = "/srv/esomp/site1"
    commands = readme_site_commands()
    assert ["export", f"ESOMP_SITE={readme_site}"] in commands  # the example names its site once, here
    for words in commands:
        words = [operator.site.as_posix() if w == readme_site else w for w in words]
        if words[0] == "export":
            continue  # the operator's environment already holds ESOMP_SITE
        assert words[0] == "esomp", words
        if words[1] == "init":
            operator.init(*words[2:])
            continue
        if words[1] == "gen":  # the README's seed-sized day, scaled down
            words[words.index("--products") + 1] = str(PRODUCTS)
        operator.ok(*words[1:])

    status = operator.json("status", "--date", DATE)
    assert status["state"] == "succeeded", status
    master = {p["code"]: p["institution"] for p in operator.json("products", "list")}
    assert len(master) == PRODUCTS
    assert delivered_packages(operator.site / "outbox") == master
    stages = {job["stage"] for job in operator.json("jobs", "--date", DATE)}
    assert {"collect", "process", "send"} <= stages


def test_fresh_site_with_nothing_arrived_fails_its_day(operator):
    operator.init()
    done = operator.run("run", "--date", DATE)
    assert done.returncode != 0, done.stdout
    status = operator.json("status", "--date", DATE)
    assert status["state"] == "failed", status
    collections = [job for job in operator.json("jobs", "--date", DATE) if job["stage"] == "collect"]
    assert sorted(job["name"] for job in collections) == ["collect-site", "collect-sse", "collect-szse"]
    assert all(job["state"] == "failed" for job in collections), collections


def test_empty_exchange_folder_fails_collection_naming_the_missing_files(operator):
    operator.init()
    operator.ok("gen", "--date", DATE, "--products", str(PRODUCTS))
    generated = json.loads((operator.site / "exchange" / f"{DATE}.json").read_text(encoding="utf-8"))
    for channel in ("szse", "sse", "site"):  # the files of the day never arrived; the folders are there
        folder = operator.site / "exchange" / channel / DATE
        shutil.rmtree(folder)
        folder.mkdir()

    done = operator.run("run", "--date", DATE)
    assert done.returncode != 0, done.stdout
    assert operator.json("status", "--date", DATE)["state"] == "failed"
    jobs = operator.json("jobs", "--date", DATE)
    errors = {job["name"]: job["error"] or "" for job in jobs if job["stage"] == "collect"}
    for entry in generated["files"]:
        error = errors.get(f"collect-{entry['channel']}", "")
        assert re.search(rf"(?<!\w){re.escape(entry['type'])}(?!\w)", error), (entry["type"], error)
    assert not any(job["state"] == "succeeded" for job in jobs if job["stage"] in ("process", "send")), jobs
    assert delivered_packages(operator.site / "outbox") == {}


def test_init_writes_valid_toml_filling_only_the_site_name(tmp_path, esomp_cli):
    result = esomp_cli(["init", tmp_path / "s", "--name", "华东-ops"])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((tmp_path / "s" / "esomp.toml").read_text(encoding="utf-8"))
    assert config["site"]["name"] == "华东-ops"
    # the outbox's own placeholders are the package's name, filled at delivery, not the site's
    assert config["channels"]["outbox"]["flag"] == "{name}.ok"
    assert config["channels"]["outbox"]["path_template"].endswith("/{name}")
    trust = config["business"]["trust"]
    assert trust["delivery_channel"] in config["channels"]
    assert set(trust["collect_channels"]) <= set(config["channels"])
    listed = json.loads(esomp_cli(["channels", "list", "--json"], site=tmp_path / "s").output)
    assert {c["name"]: c["config"] for c in listed} == {name: "ok" for name in config["channels"]}


def test_made_site_starts_without_the_fresh_site_day(esomp_site):
    # tests, benchmarks and the demo declare their own channels and business tables
    assert esomp_site.config.channels == {}
    assert esomp_site.section("business") == {}


def test_init_force_keeps_an_existing_esomp_toml(tmp_path, esomp_cli):
    root = tmp_path / "s"
    assert esomp_cli(["init", root]).exit_code == 0
    config = root / "esomp.toml"
    edited = config.read_text(encoding="utf-8") + "\n# the operator's own note\n"
    config.write_text(edited, encoding="utf-8")
    shutil.rmtree(root / "work" / "bcp")

    result = esomp_cli(["init", root, "--force"])
    assert result.exit_code == 0, result.output
    assert config.read_text(encoding="utf-8") == edited
    assert (root / "work" / "bcp").is_dir()
