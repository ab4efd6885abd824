"""`verticals serve --preload`: the models of the registered tasks (or of `--task` names) are loaded before the
API takes its first request, one INFO line per model. A one-layer random encoder (tests/fixture_plugins/tinymodel)
stands in for real weights."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO
from tests.test_api_e2e import free_port


def _app(registry, **kwargs):
    from verticals.api.app import create_app
    from verticals.core.store import open_store

    return create_app(open_store(), registry, auth=False, **kwargs)


def test_preload_loads_the_models_before_the_first_request(tiny, caplog):
    from fastapi.testclient import TestClient

    app = _app(tiny, preload=True)
    host = app.state.api.host
    assert host.loaded() == []
    with caplog.at_level(logging.INFO, logger="verticals.preload"), TestClient(app) as client:
        assert host.loaded() == ["tiny-encoder"]  # loaded at start-up, before any request
        lines = [r.getMessage() for r in caplog.records if r.name == "verticals.preload"]
        assert len(lines) == 1 and lines[0].startswith("model tiny-encoder loaded for tiny.embed: local ")
        assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "verticals.preload")
        response = client.post("/v1/predict", json={"task": "tiny.embed", "items": [{"text": "hello world"}]})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["output"] == {"dims": 16}
        assert "hello" not in " ".join(lines)  # never an item


def test_preload_of_named_tasks_and_from_the_setting(tiny, monkeypatch):
    from fastapi.testclient import TestClient

    app = _app(tiny, preload=["fixtures.echo"])  # a task without a model: nothing to load
    with TestClient(app):
        assert app.state.api.host.loaded() == []
    app = _app(tiny)  # no preload asked, none in the settings: models load on first use
    with TestClient(app):
        assert app.state.api.host.loaded() == []
    monkeypatch.setenv("VERTICALS_PRELOAD", "1")  # the worker's setting serves the server too
    app = _app(tiny)
    with TestClient(app):
        assert app.state.api.host.loaded() == ["tiny-encoder"]
    from verticals.registry import UnknownTask

    with pytest.raises(UnknownTask, match=r"did you mean tiny\.embed"):
        _app(tiny, preload=["tiny.embd"])  # refused when the app is built, before the server starts


def test_a_model_that_cannot_load_is_logged_and_the_server_starts(tiny, monkeypatch, tmp_path, caplog):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("VERTICALS_TINY_MODEL", str(tmp_path / "nothing-here"))
    from verticals.registry import get_registry

    app = _app(get_registry(refresh=True), preload=True)
    with caplog.at_level(logging.INFO, logger="verticals.preload"), TestClient(app) as client:
        assert app.state.api.host.loaded() == []
        assert client.get("/healthz").status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.name == "verticals.preload" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("model tiny-encoder (for tiny.embed) could not be preloaded")


@pytest.mark.integration  # a real `verticals serve` process
def test_serve_preload_logs_each_model_before_it_takes_requests(tiny, tmp_path):
    """The real `verticals serve --preload --task tiny.embed`: the model's line comes before uvicorn's
    "startup complete", and the first request finds the model loaded."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "verticals.cli", "serve", "--no-auth", "--port", str(port),
                                    "--preload", "--task", "tiny.embed"], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=REPO, env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 90
        while "startup complete" not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        text = log_path.read_text()
        assert "model tiny-encoder loaded for tiny.embed" in text
        assert text.index("model tiny-encoder loaded") < text.index("startup complete")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text  # the first request
        assert 'verticals_model_load_seconds{model="tiny-encoder"}' in metrics  # loaded by this server already
    finally:
        process.terminate()
        process.wait(timeout=30)
    unknown = subprocess.run([sys.executable, "-m", "verticals.cli", "serve", "--no-auth", "--port", str(port),
                              "--task", "tiny.embd"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert unknown.returncode == 2 and "did you mean tiny.embed" in unknown.stderr, unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_worker_preload_loads_its_queues_models_through_the_same_code(tiny, monkeypatch, caplog):
    """`verticals worker --preload` (each pool process, `_preload`) loads the models of its queue's tasks only."""
    from verticals.core.models.host import ModelHost
    from verticals.workers import celery_app

    for queue, expected in (("gpu", []), ("cpu", ["tiny-encoder"])):  # tiny.embed runs on the cpu queue
        host = ModelHost(tiny.models)
        monkeypatch.setattr(celery_app.state, "get", lambda host=host: (None, tiny, host))
        monkeypatch.setenv("VERTICALS_WORKER_QUEUE", queue)
        with caplog.at_level(logging.INFO):
            celery_app._preload()
        assert host.loaded() == expected
    assert any(r.name == "verticals.preload" and r.getMessage().startswith("model tiny-encoder loaded for tiny.embed")
               for r in caplog.records)
