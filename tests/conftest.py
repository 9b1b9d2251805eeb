import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from esomp_core.testing import server_available

PG_ADMIN_URL = os.environ.get("ESOMP_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database on the machine's real server, dropped afterwards."""
    if not server_available("127.0.0.1", 5432):
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not listening on 127.0.0.1:5432 (under CI=true a missing server is a failure)")
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    name = f"esomp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def repository(request, tmp_path):
    from esomp_core.repository import Repository

    url = f"sqlite:///{tmp_path / 'esomp.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    repo = Repository(url)
    repo.upgrade()
    yield repo
    repo.dispose()
