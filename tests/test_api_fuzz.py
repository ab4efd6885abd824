"""Schemathesis fuzzing of the OpenAPI schema: no request, however odd, may cause a 5xx.

Bounded: a fixed number of examples per operation (VERTICALS_FUZZ_EXAMPLES, default 12), no deadline
per example; the whole module runs in well under a minute on two cores.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

EXAMPLES = int(os.environ.get("VERTICALS_FUZZ_EXAMPLES", "12"))


@pytest.fixture
def registry(fixtures_only_registry):
    """Only the fixture plugin (fast): the API is under test, not the domain plugins."""
    return fixtures_only_registry


@pytest.fixture
def fuzz_target(isolated_home, registry):
    from verticals.api.app import create_app
    from verticals.core.jobs.engine import submit_job
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    store = open_store(f"sqlite:///{isolated_home / 'fuzz.db'}")
    key = Tenants(store).create_key("acme", "fuzz").token
    submit_job(store, registry, "fixtures.echo", [{"text": "a"}], tenant="acme")  # something to find
    app = create_app(store, registry, background=False)
    yield app, key


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 15
    return found


def test_no_request_causes_a_server_error(fuzz_target):
    """Every operation, EXAMPLES generated requests each, with and without a valid key."""
    from hypothesis import given

    app, key = fuzz_target
    seen = []
    for operation in operations(app):

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            for headers in ({"Authorization": f"Bearer {key}"}, {}):
                response = case.call(headers=headers)
                seen.append(response.status_code)
                assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                    response.text[:500])

        check()
    assert any(code < 300 for code in seen) and 401 in seen  # the fuzzer got past auth, and was refused without it
