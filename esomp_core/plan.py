"""The day's plan: a DAG of jobs gathered from every registered business type, stored once per business date."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import select

from esomp_core.config import name_problem
from esomp_core.model import STAGES, JobSpec
from esomp_core.repository.models import Job as JobRow
from esomp_core.repository.models import Run


class PlanError(ValueError):
    pass


def build_plan(site, date: str) -> list[JobSpec]:
    """Every business type's jobs for ``date``, checked: unique names, known stages, known and acyclic deps, and
    an owner for every job that implements the job's stage."""
    specs: list[JobSpec] = []
    for name, business in sorted(site.registry.business_types.items()):
        try:
            specs.extend(business.plan(site, date))
        except Exception as exc:
            raise PlanError(f"business type {name}: cannot plan {date}: {type(exc).__name__}: {exc}") from exc
    check_plan(specs)
    for spec in specs:
        owning_plugin(site, spec)
    return specs


def owner_of(site, job) -> tuple[str, str]:
    """What owns a job (a JobSpec or a Job): the channel kind a collection job names, else the business type that
    planned it. Registry.owners maps the pair to the plugin that registered it."""
    if job.stage == "collect" and job.channel:
        section = site.config.channels.get(job.channel)
        if section is None:
            raise PlanError(f"job {job.name}: no channel {job.channel!r} in [channels]")
        return "channel kind", section.kind
    return "business type", job.business_type


def owning_plugin(site, job) -> str:
    """The plugin whose stage hook runs ``job``; a PlanError naming the job and the plugin if there is none."""
    what, name = owner_of(site, job)
    plugin = site.registry.owners.get((what, name))
    if plugin is None:
        raise PlanError(f"job {job.name}: no plugin registers the {what} {name!r} that owns it")
    if not implements(site.pm, plugin, job.stage):
        raise PlanError(f"job {job.name}: plugin {plugin} owns the {what} {name!r} but does not implement the "
                        f"{job.stage!r} hook")
    return plugin


def run_stage(site, job):
    """Run one job's stage hook through its owner (inside the hook's wrappers), as the engine does."""
    from esomp_core.plugins import call_owner

    return call_owner(site.pm, job.stage, owning_plugin(site, job), job=job, site=site)


def implements(pm, plugin: str, hook_name: str) -> bool:
    hook = getattr(pm.hook, hook_name, None)
    return hook is not None and any(impl.plugin_name == plugin and not (impl.wrapper or impl.hookwrapper)
                                    for impl in hook.get_hookimpls())


def check_plan(specs: Iterable[JobSpec]) -> list[JobSpec]:
    specs = list(specs)
    by_name: dict[str, JobSpec] = {}
    for spec in specs:
        problem = name_problem(spec.name)
        if problem:  # job names reach paths (per-job reports under the monitoring centre)
            raise PlanError(f"job name {problem}")
        if spec.name in by_name:
            raise PlanError(f"job name {spec.name!r} planned twice")
        if spec.stage not in STAGES:
            raise PlanError(f"job {spec.name}: unknown stage {spec.stage!r} (expected one of {', '.join(STAGES)})")
        by_name[spec.name] = spec
    for spec in specs:
        for dep in spec.depends_on:
            if dep not in by_name:
                raise PlanError(f"job {spec.name} depends on unknown job {dep!r}")
        for dep in spec.after:
            if dep not in by_name:
                raise PlanError(f"job {spec.name} starts after unknown job {dep!r}")
    return topological(specs)


def topological(specs: list[JobSpec]) -> list[JobSpec]:
    by_name = {s.name: s for s in specs}
    order: list[JobSpec] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise PlanError("dependency cycle: " + " -> ".join((*path, name)))
        state[name] = 1
        for dep in (*by_name[name].depends_on, *by_name[name].after):  # both order the day
            visit(dep, (*path, name))
        state[name] = 2
        order.append(by_name[name])

    for spec in specs:
        visit(spec.name, ())
    return order


def store_plan(site, date: str, specs: list[JobSpec]) -> int:
    """Create the run for ``date`` and any planned job it does not have yet; existing jobs keep their state."""
    with site.repository.session() as s:
        run = s.scalar(select(Run).where(Run.date == date))
        if run is None:
            run = Run(date=date, state="pending", created_at=datetime.now(), paused_batches=[])
            s.add(run)
            s.flush()
        existing = set(s.scalars(select(JobRow.name).where(JobRow.run_id == run.id)))
        for spec in specs:
            if spec.name in existing:
                continue
            s.add(JobRow(run_id=run.id, name=spec.name, stage=spec.stage, business_type=spec.business_type,
                         batch=spec.batch, category=spec.category, channel=spec.channel,
                         products=list(spec.products), depends_on=list(spec.depends_on), after=list(spec.after),
                         params=dict(spec.params),
                         state="pending", detail={}))
        return run.id
