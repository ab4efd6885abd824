"""The Celery executor with real parts: a test-owned redis-server, real `verticals worker` processes, PostgreSQL.

Every test checks the store afterwards: one row per item, every item terminal,
the lifecycle hook fired exactly once. Faults are real: SIGKILL of worker
processes, an item that calls os._exit in the worker, a Redis restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from verticals.core.jobs.engine import submit_job
from verticals.core.store.tables import Item

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed: run scripts/ensure-services.sh")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server owned by one test: its own port and directory, no persistence (like the CI Redis)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")])
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class Workers:
    """`verticals worker` subprocesses with their logs; each in its own process group."""

    def __init__(self, folder: Path, env: dict[str, str], launcher: list[str] | None = None):
        self.folder = folder
        self.env = env
        self.launcher = launcher or []  # a command the worker runs under (opentelemetry-instrument)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, count: int = 1, concurrency: int = 1, **env: str) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            name = f"w{len(self.procs)}-{uuid.uuid4().hex[:6]}"
            log = self.folder / f"{name}.log"
            command = [*self.launcher, sys.executable, "-m", "verticals.cli", "worker", "--queue", "cpu",
                       "--concurrency", str(concurrency), "--hostname", f"{name}@test", "--loglevel", "info"]
            with open(log, "wb") as handle:
                proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                        env={**os.environ, **self.env, **env}, start_new_session=True)
            self.procs.append(proc)
            self.logs.append(log)
            started.append((proc, log))
        for proc, log in started:
            deadline = time.monotonic() + 90
            while b"ready." not in log.read_bytes():
                assert proc.poll() is None, f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"worker not ready:\n{log.read_text()[-3000:]}"
                time.sleep(0.1)
        return [proc for proc, _ in started]

    @staticmethod
    def children(proc: subprocess.Popen) -> list[int]:
        try:
            text = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


class Env:
    def __init__(self, store, registry, redis, workers, events: Path):
        self.store, self.registry, self.redis, self.workers, self.events = store, registry, redis, workers, events

    def executor(self):
        from verticals.workers.celery_executor import CeleryExecutor

        return CeleryExecutor(self.store, self.registry, broker=self.redis.url, poll_interval=0.2)

    def submit(self, texts, chunk_size=10, **params) -> str:
        return submit_job(self.store, self.registry, "fixtures.echo", [{"text": t} for t in texts], params,
                          chunk_size=chunk_size)

    def finished_events(self, job_id: str, expect: int = 1) -> list[str]:
        """The job_finished lines of a job, once ``expect`` of them arrived (the hook runs just after the
        status is stored), plus a moment for a wrong extra one to show up."""
        def lines() -> list[str]:
            text = self.events.read_text() if self.events.exists() else ""
            return [line for line in text.splitlines() if line.startswith(job_id)]

        deadline = time.monotonic() + 20
        while len(lines()) < expect and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        return lines()

    def assert_exactly_one_result_per_item(self, job_id: str, total: int) -> dict[str, int]:
        with self.store.session() as session:
            rows = session.scalar(select(func.count()).select_from(Item).where(Item.job_id == job_id))
            seqs = session.scalar(select(func.count(func.distinct(Item.seq))).where(Item.job_id == job_id))
        assert rows == seqs == total
        counts = self.store.counts(job_id)
        assert counts.get("pending", 0) == 0
        assert sum(counts.values()) == total
        return counts


@pytest.fixture
def celery_env(tmp_path, postgres_url, use_plugins, monkeypatch):
    from verticals.core.store import open_store
    from verticals.core.store.db import make_engine, upgrade
    from verticals.registry import get_registry

    upgrade(make_engine(postgres_url))
    use_plugins("good")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    events = tmp_path / "events.txt"
    env = {"VERTICALS_DATABASE_URL": postgres_url, "VERTICALS_BROKER_URL": redis.url,
           "VERTICALS_FIXTURES_EVENTS": str(events), "VERTICALS_LOAD_PLUGINS": "fixtures",
           "VERTICALS_VISIBILITY_TIMEOUT": "6", "HF_HUB_OFFLINE": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    workers = Workers(tmp_path, env)
    registry = get_registry(refresh=True)
    try:
        yield Env(open_store(postgres_url), registry, redis, workers, events)
    finally:
        workers.stop()
        redis.stop()


def run_in_thread(function, *args, **kwargs):
    result: dict = {}

    def target():
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as error:  # surfaced by the caller
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_thousands_of_items_through_two_workers_each_get_exactly_one_result(celery_env):
    celery_env.workers.start(2)
    job_id = celery_env.submit([f"item {i}" for i in range(3000)], chunk_size=100)
    progress = []
    status = celery_env.executor().execute(job_id, on_progress=progress.append)
    assert status == "succeeded"
    assert celery_env.assert_exactly_one_result_per_item(job_id, 3000) == {"succeeded": 3000}
    assert sum(progress) == 3000
    items = list(celery_env.store.iter_items(job_id))
    assert [item.output["upper"] for item in items] == [f"ITEM {i}" for i in range(3000)]
    assert {item.attempts for item in items} == {1}
    assert celery_env.finished_events(job_id) == [f"{job_id} succeeded"]
    # both workers took part
    log = celery_env.workers.logs
    assert all(b"verticals.run_chunk" in path.read_bytes() and b"succeeded in" in path.read_bytes() for path in log)


def test_kill_9_workers_mid_chunk_loses_and_duplicates_nothing(celery_env):
    procs = celery_env.workers.start(2, VERTICALS_MAX_ATTEMPTS="20")
    total = 600
    job_id = celery_env.submit([f"k{i}" for i in range(total)], chunk_size=20, sleep=0.05)
    executor = celery_env.executor()
    thread, result = run_in_thread(executor.execute, job_id)
    store = celery_env.store
    kills = 0
    for trial in range(5):
        # wait until a chunk is running: some pending item has an attempt counted
        wait_for(lambda: _inflight(store, job_id) > 0, what="a running chunk")
        # which worker runs the chunk is not known from here (on a loaded machine one worker may take every
        # chunk): kill the pool process of both, so the running chunk is surely interrupted
        if trial == 4:
            # a whole worker (main process and pool) dies: its chunk comes back after the visibility timeout
            os.killpg(procs[0].pid, signal.SIGKILL)
        else:
            # (a pool process killed in the trial before may not be replaced yet: the running chunk is not there)
            children = [pid for victim in procs for pid in celery_env.workers.children(victim)]
            assert children, "no worker has a pool process"
            for child in children:
                os.kill(child, signal.SIGKILL)
        kills += 1
        time.sleep(0.6)
    thread.join(240)
    assert not thread.is_alive(), "job did not finish"
    assert result.get("error") is None, result.get("error")
    assert result["value"] == "succeeded"
    assert celery_env.assert_exactly_one_result_per_item(job_id, total) == {"succeeded": total}
    items = list(store.iter_items(job_id))
    assert [item.output["upper"] for item in items] == [f"K{i}" for i in range(total)]
    assert max(item.attempts for item in items) >= 2, "no chunk was interrupted and re-run"
    assert celery_env.finished_events(job_id) == [f"{job_id} succeeded"]
    assert kills == 5


def _inflight(store, job_id: str) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Item).where(
            Item.job_id == job_id, Item.status == "pending", Item.attempts > 0))


def test_redis_restart_mid_job_and_the_job_completes(celery_env):
    celery_env.workers.start(2)
    total = 400
    job_id = celery_env.submit([f"r{i}" for i in range(total)], chunk_size=10, sleep=0.05)
    thread, result = run_in_thread(celery_env.executor().execute, job_id)
    wait_for(lambda: celery_env.store.summary(job_id)["done"] >= 40, what="progress before the restart")
    celery_env.redis.restart(down_for=1.5)  # no persistence: every queued message is gone
    done_at_restart = celery_env.store.summary(job_id)["done"]
    assert done_at_restart < total
    thread.join(240)
    assert not thread.is_alive(), "job did not finish after the Redis restart"
    assert result.get("error") is None, result.get("error")
    assert result["value"] == "succeeded"
    assert celery_env.assert_exactly_one_result_per_item(job_id, total) == {"succeeded": total}
    assert celery_env.finished_events(job_id) == [f"{job_id} succeeded"]


def test_item_that_kills_its_worker_fails_after_n_attempts_and_the_rest_succeed(celery_env, tmp_path):
    celery_env.workers.start(1, VERTICALS_FIXTURES_ALLOW_CRASH="1", VERTICALS_MAX_ATTEMPTS="3")
    texts = [f"p{i}" for i in range(40)]
    texts[13] = "CRASH here"
    job_id = celery_env.submit(texts, chunk_size=10)
    status = celery_env.executor().execute(job_id)
    assert status == "partial"
    counts = celery_env.assert_exactly_one_result_per_item(job_id, 40)
    assert counts == {"succeeded": 39, "failed": 1}
    items = list(celery_env.store.iter_items(job_id))
    poison = items[13]
    assert poison.status == "failed" and poison.attempts == 3
    assert "gave up after 3 attempts" in poison.error
    assert all(item.status == "succeeded" for item in items if item.seq != 13)
    assert celery_env.finished_events(job_id) == [f"{job_id} partial"]
    assert celery_env.workers.log_text().count("WorkerLostError") >= 3 or \
        celery_env.workers.log_text().count("exited with 'exitcode 17'") >= 3

    # retry of failed items: the cause is fixed (this worker does not crash), only the failed item runs again
    celery_env.workers.stop()
    celery_env.workers.start(1)
    before = {item.seq: item.updated_at for item in items}
    from tests.conftest import run_cli

    done = run_cli("jobs", "retry", job_id[:10], "--failed")
    assert done.returncode == 0, done.stderr
    assert "1 failed item(s) queued again" in done.stderr
    after = list(celery_env.store.iter_items(job_id))
    assert all(item.status == "succeeded" for item in after)
    assert after[13].output == {"upper": "CRASH HERE", "length": 10}
    assert all(item.updated_at == before[item.seq] for item in after if item.seq != 13)
    assert celery_env.finished_events(job_id, expect=2) == [f"{job_id} partial", f"{job_id} succeeded"]


def test_two_workers_finishing_the_last_chunks_at_once_finish_the_job_once(celery_env):
    celery_env.workers.start(2)
    executor = celery_env.executor()
    jobs = []
    for _ in range(6):
        # two chunks of equal work: each worker takes one, both end at about the same moment
        job_id = celery_env.submit([f"f{i}" for i in range(8)], chunk_size=4, sleep=0.3)
        executor.dispatch(job_id)
        jobs.append(job_id)
    for job_id in jobs:
        assert executor.wait(job_id, timeout=120) == "succeeded"
    for job_id in jobs:
        assert celery_env.finished_events(job_id) == [f"{job_id} succeeded"]
        celery_env.assert_exactly_one_result_per_item(job_id, 8)


def test_cancel_during_a_run_revokes_queued_chunks_and_stops_running_ones(celery_env):
    celery_env.workers.start(2)
    total = 400
    job_id = celery_env.submit([f"c{i}" for i in range(total)], chunk_size=20, sleep=0.1)
    from verticals.workers import job_service

    service = job_service(celery_env.store, celery_env.registry, executor=celery_env.executor())
    thread, result = run_in_thread(service.execute, job_id)
    wait_for(lambda: celery_env.store.summary(job_id)["done"] >= 20, what="some progress")
    summary = service.cancel(job_id)  # JobService.cancel: the store's items, then the executor revokes
    assert summary["cancel_requested"]
    thread.join(120)
    assert not thread.is_alive()
    assert result.get("error") is None, result.get("error")
    assert result["value"] == "cancelled"
    counts = celery_env.assert_exactly_one_result_per_item(job_id, total)
    assert counts["cancelled"] > total / 2 and counts["succeeded"] >= 20
    assert celery_env.finished_events(job_id) == [f"{job_id} cancelled"]
    # queued chunks were revoked: workers discarded them without running them
    wait_for(lambda: "revoked" in celery_env.workers.log_text(), timeout=20, what="a revoked chunk in the logs")


def test_cli_detach_priority_and_status_per_queue(celery_env, tmp_path):
    from tests.conftest import run_cli

    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(30)))
    submitted = run_cli("jobs", "submit", "fixtures.echo", str(source), "--detach", "--priority", "high",
                        "--chunk-size", "10")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[-1]
    job = celery_env.store.job(job_id)
    assert job.options["priority"] == "high" and job.options["celery"]["queue"] == "cpu"
    status = run_cli("jobs", "status", job_id[:10])
    assert status.returncode == 0, status.stderr
    assert "queue" in status.stdout and "cpu" in status.stdout and "3 waiting" in status.stdout
    celery_env.workers.start(1)
    assert celery_env.executor().wait(job_id, timeout=120) == "succeeded"
    status = run_cli("jobs", "status", job_id[:10])
    assert "3 done" in status.stdout


def test_sigterm_lets_the_running_chunk_finish_then_the_worker_exits(celery_env):
    (proc,) = celery_env.workers.start(1)
    store = celery_env.store
    job_id = celery_env.submit([f"g{i}" for i in range(60)], chunk_size=20, sleep=0.3)  # ~1.5 s per chunk
    executor = celery_env.executor()
    executor.dispatch(job_id)
    wait_for(lambda: _inflight(store, job_id) > 0, what="a running chunk")
    proc.send_signal(signal.SIGTERM)  # warm shutdown, as a service manager stops a worker
    assert proc.wait(60) == 0
    assert _inflight(store, job_id) == 0, "the worker left a chunk half-done"
    done = store.summary(job_id)["done"]
    assert 0 < done < 60 and done % 20 == 0
    celery_env.workers.start(1)
    assert executor.wait(job_id, timeout=120) == "succeeded"
    assert {item.attempts for item in store.iter_items(job_id)} == {1}


def test_high_priority_chunks_are_taken_before_low_priority_ones(celery_env):
    executor = celery_env.executor()
    jobs = {}
    for priority in ("low", "normal", "high"):  # queued in this order, before any worker runs
        jobs[priority] = submit_job(celery_env.store, celery_env.registry, "fixtures.echo",
                                    [{"text": f"{priority}{i}"} for i in range(30)], {"sleep": 0.05},
                                    options={"priority": priority}, chunk_size=10)
        executor.dispatch(jobs[priority])
    celery_env.workers.start(1)
    for job_id in jobs.values():
        assert executor.wait(job_id, timeout=120) == "succeeded"
    finished = {priority: celery_env.store.job(job_id).finished_at for priority, job_id in jobs.items()}
    assert finished["high"] < finished["normal"] < finished["low"]


def test_a_chunk_failing_for_the_machinery_is_retried_with_backoff_then_its_items_fail(
        fixtures_only_registry, monkeypatch, caplog):
    """Celery's own retry (autoretry_for, retry_backoff, retry_jitter): run eagerly, every retry is a real
    re-run of the task; once they are used up the chunk's items fail with the reason and the job ends."""
    import logging
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from verticals.core.jobs import engine
    from verticals.core.store import open_store
    from verticals.workers import celery_app

    store = open_store()
    job_id = store.create_job("fixtures.echo", {}, {}, 10)
    store.add_items(job_id, [(seq, {"text": f"t{seq}"}, "pending", None) for seq in range(3)])
    store.mark_submitted(job_id, 3)

    def database_gone(*args: object) -> None:  # a failure of the machinery whose SQL parameters hold item text
        raise OperationalError("SELECT * FROM items WHERE text = ?", ("t0",),
                               sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(engine, "job_params", database_gone)  # parameters that no longer hold fail the items
    monkeypatch.setattr(celery_app.state, "store", store)
    monkeypatch.setattr(celery_app.state, "registry", fixtures_only_registry)
    monkeypatch.setattr(celery_app.state, "host", None)
    task = celery_app.run_chunk_task
    assert task.autoretry_for == (celery_app.ChunkFailed,) and task.retry_backoff and task.retry_jitter
    with caplog.at_level(logging.WARNING, logger="verticals.workers.celery_app"):
        result = task.apply(args=[job_id, 0, 3])
    assert isinstance(result.result, celery_app.ChunkFailed)
    retries = [r for r in caplog.records if "retry" in r.getMessage() and job_id in r.getMessage()]
    assert len(retries) == celery_app.MAX_RETRIES
    items = list(store.iter_items(job_id))
    assert {item.status for item in items} == {"failed"}
    assert all(item.error.startswith("worker error after retries: OperationalError") for item in items)
    assert not any("t0" in item.error for item in items)
    assert "t0" not in " ".join(record.getMessage() for record in caplog.records)  # no item text in the logs
    assert store.summary(job_id)["status"] == "failed"


def test_service_cancel_of_a_queued_job_revokes_its_chunks_and_finishes_it_at_once(celery_env):
    """JobService.cancel through the Celery executor (as every front end does): a job whose chunks wait
    behind another job's is cancelled and finished at once; the worker discards its revoked messages."""
    from verticals.core.jobs.service import JobConflict
    from verticals.workers import job_service

    celery_env.workers.start(1)
    store = celery_env.store
    service = job_service(store, celery_env.registry, executor=celery_env.executor())
    busy = celery_env.submit([f"b{i}" for i in range(40)], chunk_size=10, sleep=0.3)
    assert service.start(busy) == 4
    waiting = celery_env.submit([f"w{i}" for i in range(30)], chunk_size=10)
    assert service.detach(waiting) == 3  # Celery: --detach hands the chunks over
    wait_for(lambda: _inflight(store, busy) > 0, what="the busy job running")
    with pytest.raises(JobConflict, match="is running"):
        service.retry(busy)  # the same refusal as with the local executor (and HTTP 409)
    summary = service.cancel(waiting)
    assert summary["status"] == "cancelled" and summary["finished_at"] is not None
    assert summary["counts"] == {"cancelled": 30}
    assert celery_env.finished_events(waiting) == [f"{waiting} cancelled"]
    assert service.wait(busy, timeout=120)["status"] == "succeeded"
    wait_for(lambda: celery_env.workers.log_text().count("revoked") >= 3, timeout=30, what="three revoked chunks")
    assert {item.attempts for item in store.iter_items(waiting)} == {0}  # none of its items ever ran


def test_a_starting_worker_fires_job_events_a_crashed_process_left_pending(celery_env):
    """A job finalised (status and outbox row, one transaction) by a process that died before firing
    job_finished: the next worker to start fires it, once."""
    store = celery_env.store
    job_id = celery_env.submit(["a", "b"])
    store.cancel_pending(job_id)
    assert store.try_finish(job_id) == "cancelled"
    assert celery_env.finished_events(job_id, expect=0) == []
    celery_env.workers.start(2)  # two workers, each with its pool process, race for the event
    assert celery_env.finished_events(job_id) == [f"{job_id} cancelled"]


NO_WORKER = "no worker is consuming queue 'cpu': start one with `verticals worker --queue cpu`"


def test_with_no_worker_for_the_queue_the_wait_says_which_worker_to_start(celery_env, caplog):
    """Real Redis, no worker: after a few seconds at 0 % the executor says, once, which worker to start;
    once one starts, the job runs."""
    import logging

    from verticals.workers.celery_executor import CeleryExecutor

    job_id = celery_env.submit([f"n{i}" for i in range(5)])
    executor = CeleryExecutor(celery_env.store, celery_env.registry, broker=celery_env.redis.url,
                              poll_interval=0.2, no_worker_notice_s=1.0)
    with caplog.at_level(logging.WARNING, logger="verticals.workers.celery_executor"):
        thread, result = run_in_thread(executor.execute, job_id)
        wait_for(lambda: NO_WORKER in caplog.text, timeout=30, what="the no-worker notice")
        celery_env.workers.start(1)
        thread.join(120)
    assert result.get("value") == "succeeded", result
    assert caplog.text.count("no worker is consuming") == 1


def test_a_busy_worker_on_the_queue_gives_no_notice(celery_env, caplog):
    import logging

    from verticals.workers.celery_executor import CeleryExecutor

    celery_env.workers.start(1)
    job_id = celery_env.submit([f"s{i}" for i in range(4)], chunk_size=4, sleep=1.0)  # 4 s without progress
    executor = CeleryExecutor(celery_env.store, celery_env.registry, broker=celery_env.redis.url,
                              poll_interval=0.2, no_worker_notice_s=1.0)
    with caplog.at_level(logging.WARNING, logger="verticals.workers.celery_executor"):
        assert executor.execute(job_id) == "succeeded"
    assert executor.consumers("cpu") and executor.consumers("gpu") == []
    assert "no worker is consuming" not in caplog.text


def test_cli_run_with_a_broker_and_no_worker_prints_the_notice_on_stderr(celery_env, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    command = [sys.executable, "-m", "verticals.cli", "run", "fixtures.echo", str(source)]
    errors = tmp_path / "stderr.txt"
    with open(errors, "wb") as handle:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, cwd=REPO,
                                env={**os.environ, "COLUMNS": "200"})
    try:
        wait_for(lambda: b"no worker is consuming" in errors.read_bytes(), timeout=60, what="the notice on stderr")
        assert proc.poll() is None  # still waiting for a worker
        text = " ".join(errors.read_text().split())
        assert "queue 'cpu'" in text and "verticals worker --queue cpu" in text, text
    finally:
        proc.kill()
        proc.wait(10)


def test_a_pool_process_lost_at_start_up_is_replaced_and_the_worker_goes_on(celery_env):
    """A pool process that dies while the worker starts (killed here as soon as it exists; in life: the OOM
    killer, a crash loading a library, Celery's start-up timeout) used to end the whole worker with
    WorkerLostError('Could not start worker processes'). Now it is logged and replaced."""
    workers = celery_env.workers
    log = workers.folder / "startup-loss.log"
    command = [sys.executable, "-m", "verticals.cli", "worker", "--queue", "cpu", "--concurrency", "1",
               "--hostname", "startup-loss@test", "--loglevel", "info"]
    with open(log, "wb") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **workers.env}, start_new_session=True)
    workers.procs.append(proc)
    workers.logs.append(log)
    deadline = time.monotonic() + 90
    while b"[tasks]" not in log.read_bytes() or not workers.children(proc):  # the banner: the pool starts next
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no pool process started"
        time.sleep(0.002)
    first = workers.children(proc)[0]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: b"ready." in log.read_bytes() or proc.poll() is not None, timeout=90, what="the worker ready")
    time.sleep(2)  # the start-up check runs just after "ready."
    assert proc.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
    wait_for(lambda: workers.children(proc) and first not in workers.children(proc), timeout=30,
             what="a replacement pool process")
    job_id = celery_env.submit([f"s{i}" for i in range(20)])
    assert celery_env.executor().execute(job_id) == "succeeded"
    text = log.read_text()
    assert "exited with 'signal 9 (SIGKILL)'" in text  # the process killed was the pool's
    assert "a pool process exited while the worker was starting" in text
    assert "Could not start worker processes" not in text


def test_the_visibility_timeout_is_derived_from_the_queues_expected_chunk_time(monkeypatch):
    from verticals.workers import celery_app

    class Quick:
        device, chunk_size = "cpu", 256  # 0.1 s per item by default: 26 s a chunk

    class Hint:
        device, chunk_size, expected_item_seconds = "cpu", 64, 90.0  # 96 min a chunk

    class Sentiment:
        device, chunk_size = "gpu", 512

    class Code:
        device, chunk_size, executes_code = "cpu", 4, True  # 60 s per item by default, code queue

    monkeypatch.delenv("VERTICALS_VISIBILITY_TIMEOUT", raising=False)
    assert celery_app.visibility_timeout("cpu", [Quick, Sentiment]) == 300  # at least 5 minutes
    assert celery_app.visibility_timeout("gpu", [Quick, Sentiment]) == 300
    assert celery_app.visibility_timeout("cpu", [Quick, Hint]) == 4 * 64 * 90  # 4 x the longest expected chunk
    assert celery_app.visibility_timeout("code", [Quick, Code]) == 960  # 4 x 240 s
    assert celery_app.visibility_timeout("gpu", [Hint]) == 300  # no task of the queue: the minimum
    monkeypatch.setenv("VERTICALS_VISIBILITY_TIMEOUT", "42")
    assert celery_app.visibility_timeout("cpu", [Quick, Hint]) == 42  # the setting overrides
    options = celery_app.transport_options(42, "cpu")
    assert options["visibility_timeout"] == 42 and options["unacked_index_key"] == "unacked_index:cpu"


def test_a_worker_keeps_its_queues_unacked_chunks_under_its_own_keys(celery_env):
    """Each queue's visibility timeout applies to its own chunks: the running chunk's unacked entry is under
    unacked_index:cpu (a short cpu timeout cannot hand out a long gpu chunk still running)."""
    import redis

    celery_env.workers.start(1)
    job_id = celery_env.submit([f"u{i}" for i in range(6)], chunk_size=6, sleep=0.5)
    executor = celery_env.executor()
    executor.dispatch(job_id)
    client = redis.Redis.from_url(celery_env.redis.url)
    wait_for(lambda: _inflight(celery_env.store, job_id) > 0, what="a running chunk")
    assert client.zcard("unacked_index:cpu") == 1 and client.zcard("unacked_index") == 0
    assert executor.wait(job_id, timeout=60) == "succeeded"
    wait_for(lambda: client.zcard("unacked_index:cpu") == 0, timeout=10, what="the ack")
    log = celery_env.workers.log_text()
    assert "after 6 s (visibility timeout)" in " ".join(log.split())  # VERTICALS_VISIBILITY_TIMEOUT=6 here


def test_a_chunk_running_longer_than_the_visibility_timeout_is_not_handed_to_a_second_worker(celery_env):
    """The running chunk's unacked entry is renewed, so a chunk of ~8 s with a 3 s visibility timeout runs
    once, although an idle second worker is there to take it."""
    celery_env.workers.start(2, VERTICALS_VISIBILITY_TIMEOUT="3")
    job_id = celery_env.submit([f"l{i}" for i in range(8)], chunk_size=8, sleep=4.0)  # 2 batches of 4 s
    assert celery_env.executor().execute(job_id) == "succeeded"
    assert {item.attempts for item in celery_env.store.iter_items(job_id)} == {1}
    assert celery_env.workers.log_text().count(f"[{job_id}:0:1] received") == 1
