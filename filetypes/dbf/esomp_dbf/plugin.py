"""The ``dbf`` plugin: ``esomp dbf info|cat`` and ``esomp bench dbf``."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import click

from esomp_core import hookimpl

from esomp_dbf.reader import VERSIONS, DbfError, DbfFile, Invalid


def _open(path: str, encoding: str) -> DbfFile:
    try:
        return DbfFile(path, encoding=encoding)
    except DbfError as exc:
        raise click.ClickException(str(exc)) from None


def info_dict(f: DbfFile) -> dict:
    return {
        "file": f.name,
        "version": f.version,
        "version_name": VERSIONS.get(f.version, "unknown"),
        "updated": list(f.updated),
        "records": f.count,
        "deleted": f.deleted_count(),
        "header_length": f.header_length,
        "record_length": f.record_length,
        "language_driver": f.language_driver,
        "eof_byte": f.has_eof,
        "fields": [
            {"name": x.name, "type": x.type, "length": x.length, "decimals": x.decimals, "offset": x.offset}
            for x in f.fields
        ],
    }


def _json_value(value, encoding: str):
    if isinstance(value, Invalid):
        return {"invalid": value.text(encoding), "reason": value.reason}
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(encoding, errors="backslashreplace")
    return value


def _text_value(value, encoding: str) -> str:
    if isinstance(value, Invalid):
        return f"<invalid {value.text(encoding)!r}>"
    if value is None:
        return ""
    return str(_json_value(value, encoding))


@click.group("dbf")
def dbf_group() -> None:
    """Inspect DBF files."""


@dbf_group.command("info")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--encoding", default="gbk", show_default=True)
def info_command(file: str, as_json: bool, encoding: str) -> None:
    """Header, fields, record and deleted counts, EOF byte and language driver of FILE."""
    with _open(file, encoding) as f:
        info = info_dict(f)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    yy, mm, dd = info["updated"]
    click.echo(f"file            {info['file']}")
    click.echo(f"version         0x{info['version']:02X} ({info['version_name']})")
    click.echo(f"last update     {yy:02d}-{mm:02d}-{dd:02d} (YY as stored)")
    click.echo(f"records         {info['records']} ({info['deleted']} deleted)")
    click.echo(f"header length   {info['header_length']}")
    click.echo(f"record length   {info['record_length']}")
    click.echo(f"language driver 0x{info['language_driver']:02X}")
    click.echo(f"EOF byte        {'present' if info['eof_byte'] else 'absent'}")
    click.echo(f"fields          {len(info['fields'])}")
    for x in info["fields"]:
        decimals = f".{x['decimals']}" if x["decimals"] else ""
        click.echo(f"  {x['name']:<11}{x['type']}{x['length']}{decimals:<4} offset {x['offset']}")


@dbf_group.command("cat")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of records.")
@click.option("--fields", default=None, help="Comma-separated field names to show, in that order.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Show at most N records.")
@click.option("--encoding", default="gbk", show_default=True)
def cat_command(file: str, as_json: bool, fields: str | None, limit: int | None, encoding: str) -> None:
    """Typed records of FILE with their deletion flag; values that do not parse are shown as invalid."""
    with _open(file, encoding) as f:
        try:
            names = [f.field(n.strip()).name for n in fields.split(",")] if fields else f.field_names
            count = f.count if limit is None else min(limit, f.count)
            rows = [(i, f.is_deleted(i), f.row(i, names)) for i in range(count)]
        except DbfError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        out = [
            {"_record": i, "_deleted": deleted, **{k: _json_value(v, encoding) for k, v in row.items()}}
            for i, deleted, row in rows
        ]
        click.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    click.echo("\t".join(["#", "deleted", *names]))
    for i, deleted, row in rows:
        click.echo("\t".join([str(i), "*" if deleted else "", *(_text_value(v, encoding) for v in row.values())]))


@click.command("dbf")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--records", default=200_000, show_default=True, help="Records in the generated SJSMX1-like file.")
@click.option("--accounts", default=4_000, show_default=True, help="Accounts, one destination each.")
@click.option("--key", default=None, help="Key field for FILES (default MXZQZH if present, else the first).")
@click.option("--repeat", default=3, show_default=True, help="Runs per measurement; the median is reported.")
@click.option("--no-typed", is_flag=True, help="Skip dbfread's typed read (the slowest row).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None, help="Where to write (e.g. /dev/shm).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_command(files, records, accounts, key, repeat, no_typed, workdir, as_json) -> None:
    """Split and scan FILES (or a generated SJSMX1-like file) and compare with dbfread, as medians."""
    from esomp_dbf.bench import run_bench

    try:
        results = run_bench(
            [Path(p) for p in files], records=records, accounts=accounts, key=key, repeat=repeat,
            typed=not no_typed, workdir=workdir,
        )
    except DbfError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for r in results:
        table = Table(
            title=f"{Path(r['file']).name}: {r['records']:,} records, {r['bytes'] / 1e6:.1f} MB, "
            f"split by {r['key']} into {r['destinations']:,} files (median of {r['repeat']})"
        )
        for column in ("measure", "seconds", "MB/s", "records/s"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        for name, row in r["results"].items():
            table.add_row(name, f"{row['seconds']:.3f}", f"{row['mb_per_s']:,.1f}", f"{row['records_per_s']:,.0f}")
        console.print(table)
        if r["dbfread"]:
            console.print(
                f"split vs dbfread raw read: {r['split_vs_dbfread_raw']:.1f}x faster "
                f"(in memory: {r['split_in_memory_vs_dbfread_raw']:.1f}x)"
            )
        else:
            console.print("dbfread is not installed: its rows are missing (pip install dbfread)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(dbf_group)
    bench = cli.commands.get("bench")
    if bench is None:

        @cli.group("bench")
        def bench() -> None:
            """Measure E-SOMP's hot paths."""

    bench.add_command(bench_command)
