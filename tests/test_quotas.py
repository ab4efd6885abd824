"""Operator quotas per tenant (issue 30 item 2): concurrent jobs, items per day, model seconds per day.

Past a limit, job creation answers 429 problem+json with Retry-After (the SDK raises QuotaExceeded), the tenant's
running jobs go on, and admissions are exact under concurrent requests: parallel requests to one server on SQLite,
and to two servers (two apps, each with its own process-level locks, as two API processes) on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from tests.conftest import run_cli
from verticals.tenancy.tenants import Tenants


@pytest.fixture
def registry(fixtures_only_registry):
    return fixtures_only_registry


@pytest.fixture
def apps(store, registry):
    """``apps(n, background)``: n API apps on the same store (n > 1: as n server processes) and acme's key."""
    from verticals.api.app import create_app

    opened = []

    def make(count: int = 1, background: bool = False):
        clients = []
        for _ in range(count):
            client = TestClient(create_app(store, registry, auth=True, threads=2, background=background))
            client.__enter__()
            opened.append(client)
            clients.append(client)
        key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
        return clients, key

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _parallel(clients, key, bodies):
    """POST /v1/jobs once per body, all at once, spread over ``clients``; the responses in order."""
    barrier = threading.Barrier(len(bodies))

    def post(number: int):
        barrier.wait()
        return clients[number % len(clients)].post("/v1/jobs", json=bodies[number], headers=key)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, range(len(bodies))))


def _body(items: int, **params):
    return {"task": "fixtures.echo", "items": [{"text": f"t{n}"} for n in range(items)], "params": params}


def _servers(store) -> int:
    return 2 if store.engine.dialect.name == "postgresql" else 1  # SQLite: one server process


def test_concurrent_jobs_quota_is_exact_under_parallel_submits(store, apps):
    clients, acme = apps(_servers(store))
    Tenants(store).set_quota("acme", max_active_jobs=3)
    answers = _parallel(clients, acme, [_body(1)] * 12)
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * 3 + [429] * 9, codes
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert "3 unfinished jobs" in refused.json()["detail"] and "quota" in refused.json()["detail"]


def test_items_per_day_quota_is_exact_under_parallel_submits(store, apps):
    clients, acme = apps(_servers(store))
    Tenants(store).set_quota("acme", items_per_day=10)
    answers = _parallel(clients, acme, [_body(3)] * 10)
    assert sorted(a.status_code for a in answers) == [202] * 3 + [429] * 7  # 9 items pending; 3 more would be 12
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert "10 items a day" in refused.json()["detail"] and "9 are pending" in refused.json()["detail"]
    assert 0 < int(refused.headers["Retry-After"]) <= 86401  # the next UTC day
    assert clients[0].post("/v1/jobs", json=_body(1), headers=acme).status_code == 202  # exactly up to the limit
    too_big = clients[0].post("/v1/jobs", json=_body(11), headers=acme)
    assert too_big.status_code == 429 and "split it" in too_big.json()["detail"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_past_its_model_seconds_a_tenant_starts_nothing_new_and_its_running_job_goes_on(store, apps):
    """acme runs a slow job; its usage of the day is past its model seconds: new jobs get 429 (and the SDK's
    QuotaExceeded), the running job finishes as usual, another tenant is not affected."""
    import verticals
    from verticals.client import QuotaExceeded
    from verticals.core.jobs.engine import submit_job
    from verticals.core.store.repo import BatchUsage

    [api], acme = apps(1, background=True)
    store = api.app.state.api.store
    slow = api.post("/v1/jobs", json=_body(6, sleep=0.3), headers=acme)
    assert slow.status_code == 202
    # what acme's earlier jobs used today: 2 model seconds (a job's batch, written as run_chunk writes it)
    done = submit_job(store, api.app.state.api.registry, "fixtures.echo", [{"text": "x"}], tenant="acme")
    store.write_results(done, [], usage=BatchUsage("acme", "fixtures.echo", 2.5, {("m", "cpu"): (2.0, 10, 1, None)}))
    Tenants(store).set_quota("acme", model_seconds_per_day=1.5)
    refused = api.post("/v1/jobs", json=_body(1), headers=acme)
    assert refused.status_code == 429 and "2.0 model seconds today" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    with verticals.Client("http://testserver", api_key="unused") as client:
        client._backend.http = TestClient(api.app, headers=acme)
        with pytest.raises(QuotaExceeded) as error:
            client.submit("fixtures.echo", items=[{"text": "a"}])
        assert error.value.status_code == 429 and error.value.retry_after and error.value.retry_after > 0
    globex = {"Authorization": f"Bearer {Tenants(store).create_key('globex', 'k').token}"}
    assert api.post("/v1/jobs", json=_body(1), headers=globex).status_code == 202
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{slow.json()['id']}", headers=acme).json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert api.get(f"/v1/jobs/{slow.json()['id']}", headers=acme).json()["counts"] == {"succeeded": 6}
    Tenants(store).set_quota("acme", model_seconds_per_day=None)
    assert api.post("/v1/jobs", json=_body(1), headers=acme).status_code == 202


def test_operator_sets_shows_and_clears_quotas_with_the_cli(isolated_home):
    made = run_cli("tenants", "quota", "set", "acme", "--active-jobs", "4", "--items-per-day", "1000",
                   "--model-seconds-per-day", "3600")
    assert made.returncode == 0, made.stderr
    assert "4 active jobs, 1,000 items a day, 3600 model seconds a day" in made.stderr
    listed = run_cli("tenants", "list", "--json")
    assert json.loads(listed.stdout) == [{"tenant": "acme", "active_jobs": 0, "max_active_jobs": 4, "items_today": 0,
                                          "items_per_day": 1000, "model_s_today": 0.0,
                                          "model_seconds_per_day": 3600.0}]
    assert "0 / 4" in run_cli("tenants", "list", env={"COLUMNS": "100"}).stdout
    removed = run_cli("tenants", "quota", "set", "acme", "--items-per-day", "none")
    assert removed.returncode == 0 and "items a day: no limit" in removed.stderr
    for bad in (["--active-jobs", "-1"], ["--items-per-day", "lots"], []):
        refused = run_cli("tenants", "quota", "set", "acme", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), refused.stderr
    assert run_cli("tenants", "quota", "set", "Not A Tenant", "--active-jobs", "1").returncode == 2
    cleared = run_cli("tenants", "quota", "clear", "acme")
    assert cleared.returncode == 0 and "(the server default)" in cleared.stderr
