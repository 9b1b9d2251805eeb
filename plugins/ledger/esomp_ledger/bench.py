"""`esomp bench ledger`: bulk posting of a million voucher lines on SQLite and PostgreSQL, against the plain ORM
way (``session.add_all``) in the same run; medians and the ratio."""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from esomp_core import Job, json_option

DEFAULT_ADMIN_URL = os.environ.get("ESOMP_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
ACCOUNT_CODES = ("1001", "2001", "3001", "4001", "5001")


def bench_vouchers(lines: int, per_voucher: int):
    """``lines`` lines in balanced vouchers: debits of n.n1 on rotating accounts, one credit for their sum."""
    from esomp_ledger import Voucher, credit, debit

    vouchers, made = [], 0
    while made < lines:
        size = min(per_voucher, lines - made)
        debits = [debit(ACCOUNT_CODES[(made + i) % 4], Decimal(made + i) / 100 + Decimal("0.10"))
                  for i in range(max(size - 1, 1))]
        total = sum((line.amount for line in debits), Decimal(0))
        vouchers.append(Voucher([*debits, credit(ACCOUNT_CODES[4], total)], memo=f"bench {len(vouchers)}"))
        made += len(debits) + 1
    return vouchers


def _open_site(root: Path, url: str | None):
    from esomp_core import create_site, make_plugin_manager

    import esomp_ledger.plugin
    from esomp_ledger import Account, add_accounts

    pm = make_plugin_manager(entry_points=False)
    pm.register(esomp_ledger.plugin, name="ledger")
    site = create_site(root, pm, **({"database": {"url": url}} if url else {}))
    site.repository.upgrade()
    add_accounts(site, [Account(code, f"bench {code}", "company") for code in ACCOUNT_CODES])
    return site


def _time_fast(site, vouchers, repeat: int) -> list[float]:
    from esomp_ledger import post_vouchers

    times = []
    for run in range(repeat):
        job = Job(id=1000 + run, date="20260105", name="bench", stage="post", business_type="bench")
        start = time.perf_counter()
        post_vouchers(site, job, vouchers)
        times.append(time.perf_counter() - start)
        post_vouchers(site, job, [])  # an empty rerun removes the run's vouchers, outside the timing
    return times


def _time_orm(site, vouchers, repeat: int) -> list[float]:
    """What one would write without the ledger's bulk path: ORM objects for every voucher and line."""
    from esomp_ledger import post_vouchers, to_fen
    from esomp_ledger.models import LedgerLine, LedgerVoucher

    times = []
    for run in range(repeat):
        job_id = 2000 + run
        start = time.perf_counter()
        with site.repository.session() as s:
            s.add_all([LedgerVoucher(number=f"orm{job_id}-{seq}", date="20260105", job_id=job_id, seq=seq,
                                     memo=v.memo, reason="", posted_at=datetime.now(),
                                     lines=[LedgerLine(line_no=n, account=l.account, side=l.side,
                                                       amount_fen=to_fen(l.amount), currency=l.currency,
                                                       memo=l.memo) for n, l in enumerate(v.lines, 1)])
                       for seq, v in enumerate(vouchers, 1)])
        times.append(time.perf_counter() - start)
        post_vouchers(site, Job(id=job_id, date="20260105", name="orm", stage="post", business_type="bench"), [])
    return times


def _postgres_database(admin_url: str):
    from sqlalchemy import create_engine, make_url, text

    admin = make_url(admin_url)
    name = f"esomp_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return admin.set(database=name).render_as_string(hide_password=False), drop


def measure(backend: str, url: str | None, lines: int, per_voucher: int, repeat: int,
            orm_lines: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"esomp-bench-ledger-{backend}-"))
    try:
        site = _open_site(root / "site", url)
        fast = _time_fast(site, bench_vouchers(lines, per_voucher), repeat)
        orm_count = min(orm_lines, lines)
        orm = _time_orm(site, bench_vouchers(orm_count, per_voucher), repeat)
        site.repository.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    fast_median, orm_median = statistics.median(fast), statistics.median(orm) * lines / orm_count
    return {"backend": backend, "lines": lines, "lines_per_voucher": per_voucher, "runs": fast,
            "median_seconds": fast_median, "lines_per_second": lines / fast_median,
            "orm_lines_measured": orm_count, "orm_runs": orm, "orm_median_seconds": orm_median,
            "orm_extrapolated": orm_count < lines, "orm_over_ours": orm_median / fast_median}


@click.command("ledger")
@click.option("--lines", default=1_000_000, show_default=True, help="Voucher lines per posting.")
@click.option("--per-voucher", default=10, show_default=True, help="Lines per voucher.")
@click.option("--repeat", default=3, show_default=True, help="Timed runs per way; medians are reported.")
@click.option("--orm-lines", default=100_000, show_default=True,
              help="Lines the ORM way posts; its time is scaled linearly to --lines when fewer.")
@click.option("--backend", "backends", type=click.Choice(["sqlite", "postgresql"]), multiple=True,
              default=("sqlite", "postgresql"), show_default=True)
@click.option("--postgres", "admin_url", default=DEFAULT_ADMIN_URL, show_default=True,
              help="PostgreSQL server to create a scratch database on (ESOMP_TEST_PG).")
@json_option
def bench_ledger(lines, per_voucher, repeat, orm_lines, backends, admin_url, as_json) -> None:
    """Post a million voucher lines on SQLite and PostgreSQL, the ledger's bulk way and the plain ORM way."""
    from esomp_core import print_json, print_table

    results = []
    for backend in backends:
        url, drop = (None, lambda: None) if backend == "sqlite" else _postgres_database(admin_url)
        try:
            results.append(measure(backend, url, lines, per_voucher, repeat, orm_lines))
        finally:
            drop()
    if as_json:
        print_json(results)
        return
    print_table(f"posting {lines:,} voucher lines ({per_voucher} per voucher), median of {repeat}",
                ["backend", "ledger s (runs)", "lines/s", "ORM add_all s", "ORM / ledger"],
                [(r["backend"], f"{r['median_seconds']:.2f} ({' / '.join(f'{t:.2f}' for t in r['runs'])})",
                  f"{r['lines_per_second']:,.0f}",
                  f"{r['orm_median_seconds']:.2f}" + (f" (measured on {r['orm_lines_measured']:,} lines, "
                                                      f"scaled linearly)" if r["orm_extrapolated"] else ""),
                  f"{r['orm_over_ours']:.1f}x") for r in results])
