"""A job's status has one source: ``FINAL_STATUS_RULES`` (verticals/core/store/repo.py) builds both the SQL
``CASE`` that the finishing UPDATE stores in ``jobs.final_status`` and the Python ``final_status`` that
``derive_status`` (and so every summary of a job not finished yet) answers. This test runs the real finishing
statement on SQLite and PostgreSQL for every combination of item counters and compares."""

import itertools
import uuid

from sqlalchemy import update

from verticals.core.store import repo
from verticals.core.store.tables import Job

COMBINATIONS = list(itertools.product((0, 1, 3), repeat=3))  # succeeded, failed, cancelled


def _finished_by_sql(store, succeeded: int, failed: int, cancelled: int) -> str | None:
    job_id = uuid.uuid4().hex
    with store.session() as session:
        session.add(Job(id=job_id, task="t", chunk_size=10, total=succeeded + failed + cancelled, submitted=True))
        session.commit()
        session.execute(update(Job).where(Job.id == job_id).values(
            n_pending=0, n_succeeded=succeeded, n_failed=failed, n_cancelled=cancelled))
        session.commit()
    return store.try_finish(job_id)


def test_the_sql_and_the_python_status_agree_on_every_combination(store):
    checked = 0
    for succeeded, failed, cancelled in COMBINATIONS:
        if not succeeded + failed + cancelled:
            continue
        counts = {"succeeded": succeeded, "failed": failed, "cancelled": cancelled}
        expected = repo.final_status(counts)
        assert _finished_by_sql(store, succeeded, failed, cancelled) == expected, counts
        assert repo.derive_status(counts, sum(counts.values()), started=True) == expected, counts
        checked += 1
    assert checked == len(COMBINATIONS) - 1


def test_the_status_table_says_what_the_statuses_mean():
    """The meanings the docs and JobStatus promise, read from the one table."""
    assert repo.final_status({"succeeded": 2}) == "succeeded"
    assert repo.final_status({"succeeded": 2, "failed": 1}) == "partial"
    assert repo.final_status({"failed": 1}) == "failed"
    assert repo.final_status({"succeeded": 2, "failed": 1, "cancelled": 1}) == "cancelled"
    assert repo.derive_status({"pending": 3}, 3, started=False) == "queued"
    assert repo.derive_status({"pending": 2, "succeeded": 1}, 3, started=True) == "running"
    assert repo.derive_status({"pending": 2}, 3, started=True, interrupted=True) == "interrupted"


def test_a_changed_table_changes_both(store, monkeypatch):
    """Neither side keeps a copy: a rule added to the table is obeyed by the SQL and the Python alike (the
    comparison above can fail)."""
    rules = (("failed", ("failed",)), *repo.FINAL_STATUS_RULES)  # any failure: failed, even beside successes
    monkeypatch.setattr(repo, "FINAL_STATUS_RULES", rules)
    monkeypatch.setattr(repo, "_FINISH", repo._FINISH.values(final_status=repo.final_status_sql(repo.JOBS)))
    assert repo.final_status({"succeeded": 1, "failed": 1}) == "failed"
    assert _finished_by_sql(store, 1, 1, 0) == "failed"
