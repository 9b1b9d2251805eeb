"""`esomp bench day`: the 4,000-product trust day on disk and RAM disk, against the floor and the naive way;
`esomp bench engine`: the engine's own cost per job."""
from __future__ import annotations

import json
from typing import Any

import click

from esomp_core import hookimpl

STORAGES = {"disk": ("disk",), "ramdisk": ("ramdisk",), "both": ("disk", "ramdisk")}


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected product counts separated by commas, got {text!r}",
                                 param_hint="--scaling") from None
    if any(count < 20 for count in counts):
        raise click.BadParameter("each count must be at least 20", param_hint="--scaling")
    return counts


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def summary_rows(storages: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """The totals, the floor and the naive way: one row per measure, one column per storage."""
    def row(label: str, show) -> tuple[str, ...]:
        return (label, *(show(r) for r in storages.values()))

    rows = [
        row("directory", lambda r: f"{r['directory']} ({r['filesystem']['type']})"),
        row("input generated", lambda r: f"{r['input_files']} files, {mb(r['input_bytes'])} MB, "
                                         f"{seconds(r['generate_seconds'])} s"),
        row("machine load (1 min) before / after", lambda r: f"{r['load_average']['before']:.2f} / "
                                                              f"{r['load_average']['after']:.2f}"),
        row("total wall time s", lambda r: seconds(r["wall_seconds"])),
        row("CPU time s (process tree)", lambda r: seconds(r["cpu_seconds"])),
        row("peak memory MB (tree RSS)", lambda r: mb(r["peak_rss_bytes"])),
        row("peak anonymous memory MB (tree)", lambda r: mb(r["peak_anonymous_bytes"])),
        row("input MB", lambda r: mb(r["input_bytes"])),
        row("output files", lambda r: f"{r['output_files']:,}"),
        row("packages / package MB", lambda r: f"{r['packages']:,} / {mb(r['package_bytes'])}"),
        row("files/s", lambda r: f"{r['files_per_second']:,.0f}"),
        row("input MB/s", lambda r: f"{r['input_mb_per_second']:,.1f}"),
        row("floor: cat inputs s", lambda r: seconds(r["floor"]["read"]["seconds"])),
        row("floor: cp -a output tree s", lambda r: seconds(r["floor"]["write"]["seconds"])),
        row("floor: tar | zstd -3 -T0 s", lambda r: seconds(r["floor"]["compress"]["seconds"])),
        row("floor: total s", lambda r: seconds(r["floor"]["seconds"])),
        row("ours / floor (medians' ratio)", lambda r: f"{r['ratios']['total_over_floor']:.2f}x"),
        row("ours / floor, run by run", lambda r: " / ".join(f"{x['total_over_floor']:.2f}" for x in r["runs"])
            + f"x (median {r['ratios']['median_run_total_over_floor']:.2f}x)"),
    ]
    if all("naive" in r for r in storages.values()):
        rows += [
            row("naive: dbfread every input s", lambda r: seconds(r["naive"]["read_seconds"])),
            row("naive: dbf write + copy + tar.zst", lambda r: (
                f"{1000 * r['naive']['per_product_seconds']:.1f} ms/product x {r['naive']['products']:,}"
                + (f" (measured on {r['naive']['products_measured']}, extrapolated linearly)"
                   if r["naive"]["extrapolated"] else ""))),
            row("naive: total s", lambda r: seconds(r["naive"]["total_seconds"])),
            row("naive / ours", lambda r: f"{r['ratios']['naive_over_total']:.1f}x"),
        ]
    return rows


def print_report(data: dict[str, Any]) -> None:
    from esomp_core import print_table

    storages = data["storages"]
    for storage, result in storages.items():
        print_table(f"{storage}: {data['products']:,} products, profile {data['profile']}, "
                    f"{result['directory']} ({result['filesystem']['type']} on {result['filesystem']['device']})"
                    + (f", medians of {data['repeat']} runs" if data["repeat"] > 1 else ""),
                    ["stage", "group", "jobs", "seconds", "files", "records", "size MB"],
                    [(line["stage"], line["group"], line["jobs"], seconds(line["seconds"]), f"{line['files']:,}",
                      f"{line['records']:,}", mb(line["bytes"])) for line in result["lines"]])
    m = data["machine"]
    print_table(f"the day vs the floor and the naive way, same generated day, same run "
                f"({m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB, {m['cpu']})",
                ["measure", *storages], summary_rows(storages))
    if data["scaling"]:
        print_table(f"scaling ({data['scaling'][0]['storage']})",
                    ["products", "wall s", "s per 1,000 products", "CPU s", "peak memory MB", "peak anonymous MB"],
                    [(f"{s['products']:,}", seconds(s["wall_seconds"]), seconds(s["seconds_per_1000_products"]),
                      seconds(s["cpu_seconds"]), mb(s["peak_rss_bytes"]), mb(s["peak_anonymous_bytes"]))
                     for s in data["scaling"]])


@click.command("day")
@click.option("--products", default=4000, show_default=True, help="Trust products in the generated day.")
@click.option("--profile", default="seed-day", show_default=True, help="Generator profile.")
@click.option("--storage", type=click.Choice(sorted(STORAGES)), default="both", show_default=True,
              help="Working directories on disk (the temp dir, or --workdir), the RAM disk (/dev/shm), or both.")
@click.option("--workdir", type=click.Path(file_okay=False), help="Where the disk runs go (default: the temp dir).")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--naive-products", default=40, show_default=True,
              help="Products the naive way runs on, extrapolated linearly (0: skip it).")
@click.option("--scaling", default="", help="Product counts for a scaling series, e.g. 1000,2000,4000.")
@click.option("--repeat", default=1, show_default=True, help="Runs per storage; medians are reported.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write every figure to this file.")
def day_cmd(products: int, profile: str, storage: str, workdir: str | None, workers: int | None,
            naive_products: int, scaling: str, repeat: int, json_file: str | None) -> None:
    """The seed's day (generate, collect, process, send) timed on disk and RAM disk, with the floor (cat, cp -a,
    tar | zstd) and the naive way (dbfread + dbf per product) on the same generated day."""
    from esomp_bench.day import BenchError, bench_day

    if repeat < 1:
        raise click.BadParameter("at least 1", param_hint="--repeat")
    if naive_products < 0:
        raise click.BadParameter("0 or more", param_hint="--naive-products")
    try:
        data = bench_day(products=products, profile=profile, storages=STORAGES[storage], workers=workers,
                         naive_products=naive_products, scaling=_counts(scaling), repeat=repeat, workdir=workdir,
                         progress=lambda text: click.echo(text, err=True))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    print_report(data)
    if json_file:
        with open(json_file, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
        click.echo(f"figures written to {json_file}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from esomp_bench.engine_bench import engine_cmd

    cli.commands["bench"].add_command(day_cmd, "day")
    cli.commands["bench"].add_command(engine_cmd, "engine")
