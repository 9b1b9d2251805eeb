"""Writes a new plugin distribution from the templates shipped in this package.

A template is a file under ``templates/common/`` (every kind) or ``templates/KIND/``, named like the file it
becomes plus ``.tmpl`` (so that pytest never collects a template as a test); ``__package__`` in a path becomes
the new package's name. Placeholders are ``string.Template``'s ``${name}``: Python's own braces stay as they are.
"""
from __future__ import annotations

import importlib.metadata
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

import attrs

KINDS = ("file-type", "channel", "business-type")
ENTRY_POINT_GROUP = "esomp"
SUFFIX = ".tmpl"
# A plugin name becomes an entry point, a business type or channel kind name, a package and a directory.
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


class ScaffoldError(ValueError):
    """A name or a target directory that a new plugin cannot use."""


@attrs.frozen
class Names:
    """Every name a new plugin derives from the one it is given."""

    name: str
    """The plugin's name: its entry point, and the business type, channel kind or file type family it registers."""

    @property
    def package(self) -> str:
        return "esomp_" + self.name.replace("-", "_")

    @property
    def distribution(self) -> str:
        return "esomp-" + self.name.replace("_", "-")

    @property
    def type_name(self) -> str:
        """The file type a ``file-type`` plugin declares (upper case, as the exchanges name theirs)."""
        return self.name.replace("-", "_").upper()

    @property
    def class_prefix(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.name))

    def placeholders(self) -> dict[str, str]:
        return {"name": self.name, "package": self.package, "distribution": self.distribution,
                "type_name": self.type_name, "class_prefix": self.class_prefix}


def check_plugin_name(name: str) -> Names:
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"plugin name {name!r}: expected lower-case letters and digits, words joined by - or _, "
                            f"starting with a letter (e.g. payments, bank-transfer)")
    taken = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if taken:
        owner = taken[0].dist.name if taken[0].dist else taken[0].value
        raise ScaffoldError(f"plugin name {name!r} is taken by the installed distribution {owner}: choose another")
    return Names(name)


def new_plugin(kind: str, name: str, target: str | Path | None = None) -> list[Path]:
    """Write the ``kind`` plugin ``name`` into ``target`` (default: ``./NAME``), which must not exist or be empty;
    return the files written."""
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})")
    names = check_plugin_name(name)
    root = Path(target if target is not None else name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} exists and is not an empty directory: choose a new one with --dir")
    templates = resources.files("esomp_kit").joinpath("templates")
    values = names.placeholders()
    written = []
    for source, relative in [*_templates(templates.joinpath("common")), *_templates(templates.joinpath(kind))]:
        path = root / relative.replace("__package__", names.package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(source.read_text(encoding="utf-8"), values, relative), encoding="utf-8")
        written.append(path)
    return written


def _templates(folder: Traversable, prefix: str = "") -> list[tuple[Traversable, str]]:
    """Every template under ``folder`` with the path (without ``.tmpl``) of the file it becomes."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _templates(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(SUFFIX):
            found.append((entry, prefix + entry.name[: -len(SUFFIX)]))
    return found


def render(text: str, values: dict[str, str], where: str) -> str:
    """The template's text with its placeholders filled; a placeholder the kit does not know is its own bug."""
    try:
        return Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise ScaffoldError(f"template {where}: bad placeholder {exc}") from None
