"""``verticals worker``: run Celery workers for the ``gpu`` or ``cpu`` queue."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Annotated

import typer


def _fail(message: str) -> typer.Exit:
    from verticals.cli.common import _fail as fail

    return fail(message)


def _check_services(queue: str, node: str | None = None) -> None:
    """Refuse to start with a clear message when the broker or the database is not usable. Once the broker
    answers, the worker ``node`` is listed as starting (``verticals workers``) while the rest of its start-up runs."""
    from verticals.cli.common import err
    from verticals.config import broker_url, database_url

    broker = broker_url()
    if not broker:
        raise _fail("VERTICALS_BROKER_URL is not set. Set it on workers and submitters alike, "
                    "e.g. export VERTICALS_BROKER_URL=redis://127.0.0.1:6379/0")
    if broker.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(broker, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        except Exception as error:
            from kombu.utils.url import maybe_sanitize_url

            raise _fail(f"cannot reach the broker at {maybe_sanitize_url(broker)} ({type(error).__name__}). "
                        "Start Redis (e.g. scripts/ensure-services.sh) or fix VERTICALS_BROKER_URL.") from None
        finally:
            client.close()
        if node is not None:
            from verticals.config import settings
            from verticals.workers import fleet

            fleet.announce_start(broker, node, [queue], settings().worker_heartbeat_s)
    from verticals.core.store import DatabaseNotReady, ensure_ready, make_engine  # after the fleet has it

    url = database_url()
    engine = make_engine(url)
    try:
        ensure_ready(engine)
    except DatabaseNotReady as error:
        raise _fail(str(error)) from None
    except Exception as error:
        raise _fail(f"cannot open the database {engine.url.render_as_string(hide_password=True)} "
                    f"({type(error).__name__}). Check VERTICALS_DATABASE_URL.") from None
    finally:
        engine.dispose()  # no connection may cross the fork
    if url.startswith("sqlite"):
        err.print("[yellow]warning:[/yellow] the database is an SQLite file: only workers on this machine can "
                  "share it. For workers on several machines set VERTICALS_DATABASE_URL=postgresql+psycopg://...")
    from verticals.registry import get_registry
    from verticals.workers.celery_app import app as celery_app
    from verticals.workers.celery_app import configure_worker, queue_of

    registry = get_registry()
    tasks = [name for name, task in registry.tasks.items() if queue_of(task) == queue]
    vt = configure_worker(celery_app, queue, registry.tasks.values())
    err.print(f"[dim]queue {queue}: tasks {', '.join(sorted(tasks)) or 'none installed'}; a chunk of a lost "
              f"worker is handed out again after {vt} s (visibility timeout)[/dim]")


def _run_per_gpu(queue: str, gpus: list[str], preload: bool, loglevel: str) -> int:
    """One worker process per GPU, each seeing only its GPU (CUDA_VISIBLE_DEVICES); signals are forwarded."""
    from verticals.cli.common import err

    children = []
    for gpu in gpus:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu}
        command = [sys.executable, "-m", "verticals.cli", "worker", "--queue", queue, "--concurrency", "1",
                   "--hostname", f"{queue}-gpu{gpu}@{socket.gethostname()}", "--loglevel", loglevel]
        command += ["--preload"] if preload else []
        children.append(subprocess.Popen(command, env=env))
        err.print(f"[dim]worker for GPU {gpu}: pid {children[-1].pid}[/dim]")

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, forward)
    return max(child.wait() for child in children)


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        queue: Annotated[str, typer.Option(
            "--queue", "-Q", help="Queue to serve: gpu, cpu, or code (tasks running untrusted code).")] = "cpu",
        gpus: Annotated[str | None, typer.Option(
            help="Comma-separated GPU ids, e.g. 0,1: one worker process per GPU (CUDA_VISIBLE_DEVICES).")] = None,
        concurrency: Annotated[int | None, typer.Option(
            "--concurrency", "-c", help="Worker processes (default: 1 per GPU; for cpu, 1 per 4 cores).")] = None,
        preload: Annotated[bool, typer.Option(
            help="Load the queue's models in each process right after it starts, not on the first chunk.")] = False,
        hostname: Annotated[str | None, typer.Option(help="Celery node name (default: QUEUE.PID@HOST).")] = None,
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
    ) -> None:
        """Run a Celery worker that executes job chunks from the gpu, cpu or code queue.

        Needs VERTICALS_BROKER_URL (Redis) and VERTICALS_DATABASE_URL (PostgreSQL for several machines),
        the same as the machines that submit jobs. Ctrl-C (or SIGTERM) finishes the running chunk, then exits;
        a second Ctrl-C stops at once (the chunk is handed to another worker after the visibility timeout).
        """
        from verticals.workers.queues import QUEUES

        if queue not in QUEUES:
            raise _fail(f"unknown queue {queue!r}: use --queue gpu, cpu or code")
        node = hostname or f"{queue}.{os.getpid()}@{socket.gethostname()}"
        _check_services(queue, node)
        os.environ["VERTICALS_WORKER_QUEUE"] = queue
        if preload:
            os.environ["VERTICALS_PRELOAD"] = "1"
        if gpus:
            ids = [g.strip() for g in gpus.split(",") if g.strip()]
            if not ids:
                raise _fail("--gpus needs GPU ids, e.g. --gpus 0,1")
            if len(ids) > 1:
                raise typer.Exit(_run_per_gpu(queue, ids, preload, loglevel))
            os.environ["CUDA_VISIBLE_DEVICES"] = ids[0]
            concurrency = 1
        cores = os.cpu_count() or 1
        processes = concurrency or (1 if queue == "gpu" else max(1, cores // 4))
        # each process gets its share of the cores (torch reads this when it is first imported, after the fork)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // processes)))
        from verticals.workers.celery_app import app as celery_app

        # --pool prefork: the app's worker_pool (ResilientTaskPool, set by configure_worker) is used
        argv = ["worker", "--queues", queue, "--concurrency", str(processes), "--pool", "prefork",
                "--loglevel", loglevel, "--hostname", node, "--without-gossip"]
        try:
            celery_app.worker_main(argv)
        finally:
            from verticals.workers import fleet

            fleet.started()  # a worker that did not get to ready leaves no starting row behind
