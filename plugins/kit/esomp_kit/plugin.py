"""``esomp new-plugin KIND NAME``: a new plugin distribution that installs and passes its own tests as written."""
from __future__ import annotations

from pathlib import Path

import click

from esomp_core import hookimpl
from esomp_kit.scaffold import KINDS, ScaffoldError, new_plugin


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("new-plugin")
    @click.argument("kind", type=click.Choice(KINDS))
    @click.argument("name")
    @click.option("--dir", "target", type=click.Path(file_okay=False),
                  help="Directory to write the distribution into (default: ./NAME); it must be new or empty.")
    def new_plugin_command(kind: str, name: str, target: str | None) -> None:
        """Write a new plugin distribution: setup.cfg with its entry point, a small working plugin, its tests and
        a README. KIND is file-type, channel or business-type; NAME names the plugin (e.g. payments)."""
        try:
            written = new_plugin(kind, name, target)
        except ScaffoldError as exc:
            raise click.ClickException(str(exc)) from None
        root = Path(target or name)
        for path in written:
            click.echo(f"  wrote {path}")
        click.echo(f"{kind} plugin {name} in {root}: install it with `pip install -e {root}[test]`, "
                   f"then run `pytest {root}/tests`")
