"""Usage metering (issue 30 item 1): items, tokens, model seconds per model and device and wall seconds of every job,
summed per tenant and day; `verticals usage`, GET /v1/usage, the SDK and the job summary line.

Real parts: a one-layer random BERT (tests/fixture_plugins/tinymodel) runs real forward passes, so model time and
tokens are measured, not faked; the stores are SQLite and PostgreSQL; the API jobs run on the server's threads.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import run_cli
from verticals.tenancy.tenants import Tenants


def _run(store, registry, task, texts, tenant=None, **options):
    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.models.host import ModelHost

    job_id = submit_job(store, registry, task, [{"text": t} for t in texts], tenant=tenant, **options)
    LocalExecutor(store, registry, ModelHost(registry.models)).execute(job_id)
    return job_id


def test_a_jobs_model_time_tokens_and_items_are_metered(store, tiny):
    """A real forward pass per batch: the job's usage names the model and its device, counts the very tokens the
    tokenizer made, and its items are those that ran (an invalid item never ran: not metered)."""
    from transformers import AutoTokenizer

    texts = ["hello world", "the a hello", "a", "world world world the"]
    job_id = _run(store, tiny, "tiny.embed", texts, chunk_size=3)
    summary = store.summary(job_id)
    assert summary["status"] == "succeeded"
    usage = summary["usage"]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny.models["tiny-encoder"].local_path))
    tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    assert usage["items"] == 4 and usage["tokens"] == tokens
    [model] = usage["models"]
    assert model["model"] == "tiny-encoder" and model["device"] == "cpu" and model["calls"] == 2  # two chunks
    assert model["model_s"] > 0 and usage["model_s"] == model["model_s"] and usage["wall_s"] >= model["model_s"]
    assert model["peak_memory_bytes"] is None  # not known on a CPU

    echo = _run(store, tiny, "fixtures.echo", ["a", "POISON", "c"])
    assert store.summary(echo)["usage"]["items"] == 3 and store.summary(echo)["usage"]["models"] == []

    from verticals.core.jobs.engine import submit_job

    invalid = submit_job(store, tiny, "fixtures.echo", [{"text": "ok"}, {"nope": 1}])  # stored failed: never runs
    from verticals.core.jobs.executor import LocalExecutor

    LocalExecutor(store, tiny).execute(invalid)
    assert store.summary(invalid)["counts"] == {"succeeded": 1, "failed": 1}
    assert store.summary(invalid)["usage"]["items"] == 1


def test_usage_is_summed_per_tenant_and_day_kept_after_delete_and_priced(store, tiny, monkeypatch):
    from verticals.core.jobs.service import JobService
    from verticals.core.jobs.usage import ALL_TENANTS, today, usage_report

    a1 = _run(store, tiny, "tiny.embed", ["hello", "world"], tenant="acme")
    a2 = _run(store, tiny, "fixtures.echo", ["x", "y", "z"], tenant="acme")
    _run(store, tiny, "fixtures.echo", ["g"], tenant="globex")
    _run(store, tiny, "fixtures.echo", ["local"])  # a CLI job: no tenant
    acme = usage_report(store, "acme")
    [day] = acme["days"]
    assert day["day"] == today().isoformat() and day["tenant"] == "acme" and day["jobs"] == 2 and day["items"] == 5
    jobs = [store.summary(a1)["usage"], store.summary(a2)["usage"]]
    assert day["model_s"] == pytest.approx(sum(u["model_s"] for u in jobs))
    assert day["tokens"] == sum(u["tokens"] for u in jobs) > 0
    assert acme["total"]["items"] == 5 and acme["currency"] is None and day["cost"] is None
    assert {(d["tenant"], d["items"]) for d in usage_report(store, ALL_TENANTS)["days"]} == {
        ("acme", 5), ("globex", 1), (None, 1)}
    assert usage_report(store, None)["total"]["items"] == 1  # the CLI's jobs alone
    assert usage_report(store, "acme", since=today().replace(year=today().year + 1))["days"] == []

    JobService(store, tiny).delete(a1)  # usage outlives the job: a day's figures do not change afterwards
    assert usage_report(store, "acme")["total"]["items"] == 5

    monkeypatch.setenv("VERTICALS_PRICES", "cpu=2,items_1k=1000")
    priced = usage_report(store, "acme")
    assert priced["currency"] == "USD"
    assert priced["total"]["cost"] == pytest.approx(2 * priced["total"]["model_s"] + 5, rel=1e-4)


def test_bad_price_table_names_the_variable(monkeypatch):
    from verticals.config import SettingsError, settings

    monkeypatch.setenv("VERTICALS_PRICES", "gpu=1")
    with pytest.raises(SettingsError, match="VERTICALS_PRICES"):
        settings()


def test_cli_summary_line_and_usage_command(tiny, tmp_path, monkeypatch):
    data = tmp_path / "in.txt"
    data.write_text("hello world\nthe a\n")
    monkeypatch.setenv("COLUMNS", "120")
    ran = run_cli("run", "tiny.embed", str(data), "-o", str(tmp_path / "out.jsonl"))
    assert ran.returncode == 0, ran.stderr
    line = next(line for line in ran.stderr.splitlines() if "items" in line and "model time" in line)
    # [CLS] hello world [SEP] and [CLS] the a [SEP]: 8 tokens
    assert line.strip().startswith("2 items · ") and line.strip().endswith("s model time on cpu · 8 tokens")
    shown = run_cli("usage", "--json", env={"VERTICALS_PRICES": "cpu=1"})
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["total"]["items"] == 2 and report["total"]["tokens"] == 8 and report["currency"] == "USD"
    assert report["days"][0]["tenant"] is None and report["total"]["cost"] == pytest.approx(
        report["total"]["model_s"], rel=1e-4, abs=1e-6)  # costs are stored to the millionth
    table = run_cli("usage", "--models", env={"COLUMNS": "100"})
    assert table.returncode == 0 and "tiny-encoder on cpu" in table.stdout and "total" in table.stdout
    assert run_cli("usage", "--since", "yesterday").returncode == 2


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
def test_api_usage_matches_the_jobs_after_50_concurrent_submits(store, tiny, monkeypatch):
    """50 jobs submitted at once by two tenants (threads against the API server): each tenant's GET /v1/usage is
    exactly the sum of its own jobs' items and model time, and never shows the other's."""
    from verticals.api.app import create_app

    monkeypatch.setenv("VERTICALS_API_MAX_ACTIVE_JOBS", "100")
    tenants = Tenants(store)
    keys = {name: {"Authorization": f"Bearer {tenants.create_key(name, 'k').token}"} for name in ("acme", "globex")}
    with TestClient(create_app(store, tiny, auth=True, threads=2)) as api:
        created: dict[str, list[str]] = {"acme": [], "globex": []}
        lock = threading.Lock()

        def submit(number: int) -> None:
            tenant = "acme" if number % 2 else "globex"
            task = "tiny.embed" if number % 5 == 0 else "fixtures.echo"
            items = [{"text": "hello world"}] * (1 + number % 3)
            response = api.post("/v1/jobs", json={"task": task, "items": items}, headers=keys[tenant])
            assert response.status_code == 202, response.text
            with lock:
                created[tenant].append(response.json()["id"])

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 120
        for tenant, ids in created.items():
            for job_id in ids:
                while api.get(f"/v1/jobs/{job_id}", headers=keys[tenant]).json()["status"] in ("queued", "running"):
                    assert time.monotonic() < deadline, "jobs did not finish"
                    time.sleep(0.05)
        for tenant, ids in created.items():
            jobs = [api.get(f"/v1/jobs/{job_id}", headers=keys[tenant]).json() for job_id in ids]
            report = api.get("/v1/usage", headers=keys[tenant]).json()
            assert report["tenant"] == tenant and len(report["days"]) == 1
            assert report["total"]["jobs"] == len(ids) == 25
            assert report["total"]["items"] == sum(j["counts"]["succeeded"] for j in jobs) == sum(
                j["usage"]["items"] for j in jobs)
            assert report["total"]["model_s"] == pytest.approx(sum(j["usage"]["model_s"] for j in jobs))
            assert report["total"]["tokens"] == sum(j["usage"]["tokens"] for j in jobs) > 0
        assert api.get("/v1/usage", params={"since": "someday"}, headers=keys["acme"]).status_code == 422


def test_sdk_usage_in_process(tiny):
    import verticals

    with verticals.Client() as client:
        job = client.submit("tiny.embed", items=[{"text": "hello"}, {"text": "world"}])
        final = job.wait(timeout=60, poll=0.05)
        assert final.raw["usage"]["items"] == 2 and final.raw["usage"]["models"][0]["device"] == "cpu"
        report = client.usage(since="0d")
        assert report["total"]["items"] == 2 and report["total"]["tokens"] == final.raw["usage"]["tokens"]


def test_the_dashboard_writes_the_usage_line_of_the_cli(monkeypatch):
    """The dashboard's usageLine (the JavaScript the page runs, in node) says what the CLI's summary line says."""
    import shutil
    import subprocess

    from verticals.api.dashboard import SCRIPT
    from verticals.core.jobs.usage import describe_job_usage

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the dashboard's script")
    function = SCRIPT.split("// <usage-line>")[1].split("\n", 1)[1].split("// </usage-line>")[0]
    monkeypatch.setenv("VERTICALS_PRICES", "cpu=0.01,items_1k=1")
    monkeypatch.setenv("VERTICALS_PRICE_CURRENCY", "EUR")
    from verticals.core.jobs.usage import cost

    cases = [{"items": 3000, "model_s": 41.04, "tokens": 96412, "wall_s": 44.0,
              "models": [{"model": "m", "device": "cpu", "model_s": 41.04, "tokens": 96412}]},
             {"items": 1, "model_s": 0.0, "tokens": 0, "wall_s": 0.1, "models": []}]
    for usage in cases:
        shown = {**usage, "cost": cost(usage)}
        program = function + f"\nconsole.log(usageLine({json.dumps(shown)}, 'EUR'));"
        done = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == describe_job_usage(usage)
