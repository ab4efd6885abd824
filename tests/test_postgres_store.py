"""The store under concurrency and redelivery, on SQLite and PostgreSQL (the `store` fixture runs both),
and Alembic migrations on a real PostgreSQL server."""

from __future__ import annotations

import threading

from sqlalchemy import inspect

from verticals.core.jobs.engine import finish_if_done, plan_batches, run_chunk, submit_job
from verticals.core.models.host import ModelHost
from verticals.core.store import ItemResult
from verticals.core.store.db import current_revision, head_revision, make_engine, upgrade


def rows(count: int, prefix: str = "t"):
    return [{"text": f"{prefix}{i}"} for i in range(count)]


def test_migrations_run_up_and_down_on_postgresql(postgres_url):
    from alembic import command

    from verticals.core.store.db import _alembic_config

    engine = make_engine(postgres_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {"jobs", "items", "artifacts"} <= set(inspect(engine).get_table_names())
    config = _alembic_config(postgres_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not {"jobs", "items", "artifacts"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_many_callers_finish_a_job_exactly_once(store, registry, tmp_path, monkeypatch):
    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    callers = 8
    for _ in range(5):
        job_id = submit_job(store, registry, "fixtures.echo", rows(callers), chunk_size=1)
        barrier = threading.Barrier(callers)
        finished: list[str | None] = []

        def last_chunk(seq: int, job_id: str, barrier: threading.Barrier, finished: list) -> None:
            # every caller writes its own last item, then all try to finish at the same moment
            store.write_results(job_id, [ItemResult(seq, "succeeded", output={"upper": "X", "length": 1})])
            barrier.wait()
            finished.append(finish_if_done(store, registry, job_id))

        threads = [threading.Thread(target=last_chunk, args=(seq, job_id, barrier, finished))
                   for seq in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(finished, key=str) == [None] * (callers - 1) + ["succeeded"]
        assert store.summary(job_id)["status"] == "succeeded"
        assert [line for line in events.read_text().splitlines() if line.startswith(job_id)] == \
            [f"{job_id} succeeded"]


def test_a_partly_done_chunk_is_still_pending(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(25), chunk_size=10)
    store.write_results(job_id, [ItemResult(seq, "succeeded", output={"upper": "X", "length": 1})
                                 for seq in range(10, 15)])
    assert store.chunk_ranges(job_id) == [(0, 10), (10, 20), (20, 25)]
    store.write_results(job_id, [ItemResult(seq, "succeeded", output={"upper": "X", "length": 1})
                                 for seq in range(15, 20)])
    assert store.chunk_ranges(job_id) == [(0, 10), (20, 25)]
    states = store.chunk_states(job_id)
    assert states == {0: (10, False), 10: (0, False), 20: (5, False)}


def test_items_in_flight_when_a_run_died_rerun_one_by_one(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(10), chunk_size=10)
    # a first run counted an attempt on its first batch (batch_size 4) and died before writing anything
    assert store.begin_items(job_id, [0, 1, 2, 3], 3) == set()
    pending = store.pending_items(job_id, 0, 10, with_attempts=True)
    assert [len(batch) for batch in plan_batches(pending, 4)] == [1, 1, 1, 1, 4, 2]
    report = run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 10)  # the redelivered chunk
    assert report.succeeded == 10 and report.finished_status == "succeeded"
    assert [item.attempts for item in store.iter_items(job_id)] == [2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    assert store.chunk_states(job_id) == {0: (0, True)}


def test_an_item_past_its_attempts_fails_alone(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(6), chunk_size=10)
    for _ in range(3):
        store.begin_items(job_id, [2], 3)  # item 2 killed its worker three times
    assert store.begin_items(job_id, [1, 2, 3], 3) == {2}
    run_chunk(store, registry, ModelHost(registry.models), job_id, 0, 10)
    items = list(store.iter_items(job_id))
    assert [item.status for item in items] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded",
                                               "succeeded"]
    assert "gave up after 3 attempts" in items[2].error


def test_update_options_merges(store, registry):
    job_id = submit_job(store, registry, "fixtures.echo", rows(1), options={"priority": "high"})
    assert store.update_options(job_id, {"celery": {"round": 1}}) == {"priority": "high", "celery": {"round": 1}}
    assert store.job(job_id).options == {"priority": "high", "celery": {"round": 1}}
