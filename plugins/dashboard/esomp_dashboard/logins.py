"""Login attempts limited per user name and per address: too many failures within a window lock the name (or
the address) out for a while. A lockout is logged and raised as the alert ``dashboard.lockout`` through the
core's alert store; the monitor ``dashboard.logins`` resolves it when the lockout ends."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from esomp_core import Finding, sync_alerts

from esomp_dashboard.tables import LoginLimit, ensure_tables

SOURCE = "dashboard.logins"  # the monitor's name, under which lockout alerts are synced
RULE = "dashboard.lockout"
log = logging.getLogger("esomp.dashboard")


def _keys(username: str, address: str) -> list[tuple[str, str]]:
    return [("user", username[:100]), ("address", address[:100])]


def refusal(repository, username: str, address: str, now: datetime) -> str | None:
    """Why a login as ``username`` from ``address`` is refused at ``now``, or None when it may be tried."""
    ensure_tables(repository)
    with repository.session() as s:
        for kind, key in _keys(username, address):
            row = s.get(LoginLimit, (kind, key))
            if row is not None and row.locked_until is not None and row.locked_until > now:
                who = f"for {key}" if kind == "user" else f"from {key}"
                return f"Too many failed logins {who}: try again after {row.locked_until:%H:%M:%S}."
    return None


def record_success(repository, username: str, now: datetime) -> None:
    """A right password clears the user's count (not the address's: one good login must not hide a spray)."""
    ensure_tables(repository)
    with repository.session() as s:
        s.execute(update(LoginLimit).where(LoginLimit.kind == "user", LoginLimit.key == username[:100],
                                           or_(LoginLimit.locked_until.is_(None), LoginLimit.locked_until <= now))
                  .values(failures=0, window_started=now))


def record_failure(site, username: str, address: str, now: datetime, options) -> list[str]:
    """Count a failed login against the name and the address; returns the lockouts this failure starts."""
    repository = site.repository
    window, lockout = timedelta(minutes=options.login_window_minutes), timedelta(minutes=options.lockout_minutes)
    limits = {"user": options.login_failures_per_user, "address": options.login_failures_per_address}
    ensure_tables(repository)
    _forget_old(repository, now - window)
    started = []
    for kind, key in _keys(username, address):
        _ensure_row(repository, kind, key, now, address)
        with repository.session() as s:
            # one UPDATE counts the failure, so parallel guesses cannot overwrite each other's count
            s.execute(update(LoginLimit).where(LoginLimit.kind == kind, LoginLimit.key == key).values(
                failures=case((LoginLimit.window_started <= now - window, 1), else_=LoginLimit.failures + 1),
                window_started=case((LoginLimit.window_started <= now - window, now),
                                    else_=LoginLimit.window_started),
                last_origin=address[:100]))
            row = s.get(LoginLimit, (kind, key))
            if row.failures >= limits[kind]:
                row.locked_until, row.failures, row.window_started = now + lockout, 0, now
                started.append(f"{kind} {key}")
                log.warning("login: %s %s locked out until %s after %d failed logins within %s minutes "
                            "(last from %s)", kind, key, row.locked_until.isoformat(timespec="seconds"),
                            limits[kind], options.login_window_minutes, address)
    if started:
        sync_alerts(site, SOURCE, lockout_findings(site, now), now)
    return started


def lockout_findings(site, now: datetime) -> list[Finding]:
    """One finding per name or address locked out at ``now`` (the check of the ``dashboard.logins`` monitor)."""
    ensure_tables(site.repository)
    with site.repository.session() as s:
        rows = s.scalars(select(LoginLimit).where(LoginLimit.locked_until > now)
                         .order_by(LoginLimit.kind, LoginLimit.key)).all()
    return [Finding(RULE, f"{r.kind} {r.key}", "error",
                    f"dashboard logins refused for {r.kind} {r.key} until {r.locked_until:%Y-%m-%d %H:%M:%S} "
                    f"after repeated failures (last from {r.last_origin})") for r in rows]


def _ensure_row(repository, kind: str, key: str, now: datetime, address: str) -> None:
    with repository.session() as s:
        if s.get(LoginLimit, (kind, key)) is not None:
            return
    try:
        with repository.session() as s:
            s.add(LoginLimit(kind=kind, key=key, failures=0, window_started=now, locked_until=None,
                             last_origin=address[:100]))
    except IntegrityError:
        pass  # a parallel attempt made it first


def _forget_old(repository, window_start: datetime) -> None:
    """Rows with no failure in the window and no lockout running count for nothing: keep the table small."""
    with repository.session() as s:
        s.execute(delete(LoginLimit).where(LoginLimit.window_started < window_start,
                                           or_(LoginLimit.locked_until.is_(None),
                                               LoginLimit.locked_until < window_start)))
