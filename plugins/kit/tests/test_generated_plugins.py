"""`esomp new-plugin KIND NAME` for each kind: the distribution it writes installs into a fresh virtualenv and
passes its own tests as written.

The new virtualenv sees the packages of the one running these tests (a .pth file adds its site-packages), so
nothing is downloaded: pip installs the generated distribution alone (--no-index --no-deps), as a regular, not
an editable, install, which also proves its package data is declared.
"""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from esomp_kit import KINDS

NAMES = {"file-type": "kit-rates", "channel": "kit-drop", "business-type": "kit-payments"}
TIMEOUT = 300


def run(*args, cwd=None):
    """Run a command; fail the test with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("ESOMP_SITE", "ESOMP_LOAD_PLUGINS")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def fresh_venv(tmp_path):
    """A new virtualenv whose interpreter also sees this one's site-packages (after its own)."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    own = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    ours = sysconfig.get_paths()["purelib"]
    (own / "outer-venv.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_generated_plugin_installs_and_passes_its_own_tests(kind, tmp_path, fresh_venv):
    name = NAMES[kind]
    target = tmp_path / name
    python = fresh_venv
    esomp = (python, "-c", "from esomp_core.cli import main; main()")  # the esomp command, in the new venv
    run(*esomp, "new-plugin", kind, name, "--dir", target, cwd=tmp_path)

    run(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation", target)
    installed = run(python, "-c", f"import esomp_{name.replace('-', '_')} as p; print(p.__file__)")
    assert str(target) not in installed  # the installed copy, not the source tree, is what the tests import

    # -P: the working directory is not on sys.path, so the tests import the installed package
    report = run(python, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=target)
    assert " passed" in report and "failed" not in report and "error" not in report

    listed = json.loads(run(*esomp, "plugins", "--json", cwd=tmp_path))
    [record] = [p for p in listed if p["name"] == name]
    assert record["distribution"] == f"esomp-{name}" and record["enabled"] and not record["error"]
