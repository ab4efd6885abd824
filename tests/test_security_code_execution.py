"""Code execution is a permission: the API runs a task with ``executes_code`` only for a key an operator granted it.

The jobs here are accepted or refused, never run (``background=False``): what is under test is who may
submit them, not the jail they would run in.
"""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import run_cli
from verticals.tenancy.tenants import Tenants

MODULE = {"module": "tenant_module", "source": "def add(a, b):\n    return a + b\n"}


@pytest.fixture
def registry(use_plugins, monkeypatch):
    """The model-free fixture plugin and testgen (whose task executes code)."""
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures,testgen")
    use_plugins("good")
    from verticals.registry import get_registry

    registry = get_registry(refresh=True)
    assert registry.task("testgen.generate").executes_code
    assert not registry.task("fixtures.echo").executes_code
    return registry


@pytest.fixture
def store(isolated_home):
    from verticals.core.store import open_store

    return open_store(f"sqlite:///{isolated_home / 'api.db'}")


@pytest.fixture
def make_api(store, registry):
    from verticals.api.app import create_app

    clients = []

    def make(auth: bool = True) -> TestClient:
        client = TestClient(create_app(store, registry, auth=auth, background=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_forbidden(response) -> None:
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "testgen.generate" in detail and "executes submitted code" in detail
    assert "--allow-code-execution" in detail and "operator" in detail


def test_a_key_without_the_grant_gets_403_for_every_way_of_running_testgen(make_api, store):
    api = make_api()
    tenants = Tenants(store)
    plain = bearer(tenants.create_key("acme", "etl").token)

    assert_forbidden(api.post("/v1/jobs", json={"task": "testgen.generate", "items": [MODULE]}, headers=plain))
    upload = {"file": ("modules.jsonl", io.BytesIO(json.dumps(MODULE).encode() + b"\n"), "application/x-ndjson")}
    assert_forbidden(api.post("/v1/jobs/upload", data={"task": "testgen.generate"}, files=upload, headers=plain))
    assert_forbidden(api.post("/v1/predict", json={"task": "testgen.generate", "items": [MODULE]}, headers=plain))
    assert api.get("/v1/jobs", headers=plain).json()["jobs"] == []  # nothing was stored
    with store.session() as session:
        assert session.execute(text("select count(*) from jobs")).scalar() == 0
    assert api.get("/v1/me", headers=plain).json()["allow_code_execution"] is False
    tasks = {t["name"]: t for t in api.get("/v1/tasks", headers=plain).json()}
    assert tasks["testgen.generate"]["executes_code"] is True and tasks["fixtures.echo"]["executes_code"] is False

    # the same key still runs tasks that execute no code
    echo = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "x"}]}, headers=plain)
    assert echo.status_code == 202, echo.text


def test_a_granted_key_is_accepted_and_the_grant_is_per_key(make_api, store):
    api = make_api()
    tenants = Tenants(store)
    granted = bearer(tenants.create_key("acme", "ci", allow_code_execution=True).token)
    plain = bearer(tenants.create_key("acme", "etl").token)

    assert api.get("/v1/me", headers=granted).json()["allow_code_execution"] is True
    response = api.post("/v1/jobs", json={"task": "testgen.generate", "items": [MODULE]}, headers=granted)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["task"] == "testgen.generate"

    # another key of the same tenant sees the job but cannot make it run code again
    assert api.get(f"/v1/jobs/{job_id}", headers=plain).status_code == 200
    assert_forbidden(api.post(f"/v1/jobs/{job_id}/retry", headers=plain))
    allowed = api.post(f"/v1/jobs/{job_id}/retry", headers=granted)  # past the grant: the retry rule answers
    assert allowed.status_code == 409 and "is queued" in allowed.json()["detail"]  # (nothing runs jobs here)


def test_no_auth_server_never_runs_code_executing_tasks(make_api):
    api = make_api(auth=False)
    response = api.post("/v1/jobs", json={"task": "testgen.generate", "items": [MODULE]})
    assert response.status_code == 403
    assert "--no-auth" in response.json()["detail"]


def test_keys_cli_grants_and_lists_code_execution(registry):
    granted = run_cli("keys", "create", "--tenant", "lab", "--name", "ci", "--allow-code-execution", "--json")
    assert granted.returncode == 0, granted.stderr
    plain = run_cli("keys", "create", "--tenant", "lab", "--name", "etl", "--json")
    assert plain.returncode == 0, plain.stderr
    granted_key, plain_key = json.loads(granted.stdout), json.loads(plain.stdout)
    assert granted_key["allow_code_execution"] is True and plain_key["allow_code_execution"] is False
    listed = {row["name"]: row for row in json.loads(run_cli("keys", "list", "--json").stdout)}
    assert listed["ci"]["allow_code_execution"] is True and listed["etl"]["allow_code_execution"] is False

    from verticals.api.app import create_app
    from verticals.config import database_url
    from verticals.core.store import open_store

    with TestClient(create_app(open_store(database_url()), registry, background=False)) as client:
        body = {"task": "testgen.generate", "items": [MODULE]}
        assert client.post("/v1/jobs", json=body, headers=bearer(plain_key["key"])).status_code == 403
        assert client.post("/v1/jobs", json=body, headers=bearer(granted_key["key"])).status_code == 202


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_migration_0003_adds_the_grant_off_for_existing_keys(database, isolated_home, request):
    from alembic import command

    from verticals.core.store import open_store
    from verticals.core.store.db import _alembic_config, current_revision, head_revision, make_engine, upgrade

    url = f"sqlite:///{isolated_home / 'old.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.execute(text("insert into tenants (id, created_at) values ('old', CURRENT_TIMESTAMP)"))
        connection.execute(text("insert into api_keys (id, tenant_id, name, secret_hash, created_at) "
                                "values ('k1', 'old', 'legacy', :hash, CURRENT_TIMESTAMP)"), {"hash": "0" * 64})
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    keys = Tenants(open_store(url)).list_keys("old")
    assert [(k.id, k.allow_code_execution) for k in keys] == [("k1", False)]
    config = _alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert current_revision(engine) == "0002"
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_training_is_refused_through_the_api(isolated_home, monkeypatch):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store
    from verticals.registry import get_registry
    from verticals.tenancy.tenants import Tenants

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    key = Tenants(store).create_key("acme", "ci", allow_code_execution=True)
    with TestClient(create_app(store, get_registry(refresh=True))) as api:
        answer = api.post("/v1/jobs", json={"task": "verticals.train", "items": [{"config": {}}]},
                          headers={"Authorization": f"Bearer {key.token}"})
    assert answer.status_code == 403 and "operators only" in answer.json()["detail"]
    assert store.list_jobs() == []
