"""Prometheus metrics (``GET /metrics``): read from the database at scrape time, so they are
true whichever process (server thread, Celery worker, CLI) ran the work. Aggregates only:
no tenant names, job ids or item contents.

A scrape reads counters, never the items table: items by status are the sums of the jobs' item counters
(kept in the transaction of every status change), items run come from the usage rows (one per job, day, model
and device). So a scrape costs the same with a thousand stored items or a million (``tests/test_api.py`` checks
that no statement of a scrape reads ``items``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from verticals.core.store import Store
from verticals.core.store.repo import BUCKET_BOUNDS, BUCKETS, USAGE
from verticals.core.store.tables import Job
from verticals.tenancy.tenants import WebhookDelivery

RATE_MIN_WINDOW_S = 1.0  # items_per_second is measured between scrapes at least this far apart


class StoreCollector:
    def __init__(self, store: Store, host: Any, runner: Any):
        self.store, self.host, self.runner = store, host, runner
        self._lock = threading.Lock()
        self._sample: tuple[float, int] | None = None  # (monotonic time, items run) of an earlier scrape
        self._rate = 0.0

    def _items_per_second(self, run_total: int) -> float:
        """Items run per second between the previous scrape (at least RATE_MIN_WINDOW_S earlier) and this one."""
        now = time.monotonic()
        with self._lock:
            if self._sample is None:
                self._sample = (now, run_total)
            elif now - self._sample[0] >= RATE_MIN_WINDOW_S:
                self._rate = max(0, run_total - self._sample[1]) / (now - self._sample[0])
                self._sample = (now, run_total)
            return self._rate

    def collect(self):
        with self.store.session() as session:
            finished = dict(session.execute(select(Job.final_status, func.count()).where(Job.finished_at.is_not(None))
                                            .group_by(Job.final_status)).all())
            open_jobs = dict(session.execute(
                select(Job.started_at.is_(None), func.count()).where(Job.finished_at.is_(None), Job.submitted.is_(True))
                .group_by(Job.started_at.is_(None))).all())
            sums = session.execute(select(func.coalesce(func.sum(Job.n_pending), 0),
                                          func.coalesce(func.sum(Job.n_succeeded), 0),
                                          func.coalesce(func.sum(Job.n_failed), 0),
                                          func.coalesce(func.sum(Job.n_cancelled), 0))).one()
            items = dict(zip(("pending", "succeeded", "failed", "cancelled"), (int(n) for n in sums), strict=True))
            run_total = int(session.scalar(select(func.coalesce(func.sum(USAGE.c.item_count), 0))) or 0)
            buckets = session.execute(select(BUCKETS.c.name, BUCKETS.c.le, BUCKETS.c.count, BUCKETS.c.sum_s)).all()
            deliveries = dict(session.execute(select(WebhookDelivery.status, func.count())
                                              .group_by(WebhookDelivery.status)).all())
        jobs = GaugeMetricFamily("verticals_jobs", "Jobs by status", labels=["status"])
        jobs.add_metric(["queued"], open_jobs.get(True, 0))
        jobs.add_metric(["running"], open_jobs.get(False, 0))
        for status in ("succeeded", "partial", "failed", "cancelled"):
            jobs.add_metric([status], finished.get(status, 0))
        yield jobs
        by_status = GaugeMetricFamily("verticals_items", "Items by status", labels=["status"])
        for status in ("pending", "succeeded", "failed", "cancelled"):
            by_status.add_metric([status], items.get(status, 0))
        yield by_status
        yield GaugeMetricFamily("verticals_queue_depth", "Items waiting to be processed (pending)",
                                value=items.get("pending", 0))
        yield CounterMetricFamily("verticals_items_run", "Items run by jobs' batches (all workers, every job "
                                  "ever, deleted ones included: the usage rows)", value=run_total)
        yield GaugeMetricFamily("verticals_items_per_second",
                                "Items run per second between the two latest scrapes of this server (all workers; "
                                "rate(verticals_items_run_total[1m]) in Prometheus)",
                                value=self._items_per_second(run_total))
        yield from _histograms(buckets)
        loads = GaugeMetricFamily("verticals_model_load_seconds", "Load time of each model loaded by this server",
                                  labels=["model"])
        for name, seconds in dict(self.host.load_seconds).items():
            loads.add_metric([name], seconds)
        yield loads
        hooks = GaugeMetricFamily("verticals_webhook_deliveries", "Webhook deliveries by status", labels=["status"])
        for status in ("pending", "delivered", "failed"):
            hooks.add_metric([status], deliveries.get(status, 0))
        yield hooks
        yield GaugeMetricFamily("verticals_server_jobs_waiting", "Jobs queued for this server's worker threads",
                                value=self.runner.pending())


HISTOGRAMS = {"batch_seconds": "Seconds each batch of a job took to run (all workers)",
              "queue_wait_seconds": "Seconds from a job's creation to the start of each of its chunks (all workers)"}


def _histograms(rows: list[Any]) -> Any:
    """The stored buckets (per bucket, not cumulative) as Prometheus histograms (cumulative, with +Inf)."""
    for name, help_text in HISTOGRAMS.items():
        counts = {le: (int(count), float(sum_s)) for row_name, le, count, sum_s in rows if row_name == name}
        cumulative, buckets = 0, []
        for le in [f"{bound:g}" for bound in BUCKET_BOUNDS[name]] + ["+Inf"]:
            cumulative += counts.get(le, (0, 0.0))[0]
            buckets.append((le, cumulative))
        yield HistogramMetricFamily(f"verticals_{name}", help_text, buckets=buckets,
                                    sum_value=sum(total for _, total in counts.values()))


class Metrics:
    def __init__(self, store: Store, host: Any, runner: Any):
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, host, runner))
        self.items_processed = Counter("verticals_items_processed", "Items processed by this server's threads",
                                       registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
