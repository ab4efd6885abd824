"""What ``verticals workers`` shows: every live worker process, as its heartbeat in the broker says
(:mod:`verticals.workers.fleet`), and the backlog of each queue, read through the Celery app."""

from __future__ import annotations

import json
import time
from typing import Any

from verticals.workers.fleet import KEY_PREFIX, is_redis, queue_backlog
from verticals.workers.fleet import _redis as redis_client
from verticals.workers.queues import QUEUES

__all__ = ["snapshot"]


def snapshot(url: str) -> dict[str, Any]:
    """Every live worker process (its last heartbeat, ``age_s`` since it) and the backlog of each queue:
    ``{"workers": [...], "queues": {"gpu": n, "cpu": n, "code": n}}``. ``ConnectionError`` when the broker does
    not answer."""
    from verticals.workers.celery_app import make_app

    if not is_redis(url):
        raise ValueError(f"the fleet is read from a Redis broker; {url.split('://')[0]}:// is not one")
    client = redis_client(url)
    try:
        keys = sorted(client.scan_iter(match=f"{KEY_PREFIX}*", count=500))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    now = time.time()
    workers = []
    for value in values:
        if value is None:  # expired between the scan and the read
            continue
        try:
            report = json.loads(value)
        except ValueError:
            continue
        report["age_s"] = max(0.0, now - float(report.get("heartbeat_at") or now))
        chunk = report.get("chunk")
        if chunk:
            chunk["running_s"] = max(0.0, now - float(chunk.get("since") or now))
        workers.append(report)
    workers.sort(key=lambda w: (str(w.get("node")), int(w.get("pid") or 0)))
    app = make_app(url)
    try:
        queues = {queue: queue_backlog(app, queue) for queue in QUEUES}
    finally:
        app.close()
    return {"workers": workers, "queues": queues}
