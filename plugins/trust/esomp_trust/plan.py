"""The trust part of a day's plan: collection and partition per channel, processing and sending per batch, and
the accounting of every input record at the end."""
from __future__ import annotations

from sqlalchemy import select

from esomp_core import JobSpec, ProductRow as Product
from esomp_trust.options import TrustOptions, load_options

BUSINESS = "trust"
PARTITION = "trust-partition"
ACCOUNT = "trust-account"


def partition_name(channel: str) -> str:
    """The partition job of one collection channel's inputs: a bad file of one channel holds only its own."""
    return f"{PARTITION}-{channel}"


def active_products(site) -> list[tuple[str, str]]:
    """(product, institution) of every active product, by product code."""
    with site.repository.session() as s:
        rows = s.execute(select(Product.code, Product.institution_code)
                         .where(Product.status == "active").order_by(Product.code)).all()
    return [(code, institution) for code, institution in rows]


def group_key(batch: int, number: int) -> str:
    return f"b{batch}-j{number}"


def process_name(key: str) -> str:
    return f"trust-process-{key}"


def send_name(key: str) -> str:
    return f"trust-send-{key}"


def plan_day(site, date: str) -> list[JobSpec]:
    options = load_options(site)
    return build_plan(options, active_products(site), list(site.config.channels), date)


def build_plan(options: TrustOptions, products: list[tuple[str, str]], configured_channels: list[str],
               date: str) -> list[JobSpec]:
    """The jobs for ``products`` [(code, institution)]; pure, so the plan's shape is testable on its own.

    Listed batch by batch, each batch's sending jobs right after its processing jobs: the engine starts ready
    jobs in plan order, so batch 1's institutions get their packages before later batches are processed. The
    accounting job comes last: it sums what every sending job counted in the files it packaged."""
    jobs = sorted(_jobs(options, products, configured_channels), key=lambda job: job.batch)  # stable
    sending = [job.name for job in jobs if job.stage == "send"]
    if sending:
        channels = [job.channel for job in jobs if job.stage == "collect"]
        jobs.append(JobSpec(
            name=ACCOUNT, stage="post", business_type=BUSINESS, batch=0, category="信托/核对/记录数",
            products=tuple(code for code, _ in products), depends_on=tuple(sending),
            params={"channels": channels, "sending": sending}))
    return jobs


def _jobs(options: TrustOptions, products: list[tuple[str, str]], configured_channels: list[str]) -> list[JobSpec]:
    jobs: list[JobSpec] = []
    channels = [c for c in options.collect_channels if c in configured_channels]
    for channel in channels:
        jobs.append(JobSpec(name=f"collect-{channel}", stage="collect", business_type=BUSINESS, batch=0,
                            category=f"采集/{channel}", channel=channel))

    if options.package_by == "institution":
        # An institution's products side by side, so its package waits for as few processing jobs as possible.
        products = sorted(products, key=lambda p: (p[1], p[0]))
    size = options.products_per_job
    chunks = [products[i:i + size] for i in range(0, len(products), size)]
    keys = [group_key(i // options.jobs_per_batch + 1, i % options.jobs_per_batch + 1) for i in range(len(chunks))]

    groups = {key: [code for code, _ in chunk] for key, chunk in zip(keys, chunks)}
    for channel in channels:  # one per channel: its inputs are partitioned as soon as they are collected
        jobs.append(JobSpec(
            name=partition_name(channel), stage="process", business_type=BUSINESS, batch=0,
            category="信托/加工/分区", channel=channel, products=tuple(code for code, _ in products),
            depends_on=(f"collect-{channel}",), params={"channel": channel, "groups": groups}))

    partitions = tuple(partition_name(c) for c in channels)  # each product gets a file of every input
    previous_batch: list[str] = []
    current_batch: list[str] = []
    for index, (key, chunk) in enumerate(zip(keys, chunks)):
        batch = index // options.jobs_per_batch + 1
        if index % options.jobs_per_batch == 0:
            previous_batch, current_batch = current_batch, []
        # Staggering orders start times only: a failed job of the previous batch holds nothing of this one.
        after = tuple(previous_batch) if options.stagger == "previous" else ()
        jobs.append(JobSpec(
            name=process_name(key), stage="process", business_type=BUSINESS, batch=batch,
            category=f"信托/加工/批次{batch}", products=tuple(code for code, _ in chunk),
            depends_on=partitions, after=after, params={"group": key, "channels": channels}))
        current_batch.append(process_name(key))

    if options.package_by == "product":
        for index, (key, chunk) in enumerate(zip(keys, chunks)):
            batch = index // options.jobs_per_batch + 1
            jobs.append(JobSpec(
                name=send_name(key), stage="send", business_type=BUSINESS, batch=batch,
                category=f"信托/发送/批次{batch}", products=tuple(code for code, _ in chunk),
                depends_on=(process_name(key),),
                params={"groups": [key], "package_by": "product", "channels": channels}))
        return jobs

    # By institution: each institution is sent by the sending job of the last processing job holding one of its
    # products, which waits for every processing job holding any of them.
    groups_of: dict[str, list[str]] = {}
    for key, chunk in zip(keys, chunks):
        for _, institution in chunk:
            if key not in groups_of.setdefault(institution, []):
                groups_of[institution].append(key)
    products_of: dict[str, list[str]] = {}
    for code, institution in products:
        products_of.setdefault(institution, []).append(code)
    for index, key in enumerate(keys):
        batch = index // options.jobs_per_batch + 1
        institutions = sorted(i for i, groups in groups_of.items() if groups[-1] == key)
        if not institutions:
            continue
        groups = sorted({g for i in institutions for g in groups_of[i]}, key=keys.index)
        jobs.append(JobSpec(
            name=send_name(key), stage="send", business_type=BUSINESS, batch=batch,
            category=f"信托/发送/批次{batch}",
            products=tuple(code for i in institutions for code in products_of[i]),
            depends_on=tuple(process_name(g) for g in groups),
            params={"groups": groups, "package_by": "institution", "institutions": institutions,
                    "channels": channels}))
    return jobs
