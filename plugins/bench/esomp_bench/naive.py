"""The naive way a user would write the day: dbfread to read, the ``dbf`` package to write each product's files,
market data copied into every product, one tar.zst per product compressing everything again.

Reading is measured in full (every split input read once with dbfread, keeping the sample's records); the
per-product work is measured on a sample of products spread over the whole list and extrapolated linearly.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

import zstandard

from esomp_trust import account_maps, collected_inputs, load_options


def sample(products: list[str], size: int) -> list[str]:
    """``size`` products spread evenly over the list, so busy and quiet products are both in it."""
    if size >= len(products):
        return list(products)
    step = len(products) / size
    return [products[int(i * step)] for i in range(size)]


def field_specs(table) -> str:
    specs = []
    for f in table.fields:
        if f.type in ("N", "F"):
            specs.append(f"{f.name} {f.type}({f.length},{f.decimal_count})")
        elif f.type in ("D", "L", "M"):
            specs.append(f"{f.name} {f.type}")
        else:
            specs.append(f"{f.name} C({f.length})")
    return "; ".join(specs)


def run_naive(site, date: str, all_products: list[str], size: int, workdir: Path) -> dict[str, Any]:
    import dbf
    import dbfread

    chosen = sample(sorted(all_products), size)
    wanted = set(chosen)
    options = load_options(site)
    inputs, _ = collected_inputs(site, date, options.collect_channels)
    maps = account_maps(site, chosen)

    began = time.perf_counter()
    tables: dict[str, Any] = {}
    records: dict[str, dict[str, list[dict]]] = {p: {} for p in chosen}
    for item in inputs:
        if not item.split:
            continue
        table = dbfread.DBF(item.path, encoding=item.encoding, char_decode_errors="replace")
        tables[item.name] = table
        mapping = maps.get(item.market, maps[None])
        for record in table:
            product = mapping.get(record[item.key_field])
            if product in wanted:
                records[product].setdefault(item.name, []).append(record)
    read_seconds = time.perf_counter() - began

    began = time.perf_counter()
    for product in chosen:
        folder = workdir / "out" / product
        folder.mkdir(parents=True, exist_ok=True)
        for item in inputs:
            target = folder / item.name
            if not item.split:
                shutil.copyfile(item.path, target)  # every product gets its own copy of market data
                continue
            table = tables[item.name]
            out = dbf.Table(str(target), field_specs(table), codepage="cp936", dbf_type="db3")
            out.open(dbf.READ_WRITE)
            for record in records[product].get(item.name, []):
                out.append(tuple(record.values()))
            out.close()
        package = workdir / "send" / f"{product}_{date}.tar.zst"
        package.parent.mkdir(parents=True, exist_ok=True)
        with open(package, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as compressed:
            with tarfile.open(fileobj=compressed, mode="w|") as tar:
                for name in sorted(os.listdir(folder)):
                    tar.add(folder / name, arcname=name)
    per_product_seconds = (time.perf_counter() - began) / len(chosen)
    extrapolated = per_product_seconds * len(all_products)
    return {"products_measured": len(chosen), "products": len(all_products), "read_seconds": read_seconds,
            "per_product_seconds": per_product_seconds, "write_and_package_seconds": extrapolated,
            "total_seconds": read_seconds + extrapolated, "extrapolated": len(chosen) < len(all_products)}
