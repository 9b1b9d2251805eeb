"""Dashboard users and their sessions, in tables of the dashboard's own beside the site's repository.

Passwords are stored as salted scrypt hashes (``scrypt$n$r$p$salt$hash``, hex); a session is stored by the
sha256 of its random token, so reading the database gives no way into a session. The tables live on their own
MetaData and are created on first use, so the core's migrations never know about them.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from esomp_dashboard.tables import Session, Setting, User, ensure_tables  # noqa: F401 (users.Setting etc.)

ROLES = ("viewer", "operator")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
MIN_PASSWORD = 8
USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class UserError(ValueError):
    pass


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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


def _existing(session, username: str) -> User:
    user = session.get(User, username)
    if user is None:
        raise UserError(f"no user {username} (add one with `esomp users add {username}`)")
    return user


def set_password(repository, username: str, password: str, role: str | None = None) -> None:
    """A new password (and role); the user's sessions end, so whoever knew the old password is out."""
    _check(username, password, role)
    ensure_tables(repository)
    with repository.session() as s:
        user = _existing(s, username)
        user.password_hash, user.updated_at = hash_password(password), datetime.now()
        if role:
            user.role = role
        _end_sessions_of(s, username)


def set_role(repository, username: str, role: str) -> str:
    """Change a user's role and end their sessions; returns the role they had."""
    _check(username, None, role)
    ensure_tables(repository)
    with repository.session() as s:
        user = _existing(s, username)
        before, user.role, user.updated_at = user.role, role, datetime.now()
        _end_sessions_of(s, username)
        return before


def remove_user(repository, username: str) -> None:
    """Remove a user and end their sessions."""
    ensure_tables(repository)
    with repository.session() as s:
        s.delete(_existing(s, username))
        _end_sessions_of(s, username)


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


# --- sessions ------------------------------------------------------------------------------------------------


def start_session(repository, username: str, hours: float, origin: str, now: datetime | None = None) -> str:
    """A new session for ``username``; returns its token (only its hash is stored). Expired sessions go."""
    now = now or datetime.now()
    token = secrets.token_urlsafe(32)
    ensure_tables(repository)
    with repository.session() as s:
        s.execute(delete(Session).where(Session.expires_at < now))
        s.add(Session(token_hash=_token_hash(token), username=username, created_at=now,
                      expires_at=now + timedelta(hours=hours), origin=origin[:100]))
    return token


def session_user(repository, token: str | None, now: datetime | None = None) -> dict | None:
    """The user of a live session, with the role as stored now; None for an ended, expired or unknown one."""
    if not token:
        return None
    with repository.session() as s:
        row = s.execute(select(User.username, User.role).join(Session, Session.username == User.username)
                        .where(Session.token_hash == _token_hash(token),
                               Session.expires_at > (now or datetime.now()))).first()
    return {"username": row.username, "role": row.role} if row else None


def end_session(repository, token: str | None) -> None:
    if token:
        with repository.session() as s:
            s.execute(delete(Session).where(Session.token_hash == _token_hash(token)))


def _end_sessions_of(session, username: str) -> None:
    session.execute(delete(Session).where(Session.username == username))


_DUMMY_HASH = hash_password(secrets.token_hex(8))
