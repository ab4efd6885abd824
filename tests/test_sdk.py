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
