"""Webhooks: the outbox, a plugin on the ``job_finished`` hook attached by the composition roots, and the delivery loop.

How a delivery travels:

1. Whichever process finishes a job (API server thread, Celery worker, CLI)
   fires ``job_finished``; :func:`job_finished` below records one *pending*
   delivery per webhook of the job's tenant in ``webhook_deliveries``. It never
   raises and does no network I/O, so a slow or dead receiver can never block
   or break job completion. Jobs without a tenant (CLI jobs) have no webhooks.
2. The API server (``verticals serve``) runs a background thread,
   :class:`Deliverer`, that POSTs due deliveries, signed with HMAC-SHA256, and
   retries failures with exponential backoff. A due delivery is claimed with a
   conditional UPDATE, so several servers never send it twice at once.

Other channels (mail, chat) are other plugins implementing ``job_finished``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from verticals.config import settings
from verticals.hookspecs import hookimpl

if TYPE_CHECKING:
    from verticals.core.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Verticals-Signature"
TIMESTAMP_HEADER = "X-Verticals-Timestamp"
EVENT_HEADER = "X-Verticals-Event"
DELIVERY_HEADER = "X-Verticals-Delivery"

_store: Store | None = None
_wake = threading.Event()


def use_store(store: Store | None) -> None:
    """Record deliveries in this store (the API app sets its own; default: the configured database)."""
    global _store
    _store = store


def _current_store() -> Store:
    if _store is not None:
        return _store
    from verticals.core.store import open_store

    return open_store()


def blocked_reason(url: str) -> str | None:
    """Why the server must not call this webhook URL (a guard against server-side request forgery), or None.

    A URL whose host resolves to a loopback, private, link-local or otherwise
    non-global address is refused unless ``VERTICALS_WEBHOOK_ALLOW_PRIVATE=1``
    (for receivers inside your network). Checked when a webhook is registered
    and again before every delivery (DNS may change in between).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook URLs must look like http(s)://host/path"
    if settings().webhook_allow_private:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError):
        return None  # not resolvable now: delivery fails and is retried like any unreachable receiver
    for address in sorted(addresses):
        if not ipaddress.ip_address(str(address).split("%")[0]).is_global:
            return (f"{parts.hostname} resolves to {address}, a private or internal address; "
                    "set VERTICALS_WEBHOOK_ALLOW_PRIVATE=1 on the server to allow internal receivers")
    return None


def event_for(status: str) -> str:
    """``job.failed`` when every item failed, ``job.finished`` for succeeded, partial and cancelled jobs."""
    return "job.failed" if status == "failed" else "job.finished"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + HMAC-SHA256(secret, f"{timestamp}.{body}") in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """True when ``signature`` is ours for ``body`` and ``timestamp`` is within ``tolerance_s`` of now."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


@hookimpl
def job_finished(job: dict[str, Any]) -> None:
    tenant = job.get("tenant")
    if not tenant:
        return
    try:
        from verticals.api.store import Tenants
        from verticals.core.store.tables import utcnow

        event = event_for(job.get("status", ""))
        created = utcnow().isoformat()

        def payload(delivery_id: str) -> str:
            return json.dumps({"id": delivery_id, "event": event, "created_at": created, "job": job}, default=str)

        ids = Tenants(_current_store()).add_deliveries(tenant, job["id"], event, payload)
        if ids:
            log.info("job %s: %d webhook delivery(ies) of %s recorded", job["id"], len(ids), event)
            _wake.set()
    except Exception:  # a webhook problem must never break job completion
        log.exception("could not record webhook deliveries for job %s", job.get("id"))


def max_attempts() -> int:
    return settings().webhook_max_attempts


def backoff_s(attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based): base * 2**(attempt-1), at most an hour."""
    base = settings().webhook_backoff_s
    return min(3600.0, base * 2 ** max(0, attempt - 1))


class Deliverer:
    """Background thread of the API server that POSTs due webhook deliveries (with retries)."""

    def __init__(self, store: Store, poll_s: float = 1.0, timeout_s: float = 10.0):
        from verticals.api.store import Tenants

        self.tenants = Tenants(store)
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="verticals-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        _wake.set()
        if self._thread:
            self._thread.join(timeout=self.timeout_s + 5)

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    self.deliver_due(client)
                except Exception:
                    log.exception("webhook delivery loop failed; retrying")
                _wake.wait(self.poll_s)
                _wake.clear()

    def deliver_due(self, client: Any) -> int:
        sent = 0
        for delivery in self.tenants.due_deliveries():
            if self._stop.is_set():
                break
            if not self.tenants.claim_delivery(delivery, lease_s=self.timeout_s * 3):
                continue
            self._deliver(client, delivery, delivery.attempts + 1)
            sent += 1
        return sent

    def _deliver(self, client: Any, delivery: Any, attempt: int) -> None:
        target = self.tenants.webhook_secret(delivery.webhook_id)
        if target is None:
            self.tenants.record_attempt(delivery.id, False, None, "webhook was deleted", None)
            return
        url, secret = target
        blocked = blocked_reason(url)
        if blocked:
            self.tenants.record_attempt(delivery.id, False, None, f"not sent: {blocked}", None)
            log.warning("webhook delivery %s not sent: %s", delivery.id, blocked)
            return
        body = delivery.payload.encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "verticals-webhooks",
                   EVENT_HEADER: delivery.event, DELIVERY_HEADER: delivery.id,
                   TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
        code, error = None, None
        try:
            response = client.post(url, content=body, headers=headers)
            code = response.status_code
            if not 200 <= code < 300:
                error = f"receiver answered HTTP {code}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ok = error is None
        retry_at = None
        if not ok and attempt < max_attempts():
            from verticals.core.store.tables import utcnow

            retry_at = utcnow() + timedelta(seconds=backoff_s(attempt))
        self.tenants.record_attempt(delivery.id, ok, code, error, retry_at)
        level = logging.INFO if ok else logging.WARNING
        log.log(level, "webhook delivery %s (%s, job %s) attempt %d: %s", delivery.id, delivery.event,
                delivery.job_id, attempt, "delivered" if ok else f"{error}{'' if retry_at else '; giving up'}")
