"""A new SQLite repository is readable by its owner only: it holds dashboard users, sessions and the day."""
import os
import stat

from esomp_core.repository import Repository


def test_a_new_sqlite_database_file_is_created_mode_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask would give 0644
    try:
        path = tmp_path / "esomp.db"
        repository = Repository(f"sqlite:///{path}")
        repository.upgrade()
        try:
            for name in ("esomp.db", "esomp.db-wal", "esomp.db-shm"):
                if (tmp_path / name).exists():  # SQLite gives its side files the database's mode
                    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        finally:
            repository.dispose()
    finally:
        os.umask(old)


def test_an_existing_database_file_keeps_its_mode(tmp_path):
    path = tmp_path / "esomp.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    repository = Repository(f"sqlite:///{path}")
    repository.upgrade()
    repository.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
