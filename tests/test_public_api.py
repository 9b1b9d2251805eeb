"""The core's public API: what `esomp_core` exports to plugins (docs/plugins.md, "The core's public API")."""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

import esomp_core

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
# Core modules whose every use by plugins now has a public name: no plugin may import them directly.
PUBLIC_MODULES = ("model", "config", "cli", "calendar", "products", "plugins", "site", "monitoring", "status")


def test_the_core_declares_its_public_names():
    assert "hookimpl" in esomp_core.__all__
    for name in ("Job", "JobSpec", "JobResult", "FileType", "ConfigError", "Site", "pass_site", "JobRow"):
        assert name in esomp_core.__all__


def test_every_public_name_resolves():
    missing = [name for name in esomp_core.__all__ if not hasattr(esomp_core, name)]
    assert missing == []


def test_public_names_are_the_core_modules_objects():
    from esomp_core import model, repository, site

    assert esomp_core.Job is model.Job
    assert esomp_core.JobRow is repository.models.Job
    assert esomp_core.Site is site.Site


def test_star_import_gives_the_public_names():
    namespace: dict = {}
    exec("from esomp_core import *", namespace)
    assert set(esomp_core.__all__) <= set(namespace)


def test_an_unknown_name_points_to_the_docs():
    with pytest.raises(AttributeError, match="'Jobb'.*docs/plugins.md"):
        esomp_core.Jobb


def test_importing_the_core_stays_light():
    # `esomp --help` imports the package: the exported names must not pull the database layer in with it.
    code = "import sys, esomp_core; print('sqlalchemy' in sys.modules, 'esomp_core.model' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def documented_api_section() -> str:
    text = PLUGINS_DOC.read_text(encoding="utf-8")
    match = re.search(r"^## \d+\. The core's public API$(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{PLUGINS_DOC}: no section \"The core's public API\""
    return match.group(1)


def test_every_public_name_is_documented():
    section = documented_api_section()
    undocumented = [name for name in esomp_core.__all__ if f"`{name}`" not in section]
    assert undocumented == []


def core_exceptions() -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / ".importlinter", encoding="utf-8")
    lines = parser["importlinter:contract:esomp_core-public-api-only"]["ignore_imports"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_no_exception_remains_for_a_module_with_a_public_form():
    stale = [line for line in core_exceptions() if line.split("-> esomp_core.")[1] in PUBLIC_MODULES]
    assert stale == []


def test_the_docs_examples_import_public_names():
    # An integrator copies the examples: they must pass the contract a plugin is held to.
    pattern = re.compile(r"from esomp_core\.(%s) import" % "|".join(PUBLIC_MODULES))
    found = [f"{doc.name}:{number}: {line.strip()}"
             for doc in sorted((ROOT / "docs").glob("*.md"))
             for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []
