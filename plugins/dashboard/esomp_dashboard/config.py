"""``[dashboard]`` in esomp.toml."""
from __future__ import annotations

import attrs

from esomp_core import structure


def _at_least_one(instance, attribute, value) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name}: expected at least 1, got {value}")


def _positive(instance, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name}: expected a number of minutes above 0, got {value}")


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
    secret_env: str = "ESOMP_DASHBOARD_SECRET"
    """The environment variable holding the key that signs cookies; when it is unset, ``secret_file`` is used."""
    secret_file: str = "dashboard-secret"
    """The key's file (relative to the site), made with mode 0600 on first use; refused if others may read it."""
    login_failures_per_user: int = attrs.field(default=5, validator=_at_least_one)
    """Failed logins for one user name, from any address, within the window that lock the name out."""
    login_failures_per_address: int = attrs.field(default=20, validator=_at_least_one)
    """Failed logins from one address, for any names, within the window that lock the address out."""
    login_window_minutes: float = attrs.field(default=15.0, validator=_positive)
    """The window in which failures count."""
    lockout_minutes: float = attrs.field(default=15.0, validator=_positive)
    """How long a lockout lasts."""


def dashboard_options(site) -> DashboardOptions:
    return structure(DashboardOptions, site.section("dashboard"), path="dashboard", source=site.config.source)
