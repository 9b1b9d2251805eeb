"""`esomp db history`: each migration branch with its revisions and whether each is applied."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from esomp_core.repository import Repository


def branch_history(repository: Repository) -> list[dict[str, Any]]:
    """One entry per branch (the core's first): its name, folder and revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(repository.alembic_config())
    applied = _applied(script, repository.current_heads())
    by_folder: dict[Path, list[Any]] = {}
    for revision in script.walk_revisions():  # newest first
        by_folder.setdefault(Path(revision.path).resolve().parent, []).append(revision)
    return [{"branch": branch.name, "description": branch.description, "location": branch.location,
             "revisions": [_revision(r, applied) for r in reversed(by_folder.get(Path(branch.location).resolve(),
                                                                                 []))]}
            for branch in repository.migrations]


def _applied(script: Any, heads: tuple[str, ...]) -> set[str]:
    """Every revision at or below an applied head, the revisions it depends on included."""
    applied: set[str] = set()
    for head in heads:
        try:
            applied.update(r.revision for r in script.revision_map.iterate_revisions(head, "base"))
        except Exception:  # a head of a branch not loaded (plugin disabled or uninstalled): not ours to show
            continue
    return applied


def _revision(revision: Any, applied: set[str]) -> dict[str, Any]:
    down = revision.down_revision
    return {"revision": revision.revision, "down_revision": down if isinstance(down, str) or down is None
            else list(down), "description": _summary(revision.doc), "applied": revision.revision in applied}


def _summary(doc: str | None) -> str:
    """A migration's message: its docstring's first paragraph, on one line."""
    paragraph = (doc or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def history_rows(history: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The history as table rows: branch, revision, applied, description."""
    rows = []
    for branch in history:
        if not branch["revisions"]:
            rows.append((branch["branch"], "-", "-", "(no revisions found in " + branch["location"] + ")"))
        for revision in branch["revisions"]:
            rows.append((branch["branch"], revision["revision"], "yes" if revision["applied"] else "no",
                         revision["description"]))
    return rows
