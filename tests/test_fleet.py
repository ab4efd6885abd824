"""The fleet (issue 30 item 3): `verticals workers` lists the live worker processes from their heartbeats in the
broker, with the chunk each runs, and drops one that is killed once its heartbeats stop. Real parts: a test-owned
redis-server, real `verticals worker` processes, PostgreSQL (tests/test_celery.py's environment)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.conftest import run_cli
from tests.test_celery import celery_env, wait_for  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.skipif(__import__("shutil").which("redis-server") is None,
                                reason="redis-server not installed: run scripts/ensure-services.sh")


def _workers(url):
    from verticals.workers.fleet_view import snapshot

    return snapshot(url)


def test_workers_shows_each_live_worker_its_chunk_and_drops_a_killed_one(celery_env):  # noqa: F811
    env = celery_env
    url = env.redis.url
    assert _workers(url)["workers"] == []
    [proc] = env.workers.start(1, concurrency=1, VERTICALS_WORKER_HEARTBEAT_S="0.5")
    wait_for(lambda: _workers(url)["workers"], timeout=30, what="the worker in the fleet")
    [worker] = _workers(url)["workers"]
    assert worker["node"].startswith("w0-") and worker["queues"] == ["cpu"] and worker["chunk"] is None
    assert worker["pid"] in env.workers.children(proc)  # the pool process that runs the chunks

    job_id = env.submit([f"t{n}" for n in range(6)], chunk_size=3, sleep=6.0)  # a chunk runs while we look
    env.executor().start(job_id)
    wait_for(lambda: (_workers(url)["workers"][0].get("chunk") or {}).get("job_id") == job_id, timeout=30,
             what="the chunk in the worker's heartbeat")
    chunk = _workers(url)["workers"][0]["chunk"]
    assert chunk["items"] == 3 and chunk["start"] in (0, 3)
    shown = run_cli("workers", env={"COLUMNS": "160"})
    assert shown.returncode == 0, shown.stderr
    assert worker["node"] in shown.stdout and job_id[:12] in shown.stdout and "cpu" in shown.stdout
    listed = json.loads(run_cli("workers", "--json").stdout)
    assert set(listed["queues"]) == {"gpu", "cpu", "code"} and all(
        count is not None for count in listed["queues"].values())

    os.killpg(proc.pid, signal.SIGKILL)  # no goodbye: its heartbeats stop, its key expires
    proc.wait(15)
    wait_for(lambda: not _workers(url)["workers"], timeout=30, what="the killed worker gone from the fleet")


def test_a_heartbeat_reports_the_models_loaded_and_their_device(use_plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "tinymodel")
    use_plugins("tinymodel")
    from verticals_tinymodel import write_tiny_encoder

    monkeypatch.setenv("VERTICALS_TINY_MODEL", str(write_tiny_encoder(tmp_path / "tiny")))
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry
    from verticals.workers.fleet import Heartbeat

    host = ModelHost(get_registry(refresh=True).models)
    beat = Heartbeat("redis://127.0.0.1:1/0", every=1.0, host=lambda: host)
    assert beat.report()["models"] == []
    host.get("tiny-encoder")
    beat.running("j" * 32, 0, 10)
    report = beat.report()
    assert report["models"] == [{"model": "tiny-encoder", "device": "cpu", "runtime": "torch"}]
    assert report["chunk"]["job_id"] == "j" * 32 and report["chunk"]["items"] == 10


def test_cli_workers_without_a_broker_says_what_to_set(isolated_home):
    shown = run_cli("workers")
    assert shown.returncode == 2 and "VERTICALS_BROKER_URL" in shown.stderr


def test_a_tenant_sees_the_fleet_but_only_its_own_chunks(tmp_path, monkeypatch, fixtures_only_registry):
    """GET /v1/workers: two workers' heartbeats (the workers' own Heartbeat, in a real Redis), one running acme's
    chunk, one globex's. acme sees both busy, its own chunk in full, nothing of globex's job, no machine names."""
    from fastapi.testclient import TestClient

    from tests.test_celery import RedisServer
    from verticals.api.app import create_app
    from verticals.core.jobs.engine import submit_job
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants
    from verticals.workers.fleet import Heartbeat

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    monkeypatch.setenv("VERTICALS_BROKER_URL", redis.url)
    store = open_store(f"sqlite:///{tmp_path / 'fleet.db'}")
    registry = fixtures_only_registry
    jobs = {tenant: submit_job(store, registry, "fixtures.echo", [{"text": "x"}], tenant=tenant)
            for tenant in ("acme", "globex")}
    beats = []
    try:
        for tenant in ("acme", "globex"):
            beat = Heartbeat(redis.url, every=0.2)
            beat.key += f"-{tenant}"  # two processes' keys (one process here)
            beat.running(jobs[tenant], 0, 1)
            beats.append(beat.start())
        key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
        with TestClient(create_app(store, registry, auth=True, background=False)) as api:
            wait_for(lambda: len(api.get("/v1/workers", headers=key).json()["workers"]) == 2, timeout=30,
                     what="both heartbeats")
            fleet = api.get("/v1/workers", headers=key).json()
        assert fleet["executor"] == "celery" and set(fleet["queues"]) == {"gpu", "cpu", "code"}
        assert [w["busy"] for w in fleet["workers"]] == [True, True]
        shown = [w["chunk"]["job_id"] for w in fleet["workers"] if w["chunk"]]
        assert shown == [jobs["acme"]]
        text = json.dumps(fleet)
        assert jobs["globex"] not in text and "@" not in text  # neither globex's job nor a worker's node name
    finally:
        for beat in beats:
            beat.stop()
        redis.stop()


def test_task_events_reach_an_event_receiver_as_flower_reads_them(celery_env):  # noqa: F811
    """Celery task events are on: a receiver on the same broker (what `celery flower` runs) sees the worker come
    online and each chunk task sent, received, started and succeeded, named verticals.run_chunk."""
    import threading

    from celery import Celery

    env = celery_env
    env.workers.start(1, concurrency=1)
    seen: list[dict] = []
    app = Celery(broker=env.redis.url)
    receivers: list = []

    def listen() -> None:
        with app.connection() as connection:
            receiver = app.events.Receiver(connection, handlers={"*": seen.append})
            receivers.append(receiver)
            receiver.capture(limit=None, timeout=None, wakeup=True)  # until should_stop

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_for(lambda: receivers, timeout=30, what="the event receiver")
    time.sleep(1)  # the receiver's queue is bound
    job_id = env.submit(["a", "b", "c"], chunk_size=3)
    env.executor().start(job_id)
    wait_for(lambda: {"task-succeeded", "task-started"} <= {e.get("type") for e in seen}, timeout=60,
             what="the chunk's task events")
    receivers[0].should_stop = True
    listener.join(10)
    types = {event.get("type") for event in seen}
    assert {"task-sent", "task-received", "task-started", "task-succeeded"} <= types, types
    assert "worker-heartbeat" in types or "worker-online" in types
    sent = next(event for event in seen if event.get("type") == "task-sent")
    assert sent["name"].endswith("run_chunk"), sent


def test_a_worker_is_listed_as_starting_before_its_start_up_ends(celery_env, tmp_path):  # noqa: F811
    """The worker's main process reports itself once the broker answers, before its start-up's imports and its
    pool: the first row seen is that process, starting; once the worker is ready its pool process replaces it."""
    import subprocess
    import sys

    from tests.test_celery import REPO, Workers

    url = celery_env.redis.url
    log = tmp_path / "starting.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "verticals.cli", "worker", "--queue", "cpu", "--concurrency",
                                 "1", "--hostname", "early@test"], stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **celery_env.workers.env, "VERTICALS_WORKER_HEARTBEAT_S": "0.5"},
                                start_new_session=True)
    try:
        seen: list[list[dict]] = []
        wait_for(lambda: seen.append(_workers(url)["workers"]) or seen[-1], timeout=90, what="the starting worker")
        assert [(w["node"], w["pid"], w["starting"], w["queues"]) for w in seen[-1]] == [
            ("early@test", proc.pid, True, ["cpu"])]
        wait_for(lambda: b"ready." in log.read_bytes(), timeout=90, what="the worker ready")
        wait_for(lambda: [w["pid"] for w in _workers(url)["workers"]] == Workers.children(proc), timeout=30,
                 what="the pool process in place of the starting row")
        assert not _workers(url)["workers"][0]["starting"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)
