"""Job lifecycle on SQLite through the real engine, with the model-free fixture task."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from verticals.core.jobs.engine import JobError, finish_if_done, run_chunk, submit_job
from verticals.core.jobs.executor import LocalExecutor
from verticals.core.models.host import ModelHost
from verticals.core.store.db import current_revision, head_revision, make_engine, upgrade
from verticals.core.store.tables import Item


def rows(*texts):
    return [{"text": t} for t in texts]


def test_migrations_upgrade_an_empty_database_to_head(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        names = set(connection.dialect.get_table_names(connection))
    assert {"jobs", "items", "artifacts", "alembic_version"} <= names


def test_job_runs_to_succeeded_with_results_in_order(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(*[f"t{i}" for i in range(25)]))
    assert store.summary(job_id)["status"] == "queued"
    progress = []
    status = LocalExecutor(store, registry).execute(job_id, on_progress=progress.append)
    assert status == "succeeded"
    assert sum(progress) == 25
    items = list(store.iter_items(job_id))
    assert [i.output["upper"] for i in items] == [f"T{i}" for i in range(25)]
    assert all(i.attempts == 1 for i in items)
    assert items[0].provenance["plugin"] == "fixtures"
    summary = store.summary(job_id)
    assert summary["progress"] == 1.0 and summary["counts"] == {"succeeded": 25}
    assert store.get_artifact(job_id, "summary.json") is not None


def test_invalid_items_become_per_item_errors(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "ok"}, {"text": ""}, {"other": 1}])
    assert LocalExecutor(store, registry).execute(job_id) == "partial"
    items = list(store.iter_items(job_id))
    assert [i.status for i in items] == ["succeeded", "failed", "failed"]
    assert "text" in items[1].error and "text" in items[2].error


def test_bad_params_are_refused_with_the_list_of_params(store, registry):
    with pytest.raises(JobError, match="sleep"):
        submit_job(store, registry, "fixtures.echo", rows("a"), params={"sleep": -1})


def test_rerunning_a_chunk_changes_nothing_and_duplicates_nothing(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(*[f"x{i}" for i in range(10)]))
    host = ModelHost(registry.models)
    run_chunk(store, registry, host, job_id, 0, 10)
    first = [(i.seq, i.status, i.output, i.updated_at) for i in store.iter_items(job_id)]
    report = run_chunk(store, registry, host, job_id, 0, 10)  # a redelivered chunk
    second = [(i.seq, i.status, i.output, i.updated_at) for i in store.iter_items(job_id)]
    assert first == second
    assert report.succeeded == 0 and report.finished_status is None
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.job_id == job_id)) == 10


def test_poison_item_fails_alone(store, registry):
    texts = [f"fine {i}" for i in range(9)]
    texts[5] = "POISON pill"
    job_id = submit_job(store, registry, "fixtures.echo", rows(*texts))
    assert LocalExecutor(store, registry).execute(job_id) == "partial"
    items = list(store.iter_items(job_id))
    assert [i.seq for i in items if i.status == "failed"] == [5]
    assert "ValueError: poisoned item" in items[5].error
    assert sum(i.status == "succeeded" for i in items) == 8


def test_item_error_returned_by_task_is_stored(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows("a", "b"), params={"reject": "b"})
    LocalExecutor(store, registry).execute(job_id)
    assert [i.error for i in store.iter_items(job_id)] == [None, "rejected by parameter"]


def test_all_failed_job_is_failed(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows("POISON 1", "POISON 2"))
    assert LocalExecutor(store, registry).execute(job_id) == "failed"


def test_cancel_stops_between_batches(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(*[f"c{i}" for i in range(30)]))
    executor = LocalExecutor(store, registry)
    done = []

    def on_progress(count):
        done.append(count)
        if len(done) == 1:
            store.request_cancel(job_id)  # the flag `verticals jobs cancel` sets, from another shell

    assert executor.execute(job_id, on_progress=on_progress) == "cancelled"
    counts = store.summary(job_id)["counts"]
    assert counts["succeeded"] == 4  # the first batch (batch_size 4) finished
    assert counts["cancelled"] == 26
    assert sum(done) == 30  # progress accounts for every item


def test_job_finishes_exactly_once(store, registry, tmp_path, monkeypatch):
    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    job_id = submit_job(store, registry, "fixtures.echo", rows("a", "b"))
    LocalExecutor(store, registry).execute(job_id)
    assert finish_if_done(store, registry, job_id) is None
    assert store.try_finish(job_id) is None
    assert events.read_text().splitlines() == [f"{job_id} succeeded"]


CRASH_AFTER_FINISHING = """
import os, sys
from verticals.core.jobs import engine as jobs
from verticals.core.store import open_store
from verticals.registry import get_registry

url, job_id, step = sys.argv[1:4]
store, registry = open_store(url), get_registry()
if step == "finalise":  # finish the job, then die before its event is delivered
    jobs.deliver_job_events = lambda *args, **kwargs: os._exit(0)
    jobs.finish_if_done(store, registry, job_id)
else:  # claim the event for delivery, then die before the hook fires
    [(event_id, _job, _event)] = store.pending_events(job_id)
    assert store.claim_event(event_id)
    os._exit(0)
raise SystemExit("not reached")
"""


def _die_after(store, job_id: str, step: str) -> None:
    import subprocess
    import sys

    url = store.engine.url.render_as_string(hide_password=False)
    result = subprocess.run([sys.executable, "-c", CRASH_AFTER_FINISHING, url, job_id, step],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_process_killed_after_finishing_a_job_still_fires_job_finished(store, registry, tmp_path, monkeypatch):
    from datetime import timedelta

    from verticals.core.jobs.engine import deliver_job_events
    from verticals.core.store import ItemResult

    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    other = submit_job(store, registry, "fixtures.echo", rows("x"))
    LocalExecutor(store, registry).execute(other)  # finished and delivered: never fired again
    job_id = submit_job(store, registry, "fixtures.echo", rows("a", "bb"))
    store.write_results(job_id, [ItemResult(0, "succeeded", output={"upper": "A", "length": 1}),
                                 ItemResult(1, "succeeded", output={"upper": "BB", "length": 2})])

    _die_after(store, job_id, "finalise")
    summary = store.summary(job_id)
    assert (summary["status"], store.job(job_id).final_status) == ("succeeded", "succeeded")
    assert events.read_text().splitlines() == [f"{other} succeeded"]  # the dead process fired nothing
    assert store.get_artifact(job_id, "summary.json") is None
    assert finish_if_done(store, registry, job_id) is None  # finished once: nobody finishes it again

    assert deliver_job_events(store, registry) == 1  # the next process fires it, for that job only
    assert events.read_text().splitlines() == [f"{other} succeeded", f"{job_id} succeeded"]
    assert store.get_artifact(job_id, "summary.json").content  # the summary artifact is kept
    assert deliver_job_events(store, registry) == 0  # delivered: never again

    # a delivery that dies after claiming the event is taken again once its lease has passed
    third = submit_job(store, registry, "fixtures.echo", rows("c"))
    store.write_results(third, [ItemResult(0, "succeeded", output={"upper": "C", "length": 1})])
    assert store.try_finish(third) == "succeeded"
    _die_after(store, third, "claim")
    assert deliver_job_events(store, registry) == 0  # claimed by a deliverer still within its lease
    assert deliver_job_events(store, registry, lease=timedelta(0)) == 1
    assert events.read_text().splitlines()[-1] == f"{third} succeeded"
    assert len(events.read_text().splitlines()) == 3


def test_finishing_sets_the_final_status_in_one_statement(store, registry):
    from verticals.core.store import ItemResult

    job_id = submit_job(store, registry, "fixtures.echo", rows("a", "b", "c"))
    assert store.try_finish(job_id) is None  # items pending
    store.write_results(job_id, [ItemResult(0, "succeeded", output={"upper": "A", "length": 1}),
                                 ItemResult(1, "failed", error="boom")])
    assert store.try_finish(job_id) is None
    store.cancel_pending(job_id)
    assert store.try_finish(job_id) == "cancelled"
    job = store.job(job_id)
    assert job.finished_at is not None and job.final_status == "cancelled"
    assert [event for _id, _job, event in store.pending_events(job_id)] == ["job_finished"]


def test_attempts_are_bounded(store, registry, monkeypatch):
    monkeypatch.setenv("VERTICALS_MAX_ATTEMPTS", "2")
    job_id = submit_job(store, registry, "fixtures.echo", rows("a"))
    store.begin_items(job_id, [0], 2)  # two starts that never finished (worker died)
    store.begin_items(job_id, [0], 2)
    assert LocalExecutor(store, registry).execute(job_id) == "failed"
    assert "gave up after 2 attempts" in next(store.iter_items(job_id)).error


def test_purge_inputs_deletes_inputs_once_outputs_are_stored(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows("secret one", "POISON secret", ""),
                        options={"purge_inputs": True})
    LocalExecutor(store, registry).execute(job_id)
    items = list(store.iter_items(job_id))
    assert [i.status for i in items] == ["succeeded", "failed", "failed"]
    assert all(i.input is None for i in items)  # failed ones (bad input, raised) too


def test_retry_failed_reruns_only_failed(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows("ok", "bad"), params={"reject": "bad"})
    LocalExecutor(store, registry).execute(job_id)
    first_ok = next(store.iter_items(job_id))
    assert store.reset_failed(job_id) == 1
    assert store.summary(job_id)["status"] == "running"
    LocalExecutor(store, registry).execute(job_id)
    assert next(store.iter_items(job_id)).updated_at == first_ok.updated_at


def test_empty_job_succeeds(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", [])
    assert LocalExecutor(store, registry).execute(job_id) == "succeeded"


def test_models_load_on_first_use_only():
    from verticals.core.jobs.engine import LazyModels
    from verticals.core.models.host import ModelSpec, ModelUnavailable

    host = ModelHost({"ghost": ModelSpec(name="ghost", kind="encoder", local_path="/no/such/model")})
    models = LazyModels(host, {"encoder": "ghost"})
    assert list(models) == ["encoder"] and models.provenance() == {}  # nothing loaded yet
    assert "encoder" in models and "llm" not in models  # asking whether a role is there loads nothing
    assert models.provenance() == {} and not models.loaded
    with pytest.raises(ModelUnavailable):
        models["encoder"]
    with pytest.raises(KeyError, match="declares"):
        models["llm"]


def test_an_item_is_stored_in_its_validated_form_with_the_rows_other_columns():
    from pydantic import BaseModel, field_validator

    from verticals.core.jobs.engine import validated_input

    class Input(BaseModel):
        text: str
        count: int = 1

        @field_validator("text")
        @classmethod
        def strip(cls, value: str) -> str:
            return value.strip()

    stored = validated_input(Input, {"text": "  hello ", "count": "3", "id": "row-7"})
    assert stored == {"text": "hello", "count": 3, "id": "row-7"}  # coerced and normalised; other columns kept
    assert Input.model_validate(stored) == Input(text="hello", count=3)  # what the worker builds from it
    assert validated_input(Input, {"text": "x"}) == {"text": "x", "count": 1}


def test_submitted_items_hold_what_passed_validation(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", [{"text": "a", "id": 1}, {"text": 5}])
    inputs = [(item.status, item.input) for item in store.iter_items(job_id)]
    assert inputs[0] == ("pending", {"text": "a", "id": 1})
    assert inputs[1][0] == "failed"  # invalid: stored as given, with its error


def test_migration_0006_gives_half_finished_jobs_their_final_status(tmp_path):
    """A job finished by the old two-step code whose process died between the steps (finished_at set,
    final_status not) gets its status from its counters; the outbox table comes and goes with 0006."""
    from sqlalchemy import inspect, text

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0005")
    with engine.begin() as connection:
        for job_id, succeeded, failed in (("half", 2, 1), ("done", 3, 0)):
            connection.execute(text(
                "INSERT INTO jobs (id, task, params, options, total, chunk_size, submitted, cancel_requested, "
                "created_at, finished_at, final_status, n_pending, n_succeeded, n_failed, n_cancelled) VALUES "
                "(:id, 't', '{}', '{}', 3, 10, 1, 0, '2026-01-01', '2026-01-02', :final, 0, :ok, :failed, 0)"),
                {"id": job_id, "ok": succeeded, "failed": failed, "final": None if job_id == "half" else "succeeded"})
    upgrade(engine)
    with engine.connect() as connection:
        assert dict(connection.execute(text("SELECT id, final_status FROM jobs")).all()) == \
            {"half": "partial", "done": "succeeded"}
    assert "job_events" in inspect(engine).get_table_names()
    from alembic import command

    from verticals.core.store.db import _alembic_config

    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "job_events" not in inspect(engine).get_table_names()


def test_concurrent_deliverers_fire_a_pending_event_once(store, registry, tmp_path, monkeypatch):
    import threading

    from verticals.core.jobs.engine import deliver_job_events
    from verticals.core.store import ItemResult

    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    job_id = submit_job(store, registry, "fixtures.echo", rows("a"))
    store.write_results(job_id, [ItemResult(0, "succeeded", output={"upper": "A", "length": 1})])
    assert store.try_finish(job_id) == "succeeded"  # finished; its event pending (as after a crash)
    barrier, delivered = threading.Barrier(6), []

    def deliver() -> None:
        barrier.wait()
        delivered.append(deliver_job_events(store, registry))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(delivered) == [0] * 5 + [1]
    assert events.read_text().splitlines() == [f"{job_id} succeeded"]
    assert store.pending_events() == []


def test_a_batch_does_not_begin_once_its_job_is_cancelled(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows("a", "b", "c"))
    assert store.begin_batch(job_id, [0], 3) == set()
    store.request_cancel(job_id)
    assert store.begin_batch(job_id, [1, 2], 3) is None  # nothing begun: no attempt counted
    assert [(item.seq, item.attempts) for item in store.iter_items(job_id)] == [(0, 1), (1, 0), (2, 0)]
    assert store.begin_items(job_id, [1], 3) == set()  # the unconditional begin still counts the attempt
