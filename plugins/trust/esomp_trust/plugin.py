"""The trust business type (信托文件管理): its plan and its processing and sending hooks."""
from __future__ import annotations

from esomp_core import BusinessType, Directory, Job, JobResult, hookimpl
from esomp_trust.accounting import run_account
from esomp_trust.options import load_options
from esomp_trust.plan import BUSINESS, partition_name, plan_day
from esomp_trust.processing import run_partition, run_process
from esomp_trust.sending import run_send


@hookimpl
def register_business_types(register) -> None:
    register(BusinessType(BUSINESS, "信托文件管理", plan=plan_day,
                          description="Split the exchanges' clearing files per trust product, package them and "
                                      "send each product's (or institution's) package."))


@hookimpl
def register_migrations(register) -> None:
    from esomp_trust.models import MIGRATIONS

    register(MIGRATIONS)


@hookimpl
def register_config(register) -> None:
    # packages are built here before they are delivered ([business.trust] is the core's table of business types)
    register(Directory("trust_send_temp", "信托发送文件存放临时路径", "work/trust-send-temp"))


@hookimpl
def check_config(site) -> None:
    load_options(site)  # [business.trust] and the channels and file types it names


@hookimpl
def process(job: Job, site) -> JobResult | None:
    options = load_options(site)
    if job.channel and job.name == partition_name(job.channel):
        return run_partition(job, site, options)
    return run_process(job, site, options)


@hookimpl
def send(job: Job, site) -> JobResult | None:
    return run_send(job, site, load_options(site))


@hookimpl
def post(job: Job, site) -> JobResult | None:
    return run_account(job, site, load_options(site))
