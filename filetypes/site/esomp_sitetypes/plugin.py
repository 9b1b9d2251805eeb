"""Registers the declared file types (shipped placeholders and a site's ``[filetypes]``) and ``esomp filetypes``."""
from __future__ import annotations

from typing import Any, Callable

import click

from esomp_core import (
    CliContext as Context, ConfigTable, FileType, Registry, hookimpl, json_option, pass_context, print_json,
    print_table,
)

from esomp_sitetypes.declare import declared_types, raise_together, record_length


@hookimpl
def register_config(register) -> None:
    register(ConfigTable("filetypes", "the site's own file types, declared field by field"))


@hookimpl
def register_file_types(register: Callable[[FileType], None], site: Any) -> None:
    tables = site.section("filetypes") if site is not None else {}
    source = site.config.source if site is not None else "<config>"
    types, errors = declared_types(tables, source)
    for file_type in types:  # a site's declaration replaces a type of the same name that a plugin ships
        register(file_type, replace=file_type.name in tables)
    raise_together(errors)  # the good declarations are registered; the bad ones are reported together


def describe(file_type: FileType, owner: str = "") -> dict[str, Any]:
    return {
        "name": file_type.name, "family": file_type.family, "channel": file_type.channel,
        "patterns": list(file_type.patterns), "case_sensitive": file_type.case_sensitive,
        "key": list(file_type.key_fields), "split": "split" if file_type.split else "whole",
        "fields": len(file_type.fields), "record_length": record_length(file_type),
        "encoding": file_type.encoding, "format": file_type.format, "placeholder": file_type.placeholder,
        "description": file_type.description, "plugin": owner,
    }


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("filetypes")
    @json_option
    @pass_context
    def filetypes(ctx: Context, as_json: bool) -> None:
        """List the file types: family, channel, patterns, key, split or whole, fields, record length."""
        try:
            site = ctx.site
        except click.ClickException:
            if ctx.site_path:
                raise
            site = None  # no site: the installed plugins' types without site declarations
        registry = site.registry if site is not None else Registry.collect(ctx.pm, None)
        rows = [describe(ft, registry.owners.get(("file type", name), ""))
                for name, ft in sorted(registry.file_types.items(), key=lambda kv: (kv[1].family, kv[0].lower()))]
        if as_json:
            print_json(rows)
        else:
            print_table(f"{len(rows)} file type(s)",
                        ["name", "family", "channel", "patterns", "key", "split", "fields", "record", "layout"],
                        [(r["name"], r["family"], r["channel"],
                          r["patterns"][0] + (f" +{len(r['patterns']) - 1}" if len(r["patterns"]) > 1 else ""),
                          ",".join(r["key"]),
                          r["split"], r["fields"], r["record_length"],
                          "PLACEHOLDER" if r["placeholder"] else "") for r in rows])
        failures = [e for e in registry.errors if "register_file_types" in e]
        for error in failures:
            click.echo(f"error: {error}", err=True)
        if failures:
            raise SystemExit(1)
