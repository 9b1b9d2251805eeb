"""Import boundaries between the core and the plugin distributions (docs/plugins.md, "Boundaries").

The contracts in .importlinter (the core imports no plugin; other distributions use a plugin only through its
top-level package) run here as well as in `make test`, and every plugin's imports of other distributions must be
declared in its setup.cfg. Each check also has a test that feeds it a violation and sees it fail.
"""
from __future__ import annotations

import ast
import configparser
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"
PLUGIN_FOLDERS = ("channels", "filetypes", "plugins", "hooks")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


# --- the distributions of this checkout ---------------------------------------------------------------------

def read_setup_cfg(directory: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(directory / "setup.cfg", encoding="utf-8")
    return parser


def requirement_names(text: str) -> set[str]:
    """The project names in an install_requires or extras block, normalised as pip does (esomp_core == esomp-core)."""
    names = set()
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def packages_of(directory: Path) -> list[str]:
    """Top-level import packages of the distribution in ``directory`` (tests are not part of it)."""
    return sorted(p.name for p in directory.iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name != "tests")


def distributions(root: Path = ROOT) -> dict[str, dict]:
    """Project name -> its directory, packages, declared requirements and test extras."""
    folders = [root] + sorted(d for f in PLUGIN_FOLDERS for d in (root / f).glob("*") if (d / "setup.cfg").exists())
    found = {}
    for directory in folders:
        cfg = read_setup_cfg(directory)
        name = re.sub(r"[-_.]+", "-", cfg["metadata"]["name"]).lower()
        packages = ["esomp_core"] if directory == root else packages_of(directory)
        found[name] = {"directory": directory, "packages": packages,
                       "requires": requirement_names(cfg.get("options", "install_requires", fallback="")),
                       "test_requires": requirement_names(cfg.get("options.extras_require", "test", fallback=""))}
    return found


# --- contract 3: a distribution imports only what its setup.cfg declares -------------------------------------

def imported_modules(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``source``, including imports inside functions."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def undeclared_imports(dists: dict[str, dict], root: Path = ROOT) -> list[str]:
    """One line per import of another distribution that the importing distribution's setup.cfg does not declare.

    A distribution's `testing` module (its kit for tests, like esomp_core.testing) may also use its `test` extra."""
    owner = {package: name for name, dist in dists.items() for package in dist["packages"]}
    problems = []
    for name, dist in dists.items():
        for package in dist["packages"]:
            for path in sorted((dist["directory"] / package).rglob("*.py")):
                allowed = dist["requires"] | ({name} | (dist["test_requires"] if path.stem == "testing" else set()))
                for line, module in imported_modules(path.read_text(encoding="utf-8"), str(path)):
                    used = owner.get(module.split(".")[0])
                    if used and used not in allowed:
                        problems.append(f"{path.relative_to(root)}:{line}: imports {module} but {name}'s setup.cfg "
                                        f"install_requires does not declare {used}")
    return problems


def test_every_plugin_declares_the_distributions_it_imports():
    assert undeclared_imports(distributions()) == []


def write_distribution(root: Path, folder: str, name: str, package: str, requires: list[str],
                       modules: dict[str, str]) -> None:
    directory = root / folder / name.removeprefix("esomp-")
    (directory / package).mkdir(parents=True)
    (directory / package / "__init__.py").write_text("")
    for module, source in modules.items():
        (directory / package / f"{module}.py").write_text(textwrap.dedent(source))
    requires_block = "".join(f"\n    {r}" for r in requires)
    (directory / "setup.cfg").write_text(f"[metadata]\nname = {name}\n\n[options]\ninstall_requires ={requires_block}\n")


@pytest.fixture
def fake_checkout(tmp_path):
    """A checkout with a core and two plugin distributions: `one` declares nothing, `two` declares the core."""
    (tmp_path / "esomp_core").mkdir()
    (tmp_path / "esomp_core" / "__init__.py").write_text("")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = esomp-core\n\n[options]\ninstall_requires =\n    attrs\n")
    write_distribution(tmp_path, "plugins", "esomp-one", "esomp_one", ["esomp-core"], {"plugin": "import attrs\n"})
    return tmp_path


def test_undeclared_imports_names_an_import_setup_cfg_does_not_declare(fake_checkout):
    write_distribution(fake_checkout, "plugins", "esomp-two", "esomp_two", ["esomp-core"],
                       {"plugin": "from esomp_core import x\n\ndef later():\n    from esomp_one import plugin\n"})
    problems = undeclared_imports(distributions(fake_checkout), fake_checkout)
    assert problems == ["plugins/two/esomp_two/plugin.py:4: imports esomp_one but esomp-two's setup.cfg "
                        "install_requires does not declare esomp-one"]


def test_undeclared_imports_accepts_a_declared_dependency_and_the_test_kit_extra(fake_checkout):
    write_distribution(fake_checkout, "plugins", "esomp-two", "esomp_two", ["esomp_core", "esomp-one>=0.1"],
                       {"plugin": "import esomp_one\n", "testing": "import esomp_three\n"})
    write_distribution(fake_checkout, "hooks", "esomp-three", "esomp_three", [], {})
    cfg = fake_checkout / "plugins" / "two" / "setup.cfg"
    cfg.write_text(cfg.read_text() + "\n[options.extras_require]\ntest =\n    esomp-three\n")
    assert undeclared_imports(distributions(fake_checkout), fake_checkout) == []


# --- contracts 1 and 2: import-linter ------------------------------------------------------------------------

def lint_imports(config: Path, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')")
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", str(config)], cwd=cwd, env=env,
                          capture_output=True, text=True)


def read_contracts(path: Path = CONTRACTS) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return parser


def listed(parser: configparser.ConfigParser, section: str, key: str) -> set[str]:
    return set(parser.get(section, key, fallback="").split())


def test_the_import_contracts_are_kept():
    result = lint_imports(CONTRACTS, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def coverage_gaps(contracts: configparser.ConfigParser, packages: set[str]) -> list[str]:
    """What .importlinter lacks for ``packages`` (the core and every plugin package): one line per gap."""
    gaps = []

    def expect(section: str, key: str, wanted: set[str]) -> None:
        missing = wanted - listed(contracts, section, key)
        if missing:
            gaps.append(f".importlinter: [{section}] {key} lacks {', '.join(sorted(missing))}")

    expect("importlinter", "root_packages", packages)
    expect("importlinter:contract:core-imports-no-plugin", "forbidden_modules", packages - {"esomp_core"})
    for package in sorted(packages):
        section = f"importlinter:contract:{package}-public-api-only"
        if not contracts.has_section(section):
            gaps.append(f".importlinter: no contract [{section}]")
            continue
        expect(section, "forbidden_modules", {f"{package}.**"})
        expect(section, "source_modules", packages - {package})
        if not contracts.getboolean(section, "allow_indirect_imports", fallback=False):
            gaps.append(f".importlinter: [{section}] needs allow_indirect_imports = True")
    return gaps


def test_the_contracts_cover_every_distribution():
    """A new distribution must be added to .importlinter, or its boundaries would go unchecked."""
    packages = {p for dist in distributions().values() for p in dist["packages"]}
    assert coverage_gaps(read_contracts(), packages) == []


def test_coverage_gaps_names_a_distribution_the_contracts_leave_out():
    gaps = coverage_gaps(read_contracts(), {"esomp_core", "esomp_trust", "esomp_new"})
    assert gaps == [".importlinter: [importlinter] root_packages lacks esomp_new",
                    ".importlinter: [importlinter:contract:core-imports-no-plugin] forbidden_modules lacks esomp_new",
                    ".importlinter: [importlinter:contract:esomp_core-public-api-only] source_modules lacks esomp_new",
                    ".importlinter: no contract [importlinter:contract:esomp_new-public-api-only]",
                    ".importlinter: [importlinter:contract:esomp_trust-public-api-only] source_modules lacks esomp_new"]


def fake_packages(root: Path, modules: dict[str, str]) -> None:
    """Write ``{"pkg/mod.py": source}`` as packages under ``root``, with empty __init__ files where none is given."""
    for relative, source in modules.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))


def contracts_for_fakes(tmp_path: Path) -> Path:
    """The project's contract shapes, for a fake core `kern` and fake plugins `alpha` and `beta`."""
    text = CONTRACTS.read_text(encoding="utf-8")
    core = re.search(r"\[importlinter:contract:core-imports-no-plugin\].*?(?=\n\[|\n#|\Z)", text, re.S).group(0)
    public = re.search(r"\[importlinter:contract:esomp_trust-public-api-only\].*?(?=\n\[|\n#|\Z)", text, re.S).group(0)
    core = re.sub(r"forbidden_modules =(\n    \S+)+", "forbidden_modules =\n    alpha\n    beta", core)
    core = core.replace("esomp_core", "kern")
    public = re.sub(r"source_modules =(\n    \S+)+", "source_modules =\n    kern\n    beta", public)
    public = public.replace("esomp_trust", "alpha")
    config = tmp_path / "contracts.ini"
    config.write_text("[importlinter]\nroot_packages =\n    kern\n    alpha\n    beta\n\n" + core + "\n\n" + public + "\n")
    return config


@pytest.mark.parametrize("modules, refused", [
    ({"kern/engine.py": "import beta\n", "alpha/inner.py": "", "beta/plugin.py": ""},
     "kern.engine -> beta"),  # the core imports a plugin
    ({"kern/model.py": "", "alpha/inner.py": "", "beta/plugin.py": "from alpha.inner import something\n"},
     "beta.plugin -> alpha.inner"),  # a plugin imports another plugin's module
])
def test_import_linter_refuses_a_forbidden_import(tmp_path, modules, refused):
    fake_packages(tmp_path, modules)
    result = lint_imports(contracts_for_fakes(tmp_path), tmp_path, pythonpath=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert refused in result.stdout


def test_import_linter_accepts_a_plugin_that_uses_the_top_level_package(tmp_path):
    """The top-level package may import its own modules: using it from outside is the public way in."""
    fake_packages(tmp_path, {"kern/model.py": "", "alpha/inner.py": "",
                             "beta/plugin.py": "from alpha import something\nimport kern.model\n"})
    (tmp_path / "alpha" / "__init__.py").write_text("from alpha.inner import something\n")
    result = lint_imports(contracts_for_fakes(tmp_path), tmp_path, pythonpath=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
