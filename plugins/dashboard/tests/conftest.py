"""Fixtures: a site with a seeded day, users of both roles, and an app with a launcher that records its calls."""
import pytest

from esomp_core import hookimpl
from esomp_dashboard import users
from esomp_dashboard.app import create_app
from esomp_dashboard.config import DashboardOptions
from esomp_dashboard.testing import DATE, PASSWORD, login, seed_day


class Heard:
    """Records the operator events the dashboard causes."""

    def __init__(self):
        self.events = []

    @hookimpl
    def batch_paused(self, date, batch):
        self.events.append(("paused", date, batch))

    @hookimpl
    def batch_resumed(self, date, batch):
        self.events.append(("resumed", date, batch))

    @hookimpl
    def alert_acknowledged(self, alert):
        self.events.append(("acknowledged", alert.id, alert.acknowledged_by, alert.comment))

    @hookimpl
    def alert_raised(self, alert):
        self.events.append(("raised", alert.rule, alert.subject))


@pytest.fixture
def heard():
    return Heard()


@pytest.fixture
def backend(request):
    """The repository's kind: SQLite unless a test asks for both (``parametrize("backend", ..., indirect=True)``)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def day_site(esomp_site_factory, esomp_pm_factory, heard, backend, request):
    """A site whose day (100 products, 4 batches of 5 processing and 5 sending jobs) has not started."""
    tables = {}
    if backend == "postgresql":
        tables["database"] = {"url": request.getfixturevalue("esomp_postgres_url")}
    site = esomp_site_factory(esomp_pm_factory(heard), **tables)
    seed_day(site, DATE, 100, finished=False, files_per_product=2, alerts=4)
    users.add_user(site.repository, "olga", PASSWORD, "operator")
    users.add_user(site.repository, "victor", PASSWORD, "viewer")
    return site


@pytest.fixture
def launches():
    return []


@pytest.fixture
def app(day_site, launches):
    return create_app(day_site, DashboardOptions(poll=0.1, stream_seconds=5),
                      launch=lambda argv, log: launches.append((argv, log)))


@pytest.fixture
def client_for(app):
    from starlette.testclient import TestClient

    clients = []

    def make(username=None, address="127.0.0.1"):
        client = TestClient(app, base_url="http://127.0.0.1", client=(address, 50000))
        clients.append(client)
        if username:
            response, csrf = login(client, username)
            assert response.status_code == 303, response.text
            client.headers["X-CSRF-Token"] = csrf
        return client

    yield make
    for client in clients:
        client.close()
