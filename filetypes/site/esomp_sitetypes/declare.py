"""File types declared as data: ``[filetypes.NAME]`` tables, checked with the core's config rules.

A declaration's errors name the key path (``filetypes.NAME.key``) and the file it came from, as every other
configuration error does. The package's defaults.toml declares the seed day's file types that have no public
layout (placeholders); a site's table for the same name replaces the keys it gives.
"""
from __future__ import annotations

import codecs
import re
import tomllib
from importlib import resources
from typing import Any, Callable, Literal

import attrs

from esomp_core import ConfigError, FieldSpec, FileType, structure

DEFAULTS = "defaults.toml"
PACKAGED = "filetypes.toml"
_FIELD = re.compile(r"^\s*(\w{1,10})\s+([CNDLF])\s*(\d{1,3})(?:\s*[\s.]\s*(\d{1,2}))?\s*$", re.IGNORECASE)
_FIXED_WIDTH = {"D": 8, "L": 1}


@attrs.frozen
class FieldTable:
    name: str
    type: str
    length: int
    decimals: int = 0


@attrs.frozen
class Declaration:
    """One ``[filetypes.NAME]`` table."""

    patterns: list[str]
    fields: list[str | FieldTable]
    key: list[str] | str = attrs.field(factory=list)
    split: bool | None = None
    """Split per product by ``key`` (default: when a key is given); false: every product gets the whole file."""
    market: Literal["SZ", "SH"] | None = None
    family: str = "site"
    channel: str = "site"
    encoding: str = "gbk"
    format: str = "dbf"
    case_sensitive: bool = False
    many: bool = False
    """Several files of the type arrive on one day; otherwise a second one is an ambiguous input."""
    placeholder: bool = False
    description: str = ""
    profile: dict[str, Any] = attrs.field(factory=dict)


def parse_field(item: str | FieldTable, path: str, source: str) -> FieldSpec:
    """``"TZSL N 15 2"`` (or ``"TZSL N15.2"``, or a table) as a FieldSpec; the error names ``path``."""
    if isinstance(item, FieldTable):
        name, kind, length, decimals = item.name, item.type, item.length, item.decimals
    else:
        match = _FIELD.match(item)
        if not match:
            raise ConfigError(source, path, f"expected \"NAME TYPE WIDTH [DECIMALS]\" (e.g. \"TZSL N 15 2\"), "
                                            f"got {item!r}")
        name, kind, length, decimals = match[1], match[2], int(match[3]), int(match[4] or 0)
    kind = kind.upper()
    if not (name.isascii() and 1 <= len(name) <= 10):
        raise ConfigError(source, path, f"field name {name!r} must be 1 to 10 ASCII characters")
    if kind not in "CNDLF" or len(kind) != 1:
        raise ConfigError(source, path, f"field type {kind!r} is not one of C, N, D, L, F")
    if not 1 <= length <= 255 or (kind in _FIXED_WIDTH and length != _FIXED_WIDTH[kind]):
        expected = f"{_FIXED_WIDTH[kind]}" if kind in _FIXED_WIDTH else "1..255"
        raise ConfigError(source, path, f"field {name}: width {length} (expected {expected} for type {kind})")
    if decimals and (kind not in "NF" or decimals > length - 2):
        raise ConfigError(source, path, f"field {name}: {decimals} decimals do not fit {kind} {length}")
    return FieldSpec(name.upper(), kind, length, decimals)


def file_type(name: str, table: Any, source: str, path: str | None = None) -> FileType:
    """Check one declaration and build its FileType; ConfigError names ``filetypes.NAME.<key>`` on bad input."""
    path = path or f"filetypes.{name}"
    decl: Declaration = structure(Declaration, table, path=path, source=source)
    if not decl.patterns or not all(p.strip() for p in decl.patterns):
        raise ConfigError(source, f"{path}.patterns", "expected at least one non-empty file-name pattern")
    if not decl.fields:
        raise ConfigError(source, f"{path}.fields", "expected at least one field")
    fields = tuple(parse_field(item, f"{path}.fields[{i}]", source) for i, item in enumerate(decl.fields))
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        if f.name in seen:
            raise ConfigError(source, f"{path}.fields[{i}]", f"field {f.name} repeats fields[{seen[f.name]}]")
        seen[f.name] = i
    keys = tuple(k.upper() for k in ([decl.key] if isinstance(decl.key, str) else decl.key) if k)
    for k in keys:
        if k not in seen:
            raise ConfigError(source, f"{path}.key", f"key field {k!r} is not among the fields "
                                                     f"({', '.join(seen)})")
    split = bool(keys) if decl.split is None else decl.split
    if split and not keys:
        raise ConfigError(source, f"{path}.key", "a file split per product needs a key field (the securities "
                                                 "account); or set split = false to pass it whole")
    if not split and keys:
        raise ConfigError(source, f"{path}.split", "split = false (passed whole) but a key is given: drop one")
    try:
        codecs.lookup(decl.encoding)
    except LookupError:
        raise ConfigError(source, f"{path}.encoding", f"unknown encoding {decl.encoding!r}") from None
    return FileType(
        name=name, family=decl.family, channel=decl.channel, patterns=tuple(decl.patterns), fields=fields,
        key_fields=keys, encoding=decl.encoding, format=decl.format, case_sensitive=decl.case_sensitive,
        many=decl.many, placeholder=decl.placeholder, description=decl.description, market=decl.market or "",
        profile=dict(decl.profile),
    )


def default_tables() -> tuple[dict[str, Any], str]:
    """The shipped declarations and where they come from (for error messages)."""
    ref = resources.files("esomp_sitetypes").joinpath(DEFAULTS)
    return tomllib.loads(ref.read_text(encoding="utf-8")), str(ref)


def declared_types(site_tables: dict[str, Any] | None, site_source: str = "<config>") -> tuple[list[FileType], list[ConfigError]]:
    """Every declared type: the shipped defaults overridden per name by the site's tables, plus the site's own.

    Returns the good types and the errors, so one bad declaration does not hide the others.
    """
    defaults, defaults_source = default_tables()
    site_tables = site_tables or {}
    types: list[FileType] = []
    errors: list[ConfigError] = []
    for name in [*defaults, *(n for n in site_tables if n not in defaults)]:
        table, source = defaults.get(name), defaults_source
        if name in site_tables:
            given = site_tables[name]
            if not isinstance(given, dict):
                errors.append(ConfigError(site_source, f"filetypes.{name}",
                                          f"expected a table, got {type(given).__name__} {given!r}"))
                continue
            # The site's own layout is not a placeholder unless it says so.
            base = {k: v for k, v in (table or {}).items() if not ("fields" in given and k == "placeholder")}
            table, source = {**base, **given}, site_source
        try:
            types.append(file_type(name, table, source))
        except ConfigError as exc:
            errors.append(exc)
    return types, errors


def packaged_types(package: str, resource: str = PACKAGED) -> tuple[list[FileType], list[ConfigError]]:
    """The file types a distribution ships as data: the ``[filetypes.NAME]`` tables of ``resource``, a TOML file
    in ``package``'s package data, with the keys of a site's declarations.

    Returns the good types and the errors, each naming the file and the key path; a file that is missing, is not
    TOML or holds anything but ``[filetypes.NAME]`` tables raises ConfigError at once.
    """
    ref = resources.files(package).joinpath(resource)
    source = str(ref)
    try:
        data = tomllib.loads(ref.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "", f"no such file in package {package} (is it listed in the distribution's "
                                      f"package_data?)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    for key in data:
        if key != "filetypes":
            raise ConfigError(source, key, "unknown table (expected only [filetypes.NAME] tables)")
    tables = data.get("filetypes")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(source, "filetypes", "expected at least one [filetypes.NAME] table")
    types: list[FileType] = []
    errors: list[ConfigError] = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            errors.append(ConfigError(source, f"filetypes.{name}",
                                      f"expected a table, got {type(table).__name__} {table!r}"))
            continue
        try:
            types.append(file_type(name, table, source))
        except ConfigError as exc:
            errors.append(exc)
    return types, errors


def raise_together(errors: list[ConfigError]) -> None:
    """One ConfigError for several bad declarations: the first one's place, then every other one's message."""
    if errors:
        first = errors[0]
        more = "".join(f"; also {e}" for e in errors[1:])
        raise ConfigError(first.source, first.path, first.message + more)


def register_packaged_types(register: Callable[..., None], package: str,
                            resource: str = PACKAGED) -> list[FileType]:
    """Register the file types ``package`` ships in ``resource`` (see ``packaged_types``) and return them; call it
    from your ``register_file_types`` hook. The good types are registered, then the bad declarations are raised
    together. A site's own ``[filetypes.NAME]`` table of the same name replaces a packaged type."""
    types, errors = packaged_types(package, resource)
    for declared in types:
        register(declared)
    raise_together(errors)
    return types


def record_length(file_type: FileType) -> int:
    return 1 + sum(f.length for f in file_type.fields)
