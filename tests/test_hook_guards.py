"""Guards, as datasette keeps them: every hook is documented with its exact signature and has a test of its own.

A hook's own test is named ``test_hook_<name>`` or ``test_hook_<name>_<more>`` and calls the hook through the plugin
manager or a real plugin. A name that merely contains the hook's name does not count: ``post`` is not tested by
``test_collect_on_postgresql``.
"""
import ast
import inspect
import re
from pathlib import Path

import pluggy

from esomp_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
TEST_DIRS = ["tests", "channels/*/tests", "filetypes/*/tests", "plugins/*/tests", "hooks/*/tests"]
PREFIX = "test_hook_"


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


def hook_tested_by(test_name: str, hooks) -> str | None:
    """The hook a test is named for, or None. The longest hook name wins, so that with hooks ``alert`` and
    ``alert_raised``, ``test_hook_alert_raised_once`` tests ``alert_raised`` only."""
    if not test_name.startswith(PREFIX):
        return None
    rest = test_name[len(PREFIX):]
    named = [hook for hook in hooks if rest == hook or rest.startswith(f"{hook}_")]
    return max(named, key=len, default=None)


def untested(hooks, test_names) -> list[str]:
    tested = {hook_tested_by(name, hooks) for name in test_names}
    return sorted(hook for hook in hooks if hook not in tested)


def collected_test_names(source: str) -> set[str]:
    """Names pytest collects from a module: top-level ``test_*`` functions and ``test_*`` methods of ``Test*``
    classes. A ``def test_hook_post`` nested in a helper, or in a string, is not a test and does not count."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names |= {n.name for n in node.body if is_test_function(n)}
        elif is_test_function(node):
            names.add(node.name)
    return names


def is_test_function(node) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")


def all_test_names() -> set[str]:
    names = set()
    for pattern in TEST_DIRS:
        for path in ROOT.glob(f"{pattern}/**/test_*.py"):
            names |= collected_test_names(path.read_text(encoding="utf-8"))
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


def test_a_hook_whose_own_tests_are_removed_is_named():
    hooks = hook_signatures(hookspecs)
    names = all_test_names()
    without_post = {n for n in names if not n.startswith("test_hook_post")}
    assert untested(hooks, without_post) == ["post"]


def test_each_hook_is_named_when_its_own_tests_are_removed():
    """No hook leans on another's tests: drop one hook's ``test_hook_<name>*`` tests and the guard names it alone."""
    hooks = hook_signatures(hookspecs)
    names = all_test_names()
    for hook in hooks:
        kept = {n for n in names if hook_tested_by(n, hooks) != hook}
        assert untested(hooks, kept) == [hook]


def test_a_name_that_only_contains_the_hook_does_not_count():
    assert untested(["post"], {"test_collect_on_postgresql", "test_post_ledger"}) == ["post"]
    assert untested(["post"], {"test_hook_postgresql_url", "test_hookpost"}) == ["post"]
    assert untested(["post"], {"test_hook_post"}) == untested(["post"], {"test_hook_post_vouchers_balance"}) == []


def test_the_longest_hook_name_claims_the_test():
    hooks = ["alert", "alert_raised"]
    assert hook_tested_by("test_hook_alert_raised_once", hooks) == "alert_raised"
    assert untested(hooks, {"test_hook_alert_raised_once"}) == ["alert"]
    assert untested(hooks, {"test_hook_alert_x", "test_hookimpl_is_checked"}) == ["alert_raised"]


def test_only_tests_pytest_collects_count():
    source = '''
def test_hook_collect_a_channel():
    """def test_hook_post_in_a_docstring(): no"""

def helper():
    def test_hook_send_nested():
        pass

class TestMonitor:
    async def test_hook_monitor_async(self):
        pass

class Fixtures:
    def test_hook_process_in_a_plain_class(self):
        pass
'''
    assert collected_test_names(source) == {"test_hook_collect_a_channel", "test_hook_monitor_async"}
