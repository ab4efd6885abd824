"""Prometheus metrics (``GET /metrics``): read from the database at scrape time, so they are
true whichever process (server thread, Celery worker, CLI) ran the work. Aggregates only:
no tenant names, job ids or item contents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from verticals.core.store import Store
from verticals.core.store.tables import Item, Job, utcnow
from verticals.tenancy.tenants import WebhookDelivery

RATE_WINDOW_S = 60


class StoreCollector:
    def __init__(self, store: Store, host: Any, runner: Any):
        self.store, self.host, self.runner = store, host, runner

    def collect(self):
        with self.store.session() as session:
            finished = dict(session.execute(select(Job.final_status, func.count()).where(Job.finished_at.is_not(None))
                                            .group_by(Job.final_status)).all())
            open_jobs = dict(session.execute(
                select(Job.started_at.is_(None), func.count()).where(Job.finished_at.is_(None), Job.submitted.is_(True))
                .group_by(Job.started_at.is_(None))).all())
            items = dict(session.execute(select(Item.status, func.count()).group_by(Item.status)).all())
            since = utcnow() - timedelta(seconds=RATE_WINDOW_S)
            recent = session.scalar(select(func.count()).select_from(Item).where(
                Item.status.in_(("succeeded", "failed")), Item.updated_at >= since)) or 0
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
        yield GaugeMetricFamily("verticals_items_per_second",
                                f"Items finished per second over the last {RATE_WINDOW_S}s (all workers)",
                                value=recent / RATE_WINDOW_S)
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


class Metrics:
    def __init__(self, store: Store, host: Any, runner: Any):
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store, host, runner))
        self.items_processed = Counter("verticals_items_processed", "Items processed by this server's threads",
                                       registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
