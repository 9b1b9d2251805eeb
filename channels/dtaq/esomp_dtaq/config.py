"""The ``[dtaq]`` table of esomp.toml (and ``[channels.NAME]`` with ``kind = "dtaq"``), parsed into attrs classes."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import attrs

from esomp_core import ConfigError, structure

QUEUE_NAME = re.compile(r"[A-Za-z0-9_#@$]{1,64}")  # IBM i style: it names Redis keys and SQLite rows
DEFAULT_MAX_ENTRIES = 10_000


def _between(low: float, high: float):
    def check(instance, attribute, value):
        if not low <= value <= high:
            raise ValueError(f"{attribute.name}: expected {low}..{high}, got {value!r}")
    return check


def _seconds(*, zero: bool):
    """Seconds that are finite and positive (or also 0 when ``zero``): a negative wait used to mean forever."""
    def check(instance, attribute, value):
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            expected = "seconds >= 0" if zero else "seconds > 0"
            raise ValueError(f"{attribute.name}: expected {expected}, got {value!r}")
    return check


def _queue_name(instance, attribute, value):
    if value and not QUEUE_NAME.fullmatch(value):
        raise ValueError(f"{attribute.name}: {value!r} is not a queue name (1 to 64 letters, digits, _ # @ $)")


@attrs.frozen
class ServicePolicy:
    """How one service is run: its queues, its pool of server workers, and its breaker (seed 003 3.2.5-3.2.6)."""

    request_queue: str = attrs.field(default="", validator=_queue_name)  # default DOMAINNAMETYPEI
    reply_queue: str = attrs.field(default="", validator=_queue_name)  # default DOMAINNAMETYPEO
    min_workers: int = attrs.field(default=1, validator=_between(0, 256))
    max_workers: int = attrs.field(default=4, validator=_between(1, 256))
    target_depth: int = attrs.field(default=8, validator=_between(1, 1_000_000))
    """Requests waiting per worker before the supervisor adds workers (作业比例)."""
    increment: int = attrs.field(default=1, validator=_between(1, 256))
    cooldown: float = attrs.field(default=5.0, validator=_seconds(zero=True))
    """Seconds between two scaling steps, so the pool does not flap."""
    handling: int = attrs.field(default=3, validator=_between(0, 3))
    """Abnormal worker: 0 nothing, 1 keep it and submit another, 2 end it, 3 end it and submit another."""
    restart: int = attrs.field(default=1, validator=_between(0, 1))
    """1: stopped at day end and restarted at day start (脱机重启); 0: restarted by other means."""
    rebuild: bool = True
    """At day start, rebuild the service's queues when its request queue is empty."""
    lease: float = attrs.field(default=0.0, validator=_seconds(zero=True))
    """> 0: at-least-once request delivery with this visibility timeout (seconds); replies de-duplicated."""
    batch: int = attrs.field(default=8, validator=_between(1, 1000))
    """Requests a worker takes per queue operation (its replies go back in one operation too); 1 for slow
    handlers, so waiting requests are not held behind one busy worker."""
    stuck_after: float = attrs.field(default=30.0, validator=_seconds(zero=False))
    """A worker without a heartbeat for this long (stuck in one request, MSGW) is abnormal."""
    timeout: float = attrs.field(default=30.0, validator=_seconds(zero=False))
    """How long a client waits for its reply; a request not started by then is dropped, never run."""
    max_entries: int = attrs.field(default=DEFAULT_MAX_ENTRIES, validator=_between(0, 2**31 - 1))
    """Most requests the request queue holds (0: unlimited); a call finding it full is answered directly."""
    open_seconds: float = attrs.field(default=10.0, validator=_seconds(zero=True))
    """How long the breaker stays open (direct call) before half-open trial requests."""
    trial_requests: int = attrs.field(default=3, validator=_between(1, 1000))
    failure_threshold: int = attrs.field(default=5, validator=_between(1, 1_000_000))
    """Client timeouts in a row that open the breaker."""

    def __attrs_post_init__(self):
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers: {self.min_workers} is above max_workers {self.max_workers}")
        if self.request_queue and self.request_queue == self.reply_queue:
            raise ValueError(f"reply_queue: {self.reply_queue!r} is also the request queue")


DEFAULT_POLICY = ServicePolicy()


@attrs.frozen
class DtaqOptions:
    backend: Literal["sqlite", "redis", "memory"] = "sqlite"
    path: str = ""
    """SQLite database file; default dtaq.sqlite in the site's monitoring_centre directory."""
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "esomp:dtaq"
    interval: float = attrs.field(default=1.0, validator=_seconds(zero=False))
    """Supervisor poll interval (轮巡时间), seconds."""
    heartbeat: float = attrs.field(default=1.0, validator=_seconds(zero=False))
    state_ttl: float = attrs.field(default=0.2, validator=_seconds(zero=True))
    """How long a process may reuse what it read of the control state (blacklist, CUTOFF, breaker)."""
    services: dict[str, ServicePolicy] = attrs.field(factory=dict)
    """Per service, keyed "DOMAIN.NAME.TYPE" (e.g. "YHT.CTR.01"); others use the defaults."""
    serve: list[str] | None = None
    """The services `esomp dtaq serve` runs (default: every registered service)."""

    def policy(self, key: tuple[str, str, str]) -> ServicePolicy:
        return self.services.get(service_code(key)) or DEFAULT_POLICY


def service_code(key: tuple[str, str, str]) -> str:
    return ".".join(key)


def parse_service_code(code: str) -> tuple[str, str, str]:
    parts = code.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"service {code!r}: expected DOMAIN.NAME.TYPE, e.g. YHT.CTR.01")
    return (parts[0], parts[1], parts[2])


def load_options(site: Any, table: dict[str, Any] | None = None, path: str = "dtaq") -> DtaqOptions:
    """The site's ``[dtaq]`` table (or ``table``) as DtaqOptions; errors name the file and key."""
    source = site.config.source if site is not None else None
    options = structure(DtaqOptions, site.section("dtaq") if table is None else table, path=path, source=source)
    check_services(options, path, source)
    if options.backend == "sqlite" and not options.path and site is not None:
        options = attrs.evolve(options, path=str(Path(site.directory("monitoring_centre")) / "dtaq.sqlite"))
    return options


def check_services(options: DtaqOptions, path: str, source: Any) -> None:
    """What the attrs validators cannot see: service codes and queues shared by two services (ConfigError at
    ``path``.services.CODE)."""
    for code in options.services:
        try:
            parse_service_code(code)
        except ValueError as exc:
            raise ConfigError(source, f"{path}.services.{code}", str(exc)) from None
    _check_queues_not_shared(options, path, source)


def _check_queues_not_shared(options: DtaqOptions, path: str, source: Any) -> None:
    """Two services configured onto one queue would answer each other's requests: refuse at load."""
    owners: dict[str, str] = {}
    for code, policy in sorted(options.services.items()):
        key = parse_service_code(code)
        base = "".join(key)
        for field, name in (("request_queue", policy.request_queue or f"{base}I"),
                            ("reply_queue", policy.reply_queue or f"{base}O")):
            if name in owners:
                raise ConfigError(source, f"{path}.services.{code}.{field}",
                                  f"queue {name!r} is already a queue of service {owners[name]}")
            owners[name] = code
