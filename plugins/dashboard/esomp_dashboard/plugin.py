"""The dashboard's commands: `esomp serve`, `esomp users add|passwd|list`, `esomp bench dashboard`."""
from __future__ import annotations

import click

from esomp_core import hookimpl
from esomp_core.cli import json_option, pass_site, print_json, print_table


def _password_option(fn):
    return click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
                        help="The password (asked for when not given; at least 8 characters).")(fn)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_dashboard import users as store

    @cli.command()
    @click.option("--host", help="Address to bind (default: [dashboard] host, else 127.0.0.1).")
    @click.option("--port", type=int, help="Port (default: [dashboard] port, else 8710).")
    @pass_site
    def serve(site, host: str | None, port: int | None) -> None:
        """Serve the dashboard: wall screen, job monitor, job detail, alerts."""
        import uvicorn

        from esomp_dashboard.app import create_app
        from esomp_dashboard.config import dashboard_options

        options = dashboard_options(site)
        if not store.list_users(site.repository):
            click.echo("warning: no dashboard users yet; add one with `esomp users add NAME --role operator`",
                       err=True)
        app = create_app(site, options)
        uvicorn.run(app, host=host or options.host, port=port or options.port, log_level="info",
                    timeout_graceful_shutdown=3)

    @cli.group()
    def users() -> None:
        """Dashboard users (roles: viewer, operator)."""

    @users.command("add")
    @click.argument("username")
    @click.option("--role", type=click.Choice(store.ROLES), default="viewer", show_default=True)
    @_password_option
    @pass_site
    def users_add(site, username: str, role: str, password: str) -> None:
        """Add a user."""
        try:
            store.add_user(site.repository, username, password, role)
        except store.UserError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"added {username} ({role})")

    @users.command("passwd")
    @click.argument("username")
    @click.option("--role", type=click.Choice(store.ROLES), help="Also change the role.")
    @_password_option
    @pass_site
    def users_passwd(site, username: str, role: str | None, password: str) -> None:
        """Set a user's password (and optionally role)."""
        try:
            store.set_password(site.repository, username, password, role)
        except store.UserError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"password of {username} changed")

    @users.command("list")
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

    bench = cli.commands.get("bench")
    if isinstance(bench, click.Group):
        @bench.command("dashboard")
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
