"""The core stays a small kernel: it names no plugin, plugin table or plugin directory, and its code stays short.

Code lines are the lines of esomp_core's modules that are not blank, not comments and not docstrings; the figure
and the whole file lengths are printed by ``python tests/test_small_core.py``.
"""
from __future__ import annotations

import ast
import importlib.metadata
import io
import tokenize
from pathlib import Path

import esomp_core
from esomp_core.config import DIRECTORIES
from esomp_core.repository.models import Base

CORE = Path(esomp_core.__file__).parent
MAX_CODE_LINES = 3500


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def code_lines(source: str) -> int:
    """Lines that are neither blank, nor comments, nor docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstrings)


def test_code_lines_counts_code_only():
    source = '"""Doc\nstring."""\n\n# a comment\ndef f():\n    """One."""\n    return 1  # trailing\n'
    assert code_lines(source) == 2


def test_the_core_is_at_most_3500_lines_of_code():
    counts = {path.relative_to(CORE): code_lines(path.read_text(encoding="utf-8")) for path in core_modules()}
    biggest = sorted(counts.items(), key=lambda item: -item[1])[:5]
    assert sum(counts.values()) <= MAX_CODE_LINES, f"{sum(counts.values())} code lines; biggest: {biggest}"


def plugin_names() -> set[str]:
    """Entry point names and top-level packages of every installed plugin distribution."""
    names = set()
    for ep in importlib.metadata.entry_points(group="esomp"):
        names.add(ep.name)
        names.add(ep.value.split(".")[0].split(":")[0])
    return names


def core_words() -> dict[str, str]:
    """Every identifier and every one-word string literal in the core's code (not its comments), with where."""
    found: dict[str, str] = {}
    for path in core_modules():
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            word = token.string
            if token.type == tokenize.STRING:
                try:
                    word = ast.literal_eval(word)
                except (ValueError, SyntaxError):
                    continue
                if not isinstance(word, str) or not word.isidentifier():
                    continue
            elif token.type != tokenize.NAME:
                continue
            found.setdefault(word, f"{path.relative_to(CORE)}:{token.start[0]}")
    return found


# Words the core uses in its own sense that a plugin also has as its name.
SHARED_WORDS = {
    "bench": "esomp bench, the core's group every plugin adds its benchmarks to",
    "dbf": "FileType.format's default: the exchanges' file format, read by whichever plugin registers it",
}


def test_the_core_names_no_plugin():
    names = plugin_names()
    assert {"trust", "fs", "esomp_trust"} <= names  # the check sees the installed plugins
    hooks = {name for name in dir(esomp_core.hookspecs) if not name.startswith("_")}
    named = {word: where for word, where in core_words().items() if word in names - hooks - set(SHARED_WORDS)}
    assert named == {}


def test_the_core_names_no_plugin_table_or_directory(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(entry_points=True))
    with site.repository.engine.connect() as conn:
        from sqlalchemy import inspect

        tables = set(inspect(conn).get_table_names()) - set(Base.metadata.tables) - {"alembic_version"}
    directories = set(site.directories()) - set(DIRECTORIES)
    assert {"packages", "receipts"} <= tables and "trust_send_temp" in directories  # plugins' own, seen here
    words = core_words()
    assert {name: words[name] for name in tables | directories if name in words} == {}


if __name__ == "__main__":  # pragma: no cover - the figures for BENCHMARKS.md and the closing notes
    total = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in core_modules())
    code = sum(code_lines(p.read_text(encoding="utf-8")) for p in core_modules())
    print(f"esomp_core: {total} lines, {code} code lines (no blanks, comments or docstrings)")
