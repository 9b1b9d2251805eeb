"""A monitor's own options: its ``[monitors.NAME]`` table less the schedule keys.

Monitors are registered through the core (``register_monitors``, ``Monitor``) so any plugin can ship one; running
them on their schedules is the esomp-monitor plugin's, which reads the schedule keys of the same table. A
monitor's author parses the rest with :func:`monitor_options`, so a bad value names ``monitors.NAME.KEY``.
"""
from __future__ import annotations

from typing import Any

from esomp_core.config import structure

SCHEDULE_KEYS = ("enabled", "every", "at", "cron")


def monitor_options(site, name: str, cls: type) -> Any:
    """A monitor's own options: ``[monitors.NAME]`` without the schedule keys, checked against ``cls``."""
    table = site.section("monitors").get(name, {})
    return structure(cls, {k: v for k, v in table.items() if k not in SCHEDULE_KEYS},
                     path=f"monitors.{name}", source=site.config.source)
