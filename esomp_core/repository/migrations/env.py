"""Alembic environment: runs against the engine the Repository hands over (or the URL in the config).

The version table holds one row per applied branch. A branch whose scripts are not in ``version_locations`` (a
plugin disabled or uninstalled since) is left as it is: its row is kept and never resolved.
"""
from alembic import context
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import engine_from_config, pool

from esomp_core.repository.models import Base

config = context.config
target_metadata = Base.metadata


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _skip_unknown_heads(migration_context) -> None:
    """Alembic resolves every head in the version table; keep those of branches not loaded out of its sight."""
    script = ScriptDirectory.from_config(config)
    all_heads = migration_context.get_current_heads

    def known_heads():
        return tuple(head for head in all_heads() if _known(script, head))

    migration_context.get_current_heads = known_heads


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("connection_engine") or engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        _skip_unknown_heads(context.get_context())
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
