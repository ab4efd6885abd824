"""Every stored text is exportable (issue 22): lone surrogates, deep JSON and a full disk.

The rule (``verticals.core.text``): input with a lone surrogate or nested deeper than MAX_DEPTH levels is
refused where it is read, with its line or item; what reaches the store anyway is read back as valid Unicode;
a database that fills up while a job is stored leaves nothing of the job and one error line.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FIXTURE_PLUGINS, REPO
from verticals.tenancy.tenants import Tenants

LONE = '{"text": "bad \\ud800 x"}'  # JSON text: a valid escape of a code point no UTF-8 writer can encode
DEEP = '{"text": "x", "nest": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.fixture
def registry(fixtures_only_registry):
    return fixtures_only_registry


@pytest.fixture
def api(isolated_home, registry):
    from verticals.api.app import create_app
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    client = TestClient(create_app(store, registry, auth=True, background=True), raise_server_exceptions=False)
    client.__enter__()
    client.store = store
    client.key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
    yield client
    client.__exit__(None, None, None)


def _cli(*args: str, env: dict | None = None, preexec=None) -> subprocess.CompletedProcess:
    plugins = str(FIXTURE_PLUGINS / "good")
    full = {**os.environ, "PYTHONPATH": plugins, "VERTICALS_LOAD_PLUGINS": "fixtures", **(env or {})}
    return subprocess.run([sys.executable, "-m", "verticals.cli", *args], capture_output=True, text=True,
                          timeout=300, env=full, cwd=REPO, preexec_fn=preexec)


def _job_count(store) -> int:
    from sqlalchemy import func, select

    from verticals.core.store.tables import Job

    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_the_cli_refuses_a_lone_surrogate_and_deep_json_with_the_line(tmp_path, registry):
    from typer.testing import CliRunner

    from verticals.cli import app

    lone = tmp_path / "lone.jsonl"
    lone.write_text('{"text": "fine"}\n\n' + LONE + "\n", encoding="utf-8")
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "fine"}\n' + DEEP + "\n", encoding="utf-8")
    runner = CliRunner()
    for path, expected in ((lone, "line 3: text holds a lone surrogate"), (deep, "line 2 is JSON nested deeper")):
        done = runner.invoke(app, ["run", "fixtures.echo", str(path), "-o", str(tmp_path / "out.csv")])
        assert done.exit_code == 2, done.output[-2000:]
        assert done.output.startswith("error:") and expected in done.output, done.output
        assert "Traceback" not in done.output and "RecursionError" not in done.output
    listed = runner.invoke(app, ["jobs", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == []  # nothing half-submitted


def test_the_api_refuses_them_in_bodies_uploads_and_predict(api):
    bodies = {"lone": '{"task": "fixtures.echo", "items": [{"text": "ok"}, ' + LONE + "]}",
              "lone param name": '{"task": "fixtures.echo", "items": [{"text": "ok"}], "params": {"\\udc00": 1}}',
              "deep": '{"task": "fixtures.echo", "items": [' + DEEP + "]}",
              "500 deep": '{"task": "fixtures.echo", "items": [{"text": "x", "n": ' + "[" * 500 + "]" * 500 + "}]}"}
    headers = {**api.key, "content-type": "application/json"}
    for label, body in bodies.items():
        for endpoint in ("/v1/jobs", "/v1/predict", "/v1/evals"):
            response = api.post(endpoint, content=body.encode(), headers=headers)
            assert response.status_code == 422, (label, endpoint, response.status_code, response.text[:300])
            assert response.headers["content-type"].startswith("application/problem+json")
    upload = api.post("/v1/jobs/upload", headers=api.key, data={"task": "fixtures.echo"},
                      files={"file": ("in.jsonl", '{"text": "ok"}\n' + LONE + "\n")})
    assert upload.status_code == 422 and "line 2" in upload.json()["detail"], upload.text
    deep = api.post("/v1/jobs/upload", headers=api.key, data={"task": "fixtures.echo"},
                    files={"file": ("in.jsonl", DEEP + "\n")})
    assert deep.status_code == 422 and "line 1" in deep.json()["detail"], deep.text
    assert _job_count(api.store) == 0


def test_the_sdk_refuses_them_in_process_and_remote(use_plugins, monkeypatch):
    import verticals
    from verticals.client import InputRefused

    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")
    items = [{"text": "ok"}, json.loads(LONE)]
    with verticals.Client() as client:
        for call in (lambda: client.submit("fixtures.echo", items), lambda: client.predict("fixtures.echo", items)):
            with pytest.raises(InputRefused, match="item 2: text holds a lone surrogate"):
                call()
        with pytest.raises(InputRefused, match=r"item 1: n.* nested deeper than 100 levels"):
            client.submit("fixtures.echo", [{"text": "x", "n": _nested(150)}])
        assert client.jobs() == []
    remote = verticals.Client("http://127.0.0.1:9", api_key="vk_x_y", timeout=2)  # refused before any request
    with pytest.raises(InputRefused, match="item 2: text holds a lone surrogate"):
        remote.submit("fixtures.echo", items)
    with pytest.raises(InputRefused, match="nested deeper"):
        remote.predict("fixtures.echo", [{"text": "x", "n": _nested(150)}])


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_stored_unencodable_text_exports_in_every_format(store, registry, tmp_path):
    """A row that reached the store before this rule (or a task output holding a lone surrogate): every
    export format and the results endpoints still work, with U+FFFD in its place."""
    from verticals.api.app import create_app
    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.service import JobService
    from verticals.core.store import ItemResult

    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "fine"}, {"text": "also fine"}], tenant="acme")
    from sqlalchemy import update

    from verticals.core.store.tables import Item

    with store.session() as session, session.begin():  # what an older version stored (its serialiser escapes it)
        session.execute(update(Item).where(Item.job_id == job_id, Item.seq == 1).values(input=json.loads(LONE)))
    store.write_results(job_id, [ItemResult(0, "succeeded", {"upper": "FINE \udfff", "length": 6}),
                                 ItemResult(1, "failed", error="boom \ud800")])
    service = JobService(store, registry)
    for name in ("out.csv", "out.jsonl", "out.parquet", "folder"):
        assert service.export(job_id, tmp_path / name, include_inputs=True) == 2
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "bad \ufffd x" in text and "FINE \ufffd" in text and "boom \ufffd" in text
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [row["status"] for row in rows] == ["succeeded", "failed"]
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out.parquet").num_rows == 2
    client = TestClient(create_app(store, registry, auth=True, background=False))
    with client:
        key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
        for url in (f"/v1/jobs/{job_id}/results?include_inputs=true", f"/v1/jobs/{job_id}/results.ndjson"
                    "?include_inputs=true", f"/v1/jobs/{job_id}/export?format=csv&include_inputs=true",
                    f"/v1/jobs/{job_id}/export?format=jsonl", f"/v1/jobs/{job_id}/export?format=parquet",
                    f"/v1/jobs/{job_id}/export?format=zip"):
            response = client.get(url, headers=key)
            assert response.status_code == 200, (url, response.text[:300])
        assert "bad \ufffd x" in client.get(f"/v1/jobs/{job_id}/results?include_inputs=true", headers=key).text


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail (EFBIG) as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_while_storing_leaves_no_job_and_one_error_line(tmp_path, registry, monkeypatch):
    """The database's files cannot grow past 2 MB (RLIMIT_FSIZE in the CLI's process: the write fails as on a
    full disk) and the input needs more: one error line, exit 2. The half-stored job is removed at once when
    the log has room for the removal, else (as here) by the next command of this host, since its submitter
    is gone: no job stays `running 0/0`."""
    from typer.testing import CliRunner

    from verticals.cli import app

    home = tmp_path / "home"
    home.mkdir()
    env = {"VERTICALS_HOME": str(home), "VERTICALS_DATABASE_URL": f"sqlite:///{home / 'verticals.db'}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert runner.invoke(app, ["jobs", "list"]).exit_code == 0  # the database exists, migrated
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"text": f"row {i} " + "x" * 1000}) + "\n" for i in range(8000)))
    done = _cli("run", "fixtures.echo", str(big), "-o", str(tmp_path / "out.csv"), env=env,
                preexec=_file_size_limit(2_000_000))
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: the job could not be stored: the database"), \
        done.stderr[-3000:]
    assert "nothing was kept" in errors[0] or "could not be removed" in errors[0]
    assert "Traceback" not in done.stderr
    small = tmp_path / "small.jsonl"  # the next command (room again): the database works, nothing half-stored
    small.write_text('{"text": "hello"}\n')
    again = runner.invoke(app, ["run", "fixtures.echo", str(small), "-o", str(tmp_path / "small.csv")])
    assert again.exit_code == 0, again.output[-2000:]
    listed = runner.invoke(app, ["jobs", "list", "--json"])
    assert [job["total"] for job in json.loads(listed.output)] == [1], listed.output


def test_a_full_postgresql_disk_while_storing_leaves_no_job(postgres_url, registry):
    """PostgreSQL answers SQLSTATE 53100 (disk_full) after the first batch of items (a trigger raises it as
    the server would): the submission is refused with StoreFull and nothing of the job stays."""
    from sqlalchemy import text

    from verticals.core.jobs.engine import StoreFull, submit_job
    from verticals.core.store import open_store
    from verticals.core.store.db import make_engine, upgrade

    engine = make_engine(postgres_url)
    upgrade(engine)
    store = open_store(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("""
            CREATE FUNCTION full_disk() RETURNS trigger AS $$
            BEGIN
              IF NEW.seq >= 1500 THEN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql"""))
        connection.execute(text("CREATE TRIGGER full_disk BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION "
                                "full_disk()"))
    with pytest.raises(StoreFull, match="nothing was kept"):
        submit_job(store, registry, "fixtures.echo", ({"text": f"row {i}"} for i in range(3000)))
    assert _job_count(store) == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 0
