"""The trust plan: registration, shape for 4,000 products, staggering, packaging by institution, bad options."""
from __future__ import annotations

import pytest

from esomp_core import ConfigError
from esomp_trust import plugin
from esomp_trust.options import TrustOptions
from esomp_trust.plan import build_plan

CHANNELS = ["szse", "sse", "site"]


def products(n: int, institutions: int = 40) -> list[tuple[str, str]]:
    return [(f"P{i:05d}", f"T{i % institutions:03d}") for i in range(1, n + 1)]


def by_name(jobs):
    return {j.name: j for j in jobs}


def test_hook_register_business_types_registers_trust(esomp_pm_factory, esomp_site_factory):
    registered = []
    plugin.register_business_types(registered.append)
    assert [(b.name, b.title) for b in registered] == [("trust", "信托文件管理")]

    site = esomp_site_factory(esomp_pm_factory(plugin), channels={"szse": {"kind": "fs", "url": "in"}})
    assert site.registry.business_types["trust"].plan is registered[0].plan
    jobs = site.registry.business_types["trust"].plan(site, "20240105")
    # Only configured channels get a collection job; no products yet, so no processing or sending jobs.
    assert [(j.name, j.stage, j.category) for j in jobs] == [
        ("collect-szse", "collect", "采集/szse"), ("trust-partition-szse", "process", "信托/加工/分区")]
    assert jobs[1].depends_on == ("collect-szse",)


def test_register_business_types_plan_for_4000_products():
    jobs = build_plan(TrustOptions(), products(4000), CHANNELS + ["out"], "20240105")
    named = by_name(jobs)
    collect = [j for j in jobs if j.stage == "collect"]
    partitions = [f"trust-partition-{c}" for c in CHANNELS]
    process = [j for j in jobs if j.stage == "process" and j.name not in partitions]
    send = [j for j in jobs if j.stage == "send"]
    assert [j.name for j in collect] == ["collect-szse", "collect-sse", "collect-site"]
    assert all(j.channel == j.name.removeprefix("collect-") for j in collect)
    # One partition job per channel, each waiting for its own collection only.
    for channel in CHANNELS:
        assert named[f"trust-partition-{channel}"].depends_on == (f"collect-{channel}",)
        assert len(named[f"trust-partition-{channel}"].products) == 4000
    assert len(process) == len(send) == 20
    assert {j.batch for j in process} == {1, 2, 3, 4}
    assert all(len(j.products) == 200 for j in process)
    for batch in (1, 2, 3, 4):
        names = [j.name for j in process if j.batch == batch]
        assert names == [f"trust-process-b{batch}-j{n}" for n in range(1, 6)]
        assert all(named[n].category == f"信托/加工/批次{batch}" for n in names)
    # Every product in exactly one processing job, in code order.
    planned = [p for j in process for p in j.products]
    assert planned == sorted(planned) and len(set(planned)) == 4000
    # The partition job cuts inputs along the same groups the processing jobs take.
    groups = named["trust-partition-sse"].params["groups"]
    assert {f"trust-process-{k}": tuple(v) for k, v in groups.items()} == {j.name: j.products for j in process}
    # Sending depends on its own processing job and sends the same products.
    for j in send:
        own = j.name.replace("send", "process")
        assert j.depends_on == (own,) and j.products == named[own].products and j.category.startswith("信托/发送/批次")
    # Batch by batch, a batch's sending right after its processing: the engine starts ready jobs in plan order.
    order = [(j.batch, j.stage) for j in jobs[6:-1]]
    assert order == [(b, stage) for b in (1, 2, 3, 4) for stage in ("process", "send") for _ in range(5)]
    # Processing needs every channel's partition (each product gets a file of every input).
    assert all(j.depends_on == tuple(partitions) for j in process)
    # Stagger "previous": a batch's processing starts after the whole previous batch's processing has ended, an
    # order only: a failure there skips nothing of this batch.
    assert named["trust-process-b1-j3"].after == ()
    assert named["trust-process-b3-j2"].after == tuple(f"trust-process-b2-j{n}" for n in range(1, 6))
    # Last, the accounting of every input record, from what every sending job counted in the files it packaged.
    account = jobs[-1]
    assert (account.name, account.stage, account.batch) == ("trust-account", "post", 0)
    assert account.depends_on == tuple(j.name for j in send) == tuple(account.params["sending"])
    assert len(account.products) == 4000


def test_register_business_types_stagger_none_and_uneven_sizes():
    jobs = by_name(build_plan(TrustOptions(stagger="none", products_per_job=150, jobs_per_batch=3),
                              products(1000), CHANNELS, "20240105"))
    process = [j for j in jobs.values() if j.name.startswith("trust-process")]
    assert [len(j.products) for j in process] == [150] * 6 + [100]
    assert [j.name for j in process][-1] == "trust-process-b3-j1"
    assert all(j.depends_on == tuple(f"trust-partition-{c}" for c in CHANNELS) and j.after == () for j in process)


def test_register_business_types_package_by_institution():
    plan = build_plan(TrustOptions(package_by="institution", products_per_job=100), products(1000, 30),
                      CHANNELS, "20240105")
    process = {j.name: j for j in plan if j.name.startswith("trust-process")}
    send = [j for j in plan if j.stage == "send"]
    seen: dict[str, str] = {}
    owner = dict(products(1000, 30))
    for job in send:
        for institution in job.params["institutions"]:
            assert institution not in seen, f"{institution} sent by {seen[institution]} and {job.name}"
            seen[institution] = job.name
            holding = {n for n, p in process.items() if any(owner[c] == institution for c in p.products)}
            assert holding <= set(job.depends_on)
    assert len(seen) == 30
    # An institution's products sit side by side, so most institutions wait for one or two processing jobs.
    assert max(len(j.depends_on) for j in send) <= 2


def test_hook_register_business_types_bad_options_name_the_key(esomp_pm_factory, esomp_site_factory):
    site = esomp_site_factory(esomp_pm_factory(plugin), business={"trust": {"products_per_jobs": 10}})
    with pytest.raises(ConfigError, match=r"business\.trust\.products_per_jobs: unknown key"):
        site.registry.business_types["trust"].plan(site, "20240105")
    site = esomp_site_factory(esomp_pm_factory(plugin), business={"trust": {"split_path": "/tmp/{product}/{name}"}})
    with pytest.raises(ConfigError, match=r"business\.trust.*split_path: must start with \{clearing_root\}"):
        site.registry.business_types["trust"].plan(site, "20240105")
    site = esomp_site_factory(esomp_pm_factory(plugin), business={"trust": {"package_format": "rar"}})
    with pytest.raises(ConfigError, match=r"business\.trust\.package_format: expected one of 'tar.zst', 'zip'"):
        site.registry.business_types["trust"].plan(site, "20240105")
