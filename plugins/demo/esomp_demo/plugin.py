"""`esomp demo`: a whole clearing day on generated data, in a fresh site, with the seed's job structure."""
from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

import click

from esomp_core import create_site, hookimpl, ymd

# The seed's structure scaled to the demo: 4 batches of 5 processing jobs, each job a share of the products.
DEMO_TABLES = {
    "channels": {
        # The exchanges deliver into a directory per business date: names without a date are of that day.
        "szse": {"kind": "fs", "url": "exchange/szse/{date}"},
        "sse": {"kind": "fs", "url": "exchange/sse/{date}"},
        "site": {"kind": "fs", "url": "exchange/site/{date}"},
        # The outbox is a local folder that an FTP server or a shared drive serves read-only to the institutions:
        # packages are hard-linked into it, not copied (channels.md, transfer).
        "outbox": {"kind": "fs", "url": "outbox", "flag": "{name}.ok", "transfer": "link"},
    },
    "business": {"trust": {"collect_channels": ["szse", "sse", "site"], "jobs_per_batch": 5,
                           "delivery_channel": "outbox"}},
}


def create_demo_site(path: Path, products: int):
    tables = {**DEMO_TABLES, "business": {"trust": {**DEMO_TABLES["business"]["trust"],
                                                    "products_per_job": max(1, -(-products // 20))}}}
    return create_site(path, **tables)


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--dir", "directory", default="demo-site", show_default=True, type=click.Path(file_okay=False),
                  help="Where to create the demo site (replaced if it exists).")
    @click.option("--products", default=400, show_default=True, help="Trust products to generate.")
    @click.option("--date", "day", help="Business date (default: the last trading day).")
    @click.option("--workers", type=int, help="Worker processes (default: one per core).")
    @click.option("--seed", default=0, show_default=True)
    def demo(directory: str, products: int, day: str | None, workers: int | None, seed: int) -> None:
        """Create ./demo-site, generate an exchange day, run the whole plan, print the table."""
        from esomp_core import run_engine, show_status
        from esomp_gen import generate_day

        root = Path(directory).resolve()
        if root.exists():
            if not (root / "esomp.toml").exists():
                raise click.ClickException(f"{root} exists and is not an E-SOMP site: choose another --dir")
            shutil.rmtree(root)
        site = create_demo_site(root, products)
        date = day or ymd(site.calendar.current_trading_day(datetime.now()))
        click.echo(f"demo site {root}, business date {date}, {products} products")
        began = time.perf_counter()
        report = generate_day(site, date, products, seed=seed)
        click.echo(f"generated {len(report.files)} exchange files ({report.bytes / 1e6:,.1f} MB) "
                   f"in {time.perf_counter() - began:.1f} s")
        summary = run_engine(site, date, None, workers)
        show_status(site, date, False)
        outbox = root / "outbox"
        packages = sorted(p for p in outbox.rglob("*") if p.is_file() and not p.name.endswith(".ok"))
        click.echo(f"{len(packages)} files delivered under {outbox} (packages and manifests per institution/date)")
        click.echo(f"explore: esomp --site {root} jobs --query P00001 | esomp --site {root} status --date {date}")
        if summary.state != "succeeded":
            raise SystemExit(1)
