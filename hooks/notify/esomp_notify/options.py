"""``[notify]`` in esomp.toml: targets (log, webhook, email) and the routes that pick them per alert."""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

import attrs

from esomp_core import env_name, structure

SEVERITIES = ("info", "warning", "error", "critical")


def _positive(instance, attribute, value):
    if value <= 0:
        raise ValueError(f"{attribute.name}: expected a number above 0, got {value!r}")


def _not_negative(instance, attribute, value):
    if value < 0:
        raise ValueError(f"{attribute.name}: expected a number of 0 or more, got {value!r}")


def _port(instance, attribute, value):
    if not 1 <= value <= 65535:
        raise ValueError(f"{attribute.name}: expected a port from 1 to 65535, got {value!r}")


def _address(value: str | None) -> bool:
    return value is None or bool(re.fullmatch(r"[^@\s]+@[^@\s]+", value))


def _sender(instance, attribute, value):
    if not _address(value):
        raise ValueError(f"{attribute.name}: expected an e-mail address, got {value!r}")


def _recipients(instance, attribute, value):
    for address in value:
        if not _address(address):
            raise ValueError(f"{attribute.name}: expected e-mail addresses, got {address!r}")


@attrs.frozen
class Target:
    """``[notify.targets.NAME]``: where messages go. ``kind`` decides which keys apply."""

    kind: Literal["log", "webhook", "email"]
    # webhook
    url: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    # email
    host: str | None = None
    port: int = attrs.field(default=25, validator=_port)
    starttls: bool = False
    ca_file: str | None = None
    """CA certificate(s) to verify the server with after STARTTLS (an internal relay); default: the system's."""
    username: str | None = None
    password_env: str | None = attrs.field(default=None, validator=env_name)
    sender: str | None = attrs.field(default=None, validator=_sender)
    to: list[str] = attrs.field(factory=list, validator=_recipients)
    subject_prefix: str = "[E-SOMP]"
    # delivery
    timeout: float = attrs.field(default=10.0, validator=_positive)
    attempts: int = attrs.field(default=6, validator=_positive)
    """Tries before a delivery is given up (state "failed"; the notify.deliveries monitor then raises an alert)."""
    backoff: float = attrs.field(default=5.0, validator=_not_negative)
    """Seconds before the second try; doubled after each failure, at most ``max_backoff``."""
    max_backoff: float = attrs.field(default=600.0, validator=_not_negative)

    def __attrs_post_init__(self):
        if self.max_backoff < self.backoff:
            raise ValueError(f"max_backoff: expected at least backoff ({self.backoff:g}), got {self.max_backoff:g}")
        if self.kind == "webhook" and not (self.url and re.match(r"https?://", self.url)):
            raise ValueError("url: a webhook needs an http:// or https:// URL")
        if self.kind == "email":
            missing = [k for k in ("host", "sender") if not getattr(self, k)] + ([] if self.to else ["to"])
            if missing:
                raise ValueError(f"{missing[0]}: missing required key for an email target")


def _severities(instance, attribute, value):
    bad = [v for v in value if v not in SEVERITIES]
    if bad:
        raise ValueError(f"{attribute.name}: unknown severity {bad[0]!r} (expected some of {', '.join(SEVERITIES)})")


@attrs.frozen
class Route:
    """``[[notify.routes]]``: alerts matching every given filter go to ``targets``; the first match wins
    unless it sets ``continue = true``. Empty filters match anything."""

    targets: list[str]
    severity: list[str] = attrs.field(factory=list, validator=_severities)
    business_type: list[str] = attrs.field(factory=list)
    rule: list[str] = attrs.field(factory=list)
    """Shell wildcards (``job.*``)."""
    continue_: bool = False
    """Written ``continue`` in esomp.toml, as in Alertmanager."""

    def matches(self, alert: dict[str, Any]) -> bool:
        return ((not self.severity or alert["severity"] in self.severity)
                and (not self.business_type or alert["business_type"] in self.business_type)
                and (not self.rule or any(fnmatch.fnmatchcase(alert["rule"], r) for r in self.rule)))


def _default_targets() -> dict[str, Target]:
    return {"log": Target(kind="log")}


@attrs.frozen
class NotifyOptions:
    targets: dict[str, Target] = attrs.field(factory=_default_targets)
    routes: list[Route] = attrs.field(factory=lambda: [Route(targets=["log"])])
    acknowledgements: bool = True
    """Also tell an alert's routes when it is acknowledged (确认), and by whom."""
    interval: float = attrs.field(default=5.0, validator=_positive)
    """Seconds between the background worker's looks at due notifications and retries."""
    keep_days: int | None = attrs.field(default=None, validator=attrs.validators.optional(_positive))
    """Days to keep delivered and given-up deliveries (None: keep them all)."""

    def __attrs_post_init__(self):
        for i, route in enumerate(self.routes):
            for name in route.targets:
                if name not in self.targets:
                    raise ValueError(f"routes[{i}].targets: unknown target {name!r} "
                                     f"(configured: {', '.join(sorted(self.targets))})")


def notify_options(site) -> NotifyOptions:
    table = dict(site.section("notify"))
    if "targets" in table and "log" not in table["targets"]:
        table["targets"] = {"log": {"kind": "log"}, **table["targets"]}  # the log target always exists
    if isinstance(table.get("routes"), list):  # "continue" is a Python keyword: the field is continue_
        table["routes"] = [{("continue_" if k == "continue" else k): v for k, v in r.items()}
                           if isinstance(r, dict) else r for r in table["routes"]]
    return structure(NotifyOptions, table, path="notify", source=site.config.source)


def route(alerts: list[dict[str, Any]], options: NotifyOptions) -> dict[str, list[dict[str, Any]]]:
    """Target name -> the alerts it receives, in the order given."""
    by_target: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        for r in options.routes:
            if r.matches(alert):
                for name in r.targets:
                    by_target.setdefault(name, []).append(alert)
                if not r.continue_:
                    break
    return by_target
