"""The ``[dtaq]`` table of esomp.toml (and ``[channels.NAME]`` with ``kind = "dtaq"``), parsed into attrs classes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import attrs

from esomp_core.config import ConfigError, structure


def _between(low: float, high: float):
    def check(instance, attribute, value):
        if not low <= value <= high:
            raise ValueError(f"{attribute.name}: expected {low}..{high}, got {value!r}")
    return check


@attrs.frozen
class ServicePolicy:
    """How one service is run: its queues, its pool of server workers, and its breaker (seed 003 3.2.5-3.2.6)."""

    request_queue: str = ""  # default DOMAINNAMETYPEI, e.g. YHTCTR01I
    reply_queue: str = ""  # default DOMAINNAMETYPEO
    min_workers: int = attrs.field(default=1, validator=_between(0, 256))
    max_workers: int = attrs.field(default=4, validator=_between(1, 256))
    target_depth: int = attrs.field(default=8, validator=_between(1, 1_000_000))
    """Requests waiting per worker before the supervisor adds workers (作业比例)."""
    increment: int = attrs.field(default=1, validator=_between(1, 256))
    cooldown: float = 5.0
    """Seconds between two scaling steps, so the pool does not flap."""
    handling: int = attrs.field(default=3, validator=_between(0, 3))
    """Abnormal worker: 0 nothing, 1 keep it and submit another, 2 end it, 3 end it and submit another."""
    restart: int = attrs.field(default=1, validator=_between(0, 1))
    """1: stopped at day end and restarted at day start (脱机重启); 0: restarted by other means."""
    rebuild: bool = True
    """At day start, rebuild the service's queues when its request queue is empty."""
    lease: float = 0.0
    """> 0: at-least-once request delivery with this visibility timeout (seconds); replies de-duplicated."""
    batch: int = attrs.field(default=8, validator=_between(1, 1000))
    """Requests a worker takes per queue operation (its replies go back in one operation too); 1 for slow
    handlers, so waiting requests are not held behind one busy worker."""
    stuck_after: float = 30.0
    """A worker without a heartbeat for this long (stuck in one request, MSGW) is abnormal."""
    timeout: float = 30.0
    """How long a client waits for its reply."""
    open_seconds: float = 10.0
    """How long the breaker stays open (direct call) before half-open trial requests."""
    trial_requests: int = attrs.field(default=3, validator=_between(1, 1000))
    failure_threshold: int = attrs.field(default=5, validator=_between(1, 1_000_000))
    """Client timeouts in a row that open the breaker."""

    def __attrs_post_init__(self):
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers {self.min_workers} is above max_workers {self.max_workers}")


DEFAULT_POLICY = ServicePolicy()


@attrs.frozen
class DtaqOptions:
    backend: Literal["sqlite", "redis", "memory"] = "sqlite"
    path: str = ""
    """SQLite database file; default dtaq.sqlite in the site's monitoring_centre directory."""
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "esomp:dtaq"
    interval: float = 1.0
    """Supervisor poll interval (轮巡时间), seconds."""
    heartbeat: float = 1.0
    state_ttl: float = 0.2
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
    for code in options.services:
        try:
            parse_service_code(code)
        except ValueError as exc:
            raise ConfigError(source, f"{path}.services.{code}", str(exc)) from None
    if options.backend == "sqlite" and not options.path and site is not None:
        options = attrs.evolve(options, path=str(Path(site.directory("monitoring_centre")) / "dtaq.sqlite"))
    return options
