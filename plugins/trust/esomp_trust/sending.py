"""Sending: package each product's (or institution's) files, record the package, deliver it, record the receipt."""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import zstandard
from sqlalchemy import select

from esomp_core import InstitutionRow as Institution, Job, JobResult, JobRow
from esomp_trust.inputs import InputError, read_json, write_json
from esomp_trust.models import Package, Receipt
from esomp_trust.options import TrustOptions
from esomp_trust.package import Member, SharedFrames, Tally, build_package, manifest_path, remove_leftovers
from esomp_trust.processing import WorkDirs, read_partitions, sha256_file
from esomp_trust.plan import process_name


CHUNK = 50  # packages per repository session


class DeliveryFailed(RuntimeError):
    """One or more packages could not be delivered; the message names each target and reason."""


class NoChannel(DeliveryFailed):
    """An institution has no delivery channel: reported once for all such institutions, not per package."""


def without_channel(institutions: list[str], shown: int = 3) -> str:
    """One sentence for every institution without a delivery channel: how many, and the first few codes."""
    fix = "set [business.trust] delivery_channel, or a channel for each in the institutions table"
    if len(institutions) == 1:
        return f"institution {institutions[0]} has no delivery channel: {fix}"
    more = ", ..." if len(institutions) > shown else ""
    return f"{len(institutions)} institutions have no delivery channel ({', '.join(institutions[:shown])}{more}): {fix}"


def _members(files: list[dict[str, Any]], prefix: str, shared: dict[str, dict[str, Any]]) -> list[Member]:
    members = []
    stat = os.stat
    for f in files:
        path = f["path"]
        st = stat(path)
        # The job that wrote the file (processing) or described it (partition, for market data) hashed it; the
        # same inode, size and modification time mean the same bytes, so it is not read again to hash it.
        described = shared.get(f["name"]) if f["shared"] else f
        if (described is not None and described.get("sha256") and st.st_ino == described["inode"]
                and st.st_size == described["size"]
                and st.st_mtime_ns == described.get("mtime_ns", st.st_mtime_ns)):
            digest = described["sha256"]
        else:
            digest = sha256_file(path)
        members.append(Member(prefix + f["name"], path, st.st_size, digest, f["records"], f["file_type"],
                              f["shared"]))
    return members


@contextlib.contextmanager
def _without_cyclic_gc():
    """The cyclic collector paused for a job: it makes tens of thousands of acyclic containers (the outputs' dicts,
    members, rows), each batch of which would set off a collection walking everything the worker holds (about 5%
    of a sending job). Cycles made meanwhile are collected once it is back on."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def run_send(job: Job, site, options: TrustOptions) -> JobResult:
    with _without_cyclic_gc():
        return _send(job, site, options)


def _send(job: Job, site, options: TrustOptions) -> JobResult:
    dirs = WorkDirs(site, job.date)
    shared = {e["name"]: e for partition in read_partitions(dirs, job.params["channels"])
              for e in partition["inputs"] if not e["split"]}
    products: dict[str, dict[str, Any]] = {}
    for group in job.params["groups"]:
        outputs = read_json(dirs.outputs(group), f"the job {process_name(group)} has not succeeded yet")
        products.update(outputs["products"])

    by = job.params.get("package_by", options.package_by)
    ext = "zip" if options.package_format == "zip" else "tar.zst"
    packages: list[tuple[str, str, str | None, list[Member]]] = []  # name, institution, product, members
    packaged: list[str] = []  # the products whose files go out in this job's packages
    if by == "institution":
        for institution in job.params["institutions"]:
            codes = [code for code in sorted(products) if products[code]["institution"] == institution]
            members = [m for code in codes for m in _members(products[code]["files"], f"{code}/", shared)]
            packages.append((f"{institution}_{job.date}.{ext}", institution, None, members))
            packaged += codes
    else:
        for code in job.products:
            if code not in products:
                raise InputError(f"product {code}: no outputs from its processing job; rerun it")
            packages.append((f"{code}_{job.date}.{ext}", products[code]["institution"], code,
                             _members(products[code]["files"], "", shared)))
            packaged.append(code)

    dirs.counted(job.name).unlink(missing_ok=True)  # counts of an earlier run never stand for this one
    # A sending worker killed while writing left a temporary package (named by its process id): removed here.
    leftovers = remove_leftovers(dirs.send, [name for name, _, _, _ in packages])
    frames = SharedFrames(dirs.compressed, options.compression_level)
    compressor = zstandard.ZstdCompressor(level=options.compression_level, write_checksum=True)
    tally = Tally()  # records per input name, from the headers of the files packaged, for trust-account
    targets = DeliveryTargets(site, options, {institution for _, institution, _, _ in packages})
    with site.repository.session() as s:
        job_id = _existing_job(s, job.id)  # asked once, not per chunk
    failures: list[str] = []
    no_channel: list[str] = []  # the institution of each package that has nowhere to go
    result = JobResult(detail={"packages": 0, "delivered": 0, "already_delivered": 0, "format": ext})
    if leftovers:
        result.detail["removed_leftovers"] = leftovers
    # Packages are built, recorded, delivered and receipted a chunk at a time: one repository session per chunk
    # and step instead of four per package. A worker killed mid-chunk leaves delivered packages without a
    # receipt; the rerun delivers those again (same bytes, same target) and records one receipt each.
    for start in range(0, len(packages), CHUNK):
        built = []
        for name, institution, product, members in packages[start:start + CHUNK]:
            path = dirs.send / name
            package = build_package(path, options.package_format, name=name, date=job.date,
                                    institution=institution, product=product, members=members, shared=frames,
                                    level=options.compression_level, compressor=compressor, tally=tally)
            built.append(Built(name, institution, product, path, package.size, package.sha256, len(members),
                               hashlib.sha256(package.manifest).hexdigest()))
            result.files += 1
            result.bytes += package.size
            result.records += sum(m.records or 0 for m in members)
            result.detail["packages"] += 1
        ids, receipted = _record_packages(site, job, built, job_id)
        receipts = []
        for package in built:
            try:
                target = targets.channel(package.institution)
                done = receipted.get((ids[package.name], target.url))
                if done is not None and done[0] == package.size and done[1] in (package.sha256, None):
                    result.detail["already_delivered"] += 1
                    continue
                receipt = target.deliver(package.path, institution=package.institution, date=job.date,
                                         manifest_path=manifest_path(package.path), name=package.name,
                                         sha256=package.sha256, manifest_sha256=package.manifest_sha256)
            except NoChannel:
                no_channel.append(package.institution)
                continue
            except Exception as exc:  # one target down must not stop the other institutions' packages
                failures.append(f"{package.name}: {exc}")
                continue
            receipts.append((ids[package.name], receipt))
            result.detail["delivered"] += 1
        _record_receipts(site, receipts)
    result.detail["shared_frames"] = {"made": frames.made, "reused": frames.reused}
    write_json(dirs.counted(job.name), {"job": job.name, "products": packaged, "records": tally.records})
    if failures or no_channel:
        reasons = ([without_channel(sorted(set(no_channel)))] if no_channel else []) + failures
        raise DeliveryFailed(f"{len(failures) + len(no_channel)} of {len(packages)} package(s) not delivered: "
                             + "; ".join(reasons))
    return result


@attrs.frozen
class Built:
    """A package written to the send directory, to be recorded and delivered."""

    name: str
    institution: str
    product: str | None
    path: Path
    size: int
    sha256: str
    members: int
    manifest_sha256: str


class DeliveryTargets:
    """The delivery channel of each institution (its own, else business.trust.delivery_channel), opened once."""

    def __init__(self, site, options: TrustOptions, institutions: set[str]):
        self.site, self.default = site, options.delivery_channel
        with site.repository.session() as s:
            self.own = dict(s.execute(select(Institution.code, Institution.channel)
                                      .where(Institution.code.in_(sorted(institutions)))).all())
        self.opened: dict[str, Any] = {}

    def channel(self, institution: str) -> Any:
        name = self.own.get(institution) or self.default
        if not name:
            raise NoChannel(without_channel([institution]))
        if name not in self.opened:
            self.opened[name] = self.site.channel(name)
        return self.opened[name]


def _existing_job(session, job_id: int) -> int | None:
    # Without the engine (a test, a CLI run) the job is not in this repository: do not point at it.
    return job_id if session.get(JobRow, job_id) is not None else None


def _upsert(session, model, columns: list[str], keys: list[str], merge: dict[str, Any] | None = None):
    """INSERT ... ON CONFLICT (keys) DO UPDATE, for SQLite and PostgreSQL, to execute with a list of rows (one
    compiled statement, cached, sent as multi-row VALUES). Columns are replaced by the new row's values, or merged
    by ``merge[column](existing column, new value)``."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = model.__table__  # a Core insert: the ORM's bulk path costs about as much again per row
    statement = insert(table)
    set_ = {column: statement.excluded[column] for column in columns if column not in keys}
    for column, combine in (merge or {}).items():
        set_[column] = combine(table.c[column], statement.excluded[column])
    return statement.on_conflict_do_update(index_elements=keys, set_=set_)


def _record_packages(site, job: Job, built: list[Built], job_id: int | None
                     ) -> tuple[dict[str, int], dict[tuple[int, str], tuple]]:
    """Record (or update) the packages in one statement; return their ids by name and the receipts they already
    have, by (package id, target), as (size, sha256). ``job_id``: what _existing_job said of the job."""
    with site.repository.session() as s:
        rows = [{"date": job.date, "name": b.name, "institution_code": b.institution, "product_code": b.product,
                 "path": str(b.path), "size": b.size, "sha256": b.sha256, "members": b.members, "job_id": job_id}
                for b in built]
        statement = _upsert(s, Package, list(rows[0]), ["date", "name"])
        packages, receipts = Package.__table__.c, Receipt.__table__.c
        ids = dict(s.execute(statement.returning(packages.name, packages.id), rows).all())
        receipted = {(package_id, target): (size, sha256) for package_id, target, size, sha256 in s.execute(
            select(receipts.package_id, receipts.target, receipts.size, receipts.sha256)
            .where(receipts.package_id.in_(list(ids.values()))))}
    return ids, receipted


def _record_receipts(site, receipts: list[tuple[int, Any]]) -> None:
    """Record receipts in one statement; a receipt delivered again adds its attempts to the earlier ones."""
    if not receipts:
        return
    rows = [{"package_id": package_id, "target": r.target, "remote_path": r.remote_path, "size": r.size,
             "sha256": r.sha256, "attempts": r.attempts, "delivered_at": r.delivered_at or datetime.now()}
            for package_id, r in receipts]
    with site.repository.session() as s:
        s.execute(_upsert(s, Receipt, list(rows[0]), ["package_id", "target"],
                          {"attempts": lambda old, new: old + new}), rows)
