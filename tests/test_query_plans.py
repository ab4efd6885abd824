"""Query plans of every hot statement of a job's life, on SQLite and PostgreSQL (the `store` fixture runs both).

The statements are the ones the store really sends (captured from the engine while each store call runs),
explained by the database itself (SQLite: EXPLAIN QUERY PLAN, without ANALYZE statistics, as a user's
database has them; PostgreSQL: EXPLAIN (FORMAT JSON) after ANALYZE). Two jobs share the table, the one
explained being the smaller, so that reading all items, or all of a job's items where a few are asked
for, shows as a scan. A 1M-item job runs each of these statements thousands of times: a plan that reads
every item of the job (e.g. the per-batch ``begin_items`` planned on (job_id, status)) is what made it
100x slower than a small one.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from verticals.core.store import ItemResult

SMALL, LARGE, CHUNK = 3000, 20000, 256
ITEMS = re.compile(r"\bitems\b", re.IGNORECASE)


@contextmanager
def captured(store):
    """Every (statement, parameters) the store sends to the database inside the block."""
    sent: list[tuple[str, Any]] = []

    def before(_conn, _cursor, statement, parameters, _context, executemany):
        sent.append((statement, parameters[0] if executemany else parameters))

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(store.engine, "before_cursor_execute", before)


def explain(store, statement: str, parameters: Any) -> list[str]:
    """The plan, as one line per node: SQLite's detail strings; for PostgreSQL 'Node Type|index|conditions'."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return [row[-1] for row in rows]
        (plan,), = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).all()
    lines: list[str] = []

    def walk(node: dict) -> None:
        conditions = " ".join(str(node.get(key, "")) for key in ("Index Cond", "Filter", "Recheck Cond"))
        lines.append(f"{node['Node Type']}|{node.get('Relation Name', '')}|{node.get('Index Name', '')}|{conditions}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return lines


def plans_of(store, call) -> list[tuple[str, list[str]]]:
    """(statement, plan) of every statement on ``items`` that ``call()`` sends (INSERT ... VALUES reads nothing)."""
    with captured(store) as sent:
        call()
    return [(statement, explain(store, statement, parameters)) for statement, parameters in sent
            if ITEMS.search(statement) and not statement.lstrip().upper().startswith("INSERT")]


def assert_items_by_index(store, plans, indexes: tuple[str, ...], keys: tuple[str, ...],
                          allow_sort: bool = False) -> None:
    """Each statement reads items only through one of ``indexes``, searching by at least ``keys``."""
    assert plans, "the call sent no statement on items"
    for statement, plan in plans:
        where = f"\n{statement}\nplan: {plan}"
        if store.engine.dialect.name == "sqlite":
            searches = [line for line in plan if re.search(r"\b(SEARCH|SCAN) items\b", line)]
            assert searches, where
            for line in searches:
                assert line.startswith("SEARCH items USING"), "items scanned" + where
                assert any(f"INDEX {name} (" in line for name in indexes), "another index" + where
                for key in keys:
                    assert re.search(rf"\b{key}[=<>]", line), f"{key} is not searched by" + where
            if not allow_sort:
                assert not any("TEMP B-TREE" in line for line in plan), "sorted" + where
        else:
            nodes = [line.split("|") for line in plan]
            on_items = [n for n in nodes if n[1] == "items" and "Scan" in n[0]]
            assert on_items, where
            for node_type, _relation, name, conditions in on_items:
                assert node_type != "Seq Scan", "items scanned" + where
                if node_type == "Bitmap Heap Scan":
                    continue  # its Bitmap Index Scan child is checked
                assert name in indexes, "another index" + where
                for key in keys:
                    assert key in conditions, f"{key} is not searched by" + where
            for node_type, _relation, name, conditions in nodes:
                if node_type == "Bitmap Index Scan":
                    assert name in indexes, "another index" + where
                    for key in keys:
                        assert key in conditions, f"{key} is not searched by" + where
            if not allow_sort:
                assert not any(n[0] in {"Sort", "Incremental Sort"} for n in nodes), "sorted" + where


def assert_no_items_read(plans) -> None:
    assert plans == [], f"reads items: {[statement for statement, _ in plans]}"


@pytest.fixture
def jobs(store):
    """A job of SMALL items (explained) beside one of LARGE items; on PostgreSQL, statistics are fresh."""
    small = store.create_job("fixtures.echo", {}, {}, CHUNK)
    large = store.create_job("fixtures.echo", {}, {}, CHUNK)
    for job_id, size in ((large, LARGE), (small, SMALL)):
        for start in range(0, size, 5000):
            store.add_items(job_id, [(seq, {"text": f"text {seq}"}, "pending", None)
                                     for seq in range(start, min(size, start + 5000))])
        store.mark_submitted(job_id, size)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE items"))
            connection.execute(text("ANALYZE jobs"))
    return small, large


STATUS_SEQ = ("ix_items_job_status_seq",)
JOB_SEQ = ("uq_items_job_seq", "sqlite_autoindex_items_1")  # the unique (job_id, seq); SQLite names it itself


def test_hot_statements_use_the_intended_index(store, jobs):
    job, _ = jobs
    batch = list(range(CHUNK, CHUNK + 64))

    # submission: a multi-row INSERT and the job's counters (nothing on items to plan)
    assert_no_items_read(plans_of(store, lambda: store.add_items(job, [(SMALL, {"text": "x"}, "pending", None)])))
    # chunk selection: which chunks have pending items (once per executor run: the job's items, or its pending
    # ones, through an index; PostgreSQL takes (job_id, seq) while every item is pending); a chunk's pending
    # items, in seq order
    assert_items_by_index(store, plans_of(store, lambda: store.chunk_ranges(job)), STATUS_SEQ + JOB_SEQ,
                          ("job_id",), allow_sort=True)
    assert_items_by_index(store, plans_of(store, lambda: store.pending_items(job, CHUNK, 2 * CHUNK)),
                          STATUS_SEQ + JOB_SEQ, ("job_id", "seq"), allow_sort=True)  # sorts one chunk at most
    # the Celery executor's per-chunk states (on cancel and `jobs status`): this job's items, never the table
    assert_items_by_index(store, plans_of(store, lambda: store.chunk_states(job)), STATUS_SEQ + JOB_SEQ,
                          ("job_id",), allow_sort=True)
    # a batch: its attempt counted (one UPDATE over the batch's seqs: SQLite searches (job_id, status, seq),
    # PostgreSQL may take (job_id, seq)), then its results written; either way only the batch's items are read
    assert_items_by_index(store, plans_of(store, lambda: store.begin_items(job, batch, 3)),
                          STATUS_SEQ + JOB_SEQ, ("job_id", "seq"))
    # the same UPDATE with the cancel check in it (run_chunk's batches): still only the batch's items
    assert_items_by_index(store, plans_of(store, lambda: store.begin_batch(job, [seq + 64 for seq in batch], 3)),
                          STATUS_SEQ + JOB_SEQ, ("job_id", "seq"))
    results = [ItemResult(seq, "succeeded" if seq % 5 else "failed", output={"upper": "X", "length": 1},
                          error=None if seq % 5 else "no") for seq in batch]
    assert_items_by_index(store, plans_of(store, lambda: store.write_results(job, results)),
                          STATUS_SEQ + JOB_SEQ, ("job_id", "seq"))
    # progress and status: from the job's counters, no item read
    assert_no_items_read(plans_of(store, lambda: store.counts(job)))
    assert_no_items_read(plans_of(store, lambda: store.summary(job)))
    assert_no_items_read(plans_of(store, lambda: store.cancel_requested(job)))
    # the finish check: the job's pending counter (a search of pending items was a seq scan on PostgreSQL, from
    # the start of the table to the first pending item: the whole job near its end)
    assert_no_items_read(plans_of(store, lambda: store.try_finish(job)))
    # export, paged by seq: each page is found by (job_id, seq > last), in index order, never sorted
    assert_items_by_index(store, plans_of(store, lambda: list(store.iter_items(job, page=500, limit=1500))),
                          JOB_SEQ, ("job_id", "seq"))
    assert_items_by_index(store, plans_of(store, lambda: list(store.iter_items(job, status="succeeded", page=20))),
                          STATUS_SEQ, ("job_id", "status", "seq"))
    # the exports' rows (only the columns they read): the same pages by the same indexes
    assert_items_by_index(store, plans_of(store, lambda: list(store.iter_rows(job, ("status", "output"), page=500))),
                          JOB_SEQ, ("job_id", "seq"))
    assert_items_by_index(store, plans_of(store, lambda: list(store.iter_rows(job, status="succeeded", page=20))),
                          STATUS_SEQ, ("job_id", "status", "seq"))
    # cancellation of a chunk, retry of failed items
    assert_items_by_index(store, plans_of(store, lambda: store.cancel_pending(job, 2 * CHUNK, 3 * CHUNK)),
                          STATUS_SEQ + JOB_SEQ, ("job_id", "seq"))
    assert_items_by_index(store, plans_of(store, lambda: store.reset_failed(job)), STATUS_SEQ, ("job_id", "status"))
    # purge at job end: every item of this job, through the index, never the whole table
    assert_items_by_index(store, plans_of(store, lambda: store.purge_inputs(job)), STATUS_SEQ + JOB_SEQ,
                          ("job_id",), allow_sort=True)


def test_the_job_counters_match_the_items(store, jobs):
    """Every status change keeps the job's counters exact: they are what progress and status read."""
    job, large = jobs
    store.begin_items(job, list(range(0, 64)), max_attempts=1)
    assert store.begin_items(job, list(range(0, 8)), max_attempts=1) == set(range(0, 8))  # given up
    provenance = {"plugin": "fixtures", "models": {}}
    assert store.write_results(job, [ItemResult(seq, "succeeded", output={"upper": "X", "length": seq},
                                                provenance=provenance)
                                     for seq in range(0, 40)]) == 32  # 0-7 already failed: not written
    assert store.write_results(job, [ItemResult(seq, "failed", error="no", provenance={"n": seq})
                                     for seq in range(40, 64)]) == 24
    assert [(item.seq, item.error, item.provenance) for item in store.iter_items(job, status="failed")] == \
        [(seq, "gave up after 1 attempts (the item kept crashing or timing out its worker)", None)
         for seq in range(8)] + [(seq, "no", {"n": seq}) for seq in range(40, 64)]
    assert store.write_results(job, [ItemResult(seq, "failed", error="again") for seq in range(40, 64)]) == 0
    store.add_items(job, [(SMALL, None, "failed", "invalid input: text: missing")])
    assert store.cancel_pending(job, 256, 512) == 256
    assert store.reset_failed(job) == 32  # not the invalid input
    expected = {"pending": SMALL - 64 - 256 + 32, "succeeded": 32, "failed": 1, "cancelled": 256}
    assert store.counts_from_items(job) == expected
    assert store.counts(job) == expected
    summary = store.summary(job)
    assert summary["counts"] == expected and summary["done"] == 32 + 1 + 256
    assert store.counts(large) == store.counts_from_items(large) == {"pending": LARGE}
    written = list(store.iter_items(job, status="succeeded"))
    assert [(item.seq, item.output, item.provenance, item.attempts) for item in written] == \
        [(seq, {"upper": "X", "length": seq}, provenance, 1) for seq in range(8, 40)]
    assert all(item.updated_at is not None and item.error is None for item in written)


def test_the_job_events_outbox_is_read_through_its_indexes(store):
    """The outbox keeps a row per finished job: finding the pending events (at every start of a root and
    every ``wait``) and one job's event (after finishing it) must not read the delivered ones."""
    from verticals.core.store.tables import JobEvent, utcnow

    jobs = [store.create_job("fixtures.echo", {}, {}, CHUNK) for _ in range(20)]
    now = utcnow()
    with store.engine.begin() as connection:
        connection.execute(JobEvent.__table__.insert(), [
            {"job_id": jobs[n % len(jobs)], "event": "job_finished", "created_at": now, "attempts": 1,
             "delivered_at": None if n % 1000 == 999 else now} for n in range(5000)])
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE job_events"))

    def plans(call) -> list[tuple[str, list[str]]]:
        with captured(store) as sent:
            call()
        return [(statement, explain(store, statement, parameters)) for statement, parameters in sent
                if "job_events" in statement]

    indexes = {"ix_job_events_pending", "ix_job_events_job_id", "job_events_pkey"}
    event_id = store.pending_events()[0][0]
    for statement, plan in (plans(lambda: store.pending_events()) + plans(lambda: store.pending_events(jobs[0]))
                            + plans(lambda: store.claim_event(event_id))):
        where = f"\n{statement}\nplan: {plan}"
        if store.engine.dialect.name == "sqlite":
            reads = [line for line in plan if re.search(r"\b(SEARCH|SCAN) job_events\b", line)]
            assert reads and all(line.startswith("SEARCH job_events USING") for line in reads), where
        else:
            scans = [line.split("|") for line in plan if "job_events" in line or "Index" in line]
            assert scans and not any(node[0] == "Seq Scan" for node in scans), where
            assert any(node[2] in indexes for node in scans), where
