"""What plugins register and what the engine hands them: plain attrs classes, no behaviour of the core's own."""
from __future__ import annotations

import concurrent.futures
import fnmatch
import re
from concurrent.futures import Future
from typing import Any, Callable, Protocol

import attrs

STAGES = ("collect", "process", "send", "post")  # job stages; monitor is a hook every plugin answers
JOB_STATES = ("pending", "waiting", "running", "succeeded", "failed", "paused", "cancelled", "skipped")


@attrs.frozen
class FieldSpec:
    """One field of a record layout: dBase type letter (C, N, D, L, F), width and decimals."""

    name: str
    type: str
    length: int
    decimals: int = 0


def layout(text: str) -> tuple[FieldSpec, ...]:
    """Fields from ``"NAME C6, NAME N15.2, NAME D8"``, the way the exchanges' specs print a layout."""
    fields = []
    for item in text.split(","):
        name, kind = item.split()
        width, _, decimals = kind[1:].partition(".")
        fields.append(FieldSpec(name, kind[0], int(width), int(decimals or 0)))
    return tuple(fields)


@attrs.frozen
class FileType:
    """A kind of exchange file: how to recognise it, how to read it, and whether it is split per product.

    ``key_fields`` empty means the file is passed whole to every product (market data).
    Patterns are shell wildcards matched against the file name; ``{date}`` stands for the business date as
    CCYYMMDD and ``{mdd}`` for its month (1-9, A-C... as the exchanges write it) and day.
    """

    name: str
    family: str
    patterns: tuple[str, ...]
    fields: tuple[FieldSpec, ...] = ()
    key_fields: tuple[str, ...] = ()
    encoding: str = "gbk"
    format: str = "dbf"
    case_sensitive: bool = False
    channel: str = ""
    market: str = ""
    """Whose securities accounts the key field holds: "SZ" or "SH" (empty for files passed whole)."""
    placeholder: bool = False
    description: str = ""
    profile: dict[str, Any] = attrs.field(factory=dict)
    many: bool = False
    """Several files of this type arrive on one day (one per seat, as gh's GH + seat number): otherwise a second
    file of the type is an ambiguous input that fails collection."""

    @property
    def split(self) -> bool:
        return bool(self.key_fields)

    def matches(self, filename: str, date: str | None = None) -> bool:
        name = filename if self.case_sensitive else filename.lower()
        for pattern in self.patterns:
            pattern = expand_date_tokens(pattern, date)
            if not self.case_sensitive:
                pattern = pattern.lower()
            if fnmatch.fnmatchcase(name, pattern):
                return True
        return False


def expand_date_tokens(pattern: str, date: str | None) -> str:
    """Replace ``{date}``, ``{yyyymmdd}``, ``{mmdd}`` and ``{mdd}`` by the date's text, or by ``*`` without a date."""
    if date is None:
        return re.sub(r"\{(date|yyyymmdd|mmdd|mdd)\}", "*", pattern)
    month = int(date[4:6])
    return (
        pattern.replace("{date}", date)
        .replace("{yyyymmdd}", date)
        .replace("{mmdd}", date[4:])
        .replace("{mdd}", "123456789ABC"[month - 1] + date[6:])
    )


@attrs.frozen
class ChannelKind:
    """A kind of channel (fs, dtaq, direct ...). ``options`` is the attrs class a ``[channels.NAME]`` table is
    parsed into; ``open(name, options, site)`` returns the channel object the stage hooks use."""

    name: str
    options: type
    open: Callable[..., Any]
    description: str = ""


@attrs.frozen
class BusinessType:
    """A business line (trust, rtgs, ...). ``plan(site, date)`` returns the JobSpecs of its part of the day."""

    name: str
    title: str
    plan: Callable[..., list["JobSpec"]]
    description: str = ""


class ExecutorProtocol(Protocol):
    """What the engine needs of the object an ``Executor``'s ``create(site, workers)`` returns.

    ``submit`` runs ``fn(*args, site=...)`` on a worker and returns a ``concurrent.futures.Future`` of its result;
    ``shutdown`` lets running jobs finish and frees the workers; ``workers`` is how many jobs run at once. The
    optional capabilities come from subclassing ``BaseExecutor``; nothing else is looked for on an executor.
    """

    workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def shutdown(self) -> None: ...


def check_executor(executor: Any, label: str) -> None:
    """Refuse ``executor`` (a class, or the instance a factory made) if it lacks what ``ExecutorProtocol`` requires;
    ``label`` names it in the error."""
    missing = [f"{name} method" for name in ("submit", "shutdown") if not callable(getattr(executor, name, None))]
    if not isinstance(executor, type) and not isinstance(getattr(executor, "workers", None), int):
        missing.append("workers count")  # a class often sets it in __init__: only an instance can be asked
    if missing:
        kind = executor if isinstance(executor, type) else type(executor)
        raise TypeError(f"{label}: {kind.__qualname__} has no {' or '.join(missing)} "
                        f"(see docs/hooks.md, register_executors)")


class BaseExecutor:
    """The executor protocol's optional capabilities, with the defaults a plain executor gets.

    A subclass still defines ``submit`` (taking ``worker=`` when it names workers) and ``shutdown``, and overrides
    what it does better. An executor that does not subclass it is run with these defaults (the engine wraps it),
    whatever other methods it has.
    """

    workers: int = 1
    names_workers: bool = False
    """True: ``idle_workers`` names the workers, the engine records each job's start on the worker named and
    passes it to ``submit(..., worker=name)``; False: the worker records the start itself."""

    def idle_workers(self, busy: int) -> list[str | None]:
        """One entry per job the executor can take now that ``busy`` of its jobs are running: a worker's name
        when ``names_workers``, else None."""
        return [None] * (self.workers - busy)

    def wait(self, futures: list[Future], timeout: float) -> set[Future]:
        """Block until one of ``futures`` is done (or ``timeout`` passes); return those done."""
        return concurrent.futures.wait(futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED).done

    def worker_lost(self) -> None:
        """A worker died under a job (the engine runs the job again): repair what the death broke."""


def _has_executor_methods(instance: "Executor", attribute: attrs.Attribute, create: Any) -> None:
    """A class given as ``create`` is checked when it is registered; a factory's executor when the engine makes it."""
    if isinstance(create, type):
        check_executor(create, f"executor {instance.name!r}")


@attrs.frozen
class Executor:
    """A way to run jobs; ``create(site, workers)`` returns an ``ExecutorProtocol`` (often: ``create`` is its class)."""

    name: str
    create: Callable[..., Any] = attrs.field(validator=_has_executor_methods)
    description: str = ""
    options: type | None = None
    """An attrs class that checks the site's ``[executors.NAME]`` table; None: the table takes no keys."""


@attrs.frozen
class Monitor:
    """A named check. ``check(site, now)`` yields Findings; runs every ``every`` seconds or at ``at`` (HH:MM)."""

    name: str
    check: Callable[..., Any]
    business_type: str = "core"
    every: int | None = None
    at: str | None = None
    description: str = ""


@attrs.frozen
class Service:
    """A transaction service of seed 003 (e.g. YHT CTR 01); ``handler(request) -> reply`` is called by workers."""

    domain: str
    name: str
    type: str
    handler: Callable[..., Any]
    financial: bool = False
    description: str = ""


@attrs.define
class JobSpec:
    """A job as a business type plans it, before the repository gives it an id."""

    name: str
    stage: str
    business_type: str
    batch: int = 0
    category: str = ""
    channel: str = ""
    products: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    """Jobs that must have succeeded first: a failed, skipped or cancelled one skips this job."""
    params: dict[str, Any] = attrs.field(factory=dict)
    after: tuple[str, ...] = ()
    """Jobs that must have ended first, however they ended: ordering only (staggering), never a skip."""


@attrs.define
class Job:
    """A job as the engine runs it: a JobSpec with its run's date, an id and a state."""

    id: int
    date: str
    name: str
    stage: str
    business_type: str
    batch: int = 0
    category: str = ""
    channel: str = ""
    products: tuple[str, ...] = ()
    params: dict[str, Any] = attrs.field(factory=dict)
    state: str = "pending"
    error: str | None = None


@attrs.define
class JobResult:
    """What a stage hook reports back: counts for the status table, and free-form detail for the job page."""

    files: int = 0
    records: int = 0
    bytes: int = 0
    detail: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Finding:
    """A condition a monitor sees now. The same (rule, subject) seen again updates one alert, never opens two."""

    rule: str
    subject: str
    severity: str
    message: str
    business_type: str = "core"


@attrs.define
class Alert:
    """A stored alert, as observers of alert_raised / alert_acknowledged see it."""

    id: int
    rule: str
    subject: str
    severity: str
    message: str
    state: str = "open"
    count: int = 1
    business_type: str = "core"
    acknowledged_by: str | None = None
    comment: str | None = None
