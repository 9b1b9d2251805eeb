"""The repository: SQLAlchemy engine and sessions over the site's database, with Alembic migrations.

The core's migrations are one Alembic branch (labelled ``core``); every distribution with tables of its own
registers another (``register_migrations``), found through ``version_locations``. One version table records the
head of each branch.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import attrs
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from esomp_core.config import check_name
from esomp_core.repository import models

MIGRATIONS = Path(__file__).with_name("migrations")


def _branch_name(instance, attribute, value):
    check_name(value, "migrations name:")


@attrs.frozen
class Migrations:
    """A distribution's Alembic migrations: the branch labelled ``name``, its scripts in the folder ``location``."""

    name: str = attrs.field(validator=_branch_name)
    location: str = attrs.field(converter=str)
    description: str = ""


CORE_MIGRATIONS = Migrations("core", MIGRATIONS / "versions", "the core's tables: runs, jobs, files, products ...")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the dashboard and CLI read while the engine writes; busy_timeout rides out short write locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def resolve_url(url: str, base: Path | None) -> str:
    """Make a relative SQLite path absolute against the site directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute() and base is not None:
            return str(parsed.set(database=str((base / path).resolve())))
    return url


def _create_private_sqlite_file(url: str) -> None:
    """Create a new SQLite database file readable by its owner only (SQLite gives its -wal and -shm files the
    same mode): it holds the dashboard's users and sessions as well as the day."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    try:
        os.close(os.open(parsed.database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:
        pass  # it exists already (its mode is the site's choice), or SQLite reports why it cannot open it


class Repository:
    """``migrations``: the plugins' branches this repository upgrades besides the core's (a site passes those of
    its enabled plugins)."""

    def __init__(self, url: str, *, base: Path | None = None, echo: bool = False,
                 migrations: Iterable[Migrations] = ()) -> None:
        self.url = resolve_url(url, base)
        self.migrations = unique_branches([CORE_MIGRATIONS, *migrations])
        _create_private_sqlite_file(self.url)
        self.engine: Engine = create_engine(self.url, echo=echo, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session:
            with session.begin():
                yield session

    def alembic_config(self, extra: Iterable[Migrations] = ()):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        cfg.set_main_option("path_separator", "os")  # a folder name may hold spaces
        locations = [m.location for m in unique_branches([*self.migrations, *extra])]
        cfg.set_main_option("version_locations", os.pathsep.join(locations).replace("%", "%%"))
        cfg.attributes["connection_engine"] = self.engine
        return cfg

    def upgrade(self, *branches: Migrations) -> None:
        """Apply every known branch's migrations up to its head; with ``branches``, only theirs (and the revisions
        they depend on), even when this repository was opened without them."""
        from alembic import command

        cfg = self.alembic_config(branches)
        targets = [f"{branch.name}@head" for branch in branches] or ["heads"]
        for target in targets:
            command.upgrade(cfg, target)

    def current_heads(self) -> tuple[str, ...]:
        """The revision each applied branch is at, as the version table records them."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))

    def current_revision(self) -> str | None:
        """The applied revisions, one per branch, joined by ", "; None for an empty database."""
        return ", ".join(self.current_heads()) or None

    def history(self) -> list[dict[str, Any]]:
        """Each branch with its revisions, oldest first, and whether each is applied to this database."""
        from esomp_core.repository.history import branch_history

        return branch_history(self)

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()


def collect_migrations(pm) -> list[Migrations]:
    """The branches the loaded plugins register (``register_migrations``); a failure names its plugin."""
    from esomp_core.plugins import RegistrationError, call_each

    found: list[Migrations] = []
    owners: dict[str, str] = {CORE_MIGRATIONS.name: "the core"}

    def bind(plugin: str) -> dict[str, Any]:
        def register(migrations: Migrations) -> None:
            if not isinstance(migrations, Migrations):
                raise TypeError(f"register_migrations takes Migrations(name, location), got {migrations!r}")
            if migrations.name in owners:
                raise RegistrationError(f"migrations {migrations.name!r} registered by both "
                                        f"{owners[migrations.name]} and {plugin}")
            if not Path(migrations.location).is_dir():
                raise RegistrationError(f"migrations {migrations.name!r}: no such folder {migrations.location}")
            owners[migrations.name] = plugin
            found.append(migrations)

        return {"register": register}

    failures = call_each(pm, "register_migrations", bind=bind, register=None)
    if failures:
        plugin, exc = failures[0]
        raise RegistrationError(f"plugin {plugin}: register_migrations failed: {type(exc).__name__}: {exc}")
    return found


def unique_branches(migrations: Iterable[Migrations]) -> list[Migrations]:
    """The branches in order, each once; two different folders under one name are refused."""
    seen: dict[str, Migrations] = {}
    for branch in migrations:
        known = seen.setdefault(branch.name, branch)
        if Path(known.location).resolve() != Path(branch.location).resolve():
            raise ValueError(f"two migration branches are named {branch.name!r}: {known.location} and "
                             f"{branch.location}")
    return list(seen.values())


__all__ = ["CORE_MIGRATIONS", "Migrations", "Repository", "collect_migrations", "models"]
