"""`esomp ledger accounts|journal|balance|trial|close|export`."""
from __future__ import annotations

import csv
from pathlib import Path

import click

from esomp_core import json_option, pass_site, print_json, print_table

from esomp_ledger.errors import LedgerError
from esomp_ledger.journal import Account, accounts, add_accounts, close_day
from esomp_ledger.reports import balances, export_csv, export_dbf, journal, trial_balance

date_option = click.option("--date", "date", required=True, help="Business date, YYYYMMDD or YYYY-MM-DD.")


def _failing(fn):
    """Refusals print as a command error, not a traceback."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (LedgerError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@click.group("ledger")
def ledger() -> None:
    """The double-entry journal: accounts, postings, balances, the trial balance, the day's close and exports."""


@ledger.command("accounts")
@click.option("--load", "load", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Add or update accounts from a UTF-8 CSV with columns code,name,kind,currency[,market].")
@json_option
@pass_site
@_failing
def accounts_cmd(site, load, as_json) -> None:
    """The chart of accounts (with --load, after adding or updating accounts)."""
    if load:
        with load.open(encoding="utf-8", newline="") as fh:
            add_accounts(site, [Account(r["code"], r["name"], r["kind"], r.get("currency") or "CNY",
                                        r.get("market") or "") for r in csv.DictReader(fh)])
    rows = [{"code": a.code, "name": a.name, "kind": a.kind, "currency": a.currency, "market": a.market}
            for a in accounts(site)]
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} account(s)", ["code", "name", "kind", "currency", "market"],
                [tuple(r.values()) for r in rows])


@ledger.command("journal")
@date_option
@json_option
@pass_site
@_failing
def journal_cmd(site, date, as_json) -> None:
    """The day's postings in voucher order."""
    rows = journal(site, date)
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} line(s) on {date}", ["voucher", "line", "account", "side", "amount", "currency",
                                                   "memo", "reverses"],
                [(r["voucher"], r["line"], r["account"], r["side"], r["amount"], r["currency"], r["memo"],
                  r["reverses"]) for r in rows])


@ledger.command("balance")
@date_option
@json_option
@pass_site
@_failing
def balance_cmd(site, date, as_json) -> None:
    """Each account's balance before the day, the day's debits and credits, and its balance after."""
    rows = balances(site, date)
    if as_json:
        print_json(rows)
        return
    print_table(f"balances on {date}", ["account", "name", "kind", "currency", "opening", "debit", "credit",
                                        "closing"], [tuple(r.values()) for r in rows])


@ledger.command("trial")
@date_option
@json_option
@pass_site
@_failing
def trial_cmd(site, date, as_json) -> None:
    """The trial balance (试算平衡) per currency; exits 1 when it does not hold."""
    rows = trial_balance(site, date)
    if as_json:
        print_json(rows)
    else:
        print_table(f"trial balance on {date}", ["currency", "debit", "credit", "debit balances",
                                                 "credit balances", "balanced"], [tuple(r.values()) for r in rows])
    if not all(r["balanced"] for r in rows):
        raise click.exceptions.Exit(1)


@ledger.command("close")
@date_option
@click.option("--by", default="", help="Who closes the day (kept with the close).")
@json_option
@pass_site
@_failing
def close_cmd(site, date, by, as_json) -> None:
    """Close the day (日终): afterwards only reversals may be posted to it."""
    closed = close_day(site, date, by=by)
    if as_json:
        print_json({"date": date, "closed": True, "already_closed": not closed})
    else:
        click.echo(f"ledger day {date} {'closed' if closed else 'was closed already'}")


@ledger.command("export")
@date_option
@click.option("--format", "fmt", type=click.Choice(["csv", "dbf"]), default="csv", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; default ledger_DATE.csv (or .dbf) in the current directory.")
@json_option
@pass_site
@_failing
def export_cmd(site, date, fmt, output, as_json) -> None:
    """Write the day's postings for the counter system."""
    from esomp_ledger.journal import day_key

    output = output or Path(f"ledger_{day_key(date)}.{fmt}")
    count = (export_csv if fmt == "csv" else export_dbf)(site, date, output)
    if as_json:
        print_json({"date": day_key(date), "format": fmt, "path": str(output), "lines": count})
    else:
        click.echo(f"{count} line(s) written to {output}")
