"""The SDK in-process (no server): same methods as over REST (tests/test_api_e2e.py covers remote)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def client(use_plugins, monkeypatch):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")
    import verticals

    with verticals.Client() as client:
        yield client


def test_import_verticals_stays_light_and_client_is_lazy():
    code = ("import sys, verticals; heavy = {'fastapi', 'httpx', 'verticals.client'} & set(sys.modules); "
            "assert not heavy, heavy; assert verticals.Client.__module__ == 'verticals.client'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_in_process_submit_wait_results_predict(client, tmp_path):
    from verticals_fixtures.plugin import EchoOutput

    from verticals.client import VerticalsError

    job = client.submit("fixtures.echo", items=[{"text": "ab"}, {"text": "POISON"}, {"text": ""}])
    final = job.wait(timeout=60, poll=0.05)
    assert final.status == "partial" and final.finished and final.counts == {"succeeded": 1, "failed": 2}
    results = list(job.results())
    assert [r.status for r in results] == ["succeeded", "failed", "failed"]
    assert results[0].output_as(EchoOutput).upper == "AB" and results[1].output_as(EchoOutput) is None
    assert job.retry() == 1  # the POISON item; the invalid one cannot succeed by re-running
    assert job.wait(timeout=60, poll=0.05).counts == {"succeeded": 1, "failed": 2}
    data = tmp_path / "in.csv"
    data.write_text("n,body\n1,from file\n2,second\n")
    from_file = client.submit("fixtures.echo", path=data, text_column="body")
    from_file.wait(timeout=60, poll=0.05)
    assert [r.output["upper"] for r in from_file.results()] == ["FROM FILE", "SECOND"]
    assert [r.output for r in client.predict("fixtures.echo", [{"text": "x"}])] == [{"upper": "X", "length": 1}]
    assert {j.id for j in client.jobs()} == {job.id, from_file.id}
    assert client.job(job.id[:8]).id == job.id  # a unique prefix works in-process, like the CLI
    with pytest.raises(VerticalsError, match=r"fixtures\.echo"):
        client.submit("no.such", items=[])
    with pytest.raises(VerticalsError, match="sleep"):
        client.submit("fixtures.echo", items=[{"text": "a"}], params={"sleep": -1})
    with pytest.raises(ValueError, match="exactly one"):
        client.submit("fixtures.echo")


def test_in_process_cancel(client):
    job = client.submit("fixtures.echo", items=[{"text": f"t{i}"} for i in range(40)], params={"sleep": 0.1})
    assert job.cancel().raw["cancel_requested"]
    assert job.wait(timeout=60, poll=0.05).status == "cancelled"


def test_in_process_follows_the_job_service_rules(client):
    """text_column maps items as it maps file columns (it used to be ignored); a running job's retry is a 409
    conflict, an unknown job a 404, as over REST."""
    from verticals.client import InputRefused, VerticalsError

    job = client.submit("fixtures.echo", items=[{"body": "ab"}, {"body": "cd"}], text_column="body")
    assert job.wait(timeout=60, poll=0.05).counts == {"succeeded": 2}
    assert [r.output["upper"] for r in job.results()] == ["AB", "CD"]
    with pytest.raises(InputRefused, match="body") as refused:
        client.submit("fixtures.echo", items=[{"text": "ab"}], text_column="body")
    assert refused.value.status_code == 422
    slow = client.submit("fixtures.echo", items=[{"text": f"t{i}"} for i in range(30)], params={"sleep": 0.1},
                         chunk_size=5)
    with pytest.raises(VerticalsError, match="finished") as conflict:
        slow.retry()
    assert conflict.value.status_code == 409
    assert slow.cancel().raw["cancel_requested"]
    assert slow.wait(timeout=60, poll=0.05).status == "cancelled"
    with pytest.raises(VerticalsError) as unknown:
        client.job("0" * 32)
    assert unknown.value.status_code == 404


def test_the_client_imports_no_server_code():
    """The SDK is a front end of the core, never of the API server: no import of verticals.api anywhere in it."""
    import ast
    import inspect

    import verticals.client

    tree = ast.parse(inspect.getsource(verticals.client))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name and name.startswith("verticals.api")}
    code = ("import sys\n"
            "from verticals.client import Client, ServerUnavailable\n"
            "client = Client('http://127.0.0.1:9', api_key='vk_x_y', timeout=2)\n"
            "try:\n    client.predict('fixtures.echo', [{'text': 'x'}])\nexcept ServerUnavailable:\n    pass\n"
            "server = sorted(m for m in sys.modules if m.startswith('verticals.api'))\n"
            "assert not server, server\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_in_process_export(client, tmp_path):
    import csv
    import json

    job = client.submit("fixtures.echo", items=[{"body": "ab"}, {"body": "POISON"}], text_column="body")
    job.wait(timeout=60, poll=0.05)
    with (job.export(tmp_path / "out.csv")).open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["succeeded", "failed"] and rows[0]["body"] == "ab"
    assert "text" not in rows[0]  # the mapped field is exported once, under the caller's column name
    folder = job.export(tmp_path / "out")
    lines = (folder / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [0, 1]
