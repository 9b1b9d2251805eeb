"""The esomp-ledger plugin: its migration branch, `esomp ledger ...` and `esomp bench ledger`."""
from __future__ import annotations

import click

from esomp_core import hookimpl

from esomp_ledger.models import MIGRATIONS


@hookimpl
def register_migrations(register) -> None:
    register(MIGRATIONS)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_ledger.bench import bench_ledger
    from esomp_ledger.commands import ledger

    cli.add_command(ledger)
    bench = cli.commands.get("bench")
    if bench is not None:
        bench.add_command(bench_ledger, "ledger")
