"""Sending: package each product's (or institution's) files, record the package, deliver it, record the receipt."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from esomp_core.model import Job, JobResult
from esomp_core.repository.models import Institution, Job as JobRow, Package, Receipt
from esomp_trust.inputs import InputError, read_json
from esomp_trust.options import TrustOptions
from esomp_trust.package import Member, SharedFrames, build_package, manifest_path
from esomp_trust.processing import WorkDirs, sha256_file
from esomp_trust.plan import PARTITION, process_name


class DeliveryFailed(RuntimeError):
    """One or more packages could not be delivered; the message names each target and reason."""


def _members(files: list[dict[str, Any]], prefix: str, shared: dict[str, dict[str, Any]]) -> list[Member]:
    members = []
    for f in files:
        path = f["path"]
        stat = os.stat(path)
        described = shared.get(f["name"]) if f["shared"] else None
        if described is not None and stat.st_ino == described["inode"] and stat.st_size == described["size"]:
            digest = described["sha256"]  # the same inode the partition job hashed: no need to read it again
        else:
            digest = sha256_file(path)
        members.append(Member(name=prefix + f["name"], path=path, size=stat.st_size, sha256=digest,
                              records=f["records"], file_type=f["file_type"], shared=f["shared"]))
    return members


def run_send(job: Job, site, options: TrustOptions) -> JobResult:
    dirs = WorkDirs(site, job.date)
    partition = read_json(dirs.partition_manifest, f"the {PARTITION} job for {job.date} has not succeeded yet")
    shared = {e["name"]: e for e in partition["inputs"] if not e["split"]}
    products: dict[str, dict[str, Any]] = {}
    for group in job.params["groups"]:
        outputs = read_json(dirs.outputs(group), f"the job {process_name(group)} has not succeeded yet")
        products.update(outputs["products"])

    by = job.params.get("package_by", options.package_by)
    ext = "zip" if options.package_format == "zip" else "tar.zst"
    packages: list[tuple[str, str, str | None, list[Member]]] = []  # name, institution, product, members
    if by == "institution":
        for institution in job.params["institutions"]:
            members = [m for code in sorted(products) if products[code]["institution"] == institution
                       for m in _members(products[code]["files"], f"{code}/", shared)]
            packages.append((f"{institution}_{job.date}.{ext}", institution, None, members))
    else:
        for code in job.products:
            if code not in products:
                raise InputError(f"product {code}: no outputs from its processing job; rerun it")
            packages.append((f"{code}_{job.date}.{ext}", products[code]["institution"], code,
                             _members(products[code]["files"], "", shared)))

    frames = SharedFrames(dirs.compressed, options.compression_level)
    channels: dict[str, Any] = {}
    failures: list[str] = []
    result = JobResult(detail={"packages": 0, "delivered": 0, "already_delivered": 0, "format": ext})
    for name, institution, product, members in packages:
        path = dirs.send / name
        build_package(path, options.package_format, name=name, date=job.date, institution=institution,
                      product=product, members=members, shared=frames, level=options.compression_level)
        size, digest = path.stat().st_size, sha256_file(path)
        package_id = _record_package(site, job, name, institution, product, path, size, digest, len(members))
        result.files += 1
        result.bytes += size
        result.records += sum(m.records or 0 for m in members)
        result.detail["packages"] += 1
        try:
            delivered = _deliver(site, options, channels, job, package_id, institution, path, name, size, digest)
        except Exception as exc:  # one target down must not stop the other institutions' packages
            failures.append(f"{name}: {exc}")
            continue
        result.detail["delivered" if delivered else "already_delivered"] += 1
    result.detail["shared_frames"] = {"made": frames.made, "reused": frames.reused}
    if failures:
        raise DeliveryFailed(f"{len(failures)} of {len(packages)} package(s) not delivered: " + "; ".join(failures))
    return result


def _existing_job(session, job_id: int) -> int | None:
    # Without the engine (a test, a CLI run) the job is not in this repository: do not point at it.
    return job_id if session.get(JobRow, job_id) is not None else None


def _record_package(site, job: Job, name: str, institution: str, product: str | None, path: Path, size: int,
                    digest: str, members: int) -> int:
    with site.repository.session() as s:
        row = s.scalars(select(Package).where(Package.date == job.date, Package.name == name)).first()
        if row is None:
            row = Package(date=job.date, name=name)
            s.add(row)
        row.institution_code, row.product_code, row.path = institution, product, str(path)
        row.size, row.sha256, row.members = size, digest, members
        row.job_id = _existing_job(s, job.id)
        s.flush()
        return row.id


def _deliver(site, options: TrustOptions, channels: dict[str, Any], job: Job, package_id: int, institution: str,
             path: Path, name: str, size: int, digest: str) -> bool:
    """Deliver unless this exact package already reached this target; True when it was delivered now."""
    with site.repository.session() as s:
        own = s.scalar(select(Institution.channel).where(Institution.code == institution))
    channel_name = own or options.delivery_channel
    if not channel_name:
        raise DeliveryFailed(f"institution {institution} has no channel in the institutions table and "
                             "business.trust.delivery_channel is not set")
    if channel_name not in channels:
        channels[channel_name] = site.channel(channel_name)
    channel = channels[channel_name]
    target = channel.url
    with site.repository.session() as s:
        done = s.scalars(select(Receipt).where(Receipt.package_id == package_id, Receipt.target == target)).first()
        if done is not None and done.size == size and done.sha256 in (digest, None):
            return False
    receipt = channel.deliver(path, institution=institution, date=job.date, manifest_path=manifest_path(path),
                              name=name)
    with site.repository.session() as s:
        row = s.scalars(select(Receipt).where(Receipt.package_id == package_id, Receipt.target == receipt.target)
                        ).first()
        if row is None:
            row = Receipt(package_id=package_id, target=receipt.target, attempts=0)
            s.add(row)
        row.remote_path, row.size, row.sha256 = receipt.remote_path, receipt.size, receipt.sha256
        row.attempts = (row.attempts or 0) + receipt.attempts
        row.delivered_at = receipt.delivered_at or datetime.now()
    return True
