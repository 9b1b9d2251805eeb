"""The plugin contract: every hook E-SOMP calls, grouped by lifecycle phase.

Each docstring is the plugin author's reference; docs/hooks.md repeats every signature and a guard test keeps
the two in step. Implement a hook with ``esomp_core.hookimpl`` and a function of the same name taking any
subset of the arguments shown.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import pluggy

if TYPE_CHECKING:  # pragma: no cover - names for the signatures only
    import click

    from esomp_core.model import Alert, Finding, Job, JobResult
    from esomp_core.site import Site

hookspec = pluggy.HookspecMarker("esomp")


# --- Registration: called once when a site's plugins are loaded -----------------------------------------------


@hookspec
def register_channel_kinds(register: Callable[..., None]) -> None:
    """Register channel kinds (``register(ChannelKind(...))``): where files or messages come from or go to."""


@hookspec
def register_file_types(register: Callable[..., None], site: Site | None) -> None:
    """Register file types (``register(FileType(...))``); ``site`` is given so types can be declared in config."""


@hookspec
def register_business_types(register: Callable[..., None]) -> None:
    """Register business types (``register(BusinessType(...))``): each plans the jobs of its part of the day."""


@hookspec
def register_executors(register: Callable[..., None]) -> None:
    """Register executors (``register(Executor(...))``): the ways jobs are run (inline, process pool, ...)."""


@hookspec
def register_monitors(register: Callable[..., None]) -> None:
    """Register monitors (``register(Monitor(...))``): named checks with a schedule that yield findings."""


@hookspec
def register_services(register: Callable[..., None]) -> None:
    """Register transaction services (``register(Service(...))``): (domain, name, type) -> handler."""


@hookspec
def register_migrations(register: Callable[..., None]) -> None:
    """Register your Alembic migrations (``register(Migrations(name, location))``): a branch for your tables."""


@hookspec
def register_config(register: Callable[..., None]) -> None:
    """Declare your esomp.toml tables and working directories (``register(ConfigTable(...))``, ``Directory``)."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``esomp`` command line (``@cli.command()`` or ``cli.add_command``)."""


@hookspec
def check_config(site: Site) -> None:
    """Check your own tables of the site's esomp.toml now; raise ConfigError naming the key path. No database."""


# --- Stages: the engine calls the owner's implementation only (inside any wrappers) -------------------------------
# A job's owner is the plugin that registered its business type, or for a collection job naming a channel, the
# plugin that registered that channel's kind; a plan with an owner lacking the job's stage is refused. Return a
# JobResult; raise to fail the job (the message becomes its error).


@hookspec(firstresult=True)
def collect(job: Job, site: Site) -> JobResult | None:
    """Fetch a collection job's files into the collection root (for jobs naming a channel of your kind)."""


@hookspec(firstresult=True)
def process(job: Job, site: Site) -> JobResult | None:
    """Parse, split, convert or load a processing job's inputs."""


@hookspec(firstresult=True)
def send(job: Job, site: Site) -> JobResult | None:
    """Package and deliver a sending job's outputs."""


@hookspec
def monitor(site: Site, now: Any) -> Iterable[Finding] | None:
    """Check the day at ``now`` and return findings (conditions that hold now); every plugin is asked."""


@hookspec(firstresult=True)
def post(job: Job, site: Site) -> JobResult | None:
    """Post a job's results to ledgers (入账/过账)."""


# --- Events: observers (hooks/) attach here; they must not raise ---------------------------------------------------


@hookspec
def job_started(job: Job, site: Site) -> None:
    """A job has started running (its state change is already committed)."""


@hookspec
def job_finished(job: Job, result: JobResult | None, site: Site) -> None:
    """A job has ended: ``job.state`` tells how (succeeded, failed, cancelled, skipped)."""


@hookspec
def batch_paused(date: str, batch: int, site: Site) -> None:
    """An operator paused a batch: its jobs that have not started wait."""


@hookspec
def batch_resumed(date: str, batch: int, site: Site) -> None:
    """A paused batch was resumed."""


@hookspec
def alert_raised(alert: Alert, site: Site) -> None:
    """A new alert was opened (a repeat of an open alert only updates its count and does not call this)."""


@hookspec
def alert_acknowledged(alert: Alert, site: Site) -> None:
    """An operator acknowledged an alert; ``alert.acknowledged_by`` and ``alert.comment`` say who and why."""
