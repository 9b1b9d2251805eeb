import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def repository(request, tmp_path):
    from esomp_core.repository import Repository

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'esomp.db'}"
    else:
        url = request.getfixturevalue("esomp_postgres_url")
    repo = Repository(url)
    repo.upgrade()
    yield repo
    repo.dispose()
