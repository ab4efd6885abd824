"""REST API unit tests (FastAPI TestClient, real SQLite store, real job threads, fixture task)."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from verticals.tenancy.tenants import Tenants


@pytest.fixture
def registry(fixtures_only_registry):
    """Only the fixture plugin (fast): the API is under test, not the domain plugins."""
    return fixtures_only_registry


@pytest.fixture
def api_store(request, isolated_home):
    """SQLite; tests marked ``@both_databases`` run on a fresh PostgreSQL database too."""
    from verticals.core.store import open_store
    from verticals.core.store.db import make_engine, upgrade

    if getattr(request, "param", "sqlite") == "sqlite":
        return open_store(f"sqlite:///{isolated_home / 'api.db'}")
    url = request.getfixturevalue("postgres_url")
    upgrade(make_engine(url))
    return open_store(url)


both_databases = pytest.mark.parametrize("api_store", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def make_api(api_store, registry):
    store = api_store
    from verticals.api.app import create_app

    clients = []

    def make(auth: bool = True, background: bool = True) -> TestClient:
        client = TestClient(create_app(store, registry, auth=auth, background=background))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api):
    return make_api()


@pytest.fixture
def keys(api_store):
    tenants = Tenants(api_store)
    return {name: {"Authorization": f"Bearer {tenants.create_key(name, 'test').token}"} for name in ("acme", "globex")}


def wait_done(api, headers, job_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def submit(api, headers, texts, **extra):
    response = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": t} for t in texts], **extra},
                        headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def v1_routes(app):
    """Every /v1 route, including those of the routers the app includes (FastAPI keeps those nested)."""

    def walk(routes):
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    return [r for r in walk(app.routes) if r.path.startswith("/v1/")]


def call(api, method, path, headers):
    body = {"POST": {"json": {}}}.get(method, {})
    return api.request(method, path, headers=headers, **body)


def test_every_v1_route_refuses_requests_without_a_valid_key(api, api_store, keys):
    tenants = Tenants(api_store)
    revoked = tenants.create_key("acme", "old")
    assert tenants.revoke_key(revoked.id)
    routes = v1_routes(api.app)
    assert len(routes) >= 15
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "0" * 32, route.path)
        for method in route.methods:
            for headers in ({}, {"Authorization": "Bearer vk_nope_nope"},
                            {"Authorization": f"Bearer {revoked.token}"}):
                response = call(api, method, path, headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert "verticals keys create" in response.json()["detail"]
    assert api.get("/v1/me", headers=keys["acme"]).json()["tenant"] == "acme"


@both_databases
def test_tenant_isolation_over_every_endpoint(api, keys):
    acme, globex = keys["acme"], keys["globex"]
    job_id = submit(api, acme, ["acme-private-text", "POISON"])
    wait_done(api, acme, job_id)
    wait_for(lambda: api.get(f"/v1/jobs/{job_id}/summary", headers=acme).status_code == 200)  # written after finish
    hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=acme).json()

    job_routes = [r for r in v1_routes(api.app) if "{job_id}" in r.path]
    assert {r.path for r in job_routes} >= {"/v1/jobs/{job_id}", "/v1/jobs/{job_id}/results",
                                           "/v1/jobs/{job_id}/results.ndjson", "/v1/jobs/{job_id}/summary",
                                           "/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/retry"}
    for route in job_routes:
        for method in route.methods:
            path = route.path.format(job_id=job_id)
            other = call(api, method, path, globex)
            assert other.status_code == 404, (method, path, other.text)
            assert job_id not in api.get("/v1/jobs", headers=globex).text
            assert call(api, method, path, acme).status_code in (200, 202), (method, path)
    assert "acme-private" not in api.get(f"/v1/jobs/{job_id}/results.ndjson", headers=globex).text
    assert "acme-private" in api.get(f"/v1/jobs/{job_id}/results.ndjson", headers=acme).text.upper().lower()
    assert api.get("/v1/jobs", headers=globex).json()["jobs"] == []
    assert [j["id"] for j in api.get("/v1/jobs", headers=acme).json()["jobs"]] == [job_id]
    # webhooks and their delivery log
    assert api.get("/v1/webhooks", headers=globex).json() == []
    assert api.delete(f"/v1/webhooks/{hook['id']}", headers=globex).status_code == 404
    assert [h["id"] for h in api.get("/v1/webhooks", headers=acme).json()] == [hook["id"]]
    assert api.get("/v1/webhook-deliveries", headers=globex, params={"job_id": job_id}).json() == []
    assert api.delete(f"/v1/webhooks/{hook['id']}", headers=acme).status_code == 204


def test_webhook_events_go_only_to_the_job_tenant(make_api, keys):
    api = make_api(background=True)
    acme, globex = keys["acme"], keys["globex"]
    acme_hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/a"}, headers=acme).json()
    globex_hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/g"}, headers=globex).json()
    assert acme_hook["secret"] and globex_hook["secret"]
    assert "secret" not in json.dumps([h for h in api.get("/v1/webhooks", headers=acme).json() if h["secret"]])
    job_id = submit(api, acme, ["x"])
    wait_done(api, acme, job_id)
    deadline = time.monotonic() + 10
    while not (log := api.get("/v1/webhook-deliveries", headers=acme).json()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(d["webhook_id"], d["job_id"], d["event"]) for d in log] == [(acme_hook["id"], job_id, "job.finished")]
    assert api.get("/v1/webhook-deliveries", headers=globex).json() == []


def test_webhooks_to_internal_addresses_are_refused_unless_allowed(make_api, keys, monkeypatch):
    """SSRF guard: a tenant cannot make the server POST into its own network."""
    api = make_api(background=True)
    acme = keys["acme"]
    allowed = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=acme)
    assert allowed.status_code == 201  # VERTICALS_WEBHOOK_ALLOW_PRIVATE=1 (the test default)
    monkeypatch.delenv("VERTICALS_WEBHOOK_ALLOW_PRIVATE")
    for url in ("http://127.0.0.1:8000/admin", "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/x", "http://localhost:6379/", "ftp://example.com/x"):
        refused = api.post("/v1/webhooks", json={"url": url}, headers=acme)
        assert refused.status_code == 422, url
    assert "VERTICALS_WEBHOOK_ALLOW_PRIVATE" in refused.text or "http(s)" in refused.text
    # registered while allowed, then the guard is on: the delivery is recorded as not sent, never POSTed
    job_id = submit(api, acme, ["x"])
    wait_done(api, acme, job_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = api.get("/v1/webhook-deliveries", headers=acme).json()
        if log and log[0].get("last_error"):
            break
        time.sleep(0.05)
    assert "not sent" in log[0]["last_error"] and "127.0.0.1" in log[0]["last_error"]


@both_databases
def test_idempotency_key_same_body_same_job_other_body_409(api, keys):
    acme, globex = keys["acme"], keys["globex"]
    body = {"task": "fixtures.echo", "items": [{"text": "a"}, {"text": "b"}]}
    first = api.post("/v1/jobs", json=body, headers={**acme, "Idempotency-Key": "k1"})
    again = api.post("/v1/jobs", json=body, headers={**acme, "Idempotency-Key": "k1"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    other = api.post("/v1/jobs", json={**body, "items": [{"text": "c"}]}, headers={**acme, "Idempotency-Key": "k1"})
    assert other.status_code == 409 and "different request body" in other.json()["detail"]
    theirs = api.post("/v1/jobs", json=body, headers={**globex, "Idempotency-Key": "k1"})
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    assert len(api.get("/v1/jobs", headers=acme).json()["jobs"]) == 1
    # a refused creation does not burn the key
    bad = api.post("/v1/jobs", json={**body, "params": {"sleep": -1}}, headers={**acme, "Idempotency-Key": "k2"})
    assert bad.status_code == 422
    good = api.post("/v1/jobs", json={**body, "params": {"sleep": 0}}, headers={**acme, "Idempotency-Key": "k2"})
    assert good.status_code == 202


def test_upload_idempotency_by_file_content(api, keys):
    acme = keys["acme"]
    post = lambda content: api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},  # noqa: E731
                                    files={"file": ("in.txt", content)}, headers={**acme, "Idempotency-Key": "u"})
    first, again, other = post(b"one\ntwo\n"), post(b"one\ntwo\n"), post(b"three\n")
    assert first.json()["id"] == again.json()["id"] and first.json()["total"] == 2
    assert other.status_code == 409


def test_job_lifecycle_results_paging_and_ndjson(api, keys):
    acme = keys["acme"]
    texts = [f"t{i}" for i in range(23)] + ["POISON", ""]
    job_id = submit(api, acme, texts)
    job = wait_done(api, acme, job_id)
    assert job["status"] == "partial" and job["counts"] == {"succeeded": 23, "failed": 2}
    assert job["progress"] == 1.0 and job["tenant"] == "acme"
    page = api.get(f"/v1/jobs/{job_id}/results", params={"limit": 10}, headers=acme).json()
    assert [i["seq"] for i in page["items"]] == list(range(10)) and page["next_offset"] == 10
    rest, offset = [], page["next_offset"]
    while offset is not None:
        page = api.get(f"/v1/jobs/{job_id}/results", params={"limit": 10, "offset": offset}, headers=acme).json()
        rest += page["items"]
        offset = page["next_offset"]
    assert len(rest) == 15
    lines = api.get(f"/v1/jobs/{job_id}/results.ndjson", headers=acme).text.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["output"]["upper"] for r in rows[:23]] == [t.upper() for t in texts[:23]]
    failed = api.get(f"/v1/jobs/{job_id}/results", params={"status": "failed"}, headers=acme).json()["items"]
    assert [f["seq"] for f in failed] == [23, 24] and "poisoned" in failed[0]["error"]
    wait_for(lambda: api.get(f"/v1/jobs/{job_id}/summary", headers=acme).status_code == 200)
    assert api.get(f"/v1/jobs/{job_id}/summary", headers=acme).json()["lengths"]
    with_inputs = api.get(f"/v1/jobs/{job_id}/results", params={"include_inputs": True, "limit": 1}, headers=acme)
    assert with_inputs.json()["items"][0]["input"] == {"text": "t0"}
    retried = api.post(f"/v1/jobs/{job_id}/retry", headers=acme).json()
    assert retried["requeued"] == 1  # the POISON item (the invalid one has no valid input to re-run)
    assert wait_done(api, acme, job_id)["counts"] == {"succeeded": 23, "failed": 2}


def test_cancel_a_running_job(api, keys):
    acme = keys["acme"]
    job_id = submit(api, acme, [f"t{i}" for i in range(40)], params={"sleep": 0.1})
    cancelled = api.post(f"/v1/jobs/{job_id}/cancel", headers=acme)
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    job = wait_done(api, acme, job_id)
    assert job["status"] == "cancelled" and job["counts"].get("cancelled", 0) > 0


def test_json_job_limits_and_errors(api, keys, monkeypatch):
    acme = keys["acme"]
    api.app.state.api.limits.max_job_items = 5
    too_many = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}] * 6}, headers=acme)
    assert too_many.status_code == 413 and "/v1/jobs/upload" in too_many.json()["detail"]
    unknown = api.post("/v1/jobs", json={"task": "nope.task", "items": []}, headers=acme)
    assert unknown.status_code == 422 and "fixtures.echo" in unknown.json()["detail"]
    bad = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [], "params": {"sleep": "x"}}, headers=acme)
    assert bad.status_code == 422 and "sleep" in bad.json()["detail"]
    api.app.state.api.limits.max_body_bytes = 1000
    big = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a" * 2000}]}, headers=acme)
    assert big.status_code == 413 and "VERTICALS_API_MAX_BODY_MB" in big.json()["detail"]
    assert api.get("/v1/jobs", headers=acme).json()["jobs"] == []


def test_predict_is_synchronous_isolates_failures_and_is_bounded(api, keys, monkeypatch):
    acme = keys["acme"]
    response = api.post("/v1/predict", json={"task": "fixtures.echo", "items": [
        {"text": "ok"}, {"text": "POISON"}, {"text": ""}, {"text": "fine"}]}, headers=acme)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["succeeded", "failed", "failed", "succeeded"]
    assert results[0]["output"] == {"upper": "OK", "length": 2} and results[3]["output"]["upper"] == "FINE"
    monkeypatch.setenv("VERTICALS_API_PREDICT_MAX_ITEMS", "3")
    over = api.post("/v1/predict", json={"task": "fixtures.echo", "items": [{"text": "a"}] * 4}, headers=acme)
    assert over.status_code == 413 and "POST /v1/jobs" in over.json()["detail"]
    assert api.post("/v1/predict", json={"task": "x.y", "items": []}, headers=acme).status_code == 422
    assert api.get("/v1/jobs", headers=acme).json()["jobs"] == []  # nothing stored


def test_upload_csv_with_text_column_and_jsonl(api, keys):
    acme = keys["acme"]
    csv_body = b"id,body\n1,hello\n2,world\n3,\n"
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo", "text_column": "body"},
                        files={"file": ("in.csv", csv_body, "text/csv")}, headers=acme)
    assert response.status_code == 202, response.text
    job = wait_done(api, acme, response.json()["id"])
    assert job["total"] == 3 and job["counts"] == {"succeeded": 2, "failed": 1}
    jsonl = b'{"text": "a"}\n\n{"text": "b"}\n'
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo", "params": '{"reject": "b"}'},
                        files={"file": ("in.jsonl", jsonl)}, headers=acme)
    job = wait_done(api, acme, response.json()["id"])
    assert job["counts"] == {"succeeded": 1, "failed": 1}


def test_bad_uploads_are_refused_before_a_job_exists(api, keys):
    acme = keys["acme"]
    cases = [
        ({"task": "fixtures.echo"}, ("in.jsonl", b'{"text": "a"}\n{oops\n'), 422, "line 2"),
        ({"task": "fixtures.echo"}, ("in.bin", b"abc"), 422, "format"),
        ({"task": "fixtures.echo"}, ("in.txt", b"\xff\xfe\x00bad"), 422, "UTF-8"),
        ({"task": "fixtures.echo", "text_column": "missing"}, ("in.csv", b"a,b\n1,2\n"), 422, "missing"),
        ({"task": "fixtures.echo"}, ("in.csv", b"a,b\n1,2\n"), 422, "text"),
        ({"task": "fixtures.echo", "params": "[1]"}, ("in.txt", b"x\n"), 422, "JSON object"),
    ]
    for data, file, code, words in cases:
        response = api.post("/v1/jobs/upload", data=data, files={"file": file}, headers=acme)
        assert response.status_code == code, (file, response.text)
        assert words in response.json()["detail"], response.text
    assert api.get("/v1/jobs", headers=acme).json()["jobs"] == []


def test_upload_over_the_size_limit_is_413(api, keys):
    acme = keys["acme"]
    api.app.state.api.limits.max_upload_bytes = 1 << 20
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},
                        files={"file": ("big.txt", b"line\n" * 300_000)}, headers=acme)
    assert response.status_code == 413 and "VERTICALS_API_MAX_UPLOAD_MB" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield b"--b\r\nContent-Disposition: form-data; name=\"task\"\r\n\r\nfixtures.echo\r\n"
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\r\n"
        for _ in range(40):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    response = api.post("/v1/jobs/upload", content=chunks(),
                        headers={**acme, "Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert api.get("/v1/jobs", headers=acme).json()["jobs"] == []


def test_tasks_plugins_health_metrics(api, keys):
    acme = keys["acme"]
    tasks = {t["name"]: t for t in api.get("/v1/tasks", headers=acme).json()}
    echo = tasks["fixtures.echo"]
    assert echo["plugin"] == "fixtures" and "text" in echo["input_schema"]["properties"]
    assert "upper" in echo["output_schema"]["properties"] and "sleep" in echo["params_schema"]["properties"]
    assert api.get("/v1/tasks/fixtures.echo", headers=acme).json()["name"] == "fixtures.echo"
    assert api.get("/v1/tasks/nope", headers=acme).status_code == 404
    missing = api.get("/v1/tasks/fixtures.ech", headers=acme)
    assert missing.status_code == 404 and "did you mean fixtures.echo?" in missing.json()["detail"]
    plugins = {p["name"]: p for p in api.get("/v1/plugins", headers=acme).json()}
    assert "job_finished" in plugins["verticals.tenancy.webhooks"]["hooks"]
    assert api.get("/healthz").text == "ok"
    assert api.get("/readyz").json()["status"] == "ready"
    wait_done(api, acme, submit(api, acme, ["a", "b", "POISON"]))
    metrics = api.get("/metrics").text
    assert 'verticals_jobs{status="partial"} 1.0' in metrics
    assert 'verticals_items{status="succeeded"} 2.0' in metrics
    assert "verticals_queue_depth 0.0" in metrics and "verticals_items_per_second" in metrics
    assert "verticals_items_processed_total 3.0" in metrics
    assert "verticals_items_run_total 3.0" in metrics  # the usage rows: every worker's, deleted jobs' too
    assert "verticals_model_load_seconds" in metrics
    schema = api.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.") and "/v1/jobs/{job_id}/results.ndjson" in schema["paths"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_no_auth_mode_is_tenant_local(make_api):
    api = make_api(auth=False)
    assert api.get("/v1/me").json() == {"tenant": "local", "key_id": None, "key_name": None, "auth": False,
                                        "executor": "local", "allow_code_execution": False}
    job_id = submit(api, {}, ["a"])
    assert wait_done(api, {}, job_id)["tenant"] == "local"


def test_jobs_resume_when_the_server_restarts(make_api, api_store, registry, keys):
    from verticals.core.jobs.engine import submit_job

    job_id = submit_job(api_store, registry, "fixtures.echo", [{"text": "a"}], tenant="acme")
    api = make_api()  # starts, finds the unfinished API job, runs it
    assert wait_done(api, keys["acme"], job_id)["status"] == "succeeded"


def test_docs_page_works_offline(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "cdn." not in page.text and "unpkg" not in page.text
    scripts = re.findall(r"<script src=['\"]([^'\"]+)['\"]", page.text)
    assert scripts and all(api.get(src).status_code == 200 for src in scripts)


def test_dashboard_is_self_contained(api):
    page = api.get("/dashboard")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # no CDN
    assert api.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/").headers.get("location") is None  # TestClient follows the redirect


def test_job_routes_follow_the_job_service_rules(make_api, keys):
    """One rule for every front end: text_column maps JSON items as it maps upload columns; retrying a job that
    runs is a 409 conflict; an unknown job is a 404; a queued job is cancelled at once, nothing left to run."""
    acme = keys["acme"]
    api = make_api()
    created = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"body": "ab"}, {"body": "cd"}],
                                         "text_column": "body"}, headers=acme)
    assert created.status_code == 202, created.text
    done = wait_done(api, acme, created.json()["id"])
    assert done["counts"] == {"succeeded": 2}
    rows = api.get(f"/v1/jobs/{done['id']}/results", headers=acme).json()["items"]
    assert [r["output"]["upper"] for r in rows] == ["AB", "CD"]
    missing = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "ab"}], "text_column": "body"},
                       headers=acme)
    assert missing.status_code == 422 and "body" in missing.json()["detail"]

    slow = submit(api, acme, [f"t{i}" for i in range(30)], params={"sleep": 0.1}, chunk_size=5)
    wait_for(lambda: api.get(f"/v1/jobs/{slow}", headers=acme).json()["status"] == "running")
    conflict = api.post(f"/v1/jobs/{slow}/retry", headers=acme)
    assert conflict.status_code == 409, conflict.text
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "running" in conflict.json()["detail"]
    assert api.post(f"/v1/jobs/{slow}/cancel", headers=acme).status_code == 200
    assert wait_done(api, acme, slow)["status"] == "cancelled"

    idle = make_api(background=False)  # no executor started: the job stays queued
    queued = submit(idle, acme, ["a", "b", "c"])
    cancelled = idle.post(f"/v1/jobs/{queued}/cancel", headers=acme).json()
    assert cancelled["status"] == "cancelled" and cancelled["counts"] == {"cancelled": 3}
    assert idle.post("/v1/jobs/" + "0" * 32 + "/cancel", headers=acme).status_code == 404


def test_create_app_attaches_the_webhook_outbox(make_api, api_store, registry):
    """The API is a composition root: it builds the webhook outbox on its store and attaches it (no module
    state, no plugin attached by name); a second app on the same registry puts its own outbox in its place."""
    from verticals.tenancy import webhooks

    first = make_api(background=False)
    outbox = first.app.state.api.outbox
    assert isinstance(outbox, webhooks.Outbox) and outbox.current_store() is api_store
    assert registry.manager.get_plugin(webhooks.PLUGIN_NAME) is outbox
    assert not registry.manager.is_registered(webhooks)  # the module is no plugin
    assert first.app.state.api.deliverer.wake is outbox.wake  # recording a delivery wakes the sender
    second = make_api(background=False)
    assert registry.manager.get_plugin(webhooks.PLUGIN_NAME) is second.app.state.api.outbox is not outbox
    assert [info.name for info in registry.plugins.values()].count(webhooks.PLUGIN_NAME) == 1


def test_evaluation_maps_text_column_like_jobs(api, keys):
    acme = keys["acme"]
    items = [{"headline": "shares up", "label": "positive"}, {"headline": "costs down", "label": "positive"},
             {"headline": "quiet", "label": "neutral"}, {"headline": "sales down", "label": "negative"}]
    created = api.post("/v1/evals", json={"task": "fixtures.keyword", "items": items, "text_column": "headline"},
                       headers=acme)
    assert created.status_code == 202, created.text
    eval_id = created.json()["id"]
    wait_for(lambda: "run" in api.get(f"/v1/evals/{eval_id}", headers=acme).json(), timeout=30)
    assert api.get(f"/v1/evals/{eval_id}", headers=acme).json()["run"]["metrics"]["accuracy"] == 0.75
    unmapped = api.post("/v1/evals", json={"task": "fixtures.keyword", "items": items, "text_column": "body"},
                        headers=acme)
    assert unmapped.status_code == 422 and "body" in unmapped.json()["detail"]


def test_server_start_fires_job_events_left_pending(api_store, registry, make_api, keys):
    """A process that died between finishing a job and firing job_finished: the API server fires it at start,
    so the tenant's webhook still gets its delivery."""
    from verticals.core.jobs.engine import submit_job

    tenants = Tenants(api_store)
    hook = tenants.create_webhook("acme", "http://127.0.0.1:9/hook", None, None)
    job_id = submit_job(api_store, registry, "fixtures.echo", [{"text": "a"}], tenant="acme")
    api_store.cancel_pending(job_id)
    assert api_store.try_finish(job_id) == "cancelled"  # finished, event written, never delivered
    assert tenants.list_deliveries("acme", hook.id, job_id, 10, 0) == []
    make_api(background=True)
    deliveries = tenants.list_deliveries("acme", hook.id, job_id, 10, 0)
    assert [(d.job_id, d.event) for d in deliveries] == [(job_id, "job.finished")]


def test_export_every_format(api, keys, tmp_path):
    """GET /v1/jobs/{id}/export: the core's export (CSV/JSONL streamed; Parquet and a folder as a zip)."""
    import csv
    import io
    import zipfile

    import pyarrow.parquet as pq

    acme = keys["acme"]
    job_id = submit(api, acme, ["ab", "POISON"])
    wait_done(api, acme, job_id)
    url = f"/v1/jobs/{job_id}/export"
    as_csv = api.get(url, headers=acme)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["status"] for r in rows] == ["succeeded", "failed"] and rows[0]["upper"] == "AB"
    assert rows[0]["text"] == "ab"  # inputs by default (the fixture task is not sensitive)
    assert "text" not in next(csv.DictReader(io.StringIO(api.get(url, params={"include_inputs": False},
                                                                  headers=acme).text)))
    lines = api.get(url, params={"format": "jsonl"}, headers=acme).text.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [0, 1]
    parquet = api.get(url, params={"format": "parquet"}, headers=acme)
    (tmp_path / "r.parquet").write_bytes(parquet.content)
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 2
    archive = zipfile.ZipFile(io.BytesIO(api.get(url, params={"format": "zip"}, headers=acme).content))
    assert "results.jsonl" in archive.namelist()
    assert len(archive.read("results.jsonl").decode().splitlines()) == 2
    assert api.get(url, params={"format": "xlsx"}, headers=acme).status_code == 422
    assert api.get(url, headers=keys["globex"]).status_code == 404


def _stranded(store, registry, tenant="acme"):
    """A job of ``tenant`` whose first chunk ran and whose other chunks no executor has: what a broker restart leaves
    (it stays ``running`` with items pending, and no worker will ever take them)."""
    from verticals.core.jobs.engine import run_chunk, submit_job
    from verticals.core.models.host import ModelHost

    job_id = submit_job(store, registry, "fixtures.echo", [{"text": t} for t in ("a", "b", "POISON", "d", "e")],
                        chunk_size=2, tenant=tenant)
    run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 2)
    return job_id


def test_a_tenant_resumes_its_own_stranded_job(make_api, api_store, registry, keys):
    """POST /v1/jobs/{id}/resume: the rule of `verticals jobs resume` over REST, for the job's tenant only. Retry of
    such a job is a 409 that says to resume it."""
    acme, globex = keys["acme"], keys["globex"]
    api = make_api()
    job_id = _stranded(api_store, registry)
    before = api.get(f"/v1/jobs/{job_id}", headers=acme).json()
    assert before["status"] == "running" and before["counts"] == {"succeeded": 2, "pending": 3}

    assert api.post(f"/v1/jobs/{job_id}/resume", headers=globex).status_code == 404  # not globex's
    assert api.get(f"/v1/jobs/{job_id}", headers=acme).json()["counts"]["pending"] == 3  # untouched
    conflict = api.post(f"/v1/jobs/{job_id}/retry", headers=acme)
    assert conflict.status_code == 409 and f"/v1/jobs/{job_id}/resume" in conflict.json()["detail"]

    resumed = api.post(f"/v1/jobs/{job_id}/resume", headers=acme)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["resumed"] == 3 and resumed.json()["detail"] is None
    done = wait_done(api, acme, job_id)
    assert done["status"] == "partial" and done["counts"] == {"succeeded": 4, "failed": 1}

    again = api.post(f"/v1/jobs/{job_id}/resume", headers=acme).json()  # finished, nothing pending: left as it is
    assert again["resumed"] == 0 and again["job"]["counts"] == done["counts"]
    assert "nothing to resume" in again["detail"] and f"POST /v1/jobs/{job_id}/retry" in again["detail"]
    assert api.post("/v1/jobs/" + "0" * 32 + "/resume", headers=acme).status_code == 404


def test_sdk_resume_in_process_and_over_rest(make_api, api_store, registry, keys, use_plugins, monkeypatch):
    """Client.resume / Job.resume: remote (through the API app) and in-process (the job service), one rule."""
    import verticals
    from verticals.client import VerticalsError

    api = make_api()
    remote_job = _stranded(api_store, registry)
    with verticals.Client("http://testserver", api_key="unused") as remote:
        remote._backend.http = TestClient(api.app, headers=keys["acme"])  # the same requests, without a socket
        job = remote.resume(remote_job)
        assert job.wait(timeout=30, poll=0.05).counts == {"succeeded": 4, "failed": 1}
        assert job.resume().counts == {"succeeded": 4, "failed": 1}  # nothing pending: left as it is
        remote._backend.http = TestClient(api.app, headers=keys["globex"])
        with pytest.raises(VerticalsError) as other:
            remote.resume(remote_job)
        assert other.value.status_code == 404

    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")
    with verticals.Client() as local:
        local_job = _stranded(local._backend.store, local._backend.registry, tenant=None)
        assert local.job(local_job).status().status == "running"
        assert local.resume(local_job[:10]).wait(timeout=30, poll=0.05).counts == {"succeeded": 4, "failed": 1}
        with pytest.raises(VerticalsError) as missing:
            local.resume("f" * 32)
        assert missing.value.status_code == 404


@both_databases
def test_a_metrics_scrape_reads_counters_never_the_items(api, api_store, keys):
    """/metrics costs the same at 1k and 1M stored items: no statement of a scrape reads the items table (items by
    status are the jobs' counters, items run the usage rows)."""
    from sqlalchemy import event

    job_id = submit(api, keys["acme"], ["a", "POISON"])
    wait_done(api, keys["acme"], job_id)
    # the job's summary is written (reading its items) just after it finished: wait for it, so that the statements
    # captured below are the scrape's alone
    wait_for(lambda: api.get(f"/v1/jobs/{job_id}/summary", headers=keys["acme"]).status_code == 200)
    sent: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        sent.append(statement)

    event.listen(api_store.engine, "before_cursor_execute", before)
    try:
        metrics = api.get("/metrics").text
    finally:
        event.remove(api_store.engine, "before_cursor_execute", before)
    assert 'verticals_items{status="failed"} 1.0' in metrics and "verticals_items_run_total 2.0" in metrics
    # one batch ran (the fixture task's batch holds both items): one observation in each histogram
    assert 'verticals_batch_seconds_bucket{le="+Inf"} 1.0' in metrics and "verticals_batch_seconds_count 1.0" in metrics
    assert 'verticals_queue_wait_seconds_bucket{le="+Inf"} 1.0' in metrics
    assert 'verticals_batch_seconds_bucket{le="300"} 1.0' in metrics  # cumulative buckets
    assert sent and not [s for s in sent if re.search(r"\bitems\b", s, re.IGNORECASE)], sent
