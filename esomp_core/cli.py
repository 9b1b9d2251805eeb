"""The ``esomp`` command line. The core's own commands and every plugin's arrive through register_commands."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import click

from esomp_core import __version__
from esomp_core.config import ConfigError, load_config
from esomp_core.plugins import PluginManager, make_plugin_manager, call_each
from esomp_core.site import Site, find_site


class Context:
    """What every command can reach: the site (opened on first use) and the plugin manager."""

    def __init__(self, site_path: str | None, pm: PluginManager):
        self.site_path = site_path
        self.pm = pm
        self._site: Site | None = None

    @property
    def site(self) -> Site:
        if self._site is None:
            try:
                self._site = Site.open(self.site_path, pm=self.pm)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._site


pass_context = click.make_pass_decorator(Context)


def pass_site(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for plugin commands: the first argument is the opened Site."""

    @pass_context
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        return fn(ctx.site, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return click.decorators.update_wrapper(wrapper, fn)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console = Console()
    if not console.is_terminal:  # files and pipes get a readable width, not 80 columns
        console = Console(width=140)
    console.print(table)


def _pre_scan_site(argv: Sequence[str]) -> str | None:
    """The --site given before the subcommand, needed to know which plugins (and so commands) to load."""
    for i, arg in enumerate(argv):
        if arg == "--site" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--site="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            break
    return os.environ.get("ESOMP_SITE")


def plugin_manager_for(site_path: str | None) -> PluginManager:
    try:
        config = load_config(find_site(site_path))
        return make_plugin_manager(load=config.plugins.load, disable=config.plugins.disable)
    except ConfigError:
        return make_plugin_manager()  # the command itself reports a bad or missing site


def make_cli(pm: PluginManager) -> click.Group:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--site", "site_path", envvar="ESOMP_SITE", metavar="DIR",
                  help="Site directory (default: $ESOMP_SITE, or the current directory if it holds esomp.toml).")
    @click.version_option(__version__, prog_name="esomp")
    @click.pass_context
    def cli(ctx: click.Context, site_path: str | None) -> None:
        """E-SOMP: collect, process, send, monitor and post a securities company's clearing day."""
        ctx.obj = Context(site_path, pm)

    @cli.group(invoke_without_command=True)
    @click.pass_context
    def bench(ctx: click.Context) -> None:
        """Benchmarks: each prints medians and same-run ratios (see BENCHMARKS.md).

        Without a subcommand, runs ``bench day`` (the seed's day) if a plugin provides it.
        """
        if ctx.invoked_subcommand is None:
            day = bench.commands.get("day")
            if day is None:
                raise click.UsageError("name a benchmark: " + ", ".join(sorted(bench.commands)))
            ctx.invoke(day)

    for plugin, error in call_each(pm, "register_commands", cli=cli):
        click.echo(f"warning: plugin {plugin} failed to add its commands: {error}", err=True)
    return cli


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    cli = make_cli(plugin_manager_for(_pre_scan_site(argv)))
    return cli.main(args=argv, prog_name="esomp")
