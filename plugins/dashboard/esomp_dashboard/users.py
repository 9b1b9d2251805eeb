"""Dashboard users and the session secret, in tables of the dashboard's own beside the site's repository.

Passwords are stored as salted scrypt hashes (``scrypt$n$r$p$salt$hash``, hex); the tables live on their own
MetaData and are created on first use, so the core's migrations never know about them.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import DateTime, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("viewer", "operator")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
MIN_PASSWORD = 8
USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class UserError(ValueError):
    pass


class DashboardBase(DeclarativeBase):
    metadata = MetaData()


class User(DashboardBase):
    __tablename__ = "dashboard_users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Setting(DashboardBase):
    __tablename__ = "dashboard_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))


_READY: set[str] = set()


def ensure_tables(repository) -> None:
    if repository.url not in _READY:
        DashboardBase.metadata.create_all(repository.engine)
        _READY.add(repository.url)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                  dklen=len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


def _check(username: str, password: str | None, role: str | None) -> None:
    if not USERNAME.fullmatch(username):
        raise UserError(f"user name {username!r}: use 1-64 letters, digits or _ . @ -")
    if role is not None and role not in ROLES:
        raise UserError(f"role {role!r} for user {username}: expected one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"password for user {username}: at least {MIN_PASSWORD} characters")


def add_user(repository, username: str, password: str, role: str = "viewer") -> None:
    _check(username, password, role)
    ensure_tables(repository)
    with repository.session() as s:
        if s.get(User, username) is not None:
            raise UserError(f"user {username} exists (use `esomp users passwd {username}`)")
        now = datetime.now()
        s.add(User(username=username, role=role, password_hash=hash_password(password), created_at=now,
                   updated_at=now))


def set_password(repository, username: str, password: str, role: str | None = None) -> None:
    _check(username, password, role)
    ensure_tables(repository)
    with repository.session() as s:
        user = s.get(User, username)
        if user is None:
            raise UserError(f"no user {username} (add one with `esomp users add {username}`)")
        user.password_hash, user.updated_at = hash_password(password), datetime.now()
        if role:
            user.role = role


def list_users(repository) -> list[dict]:
    ensure_tables(repository)
    with repository.session() as s:
        return [{"username": u.username, "role": u.role, "created_at": u.created_at, "updated_at": u.updated_at}
                for u in s.scalars(select(User).order_by(User.username))]


def authenticate(repository, username: str, password: str) -> dict | None:
    """The user's name and role if the password is right, else None (same work either way)."""
    ensure_tables(repository)
    with repository.session() as s:
        user = s.get(User, username)
        stored = user.password_hash if user else _DUMMY_HASH
        ok = check_password(password, stored)
        return {"username": user.username, "role": user.role} if user and ok else None


def session_secret(repository) -> str:
    """The key that signs session cookies: made once per site, so restarts keep users logged in."""
    ensure_tables(repository)
    with repository.session() as s:
        setting = s.get(Setting, "session_secret")
        if setting is None:
            setting = Setting(key="session_secret", value=secrets.token_hex(32))
            s.add(setting)
        return setting.value


_DUMMY_HASH = hash_password(secrets.token_hex(8))
