"""The bad-input corpus (tests/data/bad_inputs) through the CLI, the API upload and the SDK: every file is
refused with a message (no traceback), nothing is lost silently, and no job is left queued or running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from verticals.core.io import InputError, read_rows

CORPUS = Path(__file__).parent / "data" / "bad_inputs"
# file -> words the message must contain
EXPECTED = {
    "unbalanced_quote.csv": "line 7",
    "invalid_utf8.csv": "line 3",
    "utf16.csv": "UTF-16",
    "fake.parquet": "Parquet",
    "sheet.xlsx": "CSV",
    "bad_json_late.jsonl": "line 2400",
    "empty.csv": "no ",
    "header_only.csv": "no ",
    "extra_fields.csv": "line 3",
}


def _store():
    from verticals.core.store import open_store

    return open_store()


def _leftover_jobs(store) -> list[tuple[str, str]]:
    return [(job.id, store.summary(job.id)["status"]) for job in store.list_jobs(1000)
            if store.summary(job.id)["status"] in ("queued", "running")]


@pytest.fixture
def fixture_env(use_plugins, monkeypatch):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")


# -- reading ------------------------------------------------------------------------------------

def test_an_unbalanced_quote_is_refused_with_the_line_where_it_starts(tmp_path):
    with pytest.raises(InputError, match=r"unbalanced_quote\.csv line 7: a quoted field starts here"):
        list(read_rows(CORPUS / "unbalanced_quote.csv"))
    # a stray quote later closes the field: still refused, at the line where the field started
    lines = ["id,text"] + [f"{i},row {i}" for i in range(1, 21)]
    lines[4] = '4,"opens here'
    lines[15] = '15,he said "hi" there'
    (tmp_path / "stray.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 5: a quoted field starts here.*stopped at line 16"):
        list(read_rows(tmp_path / "stray.csv"))


def test_valid_csv_features_still_read(tmp_path):
    text = ('id,text\r\n1,"two\nlines, with a comma"\r\n\r\n2,"a ""quoted"" word"\r\n3\r\n4,trailing,\r\n')
    (tmp_path / "ok.csv").write_text(text, encoding="utf-8", newline="")
    assert list(read_rows(tmp_path / "ok.csv")) == [
        {"id": "1", "text": "two\nlines, with a comma"}, {"id": "2", "text": 'a "quoted" word'},
        {"id": "3", "text": None}, {"id": "4", "text": "trailing"}]
    (tmp_path / "bom.csv").write_bytes("\ufeffid,text\n1,caf\u00e9\n".encode())
    assert list(read_rows(tmp_path / "bom.csv")) == [{"id": "1", "text": "caf\u00e9"}]


def test_rows_that_would_lose_values_are_refused(tmp_path):
    with pytest.raises(InputError, match="line 3 has 3 fields, the header has 2"):
        list(read_rows(CORPUS / "extra_fields.csv"))
    (tmp_path / "dup.csv").write_text("text,text\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="'text' twice"):
        list(read_rows(tmp_path / "dup.csv"))


def test_encoding_option_and_messages(tmp_path):
    assert list(read_rows(CORPUS / "utf16.csv", encoding="utf-16"))[1] == {"id": "2", "text": "world"}
    assert list(read_rows(CORPUS / "invalid_utf8.csv", encoding="latin-1"))[1]["text"] == "caf\u00e9 in latin-1"
    with pytest.raises(InputError, match="not UTF-8 text \\(line 3\\): re-save it as UTF-8, or pass --encoding"):
        list(read_rows(CORPUS / "invalid_utf8.csv"))
    with pytest.raises(InputError, match="unknown encoding"):
        list(read_rows(CORPUS / "utf16.csv", encoding="klingon"))
    with pytest.raises(InputError, match="is a folder"):
        list(read_rows(tmp_path))


def test_a_reading_error_late_in_the_file_stores_nothing(fixtures_only_registry):
    from verticals.core.jobs.engine import submit_job

    store = _store()
    with pytest.raises(InputError, match=r"line 2400 .*nothing was stored"):
        submit_job(store, fixtures_only_registry, "fixtures.echo", read_rows(CORPUS / "bad_json_late.jsonl"))
    assert store.list_jobs() == []  # 2,000 items had been stored: the job and its items are gone
    from sqlalchemy import func, select

    from verticals.core.store.tables import Item

    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0


def test_a_task_reading_error_becomes_a_message(fixtures_only_registry):
    from verticals.core.jobs.engine import JobError, submit_job

    def rows():
        yield {"text": "fine"}
        raise ValueError("rows are not grouped by student: sort the log")

    store = _store()
    with pytest.raises(JobError, match=r"reading the input failed: rows are not grouped.*nothing was stored"):
        submit_job(store, fixtures_only_registry, "fixtures.echo", rows())
    assert store.list_jobs() == []


# -- CLI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*EXPECTED, "a folder", "missing.csv"])
def test_cli_refuses_every_bad_input_with_one_message(name, fixture_env, tmp_path):
    path = {"a folder": tmp_path / "folder.csv", "missing.csv": tmp_path / "missing.csv"}.get(name, CORPUS / name)
    if name == "a folder":
        path.mkdir()
    result = run_cli("run", "fixtures.echo", str(path), "-q")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: "), result.stderr
    assert EXPECTED.get(name, "folder" if name == "a folder" else "does not exist") in result.stderr
    assert _store().list_jobs() == []  # refused before a job existed, or deleted: nothing left behind


def test_cli_refuses_a_bad_output_before_the_job_runs(fixture_env, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    for target, words in ((tmp_path / "x.xlsx", "name the output .csv, .jsonl or .parquet"),
                          (Path("/proc/verticals/x.csv"), "choose another -o path")):
        result = run_cli("run", "fixtures.echo", str(data), "-q", "-o", str(target))
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert "--format" not in result.stderr and "Traceback" not in result.stderr
    assert _store().list_jobs() == []
    # a folder that does not exist is not created on the way (a typo would leave a tree of folders behind)
    result = run_cli("run", "fixtures.echo", str(data), "-q", "-o", str(tmp_path / "new" / "deeper" / "out.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"the folder {tmp_path / 'new'} does not exist; create it first" in " ".join(result.stderr.split())
    assert not (tmp_path / "new").exists() and _store().list_jobs() == []
    (tmp_path / "new").mkdir()
    result = run_cli("run", "fixtures.echo", str(data), "-q", "-o", str(tmp_path / "new" / "out.csv"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "out.csv").read_text(encoding="utf-8").startswith("seq,")
    folder = run_cli("run", "fixtures.echo", str(data), "-q", "-o", str(tmp_path / "new" / "results") + "/")
    assert folder.returncode == 0 and (tmp_path / "new" / "results" / "results.jsonl").exists(), folder.stderr


def test_cli_version_flags_and_encoding(fixture_env, tmp_path):
    from verticals import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"verticals {__version__}"
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    bare = run_cli("run", "fixtures.echo", str(data), "-q", "--sleep")
    assert bare.returncode == 2 and "error: --sleep needs a value" in bare.stderr
    assert _store().list_jobs() == []
    ok = run_cli("jobs", "submit", "fixtures.echo", str(CORPUS / "utf16.csv"), "--encoding", "utf-16")
    assert ok.returncode == 0, ok.stderr
    assert _store().summary(ok.stdout.strip())["status"] == "succeeded"


def test_an_unreachable_broker_is_one_message(fixture_env, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    result = run_cli("run", "fixtures.echo", str(data), "-q", env={"VERTICALS_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "error: cannot reach the broker" in result.stderr and "unset VERTICALS_BROKER_URL" in result.stderr
    assert _store().list_jobs() == []  # checked before the job existed: nothing waits queued for it


def test_ctrl_c_prints_the_resume_hint_and_exits_130(fixture_env, tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("".join(f"line {i}\n" for i in range(200)), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "verticals.cli", "run", "fixtures.echo", str(data), "-q",
                                "--sleep", "0.2", "--chunk-size", "200"], cwd=REPO, stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 60
    store = _store()
    while time.monotonic() < deadline and not any(
            store.summary(job.id)["done"] for job in store.list_jobs()):
        time.sleep(0.1)  # wait until items are being processed
    process.send_signal(signal.SIGINT)
    _out, stderr = process.communicate(timeout=60)
    job_id = store.list_jobs()[0].id
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"interrupted: finished items are stored; continue with `verticals jobs resume {job_id}`" in stderr
    resumed = run_cli("jobs", "resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    assert store.summary(job_id)["counts"] == {"succeeded": 200}


# -- API ----------------------------------------------------------------------------------------

@pytest.fixture
def api(fixtures_only_registry, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app

    store = _store()
    with TestClient(create_app(store, fixtures_only_registry, auth=False)) as client:
        client.store = store
        yield client


@pytest.mark.parametrize("name", list(EXPECTED))
def test_api_upload_refuses_every_bad_input(name, api):
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},
                        files={"file": (name, (CORPUS / name).read_bytes())})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "Traceback" not in detail and "--" not in detail  # API wording, no CLI options
    if name not in ("fake.parquet", "sheet.xlsx"):  # uploads are CSV, JSONL or TXT: the format is refused
        assert EXPECTED[name] in detail, detail
    assert api.store.list_jobs() == []


def test_api_errors_are_problem_details(api):
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},
                        files={"file": ("in.csv", (CORPUS / "unbalanced_quote.csv").read_bytes())})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 422 and body["title"] == "Unprocessable Entity"
    assert body["detail"].startswith("the upload: line 7: a quoted field starts here")
    invalid = api.post("/v1/jobs", json={"task": "fixtures.echo"})  # no items: a string, not a list of dicts
    assert invalid.status_code == 422 and invalid.json()["detail"] == "invalid request: items: Field required"
    missing = api.get("/v1/jobs/nosuchjob")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")


def test_api_upload_missing_column_names_the_form_field(api):
    response = api.post("/v1/jobs/upload", data={"task": "fixtures.echo"},
                        files={"file": ("in.csv", b"a,b\n1,2\n")})
    assert response.status_code == 422 and "text_column" in response.json()["detail"]
    assert "--text-column" not in response.json()["detail"]


# -- SDK ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(EXPECTED))
def test_sdk_in_process_refuses_every_bad_input(name, fixture_env):
    import verticals
    from verticals.client import InputRefused

    with verticals.Client() as client:
        with pytest.raises(InputRefused, match=EXPECTED[name].replace(".", r"\.")):
            client.submit("fixtures.echo", path=CORPUS / name)
        assert _leftover_jobs(client._backend.store) == [] and client.jobs() == []


def test_sdk_remote_without_a_server_raises_server_unavailable():
    import socket

    from verticals.client import Client, ServerUnavailable, VerticalsError

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", timeout=5) as client, \
            pytest.raises(ServerUnavailable, match="is `verticals serve` running") as raised:
        client.tasks()
    assert isinstance(raised.value, VerticalsError)


# -- two first runs at once ---------------------------------------------------------------------

WAIT_THEN_OPEN = """
import os, sys, time
from verticals.core.store import open_store
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
open_store(sys.argv[1])
print("ready")
"""


@pytest.mark.slow  # six interpreter start-ups
def test_two_processes_opening_a_fresh_sqlite_database_both_succeed(tmp_path):
    """Both migrate-on-first-use at the same moment; the migration lock makes the second wait for the first
    (without it one of the two fails on 'table alembic_version already exists' most of the time)."""
    for round_ in range(3):
        url, go = f"sqlite:///{tmp_path / f'fresh{round_}.db'}", tmp_path / f"go{round_}"
        processes = [subprocess.Popen([sys.executable, "-c", WAIT_THEN_OPEN, url, str(go)], cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(2)  # both have imported verticals and wait at the barrier
        go.touch()
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0 and out.strip() == "ready", err
        from verticals.core.store.db import current_revision, head_revision, make_engine

        assert current_revision(make_engine(url)) == head_revision()


# -- cleaning up: jobs delete / prune, jobs list filters ------------------------------------------

def test_jobs_delete_prune_and_list_filters(fixture_env, fixtures_only_registry):
    import json
    from datetime import timedelta

    from sqlalchemy import update

    from verticals.core.jobs.engine import discard_job, jobs_to_prune, parse_age, submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store.tables import Job, utcnow

    store = _store()
    ok = submit_job(store, fixtures_only_registry, "fixtures.echo", [{"text": "a"}])
    bad = submit_job(store, fixtures_only_registry, "fixtures.echo", [{"text": "POISON"}])
    waiting = submit_job(store, fixtures_only_registry, "fixtures.echo", [{"text": "b"}])
    for job_id in (ok, bad):
        LocalExecutor(store, fixtures_only_registry).execute(job_id)
    with store.session() as session, session.begin():  # all three are 40 days old
        session.execute(update(Job).values(created_at=utcnow() - timedelta(days=40)))
    assert parse_age("30d") == timedelta(days=30) and parse_age("2w") == timedelta(weeks=2)
    assert [s["id"] for s in jobs_to_prune(store, parse_age("30d"), ["failed"])] == [bad]
    assert jobs_to_prune(store, parse_age("50d")) == []
    assert {s["id"] for s in jobs_to_prune(store, parse_age("30d"))} == {ok, bad}  # never the queued one

    listed = run_cli("jobs", "list", "--status", "failed", "--task", "fixtures.echo", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["id"] for job in json.loads(listed.stdout)] == [bad]
    pruned = run_cli("jobs", "prune", "--older-than", "30d", "--status", "failed")
    assert pruned.returncode == 0 and "deleted 1 job(s)" in pruned.stderr, pruned.stderr
    assert {job.id for job in store.list_jobs()} == {ok, waiting}

    refused = run_cli("jobs", "delete", waiting[:10])
    assert refused.returncode == 2 and "is queued: cancel it first" in refused.stderr
    deleted = run_cli("jobs", "delete", waiting[:10], "--force")
    assert deleted.returncode == 0 and f"deleted job {waiting}" in deleted.stderr, deleted.stderr
    discard_job(store, ok)
    assert store.list_jobs() == []
    assert run_cli("jobs", "delete", "nosuchjob").returncode == 2


def test_a_job_whose_submission_never_finished_is_not_resumed_silently(fixture_env):
    """Jobs left 'running 0/0' by older versions (a row, no items): resume and cancel say so; delete --force."""
    store = _store()
    stuck = store.create_job("fixtures.echo", {}, {}, 100)
    for command in ("resume", "cancel"):
        result = run_cli("jobs", command, stuck[:10])
        assert result.returncode == 2, result.stderr
        assert "never fully submitted" in result.stderr and "jobs delete" in result.stderr
        assert "Traceback" not in result.stderr
    assert run_cli("jobs", "delete", stuck, "--force").returncode == 0
    assert store.list_jobs() == []
