"""Operating it as a service (issue 30) with every part real: a `verticals serve` process, `verticals worker`
processes that run the chunks, a test-owned redis-server as the broker, PostgreSQL as the store, the SDK over HTTP.

- usage: 50 jobs submitted at once by two tenants run on the workers; each tenant's GET /v1/usage is exactly the
  sum of its jobs (items, model seconds and tokens of real forward passes, metered by the workers), /metrics counts
  them from the usage rows and has the workers' batch histogram;
- quotas: past its concurrent-jobs quota a tenant gets 429 problem+json with Retry-After (the SDK raises
  QuotaExceeded) while its job running on a worker goes on to the end; another tenant is not affected;
- resume: a broker restart loses a job's queued chunks; the job's tenant resumes it over REST and it finishes;
- traces: the server and the worker run under OpenTelemetry's own launcher (opentelemetry-instrument, the SDK and
  its console exporter, as docs/operations.md says): one job's spans, from both processes, make one trace from the
  request to each forward pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.test_api_e2e import start_server
from tests.test_celery import RedisServer, Workers, wait_for

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed: run scripts/ensure-services.sh")


class Stack:
    def __init__(self, url, database_url, redis, workers):
        self.url, self.database_url, self.redis, self.workers = url, database_url, redis, workers
        from verticals.core.store import open_store
        from verticals.tenancy.tenants import Tenants

        self.store = open_store(database_url)
        self.tenants = Tenants(self.store)

    def key(self, tenant: str) -> str:
        return self.tenants.create_key(tenant, "ops").token

    def client(self, tenant: str):
        import verticals

        return verticals.Client(self.url, api_key=self.key(tenant))


@contextlib.contextmanager
def _stack(tmp_path, postgres_url, use_plugins, monkeypatch, launcher=None, **extra_env):
    from verticals.core.store.db import make_engine, upgrade

    upgrade(make_engine(postgres_url))
    pythonpath = use_plugins("good", "tinymodel")
    from verticals_tinymodel import write_tiny_encoder

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    env = {"VERTICALS_DATABASE_URL": postgres_url, "VERTICALS_BROKER_URL": redis.url, "HF_HUB_OFFLINE": "1",
           "VERTICALS_LOAD_PLUGINS": "fixtures,tinymodel", "VERTICALS_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([pythonpath, str(REPO)]), "VERTICALS_API_MAX_ACTIVE_JOBS": "100",
           "VERTICALS_TINY_MODEL": str(write_tiny_encoder(tmp_path / "tiny-encoder"))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    workers = Workers(tmp_path, {**env, **extra_env, "OTEL_SERVICE_NAME": "verticals-worker"}, launcher)
    server = None
    try:
        workers.start(1, concurrency=2)
        server, url = start_server({**os.environ, **env, **extra_env, "OTEL_SERVICE_NAME": "verticals-api"},
                                   tmp_path / "server.log", launcher=launcher)
        yield Stack(url, postgres_url, redis, workers)
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        workers.stop()
        redis.stop()


@pytest.fixture
def stack(tmp_path, postgres_url, use_plugins, monkeypatch):
    with _stack(tmp_path, postgres_url, use_plugins, monkeypatch) as running:
        yield running


def _finished(client, job_ids, timeout=180.0):
    deadline = time.monotonic() + timeout
    jobs = {}
    for job_id in job_ids:
        while (job := client.job(job_id).status()).status in ("queued", "running"):
            assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
            time.sleep(0.1)
        jobs[job_id] = job
    return jobs


def test_usage_of_50_concurrent_submits_run_by_workers_matches_the_jobs(stack):
    clients = {tenant: stack.client(tenant) for tenant in ("acme", "globex")}
    created: dict[str, list[str]] = {"acme": [], "globex": []}
    lock = threading.Lock()
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def submit(number: int) -> None:
        try:
            tenant = "acme" if number % 2 else "globex"
            task = "tiny.embed" if number % 3 == 0 else "fixtures.echo"
            items = [{"text": f"hello world {number} {n}"} for n in range(1 + number % 4)]
            barrier.wait()
            job = clients[tenant].submit(task, items=items, chunk_size=2)
            with lock:
                created[tenant].append(job.id)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    totals = {"items": 0}
    for tenant, client in clients.items():
        jobs = _finished(client, created[tenant])
        assert len(jobs) == 25 and all(job.status == "succeeded" for job in jobs.values())
        usages = [job.raw["usage"] for job in jobs.values()]
        report = client.usage(since="0d")  # GET /v1/usage: this tenant's, today
        assert report["tenant"] == tenant and len(report["days"]) == 1
        total = report["total"]
        assert total["jobs"] == 25
        assert total["items"] == sum(u["items"] for u in usages) == sum(j.counts["succeeded"] for j in jobs.values())
        assert total["model_s"] == pytest.approx(sum(u["model_s"] for u in usages))
        assert total["tokens"] == sum(u["tokens"] for u in usages) > 0  # the workers' real forward passes
        embedded = [u for j, u in zip(jobs.values(), usages, strict=True) if j.raw["task"] == "tiny.embed"]
        assert embedded and all(u["models"][0]["model"] == "tiny-encoder" and u["models"][0]["device"] == "cpu"
                                and u["models"][0]["model_s"] > 0 for u in embedded)
        totals["items"] += total["items"]
    metrics = httpx.get(f"{stack.url}/metrics").text
    assert f"verticals_items_run_total {float(totals['items'])}" in metrics  # from the usage rows the workers wrote
    assert "verticals_items_processed_total 0.0" in metrics  # nothing ran on the server's threads
    batches = next(line for line in metrics.splitlines() if line.startswith("verticals_batch_seconds_count"))
    assert float(batches.split()[-1]) >= 50  # a batch at least per job, timed by the workers
    for client in clients.values():
        client.close()


def test_over_its_quota_a_tenant_gets_429_and_its_job_on_a_worker_goes_on(stack):
    from verticals.client import QuotaExceeded

    stack.tenants.set_quota("acme", max_active_jobs=1)
    acme_key = stack.key("acme")
    with stack.client("acme") as acme, stack.client("globex") as globex:
        slow = acme.submit("fixtures.echo", items=[{"text": f"s{n}"} for n in range(6)], params={"sleep": 0.4},
                           chunk_size=1)
        wait_for(lambda: acme.job(slow.id).status().status == "running", timeout=60, what="the job on the worker")
        refused = httpx.post(f"{stack.url}/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "x"}]},
                             headers={"Authorization": f"Bearer {acme_key}"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0
        assert "1 unfinished jobs" in refused.json()["detail"]
        with pytest.raises(QuotaExceeded) as error:
            acme.submit("fixtures.echo", items=[{"text": "y"}])
        assert error.value.status_code == 429 and error.value.retry_after and error.value.retry_after > 0
        other = globex.submit("fixtures.echo", items=[{"text": "g"}])  # another tenant: not held up
        assert other.wait(timeout=60, poll=0.1).status == "succeeded"
        final = slow.wait(timeout=120, poll=0.1)  # the running job is not touched
        assert final.status == "succeeded" and final.counts == {"succeeded": 6}
        assert acme.submit("fixtures.echo", items=[{"text": "z"}]).wait(timeout=60, poll=0.1).status == "succeeded"
        assert [job.id for job in acme.jobs()].count(slow.id) == 1  # nothing was stored for the refused ones
        assert len(acme.jobs()) == 2


def test_a_tenant_resumes_its_job_after_a_broker_restart_lost_its_chunks(stack):
    with stack.client("acme") as acme, stack.client("globex") as globex:
        stack.workers.stop()  # no worker: the chunks wait in the broker
        job = acme.submit("fixtures.echo", items=[{"text": f"t{n}"} for n in range(9)], chunk_size=3)
        assert job.status().status == "queued"
        stack.redis.restart()  # no persistence: the queued chunks are lost
        stack.workers.start(1, concurrency=2)
        time.sleep(3)  # a worker runs what it gets: nothing
        stranded = acme.job(job.id).status()
        assert stranded.status == "queued" and stranded.counts == {"pending": 9}
        with pytest.raises(Exception) as other:  # not globex's job
            globex.resume(job.id)
        assert getattr(other.value, "status_code", None) == 404
        acme.resume(job.id)  # POST /v1/jobs/{id}/resume: its chunks go to the broker again
        final = job.wait(timeout=120, poll=0.1)
        assert final.status == "succeeded" and final.counts == {"succeeded": 9}
        assert [r.output["upper"] for r in job.results()] == [f"T{n}" for n in range(9)]
        assert acme.usage(since="0d")["total"]["items"] == 9  # each item metered once


def _spans(*logs: Path) -> list[dict]:
    """The spans the console exporter printed (indented JSON objects, one per span) in these logs."""
    decoder, spans = json.JSONDecoder(), []
    for log in logs:
        text = log.read_text(errors="replace")
        at = text.find('{\n    "name"')
        while at != -1:
            try:
                span, end = decoder.raw_decode(text, at)
            except json.JSONDecodeError:  # a span still being written
                break
            spans.append(span)
            at = text.find('{\n    "name"', end)
    return spans


LAUNCHER = Path(sys.executable).parent / "opentelemetry-instrument"


@pytest.mark.skipif(not LAUNCHER.exists(), reason="opentelemetry-distro not installed (the dev extra has it)")
def test_one_jobs_trace_goes_from_the_request_over_the_celery_hop_to_each_forward_pass(tmp_path, postgres_url,
                                                                                     use_plugins, monkeypatch):
    otel = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with _stack(tmp_path, postgres_url, use_plugins, monkeypatch, [str(LAUNCHER)], **otel) as stack:
        with stack.client("acme") as acme:
            job = acme.submit("tiny.embed", items=[{"text": f"hello world {n}"} for n in range(5)], chunk_size=2)
            assert job.wait(timeout=120, poll=0.2).status == "succeeded"
        logs = [tmp_path / "server.log", *stack.workers.logs]

        def traced() -> list[dict]:
            spans = _spans(*logs)
            return spans if sum(span["name"] == "verticals.forward" for span in spans) >= 3 else []

        wait_for(traced, timeout=30, what="the worker's spans")
    spans = _spans(*logs)
    [request] = [span for span in spans if span["name"] == "POST /v1/jobs"]
    assert request["parent_id"] is None and request["kind"] == "SpanKind.SERVER"
    assert request["attributes"]["http.route"] == "/v1/jobs"
    assert request["attributes"]["http.response.status_code"] == 202
    trace = [span for span in spans if span["context"]["trace_id"] == request["context"]["trace_id"]]
    by_id = {span["context"]["span_id"]: span for span in trace}

    def chain(span: dict) -> list[tuple[str, str]]:
        names = []
        while span is not None:
            names.append((span["name"], span["resource"]["attributes"]["service.name"]))
            span = by_id.get(span["parent_id"])
        return names

    forwards = [span for span in trace if span["name"] == "verticals.forward"]
    assert len(forwards) == 3  # chunks of 2, 2 and 1 items: one batch and one forward pass each
    for forward in forwards:
        ours = [(name, service) for name, service in chain(forward)  # FastAPI's own spans may come between
                if name.startswith("verticals.") or name == "POST /v1/jobs"]
        assert ours == [("verticals.forward", "verticals-worker"), ("verticals.batch", "verticals-worker"),
                        ("verticals.chunk", "verticals-worker"), ("verticals.dispatch", "verticals-api"),
                        ("verticals.job", "verticals-api"), ("POST /v1/jobs", "verticals-api")]
        assert forward["attributes"]["verticals.device"] == "cpu"
        assert forward["attributes"]["verticals.model"] == "tiny-encoder"
    batches = [span for span in trace if span["name"] == "verticals.batch"]
    assert sorted(span["attributes"]["verticals.batch_size"] for span in batches) == [1, 2, 2]
    assert {span["attributes"]["verticals.job_id"] for span in batches} == {job.id}
    assert {span["attributes"]["verticals.task"] for span in batches} == {"tiny.embed"}
