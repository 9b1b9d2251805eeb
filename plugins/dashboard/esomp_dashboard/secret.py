"""The key that signs the dashboard's cookies, kept where a reader of the database cannot see it.

It comes from the environment variable named by ``[dashboard] secret_env`` when that is set, else from
``[dashboard] secret_file`` (relative to the site), which is made on first use with mode 0600 and refused when
group or others may read it.
"""
from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from esomp_dashboard import users

MIN_LENGTH = 32


class SecretError(ValueError):
    pass


def session_secret(site, secret_env: str, secret_file: str) -> str:
    from_env = os.environ.get(secret_env) if secret_env else None
    if from_env:
        if len(from_env) < MIN_LENGTH:
            raise SecretError(f"environment variable {secret_env}: at least {MIN_LENGTH} characters")
        secret = from_env
    else:
        path = Path(secret_file)
        secret = _read_or_create(path if path.is_absolute() else Path(site.root) / path)
    _forget_database_copy(site.repository)
    return secret


def _read_or_create(path: Path) -> str:
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(f"{path}: readable by group or others (mode {mode:04o}); chmod 600 {path}")
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_LENGTH:
        raise SecretError(f"{path}: at least {MIN_LENGTH} characters (delete it to have a new one made)")
    return secret


def _create(path: Path) -> None:
    """Write a new key under a temporary name (mkstemp makes it 0600) and link it in: whichever of two
    dashboards starting together links first wins, and neither ever reads a half-written file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _forget_database_copy(repository) -> None:
    """Older versions kept the key in the database: delete it, so the database no longer opens sessions."""
    users.ensure_tables(repository)
    with repository.session() as s:
        stale = s.get(users.Setting, "session_secret")
        if stale is not None:
            s.delete(stale)


def open_database_warning(repository) -> str | None:
    """A warning when group or others may read the site's SQLite file (its users, sessions and the day)."""
    url = make_url(repository.url)
    if url.get_backend_name() != "sqlite" or not url.database or not Path(url.database).exists():
        return None
    mode = stat.S_IMODE(Path(url.database).stat().st_mode)
    if mode & 0o077:
        return f"{url.database}: readable by group or others (mode {mode:04o}); chmod 600 {url.database}*"
    return None
