"""Helpers for tests of the DTAQ channel (and of plugins that call services through it): the example services
plus a slow one, on a channel over any backend."""
from __future__ import annotations

import time
from typing import Any

from esomp_core import Service
from esomp_dtaq.channel import DtaqChannel
from esomp_dtaq.config import DtaqOptions, ServicePolicy
from esomp_dtaq.examples import SERVICES

ECHO = ("ECHO", "ECHO", "01")
SLOW = ("T", "SLOW", "01")


def slow(request: Any) -> bytes:
    """Sleeps the seconds its data says (0.3 by default): a request still running when its caller gives up."""
    time.sleep(float(request.data or b"0.3"))
    return b"slept"


def make_channel(backend: Any, services: dict | None = None, **policies: Any) -> DtaqChannel:
    """A channel over ``backend`` with the example services, SLOW, ``services`` and a policy per service code."""
    table = {(s.domain, s.name, s.type): s for s in SERVICES}
    table[SLOW] = Service(*SLOW, slow, financial=False)
    table.update(services or {})
    options = DtaqOptions(backend=backend.kind, interval=0.1, heartbeat=0.1, state_ttl=0.0,
                          services={code: ServicePolicy(**p) for code, p in policies.items()})
    return DtaqChannel(backend, table, options)
