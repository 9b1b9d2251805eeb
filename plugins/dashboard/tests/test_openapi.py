"""The API against its OpenAPI document with schemathesis: generated requests, logged in as an operator."""
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install esomp-dashboard[test]")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from esomp_dashboard.openapi import document  # noqa: E402
from esomp_dashboard.testing import login  # noqa: E402


@pytest.fixture
def operator_headers(client_for):
    client = client_for()
    response, csrf = login(client, "olga")
    assert response.status_code == 303
    return {"Cookie": f"esomp_session={client.cookies['esomp_session']}", "X-CSRF-Token": csrf}


def test_api_conforms_to_its_openapi_document(app, operator_headers):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=operator_headers)  # behind the login
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len([m for item in document()["paths"].values() for m in item])
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(headers={**(case.headers or {}), **operator_headers})

        check()


def test_openapi_document_lists_every_api_route(app):
    documented = {path for path in document()["paths"]}
    routed = {route.path.replace(":int", "") for route in app.routes if route.path.startswith("/api/")}
    assert documented == routed
