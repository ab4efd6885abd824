"""The chunk's background result writer (engine.ResultWriter, engine.WRITE_BEHIND): results, counts, cancellation,
re-runs and failures are the same as with the results written in the batch loop (WRITE_BEHIND = 0)."""

from __future__ import annotations

import threading

import pytest

from verticals.core.jobs import engine
from verticals.core.jobs.engine import run_chunk, submit_job
from verticals.core.jobs.executor import LocalExecutor
from verticals.core.models.host import ModelHost

TEXTS = [f"text {i}" for i in range(30)]
TEXTS[6] = "POISON here"  # fails in run(): its batch is bisected, it fails alone
TEXTS[13] = "no"  # rejected by the parameter: an ItemError


def outcome(store, job_id):
    items = [(i.seq, i.status, i.output, i.error, i.attempts) for i in store.iter_items(job_id)]
    return items, store.summary(job_id)["counts"]


def writers_idle():
    """Nothing of the chunk is left on the writer threads: they take new work at once."""
    return engine.writer_pool().submit(int).result(timeout=10) == 0


def run_job(store, registry, monkeypatch, depth, on_progress=None):
    monkeypatch.setattr(engine, "WRITE_BEHIND", depth)
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": t} for t in TEXTS], params={"reject": "no"})
    status = LocalExecutor(store, registry).execute(job_id, on_progress=on_progress)
    return job_id, status


def test_results_and_counts_equal_with_and_without_the_writer(store, registry, monkeypatch):
    runs = {}
    for depth in (0, 1, 2):
        progress: list[int] = []
        job_id, status = run_job(store, registry, monkeypatch, depth, progress.append)
        runs[depth] = (status, outcome(store, job_id), sum(progress))
    assert runs[1] == runs[0] and runs[2] == runs[0]
    status, (items, counts), progressed = runs[0]
    assert status == "partial" and counts == {"succeeded": 28, "failed": 2} and progressed == 30
    assert [seq for seq, state, *_ in items if state == "failed"] == [6, 13]
    assert writers_idle()


def test_cancel_mid_run_writes_what_ran_and_cancels_the_rest(store, registry, monkeypatch):
    runs = {}
    for depth in (0, 2):
        monkeypatch.setattr(engine, "WRITE_BEHIND", depth)
        job_id = submit_job(store, registry, "fixtures.echo", [{"text": f"c{i}"} for i in range(30)])
        done: list[int] = []

        def on_progress(count, done=done, job_id=job_id):
            done.append(count)
            if len(done) == 2:  # after the second batch: the writer may still hold its results
                store.request_cancel(job_id)

        assert LocalExecutor(store, registry).execute(job_id, on_progress=on_progress) == "cancelled"
        runs[depth] = (outcome(store, job_id), sum(done))
    assert runs[2] == runs[0]
    (items, counts), progressed = runs[0]
    assert counts == {"succeeded": 8, "cancelled": 22} and progressed == 30
    assert all(output is not None for _, state, output, *_ in items if state == "succeeded")


def test_rerunning_a_chunk_duplicates_nothing(store, registry, monkeypatch):
    monkeypatch.setattr(engine, "WRITE_BEHIND", 2)
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": t} for t in TEXTS[:10]])
    host = ModelHost(registry.models)
    first_report = run_chunk(store, registry, host, job_id, 0, 10)
    first = outcome(store, job_id)
    report = run_chunk(store, registry, host, job_id, 0, 10)
    assert outcome(store, job_id) == first
    assert (first_report.succeeded, first_report.failed) == (9, 1)
    assert (report.succeeded, report.failed, report.finished_status) == (0, 0, None)


def test_a_failing_write_fails_the_chunk_with_its_error_and_leaves_no_thread(store, registry, monkeypatch):
    monkeypatch.setattr(engine, "WRITE_BEHIND", 2)
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": f"w{i}"} for i in range(10)])
    real = store.write_results
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_results", failing)
    with pytest.raises(OSError, match="disk full") as raised:
        run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 10)
    assert any("in the background" in note for note in getattr(raised.value, "__notes__", []))
    assert writers_idle()
    items, counts = outcome(store, job_id)
    assert counts["succeeded"] == 4 and counts["pending"] == 6  # the first batch only; the rest stays pending
    monkeypatch.setattr(store, "write_results", real)
    run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 10)  # the chunk again (a retry)
    items, counts = outcome(store, job_id)
    assert counts == {"succeeded": 10} and [output["upper"] for _, _, output, *_ in items] == [
        f"W{i}" for i in range(10)]


def test_the_writer_is_bounded_and_an_interrupt_keeps_what_ran(store, registry, monkeypatch):
    """A slow store: the batch loop waits for the writer (at most WRITE_BEHIND batches queued, one being
    written); a KeyboardInterrupt in a batch still writes the batches before it and releases its attempts."""
    monkeypatch.setattr(engine, "WRITE_BEHIND", 1)
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": f"b{i:02}"} for i in range(30)])
    real, written = store.write_results, []

    def slow(job, results, **kwargs):
        threading.Event().wait(0.2)
        count = real(job, results, **kwargs)
        written.append(len(results))
        return count

    monkeypatch.setattr(store, "write_results", slow)
    task_cls = registry.task("fixtures.echo")
    run, behind = task_cls.run, []

    def watched(self, batch, models, ctx):
        if len(behind) == 6:
            behind.append(len(written))
            raise KeyboardInterrupt
        behind.append(len(written))
        return run(self, batch, models, ctx)

    monkeypatch.setattr(task_cls, "run", watched)
    with pytest.raises(KeyboardInterrupt):
        run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 30)
    assert writers_idle()
    # batch k began with at least k - 1 - WRITE_BEHIND batches written (one queued, one being written)
    assert all(done >= index - 2 for index, done in enumerate(behind))
    items, counts = outcome(store, job_id)
    assert counts == {"succeeded": 24, "pending": 6} and len(behind) == 7
    assert [attempts for _, state, _, _, attempts in items if state == "pending"] == [0] * 6
