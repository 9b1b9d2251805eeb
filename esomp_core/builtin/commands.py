"""The core's commands: init, plugins, db, products, calendar."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from esomp_core import hookimpl
from esomp_core.calendar import parse_date, ymd
from esomp_core.cli import Context, json_option, pass_context, pass_site, print_json, print_table
from esomp_core.config import CONFIG_NAME, DIRECTORIES, ConfigError, load_config
from esomp_core.plugins import Registry, ownership
from esomp_core.site import Site, init_site


@hookimpl
def register_commands(cli: click.Group) -> None:
    for command in (init, plugins, db, products, calendar):
        cli.add_command(command)


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--name", help="Site name (default: the directory's name).")
@click.option("--force", is_flag=True, help="Keep an existing esomp.toml; create what is missing.")
def init(path: str, name: str | None, force: bool) -> None:
    """Create a site: esomp.toml, the nine working directories, and the database."""
    try:
        site = init_site(path, name=name, force=force)
    except (ConfigError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"site {site.config.site.name} ready at {site.root}")
    for key, label in site.directories().items():
        click.echo(f"  {key:18} {site.directory(key)}  ({label})")
    click.echo(f"  database           {site.repository.url}")


@click.command()
@json_option
@pass_context
def plugins(ctx: Context, as_json: bool) -> None:
    """List every plugin: name, distribution, version, enabled or not, what it owns, its hooks."""
    pm, registry = ctx.pm, None
    if ctx.site_path or _site_here():
        pm, registry = ctx.site.pm, ctx.site.registry
    owned = ownership(pm, registry or Registry.collect(pm), click.get_current_context().find_root().command)
    records = pm.records_with_hooks()
    if as_json:
        print_json([{**r.as_dict(), "owns": owned.get(r.name, {})} for r in records])
        return
    print_table("plugins", ["name", "distribution", "version", "enabled", "owns", "hooks"],
                [(r.name, r.distribution, r.version,
                  "yes" if r.enabled else ("FAILED: " + r.error if r.error else "no"),
                  "; ".join(f"{what}: {', '.join(keys)}" for what, keys in owned.get(r.name, {}).items()),
                  ", ".join(r.hooks)) for r in records])


@click.group()
def db() -> None:
    """The site's repository (database) and its migrations."""


@db.command()
@pass_site
def upgrade(site: Site) -> None:
    """Apply the schema migrations up to the newest."""
    site.repository.upgrade()
    click.echo(f"{site.repository.url}: at revision {site.repository.current_revision()}")


@db.command()
@pass_site
def current(site: Site) -> None:
    """Show the schema revision the database is at."""
    click.echo(site.repository.current_revision() or "(empty database: run `esomp db upgrade`)")


@db.command()
@json_option
@pass_site
def history(site: Site, as_json: bool) -> None:
    """Show each migration branch (the core's, each enabled plugin's) with its revisions, applied or not."""
    from esomp_core.repository.history import history_rows

    branches = site.repository.history()
    if as_json:
        print_json(branches)
        return
    print_table("migrations", ["branch", "revision", "applied", "description"], history_rows(branches))


@click.group()
def products() -> None:
    """The products master: products, institutions, securities accounts, classifications."""


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--encoding", help="The file's encoding (default: UTF-8 with or without BOM, else GBK).")
@json_option
@pass_site
def import_(site: Site, file: str, encoding: str | None, as_json: bool) -> None:
    """Create, update or disable products from a CSV file (all or nothing)."""
    from esomp_core.products import ImportError_, import_products, sync_classifications

    sync_classifications(site.repository, site.config.classifications)
    try:
        summary = import_products(site.repository, file, encoding=encoding)
    except ImportError_ as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        import attrs

        print_json(attrs.asdict(summary))
    else:
        click.echo(f"{file} (read as {summary.encoding}): {summary.created} created, {summary.updated} updated, "
                   f"{summary.disabled} disabled, {summary.accounts} accounts, {summary.institutions} new "
                   "institutions")


@products.command("list")
@click.option("--query", "-q", help="Part of a product code or name.")
@click.option("--institution", help="Institution code.")
@click.option("--classification", help="Classification code (its whole subtree).")
@click.option("--account", help="A securities account the product owns.")
@click.option("--status", type=click.Choice(["active", "disabled"]))
@click.option("--limit", type=int, default=None)
@json_option
@pass_site
def list_(site: Site, query, institution, classification, account, status, limit, as_json) -> None:
    """Find products by code or name, institution, classification, account or status."""
    from esomp_core.products import query_products

    rows = query_products(site.repository, text=query, institution=institution, classification=classification,
                          account=account, status=status, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} product(s)", ["code", "name", "institution", "classification", "status", "accounts"],
                [(r["code"], r["name"], r["institution"], r["classification"], r["status"],
                  " ".join(r["accounts"])) for r in rows])


@products.command("show")
@click.argument("code")
@json_option
@pass_site
def show(site: Site, code: str, as_json: bool) -> None:
    """Show one product with its institution and accounts."""
    from esomp_core.products import query_products

    rows = [r for r in query_products(site.repository, text=code) if r["code"] == code]
    if not rows:
        raise click.ClickException(f"no product {code!r}")
    if as_json:
        print_json(rows[0])
        return
    for key, value in rows[0].items():
        click.echo(f"{key:15} {' '.join(value) if isinstance(value, list) else value}")


@click.command()
@click.option("--date", "day", help="A date (YYYYMMDD); default: today's business date.")
@json_option
@pass_site
def calendar(site: Site, day: str | None, as_json: bool) -> None:
    """Show whether a date is a trading day (and why not), and the previous and next trading days."""
    cal = site.calendar
    try:
        date = parse_date(day) if day else cal.business_date(datetime.now())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--date") from None
    data = _calendar_answer(cal, date)
    if as_json:
        print_json(data)
    else:
        _print_calendar(data)


def _calendar_answer(cal, date) -> dict:
    """What the calendar says of ``date`` and its neighbouring trading days, and which of them it does not cover."""
    previous, following = cal.previous_trading_day(date), cal.next_trading_day(date)
    return {"date": ymd(date), "trading_day": cal.is_trading_day(date), "closed": cal.closed_because(date),
            "covered": cal.covers(date), "coverage": cal.coverage(), "previous": ymd(previous),
            "next": ymd(following),
            "not_covered": [ymd(d) for d in sorted({previous, date, following}) if not cal.covers(d)]}


def _print_calendar(data: dict) -> None:
    state = "trading day" if data["trading_day"] else f"not a trading day ({data['closed']})"
    click.echo(f"{data['date']}: {state}; previous {data['previous']}, next {data['next']}")
    if data["not_covered"]:
        # beyond the known closures the answer assumes no holidays: say so rather than guess quietly
        click.echo(f"warning: {', '.join(data['not_covered'])} not covered by the trading calendar (it knows "
                   f"{data['coverage']}): only weekends and [calendar] holidays are known closed there, so "
                   "these answers may be wrong; `esomp run` refuses such a date unless forced "
                   "(docs/configuration.md).", err=True)

def _site_here() -> bool:
    import os

    return bool(os.environ.get("ESOMP_SITE")) or Path(CONFIG_NAME).exists()
