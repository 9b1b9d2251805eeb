import pytest


@pytest.fixture
def postgres_url(esomp_postgres_url):
    """A fresh PostgreSQL database on the machine's real server (esomp_core.testing), dropped afterwards."""
    return esomp_postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def repository(request, tmp_path):
    from esomp_core.repository import Repository

    url = f"sqlite:///{tmp_path / 'esomp.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    repo = Repository(url)
    repo.upgrade()
    yield repo
    repo.dispose()
