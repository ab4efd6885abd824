"""What Celery costs per chunk: 20,000 tiny items through the local executor and 1 and 2 Redis workers.

The task is the model-free ``fixtures.echo`` (tests/fixture_plugins/good), so the time is the engine's:
database reads and writes, broker round trips, worker bookkeeping. All runs use the same PostgreSQL
database server, so the difference between them is the executor.

    .venv/bin/python benchmarks/celery_overhead.py [--items 20000] [--chunk-size 100] [--workers 1 2]

Needs redis-server on PATH (a private one is started on a free port) and PostgreSQL
(``VERTICALS_TEST_POSTGRES_URL``, default postgresql+psycopg://postgres@127.0.0.1:5432/test; a scratch
database is created and dropped). Per-chunk overhead = (worker-seconds spent under Celery − seconds
spent by the local executor) / chunks, where worker-seconds = wall time × workers; and, not depending on
the local run, worker-seconds spent outside the chunk task (from the workers' logs) / chunks.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixture_plugins" / "good"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--admin-url", default=os.environ.get(
        "VERTICALS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    folder = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "redis.log")])
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    name = f"vt_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    env = {"VERTICALS_DATABASE_URL": url, "VERTICALS_BROKER_URL": f"redis://127.0.0.1:{port}/0",
           "VERTICALS_LOAD_PLUGINS": "fixtures", "HF_HUB_OFFLINE": "1", "VERTICALS_HOME": str(folder),
           "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")])}
    os.environ.update(env)
    sys.path.insert(0, str(FIXTURES))
    workers: list[subprocess.Popen] = []
    try:
        from verticals.core.jobs.engine import submit_job
        from verticals.core.jobs.executor import LocalExecutor
        from verticals.core.store import open_store
        from verticals.core.store.db import make_engine, upgrade
        from verticals.registry import get_registry
        from verticals.workers.celery_executor import CeleryExecutor

        upgrade(make_engine(url))
        store, registry = open_store(url), get_registry(refresh=True)
        rows = [{"text": f"item number {i}"} for i in range(args.items)]
        chunks = -(-args.items // args.chunk_size)

        def submit() -> str:
            return submit_job(store, registry, "fixtures.echo", rows, chunk_size=args.chunk_size)

        results = []
        broker_overhead: dict[int, float] = {}
        job_id = submit()
        started = time.perf_counter()
        status = LocalExecutor(store, registry).execute(job_id)
        local_s = time.perf_counter() - started
        assert status == "succeeded", status
        results.append(("local", 1, local_s))

        executor = CeleryExecutor(store, registry, poll_interval=0.05)
        for count in sorted(args.workers):
            while len(workers) < count:
                log = folder / f"worker{len(workers)}.log"
                with open(log, "wb") as handle:
                    workers.append(subprocess.Popen(
                        [sys.executable, "-m", "verticals.cli", "worker", "--queue", "cpu", "--concurrency", "1",
                         "--hostname", f"bench{len(workers)}@%h", "--loglevel", "info"],
                        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=REPO))
                _wait_ready(executor, len(workers))
            job_id = submit()
            started = time.perf_counter()
            status = executor.execute(job_id)
            took = time.perf_counter() - started
            assert status == "succeeded", status
            assert store.counts(job_id) == {"succeeded": args.items}
            time.sleep(1)
            in_task = _task_seconds(folder, job_id)
            results.append((f"celery x{count}", count, took))
            broker_overhead[count] = (took * count - in_task) / chunks * 1000

        print(f"{args.items} items, chunk size {args.chunk_size} ({chunks} chunks), "
              f"fixtures.echo, PostgreSQL store, {os.cpu_count()} CPU cores")
        print(f"{'executor':<12} {'wall s':>8} {'items/s':>9} {'ms/chunk':>9} {'vs local ms/chunk':>18} "
              f"{'outside task ms/chunk':>22}")
        for label, count, seconds in results:
            per_chunk = seconds * count / chunks * 1000
            overhead = (seconds * count - local_s) / chunks * 1000
            outside = f"{broker_overhead[count]:.1f}" if count in broker_overhead and label != "local" else ""
            print(f"{label:<12} {seconds:8.2f} {args.items / seconds:9.0f} {per_chunk:9.1f} "
                  f"{'' if label == 'local' else f'{overhead:.1f}':>18} {outside:>22}")
        print("ms/chunk: worker-seconds per chunk; vs local: minus the local executor's; outside task: worker-seconds "
              "not spent inside the chunk task (broker fetch, ack, dispatch, the submitter's polling lag)")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        redis.kill()
        make_engine_dispose(url)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _task_seconds(folder: Path, job_id: str) -> float:
    """Seconds spent inside chunk tasks of a job, from the workers' "succeeded in Xs" log lines."""
    import re

    total = 0.0
    pattern = re.compile(rf"run_chunk\[{job_id}:[^\]]*\] succeeded in ([0-9.]+)s")
    for log in folder.glob("worker*.log"):
        total += sum(float(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace")))
    return total


def make_engine_dispose(url: str) -> None:
    from verticals.core.store.db import make_engine

    make_engine(url).dispose()


def _wait_ready(executor, count: int, timeout: float = 120) -> None:
    """Until ``count`` workers answer a ping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            replies = executor.app.control.ping(timeout=1.0) or []
        except Exception:
            replies = []
        if len(replies) >= count:
            return
        time.sleep(0.5)
    raise SystemExit(f"{count} worker(s) did not start; see their logs")


if __name__ == "__main__":
    main()
