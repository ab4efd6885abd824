"""The fleet: what each live worker process is doing, as the workers themselves report it in the broker.

Each pool process of ``verticals worker`` (Celery, Redis broker) writes a heartbeat every
``VERTICALS_WORKER_HEARTBEAT_S`` seconds (and at once when it takes or ends a chunk) to the Redis key
``verticals:fleet:<node>:<pid>``, which expires after three heartbeats: a worker appears as soon as its pool
process starts, and one that is killed (``kill -9``, a lost machine) is gone within three heartbeats, with no
one to clean up after it. A worker that stops normally removes its key at once.

The worker's main process reports itself as ``starting`` from its first second (:func:`announce_start`, before
its start-up's imports), until its pool processes are up (:func:`started`). A heartbeat holds the worker's node
name and pid, the queues it consumes, the chunk it runs (job, items, since
when), the models loaded in it with their device, and when it started. :func:`verticals.workers.fleet_view.snapshot`
reads them all, with the backlog of each queue (``verticals workers``): a module of its own, since it needs the
Celery app (:mod:`verticals.workers.celery_app`), which imports this module to start the heartbeats.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["KEY_PREFIX", "Heartbeat", "announce_start", "is_redis", "queue_backlog", "started"]

KEY_PREFIX = "verticals:fleet:"
NODE: str | None = None  # the Celery node name (`--hostname`), set in the worker's main process before the fork
QUEUES: list[str] = []  # the queues the worker consumes, likewise
STARTING: Heartbeat | None = None  # the main process's heartbeat while the worker starts (announce_start)


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


class Heartbeat:
    """The heartbeat of one pool process: a daemon thread writing :meth:`report` every ``every`` seconds."""

    def __init__(self, url: str, every: float, host: Any = None, starting: bool = False):
        self.url, self.every = url, max(0.1, every)
        self.host = host  # a callable returning the process's ModelHost, or None before its first chunk
        self.starting = starting  # the worker's main process, still starting (no pool process yet)
        self.pid = os.getpid()
        self.node = NODE or f"celery@{socket.gethostname()}"
        self.key = f"{KEY_PREFIX}{self.node}:{self.pid}"
        self.started_at = datetime.now(UTC).isoformat()
        self.chunk: dict[str, Any] | None = None
        self.chunks_done = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verticals-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def running(self, job_id: str, start: int, end: int) -> None:
        """This process took a chunk: reported at once."""
        self.chunk = {"job_id": job_id, "start": start, "end": end, "items": end - start, "since": time.time()}
        self._wake.set()

    def idle(self) -> None:
        """This process ended its chunk: reported at once."""
        self.chunk = None
        self.chunks_done += 1
        self._wake.set()

    def stop(self) -> None:
        """Stop beating and remove this process's key (a worker stopping normally leaves at once)."""
        self._stop.set()
        self._wake.set()
        try:
            client = _redis(self.url)
            try:
                client.delete(self.key)
            finally:
                client.close()
        except Exception:
            log.debug("could not remove the heartbeat of %s", self.key, exc_info=True)

    def report(self) -> dict[str, Any]:
        host = self.host() if callable(self.host) else self.host
        models = []
        if host is not None:
            models = [{"model": name, "device": device, "runtime": runtime}
                      for name, device, runtime in host.loaded_devices()]
        from verticals.config import settings

        return {"node": self.node, "pid": self.pid, "host": socket.gethostname(), "queues": list(QUEUES),
                "device": settings().device, "started_at": self.started_at, "heartbeat_at": time.time(),
                "every_s": self.every, "chunk": self.chunk, "chunks_done": self.chunks_done, "models": models,
                "starting": self.starting}

    def _run(self) -> None:
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = _redis(self.url)
                if not self._stop.is_set():
                    client.set(self.key, json.dumps(self.report()), px=int(self.every * 3000))
            except Exception:
                log.debug("heartbeat of %s not written", self.key, exc_info=True)
                client = None
            self._wake.wait(self.every)
            self._wake.clear()
        if client is not None:
            client.close()


def announce_start(url: str, node: str, queues: list[str], every: float) -> None:
    """The worker's main process reports itself as starting, before its start-up's imports (torch, the tasks:
    seconds on a busy machine) and its pool: a worker is listed from its first second. Its pool processes then
    report themselves and :func:`started` removes this row (the worker is ready)."""
    global NODE, QUEUES, STARTING
    if not is_redis(url) or STARTING is not None:
        return
    NODE, QUEUES = node, list(queues)
    STARTING = Heartbeat(url, every, starting=True).start()


def started() -> None:
    """The worker is ready (its pool processes report themselves): the main process's starting row goes."""
    global STARTING
    if STARTING is not None and STARTING.pid == os.getpid():
        STARTING.stop()
    STARTING = None


def queue_backlog(app: Any, queue: str) -> int | None:
    """Messages waiting in a broker queue (every job's, every priority), or None when the broker cannot say.

    Asked through kombu (a passive queue declare: the AMQP way to read a queue's length), so the broker
    transport's own key layout (Redis keeps one list per priority step) stays kombu's business."""
    from kombu.exceptions import ChannelError

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            channel = connection.channel()
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:  # no message ever waited there: the queue does not exist yet
                return 0
            finally:
                channel.close()
    except Exception:
        return None
