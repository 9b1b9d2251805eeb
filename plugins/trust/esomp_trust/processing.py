"""Processing: the partition job reads each input once and numbers its records per product and processing job;
each processing job writes its products' records from the inputs, hard-links the market data to every product and
optionally writes BCP text."""
from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import functools
import gc
import hashlib
import io
import os
import pickle
import shutil
import signal
import struct
import traceback
from pathlib import Path
from typing import Any, Callable

import attrs
from sqlalchemy import select

from esomp_core import Job, JobResult, ProductRow as Product, atomic_open, replace_directory, sha256_file
from esomp_dbf import (EOF_BYTE, DbfError, DbfFile, EncodedKeys, KeyCodes, partition_codes, patched_header,
                       record_view)
from esomp_trust.inputs import Input, InputError, account_maps, collected_inputs, read_json, write_json
from esomp_trust.options import OutputPaths, TrustOptions, inside
from esomp_trust.plan import partition_name
from esomp_trust.shares import Share, ShareWriter, identity

UNMATCHED_SHOWN = 20  # keys listed in a job's detail per file; the CSV report has them all
_EOF = bytes((EOF_BYTE,))


class WorkDirs:
    """The working directories of one business date."""

    def __init__(self, site, date: str):
        self.date = date
        self.extract = Path(site.directory("extract_temp")) / date / "trust"
        self.clearing_root = site.directory("clearing_root")
        self.bcp = Path(site.directory("bcp_root")) / date
        self.monitor = Path(site.directory("monitoring_centre")) / date
        self.compressed = Path(site.directory("compressed_root")) / date / "trust"
        self.send = Path(site.directory("trust_send_temp")) / date

    def partition_manifest(self, channel: str) -> Path:
        return self.extract / f"partition-{channel}.json"

    def shares(self, channel: str) -> Path:
        return self.extract / "shares" / channel

    def outputs(self, group: str) -> Path:
        return self.extract / "outputs" / f"{group}.json"

    def counted(self, sending_job: str) -> Path:
        """Records per input in the files a sending job packaged, read from their headers."""
        return self.extract / "counted" / f"{sending_job}.json"


def _open_dbf(item: Input) -> DbfFile:
    try:
        return DbfFile(item.path, encoding=item.encoding)
    except FileNotFoundError:
        raise InputError(f"{item.path}: collected file {item.name} is gone from the collection root") from None


def unmatched_path(dirs: WorkDirs, job_name: str, name: str) -> Path:
    """The DBF of an input's records that belong to no active product."""
    return dirs.monitor / "unmatched" / job_name / name


def write_unmatched(dirs: WorkDirs, item: Input, source: DbfFile, unmatched: dict[str, list[int]],
                    job_name: str) -> str | None:
    """Report records whose key maps to no product: a CSV (file, record, key) and a DBF of the records
    themselves under the monitoring centre, so they are never dropped. Returns the CSV path, or None."""
    report = dirs.monitor / f"unmatched-{job_name}-{item.name}.csv"
    kept = unmatched_path(dirs, job_name, item.name)
    if not unmatched:
        report.unlink(missing_ok=True)  # a rerun after the master was fixed leaves no stale report
        kept.unlink(missing_ok=True)
        return None
    rows = sorted((index, key) for key, indices in unmatched.items() for index in indices)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "file_type", "key_field", "record", "key"])
    for index, key in rows:
        writer.writerow([item.name, item.file_type, item.key_field, index, key])
    dirs.monitor.mkdir(parents=True, exist_ok=True)
    with atomic_open(report) as fh:
        fh.write(text.getvalue().encode("utf-8"))
    kept.parent.mkdir(parents=True, exist_ok=True)
    from esomp_dbf import write_records

    with atomic_open(kept) as fh:
        write_records(fh, source, [index for index, _ in rows])
    return str(report)


def _unmatched_detail(unmatched: dict[str, list[int]], report: str | None) -> dict[str, Any]:
    by_count = sorted(unmatched.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {"records": sum(len(v) for v in unmatched.values()), "accounts": len(unmatched),
            "top": {key: len(idx) for key, idx in by_count[:UNMATCHED_SHOWN]}, "report": report}


# --- the partition job -------------------------------------------------------------------------------------------


def run_partition(job: Job, site, options: TrustOptions) -> JobResult:
    """Partition one collection channel's inputs; a bad input fails this channel's partition only."""
    dirs = WorkDirs(site, job.date)
    channel = job.params["channel"]
    groups: dict[str, list[str]] = job.params.get("groups", {})
    group_of = {product: group for group, products in groups.items() for product in products}
    maps = account_maps(site, group_of)
    # Every channel's files are looked at, so that one name collected on two channels is still refused.
    inputs, unknown = collected_inputs(site, job.date, options.collect_channels)
    inputs = [item for item in inputs if item.channel == channel]
    unknown = [name for name in unknown if name.startswith(f"{channel}/")]
    check_bcp_types(site, options)
    result = JobResult(detail={"channel": channel, "inputs": {}, "unknown_files": unknown, "groups": len(groups)})
    manifest: dict[str, Any] = {"date": job.date, "channel": channel, "groups": sorted(groups), "inputs": []}
    errors: list[str] = []
    shares = ShareWriter(dirs.shares(channel), groups)

    @functools.cache
    def encoded(market: str | None, encoding: str) -> KeyCodes:
        # account -> product number, encoded once per market and encoding rather than once per file; the codes
        # remember each raw key seen, so an account is looked up once for all the files of its market
        code = shares.code
        return KeyCodes(EncodedKeys.of({account: code[product] for account, product
                                        in maps.get(market, maps[None]).items()}, encoding))

    outcomes = _partition_all(inputs, lambda item: _partition_one(item, dirs, encoded, len(shares.code), options,
                                                                  job.name))
    for item in inputs:  # in name order whichever process partitioned the input: the shares' bytes do not vary
        entry = outcomes[item.name]
        if "error" in entry:
            errors.append(entry["error"])
            result.detail["inputs"][item.name] = {"file_type": item.file_type, "error": entry["error"]}
            continue
        if entry["coded"] is not None:
            per_job = shares.add(item.name, entry["coded"])
            entry["detail"]["per_job"] = dict(sorted(per_job.items()))
        manifest["inputs"].append(entry["manifest"])
        result.detail["inputs"][item.name] = entry["detail"]
        result.files += 1
        result.records += entry["detail"]["records"]
        result.bytes += entry["manifest"]["size"]
    if errors:
        # Nothing downstream may run on a partial day: without this channel's manifest the processing jobs refuse
        # to start. The other channels' partitions stand, and only this one runs again once the file is mended.
        dirs.partition_manifest(channel).unlink(missing_ok=True)
        raise InputError("; ".join(errors))
    shares.commit()
    write_json(dirs.partition_manifest(channel), manifest)
    result.detail["unmatched_records"] = sum(d.get("unmatched", {}).get("records", 0)
                                             for d in result.detail["inputs"].values())
    return result


def _partition_one(item: Input, dirs: WorkDirs, encoded: Callable[[str | None, str], KeyCodes], products: int,
                   options: TrustOptions, job_name: str) -> dict[str, Any]:
    """One input described, and (if split by key) partitioned by product number with its unmatched records
    reported; or {"error": why}."""
    try:
        entry = {"name": item.name, "path": item.path, "channel": item.channel, "file_type": item.file_type,
                 "split": item.split,
                 "key_field": item.key_field, "market": item.market, "encoding": item.encoding,
                 **identity(item.path)}
        with _open_dbf(item) as source:
            if not item.split:
                # Market data: validated and described once here; processing links it, sending reuses this digest.
                entry.update(records=source.count, sha256=sha256_file(item.path))
                if item.file_type in options.bcp_types:
                    write_bcp(source, range(source.count), dirs.bcp / "market" / f"{item.name}.bcp")
                return {"manifest": entry, "coded": None,
                        "detail": {"file_type": item.file_type, "records": source.count, "market_data": True}}
            source.field(item.key_field)  # a missing key field names the file and lists the fields
            coded = partition_codes(source, item.key_field, encoded(item.market, item.encoding), products)
            report = write_unmatched(dirs, item, source, coded.unmatched, job_name)
            entry["records"] = source.count
            entry["unmatched"] = str(unmatched_path(dirs, job_name, item.name)) if report else None
            detail = {"file_type": item.file_type, "records": source.count,
                      "unmatched": _unmatched_detail(coded.unmatched, report)}
            return {"manifest": entry, "detail": detail, "coded": attrs.evolve(coded, unmatched={})}
    except FileNotFoundError:
        return {"error": f"{item.path}: collected file {item.name} is gone from the collection root"}
    except (DbfError, InputError, OSError) as exc:
        return {"error": str(exc)}


def _partition_all(inputs: list[Input], one: Callable[[Input], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``one(item)`` for every input, by name. The partition job runs alone (every processing job waits for it),
    so with more than one core a forked child takes about half the bytes of input while this process takes the
    rest; the child hands its outcomes back through a pipe and ends. It dies with its parent (a killed worker
    leaves no child writing behind it), and a child that dies fails the job naming its inputs."""
    if len(inputs) < 2 or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork"):
        return {item.name: one(item) for item in inputs}
    mine: list[Input] = []
    theirs: list[Input] = []
    load = [0.0, 0.0]
    weights = {item.name: _weight(item) for item in inputs}
    for item in sorted(inputs, key=lambda i: (-weights[i.name], i.name)):  # heaviest first, to the lighter side
        side = 1 if load[1] <= load[0] else 0  # the child first: this process merges and writes the shares after
        (mine, theirs)[side].append(item)
        load[side] += weights[item.name]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the worker's code
        status = 1
        try:
            os.close(read_end)
            gc.disable()  # no finalizer of an object inherited from the worker (a database connection) runs here
            _die_with_parent()
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump({item.name: one(item) for item in theirs}, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        except BaseException:
            traceback.print_exc()  # into the worker's log: the parent's error only says the child ended
        finally:
            os._exit(status)
    os.close(write_end)
    reaped = False
    pipe = os.fdopen(read_end, "rb")
    try:
        outcomes = {item.name: one(item) for item in mine}
        data = pipe.read()
        _, status = os.waitpid(pid, 0)
        reaped = True
        if status != 0 or not data:
            raise InputError(f"the process partitioning {', '.join(i.name for i in theirs)} ended without its "
                             f"outcome (wait status {status}); rerun the job")
        outcomes.update(pickle.loads(data))
    finally:
        pipe.close()
        if not reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return outcomes


def _weight(item: Input) -> float:
    """Roughly what partitioning ``item`` costs: a key lookup per record, or hashing the bytes of market data."""
    try:
        with open(item.path, "rb") as fh:
            head = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return 0.0
    records = struct.unpack_from("<I", head, 4)[0] if len(head) == 8 else 0
    return records + size / 2000 if item.split else size / 400


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)


def check_bcp_types(site, options: TrustOptions) -> None:
    unknown = [t for t in options.bcp_types if t not in site.registry.file_types]
    if unknown:
        raise InputError(f"{site.config.source}: business.trust.bcp_types: unknown file type {unknown[0]!r} "
                         f"(registered: {', '.join(sorted(site.registry.file_types))})")


# --- BCP ---------------------------------------------------------------------------------------------------------


def write_bcp(source: DbfFile, indices, path: Path) -> int:
    """Write records as BCP character-mode text: UTF-8, tab between fields, newline after each record, values as
    stored (trailing blanks cut from text, leading blanks from numbers); deleted records are left out."""
    fields = source.fields
    lines = []
    for index in indices:
        record = bytes(source.record(index))
        if record[0] == 0x2A:
            continue
        values = []
        for f in fields:
            raw = record[f.offset:f.offset + f.length].strip(b"\x00 ")
            values.append(raw.decode(source.encoding, errors="replace").replace("\t", " ").replace("\n", " "))
        lines.append("\t".join(values))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        fh.write(("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
    return len(lines)


# --- a processing job --------------------------------------------------------------------------------------------


def institutions_of(site, products: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with site.repository.session() as s:
        for start in range(0, len(products), 500):
            found.update(s.execute(select(Product.code, Product.institution_code)
                                   .where(Product.code.in_(products[start:start + 500]))).all())
    missing = [p for p in products if p not in found]
    if missing:
        raise InputError(f"product {missing[0]} is not in the products master ({len(missing)} missing)")
    return found


class SharedCopies:
    """Market data is hard-linked into every product's directory. A link cannot cross devices: then the file is
    copied once into ``shared_dir`` (on the outputs' device) and that copy is linked instead."""

    def __init__(self, shared_dir: Path):
        self.shared_dir = shared_dir
        self.origin: dict[str, str] = {}
        self.copied: list[str] = []

    def link(self, source: str, make_link: Callable[[str], None]) -> None:
        origin = self.origin.get(source, source)
        try:
            make_link(origin)
        except OSError as exc:
            if exc.errno != errno.EXDEV or origin != source:
                raise
            self.shared_dir.mkdir(parents=True, exist_ok=True)
            copy = self.shared_dir / Path(source).name
            with open(source, "rb") as src, atomic_open(copy) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            self.origin[source] = str(copy)
            self.copied.append(Path(source).name)
            make_link(str(copy))


def _temp_name(path: str, kind: str) -> str:
    # One name per target, not per process: one job owns a product's files, and the rerun of a job whose worker
    # was killed mid-write reuses (and so removes) what that worker left.
    directory, _, name = path.rpartition(os.sep)
    return f"{directory}{os.sep}.{name}.{kind}"


def _write_fd(fd: int, data: bytes) -> os.stat_result:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return os.fstat(fd)


class InPlace:
    """Writes each file under a temporary name beside its final one and renames it into place: for a
    ``split_path`` whose products do not each get a directory of their own."""

    def __init__(self, out: OutputPaths, products: list[str], shared: SharedCopies):
        self.out, self.shared = out, shared
        self.made: set[str] = set()

    def _place(self, product: str, name: str) -> str:
        path = self.out(product, name)
        parent = path.rpartition(os.sep)[0]
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        return path

    def write(self, product: str, name: str, data: bytes) -> tuple[str, os.stat_result]:
        path = self._place(product, name)
        temp = _temp_name(path, "tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            try:
                stat = _write_fd(fd, data)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return path, stat

    def link(self, product: str, name: str, source: str) -> str:
        target = self._place(product, name)
        temp = _temp_name(target, "link")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)  # left by a worker killed here

        def make_link(origin: str) -> None:
            with contextlib.suppress(FileNotFoundError):
                if os.path.samefile(origin, target):
                    return
            os.link(origin, temp)
            os.replace(temp, target)

        self.shared.link(source, make_link)
        return target

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Staged:
    """Writes each product's files under their final names into a private staging directory beside the
    product's directory (``.{product}.staging``), opened once, and puts the staging directory in the product
    directory's place when the job's files are all written: no temporary name, rename or path lookup per file.
    The product's directory is replaced whole, so a rerun leaves no file of an earlier run behind. A killed
    worker leaves staging (or ``.{product}.old``) directories, which the job's rerun removes first."""

    def __init__(self, out: OutputPaths, products: list[str], shared: SharedCopies):
        self.shared = shared
        self.final = {p: out(p, "_")[:-2] for p in products}
        self.fds: dict[str, int] = {}
        made: set[str] = set()
        try:
            for product, final in self.final.items():
                parent = final.rpartition(os.sep)[0]
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                staging = self._staging(final)
                for leftover in (staging, self._old(final)):
                    if os.path.lexists(leftover):
                        shutil.rmtree(leftover)
                os.mkdir(staging)
                self.fds[product] = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _staging(final: str) -> str:
        parent, _, base = final.rpartition(os.sep)
        return f"{parent}{os.sep}.{base}.staging"

    @staticmethod
    def _old(final: str) -> str:
        parent, _, base = final.rpartition(os.sep)
        return f"{parent}{os.sep}.{base}.old"

    def write(self, product: str, name: str, data: bytes) -> tuple[str, os.stat_result]:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=self.fds[product])
            try:
                stat = _write_fd(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, self._staging(self.final[product]) + os.sep + name) from None
        return f"{self.final[product]}{os.sep}{name}", stat

    def link(self, product: str, name: str, source: str) -> str:
        fd = self.fds[product]
        self.shared.link(source, lambda origin: os.link(origin, name, dst_dir_fd=fd))
        return f"{self.final[product]}{os.sep}{name}"

    def commit(self) -> None:
        self._close()
        for final in self.final.values():
            replace_directory(self._staging(final), final)

    def _close(self) -> None:
        while self.fds:
            os.close(self.fds.popitem()[1])

    def abort(self) -> None:
        self._close()
        for final in self.final.values():
            shutil.rmtree(self._staging(final), ignore_errors=True)


def writer_for(out: OutputPaths, products: list[str], shared: SharedCopies) -> Staged | InPlace:
    """Staged when every product's files go straight into a directory named after the product (the default
    ``split_path``): product codes are unique, so no two products, of this job or another, share one."""
    if out.name_last and all(out(p, "_")[:-2].rpartition(os.sep)[2] == p for p in products):
        return Staged(out, products, shared)
    return InPlace(out, products, shared)


def read_partitions(dirs: WorkDirs, channels: list[str]) -> list[dict[str, Any]]:
    """Every channel's partition manifest: refused, naming the partition job, while one has not succeeded."""
    return [read_json(dirs.partition_manifest(c), f"the {partition_name(c)} job for {dirs.date} has not succeeded")
            for c in channels]


def run_process(job: Job, site, options: TrustOptions) -> JobResult:
    dirs = WorkDirs(site, job.date)
    group = job.params["group"]
    channels = job.params["channels"]
    partitions = read_partitions(dirs, channels)
    shares = {c: Share(dirs.shares(c), group, f"the {partition_name(c)} job for {job.date} has not succeeded")
              for c in channels}
    products = list(job.products)
    institution = institutions_of(site, products)
    out = OutputPaths(options.split_path, clearing_root=dirs.clearing_root, date=job.date, institution=institution)

    for product in products:  # refuse a bad code before writing anything
        out(product, "x")
    inputs = sorted(((entry, shares[m["channel"]]) for m in partitions for entry in m["inputs"]),
                    key=lambda pair: pair[0]["name"])
    for entry, share in inputs:  # and an input changed since the partition job numbered its records
        if entry["split"]:
            share.check_input(entry["name"], entry["path"], entry, partition_name(entry["channel"]))

    result = JobResult(detail={"group": group, "products": len(products), "inputs": {}})
    files: dict[str, list[dict[str, Any]]] = {p: [] for p in products}
    # market data copied once if links cannot cross devices
    shared = SharedCopies(Path(dirs.clearing_root) / job.date / ".shared")
    writer = writer_for(out, products, shared)
    try:
        linked = _write_products(dirs, inputs, writer, products, institution, files, result, options)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    result.files += linked
    result.detail["linked"] = linked
    if shared.copied:
        result.detail["copied_across_devices"] = sorted(set(shared.copied))
    write_json(dirs.outputs(group), {"group": group, "date": job.date, "products": {
        p: {"institution": institution[p], "files": sorted(files[p], key=lambda f: f["name"])} for p in products}})
    return result


def _write_products(dirs: WorkDirs, inputs: list[tuple[dict[str, Any], Share]], writer: Staged | InPlace,
                    products: list[str], institution: dict[str, str], files: dict[str, list[dict[str, Any]]],
                    result: JobResult, options: TrustOptions) -> int:
    linked = 0
    sha256 = hashlib.sha256
    for entry, share in inputs:
        name, file_type = entry["name"], entry["file_type"]
        if not entry["split"]:
            for product in products:
                path = writer.link(product, name, entry["path"])
                files[product].append({"file_type": file_type, "name": name, "path": path,
                                       "records": entry["records"], "shared": True})
                linked += 1
            result.detail["inputs"][name] = {"file_type": file_type, "linked": len(products)}
            continue
        try:
            source = DbfFile(entry["path"], encoding=entry["encoding"])
        except FileNotFoundError:
            raise InputError(f"{entry['path']}: collected file {name} is gone from the collection root") from None
        with source:
            # The job's records of this input, gathered in one pass (its products' runs are contiguous in the
            # share); each product's file is then a header, a slice of them and the EOF byte, written with one
            # call and described (digest, inode) so that sending need not read it again to hash it.
            first, block = share.gather(name, lambda numbers: record_view(source, numbers))
            runs = share.runs(name)
            header = bytearray(patched_header(source, 0))
            size = source.record_length
            records = 0
            bcp = file_type in options.bcp_types
            for product in products:
                start, count = runs.get(product, (0, 0))
                struct.pack_into("<I", header, 4, count)
                data = b"".join((header, block[(start - first) * size:(start - first + count) * size], _EOF))
                path, stat = writer.write(product, name, data)
                files[product].append({"file_type": file_type, "inode": stat.st_ino, "mtime_ns": stat.st_mtime_ns,
                                       "name": name, "path": path, "records": count, "sha256": sha256(data).hexdigest(),
                                       "shared": False, "size": len(data)})
                records += count
                result.bytes += len(data)
                if bcp:
                    target = inside(str(dirs.bcp.parent), str(dirs.bcp / institution[product] / product
                                                              / f"{name}.bcp"), f"product {product}")
                    write_bcp(source, share.records(name, product), Path(target))
            result.records += records
            result.files += len(products)
            result.detail["inputs"][name] = {"file_type": file_type, "records": records}
    return linked
