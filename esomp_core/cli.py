"""The ``esomp`` command line. The core's own commands and every plugin's arrive through register_commands."""
from __future__ import annotations

import errno
import importlib
import json
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import click

from esomp_core import __version__
from esomp_core.config import ConfigError, check_site_config, load_config
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
                site = Site.open(self.site_path, pm=self.pm)
                check_site_config(site)  # a bad value stops the command before it does anything
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
            self._site = site
        return self._site


pass_context = click.make_pass_decorator(Context)

DEBUG_HINT = "rerun with --debug or ESOMP_DEBUG=1 for the traceback"


def debug_wanted(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("ESOMP_DEBUG", "") not in ("", "0")


class ReportingGroup(click.Group):
    """The ``esomp`` group: an error a command does not handle becomes one line and exit code 1, no traceback
    (``--debug`` or ESOMP_DEBUG=1 lets it through)."""

    pm: PluginManager | None = None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        """"No such command" names the plugin that has it when that plugin is installed but not enabled."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            provider = disabled_provider(self.pm, args[0]) if args and self.pm is not None else None
            if provider is None:
                raise
            raise click.UsageError(
                f"No such command {args[0]!r}: it comes from plugin {provider.name} ({provider.distribution}), "
                "installed but not enabled for this site ([plugins] load or disable in esomp.toml, or "
                "ESOMP_LOAD_PLUGINS)", ctx) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debug_wanted(ctx):
                raise
            raise click.ClickException(describe_error(exc, ctx.obj)) from None


def disabled_provider(pm: PluginManager, command: str) -> Any:
    """The record of an installed plugin, not enabled here, whose ``register_commands`` adds ``command``."""
    for record in pm.records.values():
        if record.enabled or record.error:
            continue
        try:
            module = importlib.import_module(record.module.split(":")[0])
            scratch = click.Group()
            module.register_commands(cli=scratch)
        except Exception:  # a plugin that cannot even say its commands is not the answer
            continue
        if command in scratch.commands:
            return record
    return None


def describe_error(exc: BaseException, context: "Context | None" = None) -> str:
    """One line saying what failed and where: the file, the key, the database (password masked)."""
    from sqlalchemy.exc import DBAPIError

    from esomp_core.engine import RunLocked

    if isinstance(exc, (ConfigError, RunLocked)):
        return str(exc)
    if isinstance(exc, DBAPIError):
        return _database_error(exc, context)
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, UnicodeError):
        return f"{exc} (the text is not in the encoding expected; save it as UTF-8 or name its encoding)"
    if isinstance(exc, LookupError) and "encoding" in str(exc):
        return f"{exc} (use a name Python's codecs know, e.g. utf-8, gbk, gb18030)"
    return f"{type(exc).__name__}: {_one_line(str(exc))} ({DEBUG_HINT})"


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _os_error(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"no space left on device{where}: free space, then rerun (finished work is kept)"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded{where}: free space, then rerun (finished work is kept)"
    return f"{exc.filename or 'file'}: {exc.strerror or exc}" if exc.filename else _one_line(str(exc))


def _database_error(exc, context: "Context | None") -> str:
    """The database's own words, its URL with the password masked, and what to do for the usual cases."""
    message = _one_line(str(exc.orig) if exc.orig is not None else str(exc))
    hint = ""
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        hint = " (the schema is missing: run `esomp db upgrade`)"
    elif "locked" in message:
        hint = " (another process is writing to it: retry when it has finished)"
    return f"database {_masked_url(context)}: {message}{hint}"


def _masked_url(context: "Context | None") -> str:
    from sqlalchemy.engine import make_url

    site = getattr(context, "_site", None)
    if site is None:
        return "(unknown)"
    repository = site.__dict__.get("repository")  # the URL as opened, with a relative SQLite path resolved
    url = repository.url if repository is not None else site.config.database.url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: say so without echoing what may hold a password
        return "(the [database] url in esomp.toml)"


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
    except ConfigError:
        return make_plugin_manager()  # the command itself reports a bad or missing site
    return make_plugin_manager(load=config.plugins.load, disable=config.plugins.disable, source=config.source)


def make_cli(pm: PluginManager) -> click.Group:
    @click.group(cls=ReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--site", "site_path", envvar="ESOMP_SITE", metavar="DIR",
                  help="Site directory (default: $ESOMP_SITE, or the current directory if it holds esomp.toml).")
    @click.option("--debug", is_flag=True, help="Show the traceback of an error (also ESOMP_DEBUG=1).")
    @click.version_option(__version__, prog_name="esomp")
    @click.pass_context
    def cli(ctx: click.Context, site_path: str | None, debug: bool) -> None:
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

    cli.pm = pm
    for plugin, error in call_each(pm, "register_commands", cli=cli):
        click.echo(f"warning: plugin {plugin} failed to add its commands: {error}", err=True)
    return cli


def main(argv: Sequence[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        pm = plugin_manager_for(_pre_scan_site(argv))
    except ConfigError as exc:  # an unknown plugin name: no command may run with the wrong set of plugins
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    cli = make_cli(pm)
    return cli.main(args=argv, prog_name="esomp")
