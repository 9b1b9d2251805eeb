"""``[dashboard]`` in esomp.toml."""
from __future__ import annotations

import attrs

from esomp_core.config import structure


@attrs.frozen
class DashboardOptions:
    host: str = "127.0.0.1"
    """Address to bind; the default keeps the dashboard on this machine until a site opens it deliberately."""
    port: int = attrs.field(default=8710, validator=attrs.validators.and_(attrs.validators.ge(1),
                                                                          attrs.validators.le(65535)))
    session_hours: float = 12.0
    """How long a login lasts."""
    secure_cookies: bool = False
    """Send the session cookie over HTTPS only (set when a TLS proxy fronts the dashboard)."""
    poll: float = 1.0
    """Seconds between looks at the repository for live updates."""
    stream_seconds: float = 600.0
    """A live-update stream ends after this long and the browser reconnects (bounds a lost connection)."""


def dashboard_options(site) -> DashboardOptions:
    return structure(DashboardOptions, site.section("dashboard"), path="dashboard", source=site.config.source)
