import uuid

import pytest

from esomp_dtaq.backends import open_backend
from esomp_dtaq.supervisor import Supervisor


@pytest.fixture(params=["sqlite", "redis", "memory"])
def backend_kind(request):
    return request.param


@pytest.fixture
def backend_options(backend_kind, tmp_path, require_server):
    """How to open the backend under test: one file per test for SQLite, one key prefix per test for Redis."""
    if backend_kind == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        return {"kind": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": f"esomp-test:{uuid.uuid4().hex}"}
    if backend_kind == "sqlite":
        return {"kind": "sqlite", "path": str(tmp_path / "dtaq.sqlite")}
    return {"kind": "memory"}


@pytest.fixture
def backend(backend_options):
    b = open_backend(**backend_options)
    yield b
    if b.kind == "redis":
        b.drop_all()
    b.close()


@pytest.fixture
def pool(backend):
    """``pool(channel, keys)`` starts a supervisor for those services; each is shut down after the test."""
    supervisors = []

    def start(channel, keys):
        supervisor = Supervisor(channel, keys)
        supervisor.start()
        supervisors.append(supervisor)
        return supervisor

    yield start
    for supervisor in supervisors:
        supervisor.shutdown(wait=5)
