"""Progress within items: a task reports through ``RunContext.progress``; the engine stores the latest report
on the job (throttled, the last one kept); ``store.summary``, ``jobs status`` and the CLI's bar show it."""

from __future__ import annotations

import io
import json
import threading
import time
import types

import pytest
from pydantic import BaseModel

from verticals.contract import RunContext, Task, hookimpl
from verticals.core.jobs.engine import ProgressSink, run_chunk, submit_job
from verticals.core.models.host import ModelHost


class In(BaseModel):
    text: str


class Out(BaseModel):
    length: int


def attach(registry, task_cls) -> None:
    registry.attach(types.SimpleNamespace(__name__=f"progress_{task_cls.__name__.lower()}",
                                          register_tasks=hookimpl(lambda register: register(task_cls))))


def test_a_reporting_task_shows_its_progress_in_the_summary_and_jobs_status_while_it_runs(store, registry):
    reported, release = threading.Event(), threading.Event()

    class Slow(Task):
        name = "progress.slow"
        Input, Output = In, Out
        batch_size = 2

        def run(self, batch, models, ctx):
            ctx.progress(1, 4, note="step 1 of 4: 3 candidates")
            reported.set()
            assert release.wait(30)
            return [Out(length=len(item.text)) for item in batch]

    attach(registry, Slow)
    job_id = submit_job(store, registry, "progress.slow", [{"text": t} for t in ("ab", "cde", "f", "gh")])
    runner = threading.Thread(target=run_chunk, args=(store, registry, ModelHost(registry.models), job_id, 0, 4))
    runner.start()
    try:
        assert reported.wait(30)
        summary = store.summary(job_id)
        assert summary["status"] == "running" and summary["done"] == 0
        assert summary["item_progress"]["note"] == "step 1 of 4: 3 candidates"
        assert summary["item_progress"]["items"] == 2 and summary["item_progress"]["done"] == 0.5
        assert summary["progress"] == pytest.approx(0.5 / 4)  # a quarter of a 2-item batch of 4 items
    finally:
        release.set()
        runner.join(30)
    summary = store.summary(job_id)  # the results replaced the report
    assert summary["status"] == "succeeded" and summary["item_progress"] is None and summary["progress"] == 1.0
    assert store.progress(job_id) == {}


def test_jobs_status_prints_the_running_items_progress(registry, monkeypatch):
    from typer.testing import CliRunner

    from verticals.cli import app
    from verticals.core.store import open_store

    store = open_store()  # the CLI's own database (VERTICALS_DATABASE_URL of this test)
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "a"}, {"text": "b"}])
    store.begin_batch(job_id, [0, 1], 3, mark_started=True)
    store.set_progress(job_id, "0", {"done": 3, "total": 4, "items": 2, "note": "generating: step 3/4",
                                     "at": "2026-11-27T21:00:00+00:00"})
    as_json = CliRunner().invoke(app, ["jobs", "status", job_id, "--json"])
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.stdout)
    assert shown["item_progress"]["note"] == "generating: step 3/4" and shown["item_progress"]["done"] == 1.5
    assert shown["progress"] == pytest.approx(0.75)
    table = CliRunner().invoke(app, ["jobs", "status", job_id])
    assert table.exit_code == 0, table.output
    assert "0/2 (75%)" in table.stdout and "generating: step 3/4" in table.stdout


def test_throttling_writes_at_most_about_once_a_second_and_keeps_the_last_report(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "a"}])
    sink = ProgressSink(store, job_id, "0", interval=0.3)
    sink.begin(1)
    ctx = RunContext(job_id=job_id, params=None, progress_sink=sink)
    for step in range(1, 201):
        ctx.progress(step, 200, note=f"step {step}")
    assert sink.writes == 1  # the first went through; the others wait for the interval
    assert store.progress(job_id)["0"]["note"] == "step 1"
    deadline = time.monotonic() + 10
    while store.progress(job_id)["0"]["note"] != "step 200" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.progress(job_id)["0"]["note"] == "step 200" and sink.writes == 2
    assert store.summary(job_id)["item_progress"]["done"] == 1.0
    assert sink.end() == "0"  # the batch wrote an entry: its results remove it
    assert store.set_progress(job_id, "0", None) and store.progress(job_id) == {}


def test_progress_outside_a_job_bad_values_and_a_failing_sink_are_harmless():
    ctx = RunContext(job_id="j", params=None)
    ctx.progress(1, 2, "nowhere to go")  # no sink (predict, summarize): nothing happens
    seen = []
    ctx = RunContext(job_id="j", params=None, progress_sink=lambda *report: seen.append(report))
    ctx.progress(-1, 2)
    ctx.progress(1, 0)
    ctx.progress("x")
    ctx.progress(2, None, "a  note\nover lines " + "x" * 300)
    assert seen == [(2.0, None, "a note over lines " + "x" * 182)]

    def broken(*report):
        raise RuntimeError("database gone")

    RunContext(job_id="j", params=None, progress_sink=broken).progress(1, 2)  # a display never fails the batch


def test_parallel_chunks_keep_their_own_entries(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": str(i)} for i in range(8)], chunk_size=4)
    entry = {"done": 1, "total": 2, "items": 4, "note": None, "at": "2026-11-27T21:00:00+00:00"}
    assert store.set_progress(job_id, "0", entry)
    assert store.set_progress(job_id, "4", {**entry, "done": 2, "note": "later", "at": "2026-11-27T21:00:01+00:00"})
    assert set(store.progress(job_id)) == {"0", "4"}
    store.begin_batch(job_id, [0], 3, mark_started=True)
    running = store.summary(job_id)["item_progress"]
    assert running == {"items": 8, "done": 6.0, "note": "later", "step": 2, "steps": 2,
                       "updated_at": "2026-11-27T21:00:01+00:00"}
    from verticals.core.store import ItemResult

    store.write_results(job_id, [ItemResult(seq, "succeeded", output={"upper": "X", "length": 1})
                                 for seq in range(4)], clear_progress="0")
    assert set(store.progress(job_id)) == {"4"}


def test_the_cli_bar_shows_the_note_and_the_fraction_of_the_running_item(registry):
    from rich.console import Console

    from verticals.cli import common

    console = Console(file=io.StringIO(), width=80, force_terminal=False)
    with common._progress(console=console) as progress:
        bar = progress.add_task("testgen.generate", total=3, note="")
        common._show_item_progress(progress, bar, 1, {"done": 0.5, "items": 1, "note": "module 1/1 search round 2"})
        assert progress.tasks[0].completed == 1.5
    text = console.file.getvalue()
    assert "module 1/1 search round 2" in text and all(len(line) <= 80 for line in text.splitlines())
    assert " 1/3 " in text and "1.5" not in text  # items finished: the running one's share moves the bar only


def test_the_api_shows_the_running_items_progress_with_rate_and_eta(registry, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "a"}, {"text": "b"}], tenant="local")
    store.begin_batch(job_id, [0, 1], 3, mark_started=True)
    store.set_progress(job_id, "0", {"done": 1, "total": 2, "items": 2, "note": "hints: pass 1 of 2",
                                     "at": "2026-11-27T21:00:00+00:00"})
    with TestClient(create_app(store, registry, auth=False, background=False)) as api:
        job = api.get(f"/v1/jobs/{job_id}").json()
        script = api.get("/dashboard/app.js")
    assert job["item_progress"]["note"] == "hints: pass 1 of 2" and job["item_progress"]["done"] == 1.0
    assert job["progress"] == 0.5 and job["items_per_s"] > 0 and job["eta_s"] is not None
    assert script.status_code == 200 and "runningLine(job.item_progress)" in script.text


def test_testgen_reports_progress_per_round_with_counts_and_never_the_module_name():
    pytest.importorskip("verticals_testgen")
    from verticals.jail import JailUnavailable, verify

    try:
        verify()
    except JailUnavailable as error:
        pytest.skip(f"the code jail is not available here: {error}")
    from verticals_testgen.generate import GenerateParams, GenerateTests, ModuleInput

    from verticals.contract import OPERATOR

    reports: list[tuple[float, float | None, str | None]] = []
    params = GenerateParams(strategies=["observed"], time_budget=8, explore_seconds=2, test_timeout=3)
    ctx = RunContext(job_id="j", params=params, progress_sink=lambda *report: reports.append(report))
    item = ModuleInput.model_validate({"module": "verticals_testgen.samples.shapes"}, context=OPERATOR.context())
    (out,) = GenerateTests().run([item], {}, ctx)
    assert out.kept >= 0 and len(reports) >= 3
    assert reports[0][1:] == (1.0, "module 1/1 search round 1: 0 candidates, 0% covered")
    assert any(note.startswith("module 1/1 search round 1: ") and "0 candidates" not in note
               for _, _, note in reports)
    assert any(note.startswith("module 1/1 mutation analysis: ") for _, _, note in reports)  # the second phase
    assert reports[-1][0] == 1.0 and reports[-1][2].startswith("module 1/1 done")
    assert all(0 <= done <= 1 for done, _, _ in reports)
    assert not any("shapes" in note for _, _, note in reports)


def test_transformers_gguf_progress_bar_is_silenced_under_ours(capfd):
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    from verticals.core.models.inference import quiet_library_progress

    quiet_library_progress(gguf=True)
    quiet_library_progress(gguf=True)  # once is enough; a second call changes nothing
    list(gguf_utils.tqdm(range(20), desc="Converting and de-quantizing GGUF tensors..."))
    assert "GGUF" not in capfd.readouterr().err
