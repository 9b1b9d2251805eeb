"""Time FsChannel.deliver on local directories, as a clearing day's trust stage uses it: PACKAGES packages of SIZE
bytes, each with a manifest and a flag file, into FOLDERS institution folders under ROOT.

    python channels/fs/bench_deliver.py --root /dev/shm --packages 2000 --folders 10

Each variant delivers every package into its own outbox; the variants take turns in blocks of BLOCK deliveries,
so a change in the machine's load hits them alike. Variants: ``copy`` (the default options), ``copy+sha256``
(the caller gives the digests), ``link+sha256`` (``transfer = "link"`` too). An older esomp_fs without those
keywords runs ``--variants copy`` only. Prints one line per variant: milliseconds per delivery, wall clock and
CPU time (user + system) of this process.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import shutil
import tempfile
import time
from pathlib import Path

from esomp_fs import FsChannel, FsOptions

VARIANTS = {"copy": ({}, False), "copy+sha256": ({}, True), "link+sha256": ({"transfer": "link"}, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp", help="where the send directory and the outboxes are made")
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=10, help="institutions (one target folder each)")
    parser.add_argument("--size", type=int, default=133_000, help="bytes per package")
    parser.add_argument("--block", type=int, default=50, help="deliveries per turn")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r} (expected: {', '.join(VARIANTS)})")
    if any(VARIANTS[v][1] for v in variants) and "sha256" not in inspect.signature(FsChannel.deliver).parameters:
        parser.error("this esomp_fs has no sha256= keyword on deliver: use --variants copy")

    work = Path(tempfile.mkdtemp(prefix="esomp-bench-deliver-", dir=args.root))
    try:
        send = work / "send"
        send.mkdir()
        block = os.urandom(args.size)
        packages = []
        for i in range(args.packages):
            package = send / f"P{i:05d}_20261120.zip"
            data = i.to_bytes(8, "big") + block[8:]
            package.write_bytes(data)
            manifest = package.with_name(package.name + ".manifest.json")
            text = f'{{"name": "{package.name}", "size": {len(data)}}}'.encode()
            manifest.write_bytes(text)
            given = {"sha256": hashlib.sha256(data).hexdigest(), "manifest_sha256": hashlib.sha256(text).hexdigest()}
            packages.append((package, manifest, f"I{i % args.folders:03d}", given))
        channels = {v: FsChannel("bench", FsOptions(url=str(work / f"outbox-{v}"), flag="{name}.ok",
                                                    **VARIANTS[v][0])) for v in variants}
        wall, cpu = dict.fromkeys(variants, 0.0), dict.fromkeys(variants, 0.0)
        for turn, start in enumerate(range(0, args.packages, args.block)):
            for variant in variants[turn % len(variants):] + variants[:turn % len(variants)]:
                channel, give = channels[variant], VARIANTS[variant][1]
                began, began_cpu = time.perf_counter(), time.process_time()
                for package, manifest, institution, given in packages[start:start + args.block]:
                    channel.deliver(package, institution=institution, date="20261120", manifest_path=manifest,
                                    **(given if give else {}))
                wall[variant] += time.perf_counter() - began
                cpu[variant] += time.process_time() - began_cpu
    finally:
        shutil.rmtree(work)
    for variant in variants:
        print(f"{args.root}  {variant:12} {1000 * wall[variant] / args.packages:7.3f} ms/delivery wall "
              f"{1000 * cpu[variant] / args.packages:7.3f} ms cpu  ({args.packages} packages of {args.size} bytes "
              f"into {args.folders} folders)")


if __name__ == "__main__":
    main()
