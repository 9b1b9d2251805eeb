"""The dashboard's commands (`esomp serve`, `esomp users add|passwd|role|remove|list|audit`, `esomp bench
dashboard`) and its monitor of login lockouts."""
from __future__ import annotations

from typing import Any, Callable

import click

from esomp_core import ConfigTable, Monitor, hookimpl, json_option, pass_site, print_json, print_table

from esomp_dashboard import users as store


def logins_monitor() -> Monitor:
    from esomp_dashboard.logins import SOURCE, lockout_findings

    return Monitor(SOURCE, lockout_findings, every=60,
                   description="dashboard logins locked out after repeated failures (resolved when the lockout ends)")


@hookimpl
def register_monitors(register) -> None:
    register(logins_monitor())


@hookimpl
def register_migrations(register) -> None:
    from esomp_dashboard.tables import MIGRATIONS

    register(MIGRATIONS)


@hookimpl
def register_config(register) -> None:
    register(ConfigTable("dashboard", "the web dashboard's address, sessions and login limits"))


def _user_change(site, action: str, username: str, change: Callable[[], Any],
                 detail: str | Callable[[Any], str] | None = None) -> None:
    """Run one change to the users, audited with its outcome; a refused change becomes the command's error.
    ``detail`` is what the audit says of a done change, or a function of the change's result that says it."""
    from esomp_dashboard import audit, users

    try:
        result = change()
    except users.UserError as exc:
        audit.record(site.repository, actor=audit.cli_actor(), action=action, target=f"user {username}",
                     outcome="error", origin="cli", detail=str(exc))
        raise click.ClickException(str(exc)) from None
    audit.record(site.repository, actor=audit.cli_actor(), action=action, target=f"user {username}",
                 outcome="ok", origin="cli", detail=detail(result) if callable(detail) else detail)


def _password_option(fn):
    return click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
                        help="The password (asked for when not given; at least 8 characters).")(fn)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(users_group)
    bench = cli.commands.get("bench")
    if isinstance(bench, click.Group):
        bench.add_command(bench_dashboard)


@click.command()
@click.option("--host", help="Address to bind (default: [dashboard] host, else 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: [dashboard] port, else 8710).")
@pass_site
def serve(site, host: str | None, port: int | None) -> None:
    """Serve the dashboard: wall screen, job monitor, job detail, alerts."""
    import uvicorn

    from esomp_dashboard.app import create_app
    from esomp_dashboard.config import dashboard_options
    from esomp_dashboard.secret import SecretError

    options = dashboard_options(site)
    _warn_before_serving(site)
    try:
        app = create_app(site, options)
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(app, host=host or options.host, port=port or options.port, log_level="info",
                timeout_graceful_shutdown=3)


def _warn_before_serving(site) -> None:
    """Say what would keep operators out (no users yet) or let others in (a database others may read)."""
    from esomp_dashboard.secret import open_database_warning

    if not store.list_users(site.repository):
        click.echo("warning: no dashboard users yet; add one with `esomp users add NAME --role operator`", err=True)
    open_database = open_database_warning(site.repository)
    if open_database:
        click.echo(f"warning: {open_database}", err=True)


@click.group("users")
def users_group() -> None:
    """Dashboard users (roles: viewer, operator)."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(store.ROLES), default="viewer", show_default=True)
@_password_option
@pass_site
def users_add(site, username: str, role: str, password: str) -> None:
    """Add a user."""
    _user_change(site, "user.add", username, lambda: store.add_user(site.repository, username, password, role),
                 f"role {role}")
    click.echo(f"added {username} ({role})")


@users_group.command("passwd")
@click.argument("username")
@click.option("--role", type=click.Choice(store.ROLES), help="Also change the role.")
@_password_option
@pass_site
def users_passwd(site, username: str, role: str | None, password: str) -> None:
    """Set a user's password (and optionally role); the user's sessions end."""
    _user_change(site, "user.passwd", username,
                 lambda: store.set_password(site.repository, username, password, role),
                 f"and role {role}" if role else None)
    click.echo(f"password of {username} changed; their sessions ended")


@users_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(store.ROLES))
@pass_site
def users_role(site, username: str, role: str) -> None:
    """Change a user's role; the user's sessions end."""
    _user_change(site, "user.role", username, lambda: store.set_role(site.repository, username, role),
                 lambda before: f"role {before} -> {role}")
    click.echo(f"{username} is now a {role}; their sessions ended")


@users_group.command("remove")
@click.argument("username")
@pass_site
def users_remove(site, username: str) -> None:
    """Remove a user; the user's sessions end."""
    _user_change(site, "user.remove", username, lambda: store.remove_user(site.repository, username))
    click.echo(f"removed {username}; their sessions ended")


@users_group.command("audit")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--actor", help="Only this user's (or account's) actions.")
@click.option("--action", help="Only this action (login, logout, batch.pause, job.rerun, user.role, ...).")
@json_option
@pass_site
def users_audit(site, limit: int, actor: str | None, action: str | None, as_json: bool) -> None:
    """The audit trail, newest first: logins, logouts, operator actions and user changes."""
    from esomp_dashboard import audit

    rows = audit.entries(site.repository, limit=limit, actor=actor, action=action)
    if as_json:
        print_json(rows)
    else:
        print_table(f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}",
                    ["at", "actor", "action", "target", "outcome", "from", "reason", "ticket", "detail"],
                    [(f"{r['at']:%Y-%m-%d %H:%M:%S}", r["actor"], r["action"], r["target"], r["outcome"],
                      r["origin"], r["reason"] or "", r["ticket"] or "", r["detail"] or "") for r in rows])


@users_group.command("list")
@json_option
@pass_site
def users_list(site, as_json: bool) -> None:
    """List users and roles."""
    rows = store.list_users(site.repository)
    if as_json:
        print_json(rows)
    else:
        print_table("dashboard users", ["user", "role", "created", "updated"],
                    [(r["username"], r["role"], f"{r['created_at']:%Y-%m-%d %H:%M}",
                      f"{r['updated_at']:%Y-%m-%d %H:%M}") for r in rows])


@click.command("dashboard")
@click.option("--products", default=4000, show_default=True, help="Products in the synthetic day.")
@click.option("--requests", "count", default=200, show_default=True, help="Requests per API endpoint.")
@json_option
def bench_dashboard(products: int, count: int, as_json: bool) -> None:
    """Overview load time and API p50/p99 with a 4,000-product day in a scratch repository."""
    from esomp_dashboard.bench import run_bench

    result = run_bench(products=products, requests=count)
    if as_json:
        print_json(result)
    else:
        click.echo(f"dashboard bench: {products} products, {result['jobs']} jobs; overview data load "
                   f"median {result['overview_ms']:.1f} ms (max {result['overview_max_ms']:.1f} ms) "
                   f"over {result['repeats']} loads")
        print_table("API latency, logged in", ["endpoint", "p50 ms", "p99 ms", "requests"],
                    [(name, f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", r["requests"])
                     for name, r in result["endpoints"].items()])
