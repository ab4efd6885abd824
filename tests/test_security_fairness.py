"""Per-tenant fairness of the API's job runner (issue 22 item 8).

Attack: one tenant fills the server with long (or hung) jobs. Before: the jobs took every API job thread
and another tenant's job stayed queued behind them. Now tenants take turns chunk by chunk, each holding at
most VERTICALS_API_JOBS_PER_TENANT threads, and past VERTICALS_API_MAX_ACTIVE_JOBS unfinished jobs a tenant
gets 429 with Retry-After.
"""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from verticals.core.jobs.fairness import FairQueue
from verticals.tenancy.tenants import Tenants


@pytest.fixture
def registry(fixtures_only_registry):
    return fixtures_only_registry


@pytest.fixture
def make_api(store, registry):
    from verticals.api.app import create_app

    clients = []

    def make(background: bool = True) -> TestClient:
        client = TestClient(create_app(store, registry, auth=True, threads=2, background=background))
        client.__enter__()
        clients.append(client)
        tenants = Tenants(store)
        client.keys = {name: {"Authorization": f"Bearer {tenants.create_key(name, 'k').token}"}
                       for name in ("acme", "globex")}
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _status(api, key, job_id) -> str:
    return api.get(f"/v1/jobs/{job_id}", headers=key).json()["status"]


def test_one_tenants_long_jobs_do_not_starve_another(make_api):
    """acme's two jobs each take 6 s (a batch that sleeps: a heavy or hung job) on a server with two job
    threads; globex's job, submitted after them, finishes while acme's first still runs and its second
    waits: acme never holds both threads. (Before: both threads ran acme's jobs and globex waited 6 s.)"""
    api = make_api()
    acme, globex = api.keys["acme"], api.keys["globex"]
    slow = [api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "slow"}], "params": {"sleep": 6}},
                     headers=acme).json()["id"] for _ in range(2)]
    deadline = time.monotonic() + 10
    while _status(api, acme, slow[0]) != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    quick = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "hi"}]}, headers=globex).json()["id"]
    deadline = time.monotonic() + 5
    while _status(api, globex, quick) != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
    states = [_status(api, acme, job) for job in slow]
    assert _status(api, globex, quick) == "succeeded", f"globex's job waited behind acme's: acme {states}"
    assert states == ["running", "queued"], states  # acme: one thread, its second job waits its turn
    for job in slow:
        api.post(f"/v1/jobs/{job}/cancel", headers=acme)


def test_past_the_quota_a_tenant_gets_429_with_retry_after(make_api, monkeypatch):
    monkeypatch.setenv("VERTICALS_API_MAX_ACTIVE_JOBS", "2")
    api = make_api(background=False)  # nothing runs: acme's jobs stay queued
    acme, globex = api.keys["acme"], api.keys["globex"]
    body = {"task": "fixtures.echo", "items": [{"text": "a"}]}
    first = api.post("/v1/jobs", json=body, headers={**acme, "Idempotency-Key": "one"})
    assert first.status_code == 202
    assert api.post("/v1/jobs", json=body, headers=acme).status_code == 202
    for attempt in (
        lambda: api.post("/v1/jobs", json=body, headers=acme),
        lambda: api.post("/v1/jobs/upload", headers=acme, data={"task": "fixtures.echo"},
                         files={"file": ("in.txt", "a\nb\n")}),
        lambda: api.post("/v1/evals", json={"task": "fixtures.keyword", "items": [{"text": "up", "label": "positive"}]},
                         headers=acme),
    ):
        refused = attempt()
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["Retry-After"]) > 0 and "VERTICALS_API_MAX_ACTIVE_JOBS" in refused.text
    replay = api.post("/v1/jobs", json=body, headers={**acme, "Idempotency-Key": "one"})
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]  # a replay is not a new job
    assert api.post("/v1/jobs", json=body, headers=globex).status_code == 202  # another tenant is not affected
    api.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=acme)  # one finished: room for one more
    assert api.post("/v1/jobs", json=body, headers=acme).status_code == 202
    assert api.post("/v1/jobs", json=body, headers=acme).status_code == 429


def test_concurrent_requests_cannot_pass_the_quota_together(make_api, monkeypatch):
    monkeypatch.setenv("VERTICALS_API_MAX_ACTIVE_JOBS", "3")
    api = make_api(background=False)
    codes: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        code = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}] * 50},
                        headers=api.keys["acme"]).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202] * 3 + [429] * 5, codes


def test_the_fair_queue_takes_turns_and_caps_each_tenant():
    queue = FairQueue(per_tenant=1)
    for job, tenant in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")):
        queue.put(job, tenant)
    assert [queue.get(), queue.get(), queue.get()] == ["a1", "b1", "c1"]  # a's others wait for a's turn
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not got  # every tenant at its cap: nothing is taken
    queue.done("b1", more=False)
    waiter.join(0.3)
    assert waiter.is_alive()  # b's chunk ended, but only a has jobs waiting and a is at its cap
    queue.done("a1", more=True)  # a1 has chunks left: back at the end of a's line
    waiter.join(2)
    assert got == ["a2"]
    queue.put("a2", "a")  # started again while it runs: put back after its chunk, not twice
    queue.done("a2", more=False)
    assert queue.waiting() == 3  # a3, a1, a2
    queue.close()
    assert [queue.get() for _ in range(1)] == ["a3"]


def test_a_webhook_receiver_cannot_hold_or_fill_the_deliverer(isolated_home, registry):
    """A tenant's webhook receiver answers 200 and then streams a body that never ends: the delivery is
    recorded at once (the body is never read). Before: the deliverer read the whole body into memory and the
    delivery never finished."""
    import socket

    from verticals.core.jobs.engine import submit_job
    from verticals.core.store import open_store
    from verticals.tenancy import webhooks

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")  # no length: until close
        try:
            while not stop.is_set():
                connection.sendall(b"x" * 65536)
                time.sleep(0.01)
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    store = open_store(f"sqlite:///{isolated_home / 'hooks.db'}")
    tenants = Tenants(store)
    tenants.ensure_tenant("acme")
    tenants.create_webhook("acme", f"http://127.0.0.1:{server.getsockname()[1]}/hook")
    outbox = webhooks.Outbox(store)
    try:
        job_id = submit_job(store, registry, "fixtures.echo", [{"text": "x"}], tenant="acme")
        outbox.job_finished(store.summary(job_id) | {"status": "succeeded"})
        deliverer = webhooks.Deliverer(store, poll_s=0.05, timeout_s=3, wake=outbox.wake)
        started = time.monotonic()
        deliverer.start()
        deadline = started + 20
        while time.monotonic() < deadline:
            log = tenants.list_deliveries("acme")
            if log and log[0].status != "pending":
                break
            time.sleep(0.05)
        deliverer.stop()
        assert log and log[0].status == "delivered", [vars(d) for d in log]
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        server.close()
