"""The ``dbf`` plugin: ``esomp dbf info|cat`` and ``esomp bench dbf``."""
from __future__ import annotations

import datetime
import decimal
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
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact, as stored: a JSON number would go through float in most readers
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
        try:
            info = info_dict(f)  # counting deleted records checks every deletion flag
        except DbfError as exc:
            raise click.ClickException(str(exc)) from None
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
        # allow_nan=False: NaN and Infinity are not JSON; the reader never returns them, and this keeps it so.
        click.echo(json.dumps(out, ensure_ascii=False, indent=1, allow_nan=False))
        return
    click.echo("\t".join(["#", "deleted", *names]))
    for i, deleted, row in rows:
        click.echo("\t".join([str(i), "*" if deleted else "", *(_text_value(v, encoding) for v in row.values())]))


def _counts(ctx, param, value: str) -> list[int]:
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"expected positive counts separated by commas, not {value!r}")
    return counts


@click.command("dbf")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--records", default=200_000, show_default=True, help="Records in the generated SJSMX1-like file.")
@click.option("--accounts", default=4_000, show_default=True, help="Distinct accounts in the generated file.")
@click.option("--destinations", default="200,4000", show_default=True, callback=_counts,
              help="Destination counts to split into (accounts spread round-robin), comma-separated.")
@click.option("--key", default=None, help="Key field for FILES (default MXZQZH if present, else the first).")
@click.option("--repeat", default=3, show_default=True, help="Runs per measurement; the median is reported.")
@click.option("--no-typed", is_flag=True, help="Skip dbfread's typed read (the slowest row).")
@click.option("--no-per-file", is_flag=True, help="Skip the 'temp name per file' rows (only staged splits).")
@click.option("--no-floor", is_flag=True, help="Skip the floor rows (the output files written from memory).")
@click.option("--layout", type=click.Choice(["dirs", "flat"]), default="dirs", show_default=True,
              help="dirs: DEST/NAME, a directory per destination (the product layout); flat: DEST.dbf in one.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Disk directory to write under [default: the system temporary directory].")
@click.option("--ramdisk", default="auto", show_default=True,
              help="RAM disk directory for the RAM disk rows ('auto': /dev/shm if writable; 'none': skip).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def bench_command(files, records, accounts, destinations, key, repeat, no_typed, no_per_file, no_floor, layout,
                  workdir, ramdisk, as_json) -> None:
    """Split FILES (or a generated SJSMX1-like file) in memory and into files on disk and on a RAM disk, and
    compare each with dbfread's raw read of the same file, as medians."""
    from esomp_dbf.bench import EXPLAIN, default_ramdisk, run_bench

    ramdisk = {"auto": default_ramdisk(), "none": None}.get(ramdisk, ramdisk)
    try:
        results = run_bench(
            [Path(p) for p in files], records=records, accounts=accounts, destinations=destinations, key=key,
            repeat=repeat, typed=not no_typed, workdir=workdir, ramdisk=ramdisk, per_file=not no_per_file,
            layout=layout, floor=not no_floor,
        )
    except DbfError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))  # one line per measure in a log or a pipe
    for line in EXPLAIN:
        console.print(line, highlight=False)
    for r in results:
        places = ", ".join(f"{where} {path}" for where, path in r["places"].items())
        table = Table(
            title=f"{Path(r['file']).name}: {r['records']:,} records, {r['bytes'] / 1e6:.1f} MB, "
            f"{r['distinct_keys']:,} distinct {r['key']}, files {r['layout']}, median of {r['repeat']} ({places})"
        )
        for column in ("measure", "seconds", "MB/s", "records/s", "x dbfread"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        for name, row in r["results"].items():
            ratio = row["x_dbfread_raw"]
            table.add_row(name, f"{row['seconds']:.3f}", f"{row['mb_per_s']:,.1f}", f"{row['records_per_s']:,.0f}",
                          "" if ratio is None else f"{ratio:.1f}x")
        console.print(table)
        if not r["dbfread"]:
            console.print("dbfread is not installed: its rows and the ratios are missing (pip install dbfread)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(dbf_group)
    bench = cli.commands.get("bench")
    if bench is None:

        @cli.group("bench")
        def bench() -> None:
            """Measure E-SOMP's hot paths."""

    bench.add_command(bench_command)
