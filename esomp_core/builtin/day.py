"""The day's commands: plan, run, status, jobs, batch pause|resume, rerun, cancel."""
from __future__ import annotations

from datetime import datetime

import click

from esomp_core import hookimpl
from esomp_core.calendar import parse_date, ymd
from esomp_core.cli import json_option, pass_site, print_json, print_table
from esomp_core.config import ConfigError
from esomp_core.site import Site


def business_date(site: Site, day: str | None) -> str:
    if day:
        try:
            return ymd(parse_date(day))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--date") from None
    return ymd(site.calendar.current_trading_day(datetime.now()))


date_option = click.option("--date", "day", metavar="YYYYMMDD",
                           help="Business date (default: the current trading day, by the site's day-change time).")

FORCED_RULE = "calendar.forced_run"


def force_options(command):
    """--force, --reason and --by: run a date the calendar refuses (not a trading day, or not covered)."""
    command = click.option("--by", "user", help="Operator forcing the run (default: the login name).")(command)
    command = click.option("--reason", help="Why a refused date runs anyway (required with --force).")(command)
    return click.option("--force", is_flag=True,
                        help="Run even if the date is not a trading day or not covered; recorded as an alert.")(command)


def check_run_day(site: Site, date: str, force: bool, reason: str | None, user: str | None) -> None:
    """Refuse a date the trading calendar says not to run, unless forced; a forced run is recorded."""
    problem = site.calendar.run_day_problem(parse_date(date))
    if problem is None:
        return
    if not force:
        raise click.ClickException(f"{problem}. Refusing to run it; to run it anyway (recorded): "
                                   f"--force --reason \"why\"")
    if not reason or not reason.strip():
        raise click.UsageError("--force needs --reason: why this date runs anyway (it is recorded)")
    import getpass

    operator = user or getpass.getuser()
    record_forced_run(site, date, f"{problem}; run forced by {operator}: {reason.strip()}")
    click.echo(f"warning: {problem}; running it as forced by {operator} (recorded as alert {FORCED_RULE})",
               err=True)


def record_forced_run(site: Site, date: str, message: str) -> None:
    """An alert for the date: operators see it (alerts list, dashboard, notifications, `esomp status`) and ack it.

    Forcing the date again updates the same alert (count, last seen, the latest message)."""
    from esomp_core.alerts import sync
    from esomp_core.model import Finding

    sync(site, f"{FORCED_RULE}:{date}", [Finding(FORCED_RULE, date, "warning", message)], datetime.now())


def forced_runs(site: Site, date: str) -> list[dict]:
    """The forced-run records of ``date``: who, when, why (in the message), and whether acknowledged."""
    from sqlalchemy import select

    from esomp_core.repository.models import Alert as AlertRow

    with site.repository.session() as s:
        rows = s.scalars(select(AlertRow).where(AlertRow.rule == FORCED_RULE, AlertRow.subject == date)).all()
        return [{"alert": r.id, "message": r.message, "first_seen": r.first_seen, "last_seen": r.last_seen,
                 "count": r.count, "state": r.state} for r in rows]


def run_engine(site: Site, date: str, executor: str | None, workers: int | None, quiet: bool = False):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from esomp_core.engine import DONE, Engine, RunLocked
    from esomp_core.plan import PlanError

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[states]}"), TimeElapsedColumn(), disable=quiet) as progress:
        task = progress.add_task(f"clearing day {date}", total=None, states="")

        def on_change(counts: dict[str, int]) -> None:
            done = sum(n for state, n in counts.items() if state in DONE)
            progress.update(task, total=sum(counts.values()), completed=done,
                            states=" ".join(f"{state}={n}" for state, n in sorted(counts.items())))

        try:
            return Engine(site, date, executor=executor, workers=workers, on_change=on_change).run()
        except (RunLocked, PlanError, ConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


def show_status(site: Site, date: str, as_json: bool) -> None:
    from esomp_core.status import fmt_bytes, fmt_seconds, run_status

    try:
        status = run_status(site, date)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    status["forced"] = forced_runs(site, date)
    if as_json:
        print_json(status)
        return
    for forced in status["forced"]:
        click.echo(f"FORCED at {forced['last_seen']:%Y-%m-%d %H:%M:%S} (alert {forced['alert']}, "
                   f"{forced['state']}): {forced['message']}")
    print_table(f"clearing day {date}: {status['state']}  "
                + " ".join(f"{k}={v}" for k, v in sorted(status["counts"].items())),
                ["stage", "group", "jobs", "seconds", "files", "records", "size", "states"],
                [(line["stage"], line["group"], line["jobs"], fmt_seconds(line["seconds"]), f"{line['files']:,}",
                  f"{line['records']:,}", fmt_bytes(line["bytes"]), ",".join(line["states"]))
                 for line in status["lines"]])
    click.echo(f"wall time {fmt_seconds(status['wall_seconds'])} s"
               + (f"; paused batches {status['paused_batches']}" if status["paused_batches"] else ""))
    for failed in status["failed"]:
        click.echo(f"FAILED job {failed['id']} {failed['name']}: {failed['error']}", err=True)


def _names(jobs) -> str:
    """A job list short enough for a table cell."""
    return ", ".join(jobs) if len(jobs) <= 3 else f"{len(jobs)} jobs"


@hookimpl
def register_commands(cli: click.Group) -> None:
    for command in (plan, run, status, jobs, batch, rerun, cancel):
        cli.add_command(command)


@click.command()
@date_option
@json_option
@pass_site
def plan(site: Site, day: str | None, as_json: bool) -> None:
    """Show the day's plan: every job, its batch, category and dependencies."""
    from esomp_core.plan import PlanError, build_plan

    date = business_date(site, day)
    try:
        specs = build_plan(site, date)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        print_json([{"name": s.name, "stage": s.stage, "business_type": s.business_type, "batch": s.batch,
                     "category": s.category, "channel": s.channel, "products": len(s.products),
                     "depends_on": list(s.depends_on), "after": list(s.after)} for s in specs])
        return
    print_table(f"plan for {date}: {len(specs)} jobs", ["job", "stage", "batch", "category", "products",
                                                        "depends on", "after"],
                [(s.name, s.stage, s.batch, s.category, len(s.products) or "", _names(s.depends_on),
                  _names(s.after)) for s in specs])


@click.command()
@date_option
@click.option("--executor", help="inline (debugging) or local (process pool, default) or a plugin's.")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--quiet", is_flag=True, help="No live progress display.")
@force_options
@json_option
@pass_site
def run(site: Site, day: str | None, executor: str | None, workers: int | None, quiet: bool, force: bool,
        reason: str | None, user: str | None, as_json: bool) -> None:
    """Run (or continue) the business date's plan, then print the measurement table.

    A date that is not a trading day (or that the calendar does not cover) is refused unless --force."""
    date = business_date(site, day)
    check_run_day(site, date, force, reason, user)
    summary = run_engine(site, date, executor, workers, quiet=quiet or as_json)
    show_status(site, date, as_json)
    if summary.state != "succeeded":
        raise SystemExit(1)


@click.command()
@date_option
@json_option
@pass_site
def status(site: Site, day: str | None, as_json: bool) -> None:
    """The seed's table: collection per channel, processing and sending per batch, totals."""
    show_status(site, business_date(site, day), as_json)


@click.command()
@date_option
@click.option("--query", "-q", help="Part of a job name, a product code, a category, or a job id.")
@click.option("--category", help="Part of a category, e.g. 信托/加工.")
@click.option("--state", type=click.Choice(["pending", "waiting", "running", "succeeded", "failed", "paused",
                                            "cancelled", "skipped"]))
@click.option("--limit", type=int, default=200)
@json_option
@pass_site
def jobs(site: Site, day, query, category, state, limit, as_json) -> None:
    """Find jobs quickly by part of a name, product, category or id (all dates unless --date)."""
    from esomp_core.status import fmt_seconds, jobs_query

    date = business_date(site, day) if day else None
    rows = jobs_query(site, date, query=query, category=category, state=state, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(f"{len(rows)} job(s)", ["id", "date", "job", "batch", "category", "state", "seconds", "files",
                                        "error"],
                [(r["id"], r["date"], r["name"], r["batch"], r["category"], r["state"], fmt_seconds(r["seconds"]),
                  r["files"], r["error"] or "") for r in rows])


@click.group()
def batch() -> None:
    """Pause or resume a batch: jobs not yet started wait; running ones finish."""


@batch.command()
@click.argument("date")
@click.argument("number", type=int)
@pass_site
def pause(site: Site, date: str, number: int) -> None:
    """Pause batch NUMBER of business date DATE."""
    from esomp_core.engine import pause_batch

    _change_batch(pause_batch, site, date, number)
    click.echo(f"batch {number} of {date} paused")


@batch.command()
@click.argument("date")
@click.argument("number", type=int)
@pass_site
def resume(site: Site, date: str, number: int) -> None:
    """Resume batch NUMBER of business date DATE."""
    from esomp_core.engine import resume_batch

    _change_batch(resume_batch, site, date, number)
    click.echo(f"batch {number} of {date} resumed")


def _change_batch(change, site: Site, date: str, number: int) -> None:
    """Pause or resume a batch; a date or batch with no run is the command's error."""
    try:
        change(site, business_date(site, date), number)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.argument("date")
@click.option("--job", "job_id", type=int, help="Rerun this job and everything downstream.")
@click.option("--failed", is_flag=True, help="Rerun every failed, skipped or cancelled job and downstream.")
@click.option("--executor")
@click.option("--workers", type=int)
@click.option("--no-run", is_flag=True, help="Only put the jobs back to pending.")
@force_options
@pass_site
def rerun(site: Site, date: str, job_id, failed, executor, workers, no_run, force, reason, user) -> None:
    """Rerun failed jobs (or one job) and everything downstream of them.

    A date that is not a trading day (or that the calendar does not cover) is refused unless --force."""
    from esomp_core.engine import reset_for_rerun

    if not job_id and not failed:
        raise click.UsageError("say what to rerun: --job ID or --failed")
    date = business_date(site, date)
    check_run_day(site, date, force, reason, user)
    try:
        names = reset_for_rerun(site, date, job_id=job_id, failed=failed)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(names)} job(s) back to pending")
    if not no_run and names:
        summary = run_engine(site, date, executor, workers)
        show_status(site, date, False)
        if summary.state != "succeeded":
            raise SystemExit(1)


@click.command()
@click.argument("date")
@pass_site
def cancel(site: Site, date: str) -> None:
    """Cancel the day: jobs not yet started are cancelled; running ones finish."""
    from esomp_core.engine import cancel_run

    try:
        cancel_run(site, business_date(site, date))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"run of {date} cancelling")
