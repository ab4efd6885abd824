"""The API with the Celery executor, all real: PostgreSQL, a test-owned redis-server, a `verticals worker`
process and a `verticals serve` process. Jobs created over REST run on the worker; the worker's
``job_finished`` hook records the webhook delivery and the server sends it."""

from __future__ import annotations

import json
import os
import shutil
import time

import httpx
import pytest

from tests.conftest import FIXTURE_PLUGINS, REPO
from tests.test_api_e2e import Receiver, start_server, verify
from tests.test_celery import RedisServer, Workers

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed: run scripts/ensure-services.sh")


@pytest.fixture
def stack(tmp_path, postgres_url, monkeypatch):
    from verticals.core.store.db import make_engine, upgrade

    upgrade(make_engine(postgres_url))
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    env = {"VERTICALS_DATABASE_URL": postgres_url, "VERTICALS_BROKER_URL": redis.url, "HF_HUB_OFFLINE": "1",
           "VERTICALS_LOAD_PLUGINS": "fixtures", "VERTICALS_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(FIXTURE_PLUGINS / "good"), str(REPO)]),
           "VERTICALS_WEBHOOK_POLL_S": "0.1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    workers = Workers(tmp_path, env)
    server = None
    try:
        workers.start(1)
        server, url = start_server({**os.environ, **env}, tmp_path / "server.log")
        yield url, postgres_url, workers
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        workers.stop()
        redis.stop()


def test_api_jobs_run_on_celery_workers_and_webhooks_are_sent_by_the_server(stack):
    import verticals
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    url, database_url, _workers = stack
    key = Tenants(open_store(database_url)).create_key("acme", "celery").token
    receiver = Receiver()
    try:
        with verticals.Client(url, api_key=key) as client:
            http = client._backend.http
            assert http.get("/v1/me").json()["executor"] == "celery"
            hook = http.post("/v1/webhooks", json={"url": f"{receiver.url}/hook"}).json()
            job = client.submit("fixtures.echo", items=[{"text": f"t{i}"} for i in range(25)] + [{"text": "POISON"}])
            final = job.wait(timeout=120)
            assert final.status == "partial" and final.counts == {"succeeded": 25, "failed": 1}
            assert [r.output["upper"] for r in job.results(status="succeeded")] == [f"T{i}" for i in range(25)]
            metrics = httpx.get(f"{url}/metrics").text  # the worker ran it, not the server's threads
            assert "verticals_items_processed_total 0.0" in metrics
            assert 'verticals_items{status="succeeded"} 25.0' in metrics
            deadline = time.monotonic() + 30
            while len(receiver.on("/hook")) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            calls = receiver.on("/hook")
            assert len(calls) == 2  # a 500, then the retry
            assert all(verify(hook["secret"], headers, body) for headers, body in calls)
            assert json.loads(calls[-1][1])["job"]["id"] == job.id
    finally:
        receiver.http.shutdown()
