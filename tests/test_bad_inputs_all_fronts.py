"""Every failure a message, nothing left behind: the bad-input corpus and a broker that is down, through the
CLI, the REST API and the SDK together (tests/test_bad_inputs.py covers the readers and each front end alone).

For every case: the CLI prints one ``error:`` line (no traceback) and exits 2; the API answers problem+json 4xx
worded without CLI options; the SDK raises a ``VerticalsError`` subclass; and no job is left queued or running.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: the broker is down


def _store():
    from verticals.core.store import open_store

    return open_store()


def _unfinished(store) -> list[tuple[str, str]]:
    """Jobs some front end left queued or running."""
    return [(job.id, status) for job in store.list_jobs(1000)
            if (status := store.summary(job.id)["status"]) in ("queued", "running")]


@pytest.fixture
def fixture_env(use_plugins, monkeypatch):
    """The model-free fixture plugin (fixtures.echo) and the tutor plugin (tutor.mastery: model-free too)."""
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures,tutor")
    use_plugins("good")
    from verticals.registry import get_registry

    return get_registry(refresh=True)


# -- the corpus through every front end -----------------------------------------------------------

@dataclass
class Case:
    """One bad input: how each front end is given it, and words its message must contain."""

    file: str | None = None  # a corpus file, or a file made by ``make``
    task: str = "fixtures.echo"
    text_column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    cli_args: tuple[str, ...] = ()  # extra CLI arguments (instead of params)
    words: str = ""  # in the CLI's and the SDK's message
    api_words: str | None = None  # in the API's detail (default: ``words``)
    api: bool = True  # the API gets the file as an upload (a path it cannot be given: no API request)
    make: Any = None  # (tmp_path) -> Path


def _folder(tmp_path: Path) -> Path:
    path = tmp_path / "folder.csv"
    path.mkdir()
    return path


def _ungrouped(tmp_path: Path) -> Path:
    path = tmp_path / "attempts.csv"
    path.write_text("student,skill,correct\nada,add,1\nbob,add,0\nada,sub,1\n", encoding="utf-8")
    return path


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("text\nhello\nworld\n", encoding="utf-8")
    return path


def _two_columns(tmp_path: Path) -> Path:
    path = tmp_path / "two.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    return path


CASES = {
    "unbalanced quote": Case("unbalanced_quote.csv", words="line 7"),
    "missing column": Case(make=_two_columns, words="text"),
    "unknown column": Case(make=_good, text_column="nope", words="nope"),
    "nonexistent file": Case("missing.csv", words="does not exist", api=False),
    "xlsx": Case("sheet.xlsx", words="CSV"),
    "bad json line deep in the file": Case("bad_json_late.jsonl", words="line 2400"),
    "ungrouped mastery log": Case(make=_ungrouped, task="tutor.mastery", words="not grouped by student"),
    "invalid utf-8": Case("invalid_utf8.csv", words="line 3"),
    "utf-16": Case("utf16.csv", words="UTF-16"),
    "a directory": Case(make=_folder, words="folder", api=False),
    "text named .parquet": Case("fake.parquet", words="Parquet"),
    "empty input": Case("empty.csv", words="no "),
    "header only": Case("header_only.csv", words="no "),
    "flag without value": Case(make=_good, cli_args=("--sleep",), params={"sleep": None}, words="sleep"),
    "bad parameter value": Case(make=_good, cli_args=("--sleep", "-1"), params={"sleep": -1}, words="sleep"),
}


def _path(case: Case, tmp_path: Path) -> Path:
    if case.make is not None:
        return case.make(tmp_path)
    if case.file == "missing.csv":
        return tmp_path / "missing.csv"
    return CORPUS / str(case.file)


def _cli(case: Case, path: Path):
    from typer.testing import CliRunner

    from verticals.cli import app

    args = ["run", case.task, str(path), "-q", *case.cli_args]
    if case.text_column:
        args += ["--text-column", case.text_column]
    return CliRunner().invoke(app, args)


def _api_request(api, case: Case, path: Path):
    data = {"task": case.task, "params": json.dumps(case.params)}
    if case.text_column:
        data["text_column"] = case.text_column
    return api.post("/v1/jobs/upload", data=data, files={"file": (path.name, path.read_bytes())})


@pytest.fixture
def api(fixture_env, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app

    with TestClient(create_app(_store(), fixture_env, auth=False)) as client:
        yield client


@pytest.mark.parametrize("name", list(CASES))
def test_every_bad_input_is_one_message_and_leaves_no_job_through_every_front_end(name, fixture_env, api, tmp_path):
    import verticals
    from verticals.client import VerticalsError

    case = CASES[name]
    path = _path(case, tmp_path)
    store = _store()

    # CLI: one error line, exit 2, no traceback
    result = _cli(case, path)
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # an exception would be a traceback
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert case.words in result.stderr, result.stderr

    # API: problem+json 4xx, in API words (no CLI option)
    if case.api:  # the server is sent bytes: a folder or a missing file cannot be uploaded
        response = _api_request(api, case, path)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        detail = response.json()["detail"]
        assert "Traceback" not in detail and "--" not in detail, detail
        assert (case.api_words or case.words) in detail, detail

    # SDK (in process): a VerticalsError subclass with the same words
    with verticals.Client() as client:
        with pytest.raises(VerticalsError) as raised:
            client.submit(case.task, path=path, params=case.params, text_column=case.text_column)
        assert case.words in str(raised.value)

    assert _unfinished(store) == []
    assert store.list_jobs() == []  # each front end refused it before a job existed, or deleted it


def test_a_bad_output_is_one_message_through_every_front_end(fixture_env, api, tmp_path):
    """An unknown output extension or an unwritable path: the CLI refuses it before the job runs; the API and
    the SDK, which export a finished job, refuse it with a message and keep the job."""
    import verticals
    from verticals.client import VerticalsError

    path = _good(tmp_path)
    for target, words in ((tmp_path / "x.xlsx", ".csv, .jsonl or .parquet"),
                          (Path("/proc/verticals/x.csv"), "choose another")):
        result = _cli(Case(cli_args=("-o", str(target))), path)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr
    assert _store().list_jobs() == []

    with verticals.Client() as client:
        job = client.submit("fixtures.echo", path=path)
        job.wait()
        for target in (tmp_path / "x.xlsx", Path("/proc/verticals/x.csv")):
            with pytest.raises(VerticalsError):
                job.export(target)
    assert _store().summary(job.id)["status"] == "succeeded"
    api_job = api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}]}).json()["id"]
    response = api.get(f"/v1/jobs/{api_job}/export", params={"format": "xlsx"})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert "--" not in response.json()["detail"]
    deadline = time.monotonic() + 30
    while _unfinished(_store()) and time.monotonic() < deadline:  # the API's job runs in a background thread
        time.sleep(0.05)
    assert _unfinished(_store()) == []


# -- a broker that is down ----------------------------------------------------------------------

def test_cli_with_the_broker_down_stores_no_job(fixture_env, tmp_path):
    path = _good(tmp_path)
    for command in (("run", "fixtures.echo", str(path), "-q"),
                    ("jobs", "submit", "fixtures.echo", str(path), "--detach")):
        result = run_cli(*command, env={"VERTICALS_BROKER_URL": DOWN})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: cannot reach the broker at redis://127.0.0.1:1/0")
        assert "unset VERTICALS_BROKER_URL" in result.stderr
    assert _store().list_jobs() == []
    listed = run_cli("jobs", "list")
    assert listed.returncode == 0 and "no jobs yet" in listed.stderr and listed.stdout == ""


def test_cli_retry_with_the_broker_down_leaves_the_finished_job_as_it_was(fixture_env, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\nPOISON\n", encoding="utf-8")
    ran = run_cli("jobs", "submit", "fixtures.echo", str(data))
    assert ran.returncode == 0, ran.stderr
    job_id = ran.stdout.strip()
    assert _store().summary(job_id)["status"] == "partial"
    retried = run_cli("jobs", "retry", job_id, env={"VERTICALS_BROKER_URL": DOWN})
    assert retried.returncode == 2 and "error: cannot reach the broker" in retried.stderr, retried.stderr
    assert "jobs resume" not in retried.stderr  # nothing was put back: nothing to resume

    stored = run_cli("jobs", "submit", "fixtures.echo", str(data), "--detach").stdout.strip()  # kept for later
    resumed = run_cli("jobs", "resume", stored, env={"VERTICALS_BROKER_URL": DOWN})
    assert resumed.returncode == 2 and "error: cannot reach the broker" in resumed.stderr, resumed.stderr
    assert f"continue it with `verticals jobs resume {stored[:12]}`" in resumed.stderr
    assert _store().summary(stored)["counts"] == {"pending": 2}  # the user's stored job, as it was
    summary = _store().summary(job_id)
    assert summary["status"] == "partial" and summary["counts"] == {"succeeded": 1, "failed": 1}


@pytest.fixture
def api_broker_down(fixture_env, monkeypatch, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app

    monkeypatch.setenv("VERTICALS_BROKER_URL", DOWN)
    with TestClient(create_app(_store(), fixture_env, auth=False)) as client:
        yield client


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert "cannot reach the broker" in detail and "--" not in detail and "verticals jobs" not in detail, detail


def test_api_with_the_broker_down_answers_503_and_stores_no_job(api_broker_down, tmp_path):
    api = api_broker_down
    _assert_unavailable(api.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}]}))
    _assert_unavailable(api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},
                                 files={"file": ("in.csv", b"text\nhello\n")}))
    ready = api.get("/readyz")
    assert ready.status_code == 503 and "cannot reach the broker" in ready.json()["detail"]
    assert _store().list_jobs() == []


def test_api_a_broker_lost_between_the_check_and_the_dispatch_withdraws_the_job(api_broker_down, monkeypatch):
    """The broker answered the check, then the dispatch failed: the job is withdrawn (not left queued), and
    the Idempotency-Key may be used again."""
    from verticals.workers.celery_executor import CeleryExecutor

    monkeypatch.setattr(CeleryExecutor, "check", lambda self: None)  # it answered a moment ago
    api = api_broker_down
    body = {"task": "fixtures.echo", "items": [{"text": "a"}, {"text": "b"}]}
    response = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k1"})
    _assert_unavailable(response)
    assert "was not kept" in response.json()["detail"]
    assert _store().list_jobs() == []
    again = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k1"})
    _assert_unavailable(again)  # the same answer: the key was released, not left "still being processed"


def test_sdk_with_the_broker_down_raises_and_stores_no_job(fixture_env, monkeypatch):
    import verticals
    from verticals.client import VerticalsError

    monkeypatch.setenv("VERTICALS_BROKER_URL", DOWN)
    with verticals.Client() as client, pytest.raises(VerticalsError, match="cannot reach the broker") as raised:
        client.submit("fixtures.echo", items=[{"text": "a"}])
    assert raised.value.status_code == 503
    assert _store().list_jobs() == []


def test_a_job_that_had_run_is_kept_when_the_executor_refuses_it(fixture_env):
    """Only a job nothing of which ran is withdrawn: one with started chunks stays, to be resumed."""
    from verticals.core.jobs.executor import ExecutorUnavailable, LocalExecutor
    from verticals.core.jobs.service import JobService

    store = _store()

    class Refusing(LocalExecutor):
        def start(self, job_id: str) -> int:
            raise ExecutorUnavailable("the broker went away")

    service = JobService(store, fixture_env, Refusing(store, fixture_env))
    fresh = service.submit("fixtures.echo", [{"text": "a"}])
    with pytest.raises(ExecutorUnavailable, match=r"the broker went away\. The job was not kept"):
        service.start(fresh, fresh=True)
    assert store.list_jobs() == []

    resumed = service.submit("fixtures.echo", [{"text": f"t{i}"} for i in range(30)], chunk_size=10)
    from verticals.core.jobs.engine import run_chunk
    from verticals.core.models.host import ModelHost

    run_chunk(store, fixture_env, ModelHost(fixture_env.models), resumed, 0, 10)  # its first chunk ran; the
    # hand-over of the rest finds the executor gone (a job with nothing pending is finished, not handed over)
    with pytest.raises(ExecutorUnavailable, match=r"^the broker went away$"):
        service.start(resumed, fresh=True)
    assert [job.id for job in store.list_jobs()] == [resumed]
    old = service.submit("fixtures.echo", [{"text": "a"}])
    with pytest.raises(ExecutorUnavailable, match=r"^the broker went away$"):
        service.start(old)  # not fresh (a resume): the job stays stored
    assert {job.id for job in store.list_jobs()} == {resumed, old}
