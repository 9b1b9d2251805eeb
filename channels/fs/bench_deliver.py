"""Time FsChannel.deliver on local directories: N packages (SIZE bytes each, with a manifest and a flag file) into
FOLDERS institution folders under ROOT, as a clearing day's trust stage delivers them.

    python channels/fs/bench_deliver.py --root /tmp --packages 2000 --folders 10 [--transfer link] [--given-digest]

Prints one JSON line: the per-delivery cost in milliseconds, wall clock and CPU time (user + system) of this
process over the deliveries; CPU time is the steadier figure on a shared machine.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from esomp_fs import FsChannel, FsOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp", help="where the send and outbox directories are made")
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=10, help="institutions (one target folder each)")
    parser.add_argument("--size", type=int, default=133_000, help="bytes per package")
    parser.add_argument("--transfer", choices=["copy", "link"], default=None, help="default: the channel's")
    parser.add_argument("--given-digest", action="store_true", help="pass sha256= and manifest_sha256=")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="esomp-bench-deliver-", dir=args.root))
    try:
        send, outbox = work / "send", work / "outbox"
        send.mkdir()
        block = os.urandom(args.size)
        packages = []
        for i in range(args.packages):
            package = send / f"P{i:05d}_20261120.zip"
            data = i.to_bytes(8, "big") + block[8:]
            package.write_bytes(data)
            manifest = package.with_name(package.name + ".manifest.json")
            text = json.dumps({"name": package.name, "size": len(data)}).encode()
            manifest.write_bytes(text)
            packages.append((package, manifest, f"I{i % args.folders:03d}",
                             hashlib.sha256(data).hexdigest(), hashlib.sha256(text).hexdigest()))
        options = {"url": str(outbox), "flag": "{name}.ok"}
        if args.transfer:
            options["transfer"] = args.transfer
        channel = FsChannel("bench", FsOptions(**options))
        takes_digest = "sha256" in inspect.signature(channel.deliver).parameters
        if args.given_digest and not takes_digest:
            parser.error("this esomp_fs has no sha256= keyword on deliver")
        start, cpu = time.perf_counter(), time.process_time()
        for package, manifest, institution, digest, manifest_digest in packages:
            given = {"sha256": digest, "manifest_sha256": manifest_digest} if args.given_digest else {}
            channel.deliver(package, institution=institution, date="20261120", manifest_path=manifest, **given)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        shutil.rmtree(work)
    print(json.dumps({"root": args.root, "packages": args.packages, "folders": args.folders, "size": args.size,
                      "transfer": args.transfer or "default", "given_digest": args.given_digest,
                      "seconds": round(elapsed, 3), "ms_per_delivery": round(1000 * elapsed / args.packages, 3),
                      "cpu_ms_per_delivery": round(1000 * cpu / args.packages, 3)}))


if __name__ == "__main__":
    main()
