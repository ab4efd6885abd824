"""The job service: one rule per lifecycle step (cancel, retry, resume, field mapping, export), on a real
store (SQLite in a temporary folder) and a real registry (the model-free fixture plugin). The Celery
side of cancel runs against a real Redis and a real worker in tests/test_celery.py."""

from __future__ import annotations

import csv
import json
import threading
import time

import pytest

from verticals.core.jobs.export import schema_columns
from verticals.core.jobs.service import JobConflict, JobError, JobNotFound, JobService, field_map


@pytest.fixture
def service(fixtures_only_registry, store):
    """A job service over the local executor, on SQLite and on PostgreSQL (the ``store`` fixture)."""
    from verticals.workers import job_service

    svc = job_service(store, fixtures_only_registry)
    yield svc
    svc.close()


def texts(*values: str) -> list[dict[str, str]]:
    return [{"text": value} for value in values]


# -- field mapping -----------------------------------------------------------------------------

def test_field_map_is_one_rule_with_one_error(fixtures_only_registry):
    echo = fixtures_only_registry.task("fixtures.echo")
    assert field_map(echo, "body") == {"text": "body"}
    assert field_map(echo, None, ["text=body"]) == {"text": "body"}
    assert field_map(echo, None, {"text": "body"}) == {"text": "body"}
    with pytest.raises(JobError, match="bad field mapping 'text'"):
        field_map(echo, None, ["text"])
    with pytest.raises(JobError, match=r"has no input field 'nope'.*its fields: text"):
        field_map(echo, None, ["nope=body"])

    class NoText(echo):  # a task without a single text field
        name = "fixtures.notext"
        text_field = None

    with pytest.raises(JobError, match="no single text field, so --text-column cannot be used"):
        field_map(NoText, "body", text_option="--text-column")


def test_submit_maps_columns_and_exports_the_mapped_column_once(service, tmp_path):
    rows = [{"id": "1", "body": "hello"}, {"id": "2", "body": "world"}]
    job_id = service.submit("fixtures.echo", rows, text_column="body", file_rows=True)
    assert service.store.job(job_id).options["field_map"] == {"text": "body"}
    assert service.execute(job_id) == "succeeded"
    service.export(job_id, tmp_path / "o.csv")
    exported = list(csv.DictReader((tmp_path / "o.csv").open(encoding="utf-8")))
    assert list(exported[0]) == ["seq", "id", "body", "upper", "length", "status", "error"]
    assert exported[1]["body"] == "world" and exported[1]["upper"] == "WORLD"


def test_file_rows_pick_the_single_column_or_name_the_option(service):
    job_id = service.submit("fixtures.echo", [{"line": "a"}], file_rows=True)
    assert service.execute(job_id) == "succeeded"
    from verticals.core.io import InputError

    with pytest.raises(InputError, match="Pick one with the form field text_column"):
        service.submit("fixtures.echo", [{"a": "1", "b": "2"}], file_rows=True,
                       pick="the form field text_column=COLUMN")
    assert service.store.list_jobs() and len(service.store.list_jobs()) == 1  # nothing stored for the refusal


# -- running, waiting -------------------------------------------------------------------------------

def test_start_returns_at_once_and_wait_returns_the_summary(service):
    job_id = service.submit("fixtures.echo", texts(*"abcdefghijkl"), params={"sleep": 0.05})
    assert service.start(job_id) == 2  # chunk_size 10
    progress: list[int] = []
    summary = service.wait(job_id, timeout=60, on_progress=progress.append)
    assert summary["status"] == "succeeded" and summary["done"] == 12
    assert sum(progress) <= 12
    with pytest.raises(JobNotFound):
        service.wait("nosuchjob")


def test_unknown_job_is_job_not_found_and_a_key_error(service):
    with pytest.raises(JobNotFound) as caught:
        service.summary("nosuchjob")
    assert isinstance(caught.value, KeyError) and str(caught.value) == "no job 'nosuchjob'"


# -- cancel ---------------------------------------------------------------------------------------

def test_cancel_of_a_queued_job_cancels_every_item_and_finishes_it(service):
    job_id = service.submit("fixtures.echo", texts(*(f"t{i}" for i in range(25))))
    summary = service.cancel(job_id)
    assert summary["status"] == "cancelled" and summary["counts"] == {"cancelled": 25}
    assert summary["finished_at"] is not None and summary["cancel_requested"]
    assert service.cancel(job_id)["status"] == "cancelled"  # again: nothing changes


def test_cancel_while_running_cancels_chunks_not_started_at_once(service):
    job_id = service.submit("fixtures.echo", texts(*(f"t{i}" for i in range(60))), params={"sleep": 0.2})
    result: dict[str, str] = {}
    runner = threading.Thread(target=lambda: result.update(status=service.execute(job_id)))
    runner.start()
    deadline = time.monotonic() + 30
    while service.summary(job_id)["done"] == 0:  # the first batch of the first chunk is written
        assert time.monotonic() < deadline
        time.sleep(0.02)
    summary = service.cancel(job_id)
    # chunks 2..6 had not started: cancelled now, not when the runner gets to them
    assert summary["counts"]["cancelled"] >= 50
    runner.join(30)
    assert result["status"] == "cancelled"
    final = service.summary(job_id)
    assert final["counts"]["succeeded"] + final["counts"]["cancelled"] == 60 and final["counts"]["succeeded"] >= 4


def test_cancel_of_a_job_never_fully_submitted_is_a_conflict(service):
    stuck = service.store.create_job("fixtures.echo", {}, {}, 10)
    with pytest.raises(JobConflict, match="never fully submitted"):
        service.cancel(stuck)
    with pytest.raises(JobConflict, match="never fully submitted"):
        service.resume(stuck)


# -- retry / resume / delete ---------------------------------------------------------------------------

def test_retry_of_a_queued_or_running_job_is_a_conflict(service):
    job_id = service.submit("fixtures.echo", texts("a", "POISON", "b"))
    with pytest.raises(JobConflict, match="is queued"):
        service.retry(job_id)
    assert service.execute(job_id) == "partial"
    assert service.store.reset_failed(job_id) == 1  # reopened: running again as far as anyone can tell
    with pytest.raises(JobConflict, match="is running"):
        service.retry(job_id)


def test_retry_reruns_failed_items_of_a_finished_job(service):
    job_id = service.submit("fixtures.echo", texts("a", "b", "c"), params={"reject": "b"})
    assert service.execute(job_id) == "partial"
    assert service.retry(job_id, start=False) == 1
    assert service.summary(job_id)["counts"] == {"succeeded": 2, "pending": 1}
    assert service.execute(job_id) == "partial"  # the parameter still rejects it
    assert service.retry(job_id) == 1  # start=True: handed to the executor
    assert service.wait(job_id, timeout=60)["status"] == "partial"


def test_resume_runs_what_is_pending_and_leaves_finished_jobs(service):
    job_id = service.submit("fixtures.echo", texts("a", "b"))
    assert service.resume(job_id) == "succeeded"
    assert service.resume(job_id) == "succeeded"
    detached = service.submit("fixtures.echo", texts("c"))
    service.resume(detached, wait=False)
    assert service.wait(detached, timeout=60)["status"] == "succeeded"


def test_delete_refuses_an_unfinished_job_unless_forced(service):
    job_id = service.submit("fixtures.echo", texts("a"))
    with pytest.raises(JobConflict, match="is queued: cancel it first"):
        service.delete(job_id)
    assert service.delete(job_id, force=True)["id"] == job_id
    with pytest.raises(JobNotFound):
        service.summary(job_id)


def test_a_service_without_executor_reads_and_cancels_but_does_not_run(fixtures_only_registry, tmp_path):
    from verticals.core.jobs.executor import ExecutorUnavailable
    from verticals.core.store import open_store

    service = JobService(open_store(f"sqlite:///{tmp_path / 'bare.db'}"), fixtures_only_registry)
    job_id = service.submit("fixtures.echo", texts("a"))
    with pytest.raises(ExecutorUnavailable):
        service.start(job_id)
    assert service.cancel(job_id)["status"] == "cancelled"


# -- export -------------------------------------------------------------------------------------------

@pytest.fixture
def finished(service):
    job_id = service.submit("fixtures.echo", texts("hello", "POISON", "world wide"), params={"reject": "nothing"})
    assert service.execute(job_id) == "partial"
    return job_id


def test_export_csv_columns_from_the_schema(service, finished, tmp_path):
    assert service.export(finished, tmp_path / "o.csv") == 3
    text = (tmp_path / "o.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "seq,text,upper,length,status,error"
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[2]["upper"] == "WORLD WIDE" and rows[1]["upper"] == "" and "poisoned" in rows[1]["error"]
    # without inputs, the columns come from the schema alone
    service.export(finished, tmp_path / "n.csv", include_inputs=False)
    assert (tmp_path / "n.csv").read_text().splitlines()[0] == "seq,upper,length,status,error"


def test_export_jsonl_and_parquet_typed_from_the_schema(service, finished, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    service.export(finished, tmp_path / "o.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert rows[0] == {"seq": 0, "status": "succeeded", "input": {"text": "hello"},
                       "output": {"upper": "HELLO", "length": 5}, "error": None}
    assert service.export(finished, tmp_path / "o.parquet") == 3
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.column_names == ["seq", "text", "upper", "length", "status", "error"]
    assert str(table.schema.field("length").type) == "int64"
    assert table.to_pylist()[1]["length"] is None
    service.export(finished, tmp_path / "x.data", fmt="jsonl")
    assert (tmp_path / "x.data").read_text() == (tmp_path / "o.jsonl").read_text()


def test_export_folder_writes_task_files_and_summary_in_one_read(service, finished, tmp_path):
    folder = tmp_path / "out"
    assert service.export(finished, folder) == 3
    assert len((folder / "results.jsonl").read_text().splitlines()) == 3
    assert (folder / "5" / "HELLO.txt").read_text() == "HELLO"
    assert (folder / "10" / "WORLD_WIDE.txt").read_text() == "WORLD WIDE"
    assert json.loads((folder / "summary.json").read_text()) == {"lengths": {"5": 1, "10": 1}}


def test_export_refuses_an_unknown_format(service, finished, tmp_path):
    with pytest.raises(JobError, match=r"name the output \.csv, \.jsonl or \.parquet"):
        service.export(finished, tmp_path / "o.xlsx")
    with pytest.raises(JobError, match="unknown export format"):
        service.export(finished, tmp_path / "o.csv", fmt="xml")


def test_stream_export_is_the_same_bytes_as_the_file(service, finished, tmp_path):
    from verticals.core.jobs.export import stream_export

    service.export(finished, tmp_path / "o.csv")
    streamed = b"".join(stream_export(service.store, service.registry, finished, "csv", flush_rows=1))
    assert streamed == (tmp_path / "o.csv").read_bytes()


def test_schema_columns_open_and_closed_fields():
    from typing import Any, Literal

    from pydantic import BaseModel, ConfigDict, computed_field

    class Span(BaseModel):
        start: int
        end: int

    class Out(BaseModel):
        label: Literal["a", "b"]
        score: float | None = None
        probabilities: dict[str, float]
        fixed: dict[Literal["x", "y"], int]
        span: Span
        spans: list[Span]
        extra: Any = None

    columns = schema_columns(Out)
    assert columns.outputs == ["label", "score", "fixed.x", "fixed.y", "span.start", "span.end", "spans"]
    assert columns.open == ["probabilities", "extra"]

    class Computed(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int

        @computed_field
        def double(self) -> int:
            return self.a * 2

    computed = schema_columns(Computed)
    assert computed.outputs == ["a", "double"] and computed.open == [""]
    kinds = columns.types()
    assert kinds["label"] == "string" and kinds["score"] == "float" and kinds["fixed.x"] == "int"
    assert kinds["spans"] == "string"


def test_export_finds_the_keys_of_an_open_field_where_the_schema_declares_it(service, tmp_path):
    """An open field (probabilities: dict[str, float]) -> probabilities.<key> columns found in the rows, in place."""
    from pydantic import BaseModel

    from verticals.core.jobs.export import export_columns

    class Out(BaseModel):
        label: str
        probabilities: dict[str, float]
        score: float

    store = service.store
    job_id = store.create_job("nosuch.task", {}, {}, 10)
    store.add_items(job_id, [(0, {"text": "a"}, "pending", None), (1, {"text": "b"}, "pending", None)])
    store.mark_submitted(job_id, 2)
    from verticals.core.store import ItemResult

    store.write_results(job_id, [
        ItemResult(0, "succeeded", output={"label": "p", "probabilities": {"p": 0.9, "n": 0.1}, "score": 0.9}),
        ItemResult(1, "succeeded", output={"label": "n", "probabilities": {"n": 0.8, "x": 0.2}, "score": 0.8})])
    columns = export_columns(store, job_id, Out, include_inputs=True)
    assert columns.names() == ["seq", "text", "label", "probabilities.p", "probabilities.n", "probabilities.x",
                               "score", "status", "error"]
    assert columns.types()["probabilities.x"] == "float"


def test_export_names_input_columns_from_submission_as_a_read_of_the_rows_would(service, tmp_path,
                                                                               monkeypatch):
    """Submission records the inputs' flat columns and kinds (jobs.input_columns) so that an export does not read
    every input first: the files are the bytes the read gives (mixed kinds, nested objects, lists, nulls, a
    mapped column left out, an invalid item's raw input); a job that recorded none (stored before migration
    0013) or whose inputs were purged reads them, as before."""
    pq = pytest.importorskip("pyarrow.parquet")
    from sqlalchemy import update

    from verticals.core.store.tables import Job

    rows = [{"body": "hello", "n": 1, "meta": {"lang": "en", "tags": ["a", "b"]}},
            {"body": "world", "n": 2.5, "extra": None},
            {"body": "again", "n": "three", "meta": {"src": {"kind": "rss"}}, "extra": True},
            {"body": None, "n": 4}]  # invalid: no text (stored failed, with its raw input)
    job_id = service.submit("fixtures.echo", rows, text_column="body", file_rows=True)
    service.execute(job_id)
    recorded = service.store.job(job_id).input_columns
    assert recorded is not None and {name for name, _top, _kind in recorded} == {
        "body", "n", "meta.lang", "meta.tags", "extra", "meta.src.kind", "text"}

    def exports(tag):
        service.export(job_id, tmp_path / f"{tag}.csv")
        service.export(job_id, tmp_path / f"{tag}.parquet")
        table = pq.read_table(tmp_path / f"{tag}.parquet")
        return (tmp_path / f"{tag}.csv").read_bytes(), str(table.schema), table.to_pylist()

    reads = []
    iter_rows = service.store.iter_rows
    monkeypatch.setattr(service.store, "iter_rows", lambda job, columns, **kw: reads.append(tuple(columns))
                        or iter_rows(job, columns, **kw))
    with_record = exports("recorded")
    assert len(reads) == 2  # one read of the job per export: its rows, none before them to name columns
    assert with_record[0].decode().splitlines()[0] == \
        "seq,body,n,meta.lang,meta.tags,extra,meta.src.kind,upper,length,status,error"
    with service.store.session() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(input_columns=None))
    assert exports("read") == with_record  # same columns, same kinds, same bytes
    assert len(reads) == 6  # ... from two reads per export
    service.store.purge_inputs(job_id)
    assert service.store.job(job_id).input_columns is None  # no column named after inputs that are gone
    assert (lambda text: text.decode().splitlines()[0])(exports("purged")[0]) == "seq,upper,length,status,error"


def test_both_executors_implement_the_protocol(service, monkeypatch):
    from verticals.core.jobs.executor import Executor
    from verticals.workers import get_executor

    assert isinstance(service.executor, Executor) and service.executor.name == "local"
    monkeypatch.setenv("VERTICALS_BROKER_URL", "redis://127.0.0.1:6379/0")
    celery = get_executor(service.store, service.registry)
    assert isinstance(celery, Executor) and celery.name == "celery"


def test_queue_status_counts_chunks(service):
    job_id = service.submit("fixtures.echo", texts(*(f"t{i}" for i in range(25))))
    assert service.queue_status(job_id) == {"chunks": 3, "done": 0, "running": 0, "waiting": 3}
    service.execute(job_id)
    assert service.queue_status(job_id) == {"chunks": 3, "done": 3, "running": 0, "waiting": 0}


def test_export_zip_holds_the_folder_export(service, finished, tmp_path):
    import io
    import zipfile

    from verticals.core.jobs.export import write_zip

    folder = tmp_path / "out"
    service.export(finished, folder)
    assert service.export(finished, tmp_path / "out.zip") == 3
    buffer = io.BytesIO()
    assert write_zip(service.store, service.registry, finished, buffer) == 3
    for archive in (zipfile.ZipFile(tmp_path / "out.zip"), zipfile.ZipFile(buffer)):
        assert sorted(archive.namelist()) == ["10/WORLD_WIDE.txt", "5/HELLO.txt", "results.jsonl", "summary.json"]
        for name in archive.namelist():
            assert archive.read(name) == (folder / name).read_bytes()


def test_a_task_file_outside_the_export_is_refused(service, finished, tmp_path, monkeypatch):
    from verticals.core.jobs.export import ExportError

    echo = service.registry.task("fixtures.echo")
    monkeypatch.setattr(echo, "files", lambda self, item, output: {"../escape.txt": "x"})
    with pytest.raises(ExportError, match="outside"):
        service.export(finished, tmp_path / "out")
    with pytest.raises(ExportError, match="outside"):
        service.export(finished, tmp_path / "out.zip")
    assert not (tmp_path / "escape.txt").exists()


def test_detach_with_the_local_executor_only_stores_the_job(service):
    job_id = service.submit("fixtures.echo", texts("a"))
    assert service.detach(job_id) == 0
    time.sleep(0.2)
    assert service.summary(job_id)["status"] == "queued"  # nothing runs it until resumed
    assert service.resume(job_id) == "succeeded"


def test_wait_fires_the_job_finished_event_a_crashed_process_left_pending(service, tmp_path, monkeypatch):
    """Finalised (status and outbox row in one transaction) by a process that died before firing
    job_finished: the next JobService.wait fires it, once."""
    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    job_id = service.submit("fixtures.echo", texts("a", "b"))
    service.store.cancel_pending(job_id)
    assert service.store.try_finish(job_id) == "cancelled"  # the dead process's last step
    assert not events.exists()
    assert service.wait(job_id, timeout=10)["status"] == "cancelled"
    assert service.wait(job_id, timeout=10)["status"] == "cancelled"
    assert events.read_text().splitlines() == [f"{job_id} cancelled"]


def test_wait_finishes_a_job_whose_last_writer_died_before_finishing_it(service, tmp_path, monkeypatch):
    """Every item written, the job not finished (its process died between writing its last results and
    finishing it): executors never finish a job, the service's wait does, and fires job_finished once."""
    from verticals.core.store import ItemResult

    events = tmp_path / "events.txt"
    monkeypatch.setenv("VERTICALS_FIXTURES_EVENTS", str(events))
    job_id = service.submit("fixtures.echo", texts("a"))
    service.store.write_results(job_id, [ItemResult(0, "succeeded", output={"upper": "A", "length": 1})])
    assert service.store.job(job_id).finished_at is None
    assert service.executor.wait(job_id, timeout=10) == "succeeded"  # nothing pending: the executor returns...
    assert service.store.job(job_id).finished_at is None  # ...without finishing it
    assert service.wait(job_id, timeout=10)["status"] == "succeeded"
    assert service.store.job(job_id).finished_at is not None
    assert events.read_text().splitlines() == [f"{job_id} succeeded"]


def test_starting_a_job_with_nothing_pending_finishes_it(service):
    job_id = service.submit("fixtures.echo", texts("a"))
    service.store.cancel_pending(job_id)
    assert service.start(job_id) == 0
    assert service.summary(job_id)["status"] == "cancelled" and service.summary(job_id)["finished_at"]


def test_finishing_and_event_delivery_are_called_from_the_engine_and_the_service_only():
    """The rule 'finish the job when nothing is pending' and the outbox's delivery have one home each: the
    engine (where a chunk's last items stop being pending) and JobService (after every wait and cancel, and
    the roots' deliver_pending). No executor, front end or worker calls them."""
    import ast
    from pathlib import Path

    import verticals

    callers: dict[str, set[str]] = {}
    root = Path(verticals.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("finish_if_done", "deliver_job_events", "try_finish"):
                    callers.setdefault(name, set()).add(str(path.relative_to(root)))
    assert callers["finish_if_done"] == {"core/jobs/engine.py", "core/jobs/service.py"}
    assert callers["deliver_job_events"] == {"core/jobs/engine.py", "core/jobs/service.py"}
    assert callers["try_finish"] == {"core/jobs/engine.py"}


def test_submit_and_start_asks_the_executor_before_storing_anything(fixtures_only_registry, store):
    from verticals.core.jobs.executor import ExecutorUnavailable, LocalExecutor

    class Down(LocalExecutor):
        def check(self) -> None:
            raise ExecutorUnavailable("the broker is down")

    service = JobService(store, fixtures_only_registry, Down(store, fixtures_only_registry))
    with pytest.raises(ExecutorUnavailable, match="down"):
        service.submit_and_start("fixtures.echo", texts("a"))
    assert store.list_jobs() == []


def test_submit_and_start_withdraws_a_new_job_the_executor_refuses(fixtures_only_registry, store):
    """Refused at the hand-over (the broker went down after the check): nothing of it ran, so it is not kept;
    any error of the executor's hand-over is an ExecutorUnavailable."""
    from verticals.core.jobs.executor import ExecutorUnavailable, LocalExecutor

    class Broken(LocalExecutor):
        def start(self, job_id: str) -> int:
            raise ConnectionResetError("lost")

    service = JobService(store, fixtures_only_registry, Broken(store, fixtures_only_registry))
    stored: list[str] = []
    with pytest.raises(ExecutorUnavailable, match=r"ConnectionResetError: lost.*not kept"):
        service.submit_and_start("fixtures.echo", texts("a"), on_stored=stored.append)
    assert len(stored) == 1 and store.list_jobs() == []


def test_submit_and_start_runs_as_asked(service):
    waited = service.submit_and_start("fixtures.echo", texts("a", "b"), run="wait")
    assert waited.status == "succeeded"
    started = service.submit_and_start("fixtures.echo", texts("c"), run="start")
    assert started.chunks == 1
    assert service.wait(started.job_id, timeout=10)["status"] == "succeeded"
    detached = service.submit_and_start("fixtures.echo", texts("d"), run="detach")
    assert detached.chunks == 0 and service.summary(detached.job_id)["status"] == "queued"


def test_submit_and_start_admits_a_tenants_job_under_its_admission(fixtures_only_registry, store):
    import contextlib

    from verticals.core.jobs.executor import LocalExecutor

    admitted: list[tuple[str, int]] = []

    class Admission:
        @contextlib.contextmanager
        def admit(self, tenant, items=0):
            admitted.append((tenant, items))
            yield

    service = JobService(store, fixtures_only_registry, LocalExecutor(store, fixtures_only_registry),
                         admission=Admission())
    service.submit_and_start("fixtures.echo", texts("a", "b"), items=2, tenant="acme", run="wait")
    service.submit_and_start("fixtures.echo", texts("a"), run="wait")  # no tenant (the CLI's): no admission
    assert admitted == [("acme", 2)]


def test_list_filters_by_status_and_task_then_pages(service):
    done = [service.submit_and_start("fixtures.echo", texts(f"t{i}"), run="wait").job_id for i in range(3)]
    queued = service.submit("fixtures.echo", texts("q"))
    assert [s["id"] for s in service.list(10)] == [queued, *reversed(done)]
    assert [s["id"] for s in service.list(10, statuses=["queued"])] == [queued]
    assert [s["id"] for s in service.list(2, 1, statuses=["succeeded"], task="fixtures.echo")] == done[1::-1]
    assert service.list(10, task="fixtures.other") == []
