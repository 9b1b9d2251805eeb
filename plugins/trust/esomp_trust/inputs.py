"""The day's collected inputs as the trust processing sees them: which file type each is, and the account maps."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import attrs
from sqlalchemy import select

from esomp_core import AccountRow as Account, FileRow as File, ProductRow as Product, atomic_write


class InputError(ValueError):
    """An input the trust processing cannot use: the message names the file and why."""


@attrs.frozen
class Input:
    """One collected file of a known type."""

    name: str
    path: str
    channel: str
    file_type: str
    split: bool
    key_field: str | None
    market: str | None
    encoding: str


def _file_type_for(name: str, channel: str, date: str, file_types: dict[str, Any]) -> Any | None:
    found = [ft for ft in file_types.values() if ft.format == "dbf" and ft.matches(name, date)]
    if len(found) > 1:
        # A type declared for this channel wins over types of other channels matching the same name.
        own = [ft for ft in found if ft.channel == channel]
        found = own if len(own) == 1 else found
    if len(found) > 1:
        raise InputError(f"{name} (channel {channel}): matches several file types: "
                         + ", ".join(sorted(ft.name for ft in found)) + "; make their patterns distinct")
    return found[0] if found else None


def collected_inputs(site, date: str, channels: Iterable[str], *,
                     for_channel: str | None = None) -> tuple[list[Input], list[str]]:
    """The day's collected (or unpacked) files of known DBF types, by name; and the names of unknown files.

    One input per file name and per file type (unless the type takes ``many`` files a day): the collection
    already refused or collapsed such inputs within a channel, and this refuses them across channels. With
    ``for_channel``, only two inputs of which one is that channel's are refused: the others are another
    channel's partition to refuse."""
    channels = list(channels)
    with site.repository.session() as s:
        rows = s.execute(select(File.name, File.path, File.channel, File.sha256, File.source)
                         .where(File.date == date, File.role.in_(("collected", "unpacked")),
                                File.channel.in_(channels))
                         .order_by(File.channel, File.name)).all()
    file_types = site.registry.file_types
    inputs: dict[str, Input] = {}
    seen: dict[str, Any] = {}  # a base name or file type -> the row that brought it
    unknown: list[str] = []
    for row in rows:
        base = Path(row.name).name
        ft = _file_type_for(base, row.channel, date, file_types)
        if ft is None:
            unknown.append(f"{row.channel}/{row.name}")
            continue
        keys = [f"file name {base}"] + ([] if ft.many else [f"file type {ft.name}"])
        if any(_already(seen, key, row, for_channel) for key in keys):
            continue
        inputs[base] = Input(
            name=base, path=row.path, channel=row.channel, file_type=ft.name, split=ft.split,
            key_field=ft.key_fields[0] if ft.split else None,
            market=ft.market or None, encoding=ft.encoding)
    return [inputs[n] for n in sorted(inputs)], unknown


def _already(seen: dict[str, Any], key: str, row: Any, for_channel: str | None) -> bool:
    """True when ``key`` came with an identical file before; InputError naming both when it came with another."""
    first = seen.setdefault(key, row)
    if first is row:
        return False
    if first.sha256 and first.sha256 == row.sha256:
        return True
    if for_channel is not None and for_channel not in (first.channel, row.channel):
        return True
    raise InputError(f"two different inputs for {key}: {_shown(first)} and {_shown(row)}; each product gets "
                     "one file of a type: remove the wrong one at its source and collect again")


def _shown(row: Any) -> str:
    return f"{row.source or row.path} (channel {row.channel}, sha256 {(row.sha256 or '')[:12]})"


def account_maps(site, products: Iterable[str]) -> dict[str | None, dict[str, str]]:
    """account -> product per market for the given active products; key None merges every market."""
    products = list(products)
    maps: dict[str | None, dict[str, str]] = {None: {}}
    with site.repository.session() as s:
        for start in range(0, len(products), 500):  # bounded IN lists
            rows = s.execute(select(Account.market, Account.account, Account.product_code).join(Product)
                             .where(Product.status == "active",
                                    Account.product_code.in_(products[start:start + 500]))).all()
            for market, account, product in rows:
                maps.setdefault(market, {})[account] = product
                maps[None].setdefault(account, product)
    return maps


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (temp name, rename), in a stable form so a rerun writes the same bytes. Compact: the
    outputs of a 200-product job hold 6,400 file entries, and json's C encoder only runs without ``indent``."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")


def read_json(path: str | os.PathLike, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing; {what}") from None
