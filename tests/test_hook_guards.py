"""Guards, as datasette keeps them: every hook is documented with its exact signature and has a test."""
import inspect
import re
from pathlib import Path

import pluggy

from esomp_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
TEST_DIRS = ["tests", "channels/*/tests", "filetypes/*/tests", "plugins/*/tests", "hooks/*/tests"]


def hook_signatures(module) -> dict[str, str]:
    marker = "esomp_spec"
    found = {}
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if hasattr(fn, marker):
            found[name] = f"{name}({', '.join(inspect.signature(fn).parameters)})"
    return found


def undocumented(signatures: dict[str, str], docs: str) -> list[str]:
    headings = set(re.findall(r"^### (.+)$", docs, re.M))
    return sorted(sig for sig in signatures.values() if sig not in headings)


def untested(hooks, test_names) -> list[str]:
    return sorted(h for h in hooks if not any(h in name for name in test_names))


def all_test_names() -> set[str]:
    names = set()
    for pattern in TEST_DIRS:
        for path in ROOT.glob(f"{pattern}/**/test_*.py"):
            names |= set(re.findall(r"^\s*(?:async\s+)?def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    return names


def test_every_hook_is_documented_with_its_signature():
    assert undocumented(hook_signatures(hookspecs), (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")) == []


def test_every_hook_has_a_test_named_after_it():
    assert untested(hook_signatures(hookspecs), all_test_names()) == []


def test_guards_catch_a_new_hook():
    """Add a hook without docs or test: both guards name it."""
    spec = pluggy.HookspecMarker("esomp")

    class Extended:
        @spec
        def reconcile_funds(self, job, site):
            """A hook nobody documented."""

    signatures = {**hook_signatures(hookspecs), "reconcile_funds": "reconcile_funds(job, site)"}
    assert hook_signatures(Extended) == {"reconcile_funds": "reconcile_funds(self, job, site)"}
    docs = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert undocumented(signatures, docs) == ["reconcile_funds(job, site)"]
    assert untested(signatures, all_test_names()) == ["reconcile_funds"]
    assert undocumented(signatures, docs + "\n### reconcile_funds(job, site)\n") == []
