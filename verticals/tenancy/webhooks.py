"""Webhooks: the outbox, a component on the ``job_finished`` hook that the composition roots build and attach,
and the delivery loop.

How a delivery travels:

1. Whichever process finishes a job (API server thread, Celery worker, CLI)
   fires ``job_finished``; the :class:`Outbox` that process's root built (``Outbox(store)``, attached to its
   registry with :meth:`Outbox.attach_to`) records one *pending*
   delivery per webhook of the job's tenant in ``webhook_deliveries``. It never
   raises and does no network I/O, so a slow or dead receiver can never block
   or break job completion. Jobs without a tenant (CLI jobs) have no webhooks.
2. The API server (``verticals serve``) runs a background thread,
   :class:`Deliverer`, that POSTs due deliveries, signed in the Standard Webhooks
   scheme (https://www.standardwebhooks.com: ``webhook-id``, ``webhook-timestamp``,
   ``webhook-signature``), and retries failures with exponential backoff. A due
   delivery is claimed with a conditional UPDATE, so several servers never send it
   twice at once.

Signatures: ``webhook-signature`` is ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``; the
key is the base64 part of a ``whsec_<base64>`` secret, decoded (the secrets this server generates), so any
Standard Webhooks verifier accepts it given the secret. Any other secret (one a tenant chose, or an old
``whsec_`` secret that is not valid base64) is used as its UTF-8 bytes (a verifier's "raw key" mode). The
previous headers (``X-Verticals-Timestamp``, ``X-Verticals-Signature: sha256=<hex HMAC of
f"{timestamp}.{body}" keyed with the whole secret>``) are still sent, so receivers written for them keep
working; they are deprecated.

Other channels (mail, chat) are other plugins implementing ``job_finished``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from verticals.config import settings
from verticals.contract import hookimpl

if TYPE_CHECKING:
    from verticals.core.store import Store

# The rules of a webhook itself (its URL: ``blocked_reason``; its secret: ``new_secret``, ``SECRET_PREFIX``) live
# in verticals.tenancy.tenants, which applies them when a webhook is registered; this module imports them when it
# runs (a CLI process attaches the outbox at start and should not load the tenancy tables for that).

__all__ = ["PLUGIN_NAME", "Deliverer", "Outbox", "event_for", "sign", "signature_headers", "signing_key",
           "standard_signature", "verify", "verify_signature"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Verticals-Signature"  # deprecated: the pre-Standard-Webhooks signature
TIMESTAMP_HEADER = "X-Verticals-Timestamp"  # deprecated: the same value as webhook-timestamp
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
EVENT_HEADER = "X-Verticals-Event"
DELIVERY_HEADER = "X-Verticals-Delivery"

PLUGIN_NAME = "verticals.tenancy.webhooks"  # the outbox's name among the plugins (`verticals plugins list`)


def event_for(status: str) -> str:
    """``job.failed`` when every item failed, ``job.finished`` for succeeded, partial and cancelled jobs."""
    return "job.failed" if status == "failed" else "job.finished"


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: the decoded base64 part of ``whsec_<base64>``, else the secret's UTF-8 bytes."""
    from verticals.tenancy.tenants import SECRET_PREFIX

    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}")."""
    digest = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, msg_id: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Every signature header of one attempt: the Standard Webhooks ones and the deprecated ``X-Verticals-*``."""
    timestamp = timestamp or str(int(time.time()))
    return {STANDARD_ID_HEADER: msg_id, STANDARD_TIMESTAMP_HEADER: timestamp,
            STANDARD_SIGNATURE_HEADER: standard_signature(secret, msg_id, timestamp, body),
            TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str, body: bytes, headers: Any, tolerance_s: float = 300, now: float | None = None) -> bool:
    """True when ``headers`` (any mapping; names case-insensitive) carry a Standard Webhooks signature of
    ``body`` by ``secret`` whose timestamp is within ``tolerance_s`` of now. Several space-separated
    signatures may be sent (key rotation): one match is enough."""
    lower = {str(name).lower(): str(value) for name, value in dict(headers).items()}
    msg_id = lower.get(STANDARD_ID_HEADER, "")
    timestamp = lower.get(STANDARD_TIMESTAMP_HEADER, "")
    if not msg_id:
        return False
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > tolerance_s:
        return False
    expected = standard_signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate)
               for candidate in lower.get(STANDARD_SIGNATURE_HEADER, "").split())


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The deprecated ``X-Verticals-Signature`` value: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """The deprecated check of ``X-Verticals-Signature``: true when ``signature`` is ours for ``body`` and
    ``timestamp`` is within ``tolerance_s`` of now. New receivers use :func:`verify` (Standard Webhooks)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


class Outbox:
    """The webhook outbox of one process: on ``job_finished``, one pending delivery per webhook of the job's
    tenant, recorded in ``store`` (``None``: the configured database, opened on first use: the CLI's case).

    Built by the composition roots (the API app, a worker process, the CLI) and attached to their registry
    with :meth:`attach_to`; :attr:`wake` is set when deliveries are recorded, so that a :class:`Deliverer`
    sharing it sends them at once. No module state: two apps in one process have two outboxes.
    """

    def __init__(self, store: Store | None = None):
        self._store = store
        self.wake = threading.Event()

    def current_store(self) -> Store:  # a method, not a property: pluggy reads every attribute when it registers
        if self._store is None:
            from verticals.core.store import open_store

            self._store = open_store()
        return self._store

    def attach_to(self, registry: Any) -> Outbox:
        """Register this outbox on ``registry``'s ``job_finished`` (in place of an outbox attached before:
        the jobs this registry finishes are recorded in this outbox's store); returns it."""
        registry.attach(self, name=PLUGIN_NAME, replace=True)
        return self

    @hookimpl
    def job_finished(self, job: dict[str, Any]) -> None:
        tenant = job.get("tenant")
        if not tenant:
            return
        try:
            from verticals.core.store.tables import utcnow
            from verticals.tenancy.tenants import Tenants

            event = event_for(job.get("status", ""))
            created = utcnow().isoformat()

            def payload(delivery_id: str) -> str:
                return json.dumps({"id": delivery_id, "event": event, "created_at": created, "job": job}, default=str)

            ids = Tenants(self.current_store()).add_deliveries(tenant, job["id"], event, payload)
            if ids:
                log.info("job %s: %d webhook delivery(ies) of %s recorded", job["id"], len(ids), event)
                self.wake.set()
        except Exception:  # a webhook problem must never break job completion
            log.exception("could not record webhook deliveries for job %s", job.get("id"))


def max_attempts() -> int:
    return settings().webhook_max_attempts


def backoff_s(attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based): base * 2**(attempt-1), at most an hour."""
    base = settings().webhook_backoff_s
    return min(3600.0, base * 2 ** max(0, attempt - 1))


class Deliverer:
    """Background thread of the API server that POSTs due webhook deliveries (with retries). ``wake``: the
    event of the :class:`Outbox` that records them (set: look now, not at the next poll)."""

    def __init__(self, store: Store, poll_s: float = 1.0, timeout_s: float = 10.0,
                 wake: threading.Event | None = None):
        from verticals.tenancy.tenants import Tenants

        self.tenants = Tenants(store)
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.wake = wake or threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="verticals-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
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
                self.wake.wait(self.poll_s)
                self.wake.clear()

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
        from verticals.tenancy.tenants import blocked_reason

        blocked = blocked_reason(url)
        if blocked:
            self.tenants.record_attempt(delivery.id, False, None, f"not sent: {blocked}", None)
            log.warning("webhook delivery %s not sent: %s", delivery.id, blocked)
            return
        body = delivery.payload.encode()
        # webhook-id is the delivery id: the same on every retry (receivers deduplicate on it)
        headers = {"Content-Type": "application/json", "User-Agent": "verticals-webhooks",
                   EVENT_HEADER: delivery.event, DELIVERY_HEADER: delivery.id,
                   **signature_headers(secret, delivery.id, body)}
        code, error = None, None
        try:  # the status line and headers only: a receiver's body (any size, any pace) is never read
            with client.stream("POST", url, content=body, headers=headers) as response:
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
