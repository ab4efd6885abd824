"""OpenTelemetry spans (issue 30 item 4): a job's trace goes request -> dispatch -> chunk -> batch -> forward pass,
across the local executor's threads and the Celery hop, with job id, task, batch size and device as attributes; with
no OTEL_* variable nothing of OpenTelemetry is even imported.

The spans are recorded by a tracer written against the OpenTelemetry API here (the SDK is the process's to install,
not a dependency of verticals): it records what the API hands it, parents and trace ids from the real context and
the real W3C propagator."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading

import pytest

opentelemetry = pytest.importorskip("opentelemetry.trace")


class Recorded(opentelemetry.Span):
    def __init__(self, name, context, parent, attributes):
        self.name, self.context, self.parent = name, context, parent
        self.attributes = dict(attributes or {})
        self.ended = False

    def get_span_context(self):
        return self.context

    def set_attribute(self, key, value):
        self.attributes[key] = value

    def set_attributes(self, attributes):
        self.attributes.update(attributes)

    def add_event(self, *args, **kwargs): ...

    def add_link(self, *args, **kwargs): ...

    def update_name(self, name):
        self.name = name

    def is_recording(self):
        return not self.ended

    def set_status(self, *args, **kwargs): ...

    def record_exception(self, *args, **kwargs): ...

    def end(self, end_time=None):
        self.ended = True


class RecordingTracer(opentelemetry.Tracer):
    def __init__(self):
        self.spans: list[Recorded] = []
        self.lock = threading.Lock()

    def start_span(self, name, context=None, kind=None, attributes=None, links=None, start_time=None,
                   record_exception=True, set_status_on_exception=True):
        parent = opentelemetry.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else random.getrandbits(128)
        own = opentelemetry.SpanContext(trace_id, random.getrandbits(64), is_remote=False,
                                        trace_flags=opentelemetry.TraceFlags(opentelemetry.TraceFlags.SAMPLED))
        span = Recorded(name, own, parent if parent.is_valid else None, attributes)
        with self.lock:
            self.spans.append(span)
        return span

    @contextlib.contextmanager
    def start_as_current_span(self, name, context=None, kind=None, attributes=None, links=None, start_time=None,
                              record_exception=True, set_status_on_exception=True, end_on_exit=True):
        span = self.start_span(name, context, kind, attributes)
        with opentelemetry.use_span(span, end_on_exit=end_on_exit):
            yield span

    def named(self, name):
        return [span for span in self.spans if span.name == name]

    def parent_of(self, span):
        return next((s for s in self.spans if span.parent and s.context.span_id == span.parent.span_id), None)


@pytest.fixture
def tracer(monkeypatch):
    from verticals.core import tracing

    recorder = RecordingTracer()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setattr(opentelemetry, "get_tracer", lambda *args, **kwargs: recorder)
    tracing.enabled.cache_clear()
    yield recorder
    tracing.enabled.cache_clear()


def _service(tiny, isolated_home):
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.models.host import ModelHost
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{isolated_home / 'traces.db'}")
    host = ModelHost(tiny.models)
    return JobService(store, tiny, LocalExecutor(store, tiny, host), host=host)


def test_a_job_is_one_trace_from_the_request_to_each_forward_pass(tracer, tiny, isolated_home):
    service = _service(tiny, isolated_home)
    with opentelemetry.get_tracer("test").start_as_current_span("POST /v1/jobs") as request:
        job_id = service.submit("tiny.embed", [{"text": "hello world"}, {"text": "the a"}, {"text": "a"}], chunk_size=2)
        service.start(job_id)  # background threads of the local executor: the trace goes on there
    service.wait(job_id, timeout=60)
    service.close()
    trace_id = request.get_span_context().trace_id
    assert {span.context.trace_id for span in tracer.spans} == {trace_id}
    [submit] = tracer.named("verticals.submit")
    assert submit.attributes["verticals.job_id"] == job_id and tracer.parent_of(submit) is request
    [dispatch] = tracer.named("verticals.dispatch")
    chunks = tracer.named("verticals.chunk")
    assert len(chunks) == 2 and all(tracer.parent_of(chunk) is dispatch for chunk in chunks)
    assert {(c.attributes["verticals.chunk.start"], c.attributes["verticals.chunk.end"]) for c in chunks} == {
        (0, 2), (2, 3)}
    batches = tracer.named("verticals.batch")
    assert sorted(b.attributes["verticals.batch_size"] for b in batches) == [1, 2]
    assert all(tracer.parent_of(batch) in chunks for batch in batches)
    forwards = tracer.named("verticals.forward")
    assert len(forwards) == 2 and all(tracer.parent_of(f) in batches for f in forwards)
    assert {f.attributes["verticals.device"] for f in forwards} == {"cpu"}
    assert {f.attributes["verticals.model"] for f in forwards} == {"tiny-encoder"}
    assert sorted(f.attributes["verticals.batch_size"] for f in forwards) == [1, 2]
    assert all(span.ended for span in tracer.spans if span is not request)


def test_the_celery_hop_carries_the_trace(tracer, fixtures_only_registry, isolated_home, monkeypatch):
    """The dispatch's context travels in the chunk message (its kwargs) and the worker's chunk span continues it:
    the message the executor builds, run by the Celery task function as a worker runs it."""
    from verticals.core import tracing
    from verticals.core.jobs.engine import submit_job
    from verticals.core.store import open_store
    from verticals.workers import celery_app

    url = f"sqlite:///{isolated_home / 'hop.db'}"
    monkeypatch.setenv("VERTICALS_DATABASE_URL", url)
    store = open_store(url)
    job_id = submit_job(store, fixtures_only_registry, "fixtures.echo", [{"text": "a"}])
    sent = []
    monkeypatch.setattr(celery_app.app, "send_task", lambda name, args=None, kwargs=None, **options: sent.append(
        (args, kwargs)))
    from verticals.workers.celery_executor import CeleryExecutor

    executor = CeleryExecutor(store, fixtures_only_registry, broker="redis://127.0.0.1:1/0")
    monkeypatch.setattr(executor, "app", celery_app.app)
    monkeypatch.setattr(celery_app.app, "producer_or_acquire", lambda: contextlib.nullcontext(None))
    with opentelemetry.get_tracer("test").start_as_current_span("POST /v1/jobs") as request:
        assert executor.dispatch(job_id) == 1
    [(args, kwargs)] = sent
    assert kwargs["trace"]["traceparent"].split("-")[1] == format(request.get_span_context().trace_id, "032x")
    monkeypatch.setattr(celery_app, "state", celery_app._WorkerState())
    assert tracing.enabled()
    celery_app.run_chunk_task(*args, **kwargs)  # what the worker runs, in this process, outside any span
    [chunk] = tracer.named("verticals.chunk")
    assert chunk.context.trace_id == request.get_span_context().trace_id
    assert chunk.parent.span_id == request.get_span_context().span_id and chunk.parent.is_remote


def test_without_otel_variables_nothing_of_opentelemetry_is_loaded(use_plugins, isolated_home, monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")
    code = ("import sys\n"
            "from verticals.core.jobs.engine import submit_job\n"
            "from verticals.core.jobs.executor import LocalExecutor\n"
            "from verticals.core.store import open_store\n"
            "from verticals.registry import get_registry\n"
            "store, registry = open_store(), get_registry()\n"
            "job = submit_job(store, registry, 'fixtures.echo', [{'text': 'a'}])\n"
            "assert LocalExecutor(store, registry).execute(job) == 'succeeded'\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'opentelemetry was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def _chain(tracer, span):
    """The names from ``span`` up to its root."""
    names = []
    while span is not None:
        names.append(span.name)
        span = tracer.parent_of(span)
    return names


def test_a_rest_request_is_the_root_of_its_jobs_trace_and_continues_the_callers(tracer, tiny, isolated_home,
                                                                                  monkeypatch):
    """The API's own server span, for a FastAPI without telemetry of its own (newer ones make it themselves, the
    same way: tests/test_operations_celery.py sees theirs): POST /v1/jobs > verticals.job > submit and dispatch >
    chunk > batch > forward, one trace; a request that carries a traceparent continues the caller's."""
    import time

    from fastapi.testclient import TestClient

    from verticals.api import app as api_app
    from verticals.api.app import create_app

    monkeypatch.setattr(api_app, "framework_traces_requests", lambda: False)
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    store = open_store(f"sqlite:///{isolated_home / 'api-traces.db'}")
    key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
    caller = format(random.getrandbits(128), "032x"), format(random.getrandbits(64), "016x")
    with TestClient(create_app(store, tiny, auth=True, threads=1)) as api:
        body = {"task": "tiny.embed", "items": [{"text": "hello world"}, {"text": "the a"}, {"text": "a"}],
                "chunk_size": 2}
        job_id = api.post("/v1/jobs", json=body, headers=key).json()["id"]
        second = api.post("/v1/jobs", json=body, headers={**key, "traceparent": f"00-{caller[0]}-{caller[1]}-01"})
        for created in (job_id, second.json()["id"]):
            deadline = time.monotonic() + 60
            while api.get(f"/v1/jobs/{created}", headers=key).json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
    requests = tracer.named("POST /v1/jobs")
    assert len(requests) == 2
    request = next(span for span in requests if span.parent is None)  # the first: a trace of its own
    assert request.attributes["http.route"] == "/v1/jobs" and request.attributes["http.response.status_code"] == 202
    [job] = [span for span in tracer.named("verticals.job") if tracer.parent_of(span) is request]
    assert job.attributes["verticals.job_id"] == job_id and job.attributes["verticals.task"] == "tiny.embed"
    mine = [span for span in tracer.spans if span.context.trace_id == request.context.trace_id]
    forwards = [span for span in mine if span.name == "verticals.forward"]
    assert len(forwards) == 2 and {tuple(_chain(tracer, f)) for f in forwards} == {(
        "verticals.forward", "verticals.batch", "verticals.chunk", "verticals.dispatch", "verticals.job",
        "POST /v1/jobs")}
    assert [span.name for span in mine if tracer.parent_of(span) is job] == ["verticals.submit", "verticals.dispatch"]
    polls = [span for span in tracer.spans if span.name == "GET /v1/jobs/{job_id}"]
    assert polls and all(span.context.trace_id != request.context.trace_id for span in polls)  # their own traces
    continued = next(span for span in requests if span.parent is not None)
    assert format(continued.context.trace_id, "032x") == caller[0]
    assert format(continued.parent.span_id, "016x") == caller[1] and continued.parent.is_remote


def test_a_cli_or_sdk_job_is_one_trace_too(tracer, tiny, isolated_home):
    """``verticals run`` and the in-process SDK call JobService.submit_and_start: its verticals.job span is the
    root of the job's trace (submit, then the run in the foreground down to each forward pass)."""
    service = _service(tiny, isolated_home)
    submitted = service.submit_and_start("tiny.embed", [{"text": "hello world"}, {"text": "a"}], run="wait")
    service.close()
    assert submitted.status == "succeeded"
    [job] = tracer.named("verticals.job")
    assert job.parent is None and job.attributes["verticals.job_id"] == submitted.job_id
    assert {span.context.trace_id for span in tracer.spans} == {job.context.trace_id}
    [forward] = tracer.named("verticals.forward")
    assert _chain(tracer, forward) == ["verticals.forward", "verticals.batch", "verticals.chunk", "verticals.execute",
                                       "verticals.job"]
