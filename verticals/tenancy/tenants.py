"""The REST API's store: its tables (tenants, API keys, webhooks, deliveries, idempotency keys) and their
repository, :class:`Tenants`.

Only the API (its server, its ``keys``/``webhooks`` commands and the webhook outbox) uses these tables; they
are declared on the core's SQLAlchemy ``Base`` (same metadata, same database, same Alembic migrations: 0002,
0003), so the core knows nothing of tenants beyond ``Job.tenant_id``.

API keys look like ``vk_<key id>_<secret>``; only the SHA-256 of the secret is
stored (the secret is 32 random bytes, so a fast hash is the right tool: there
is nothing to brute-force). A key is shown once, when it is created.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    false,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from verticals.config import settings
from verticals.core.errors import Meaning
from verticals.core.store.repo import Store
from verticals.core.store.tables import Base, Job, utcnow

__all__ = ["EVENTS", "KEY_PREFIX", "SECRET_PREFIX", "ApiKey", "IdempotencyKey", "NewKey", "Tenant", "TenantError",
           "TenantQuota", "Tenants", "Webhook", "WebhookDelivery", "blocked_reason", "check_tenant_name", "new_secret"]

# -- tables (migrations 0002: tenants, API keys, webhooks, idempotency keys; 0003: code-execution grant) --------


class Tenant(Base):
    """An organisation using the REST API; every API job belongs to one."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key of a tenant. Only the SHA-256 of its secret part is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 0003: an operator's grant to run tasks that execute code (Task.executes_code) through the API
    allow_code_execution: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Webhook(Base):
    """A URL a tenant wants job events POSTed to, signed with its secret (HMAC-SHA256)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook, and how delivering it went (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TenantQuota(Base):
    """0011: the operator's quotas of a tenant (``verticals tenants quota set``); a limit left NULL is not set
    (the concurrent-jobs limit then is ``VERTICALS_API_MAX_ACTIVE_JOBS``). Enforced by
    :mod:`verticals.tenancy.quotas` when a job is created."""

    __tablename__ = "tenant_quotas"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    items_per_day: Mapped[int | None] = mapped_column(BigInteger)
    model_seconds_per_day: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(Base):
    """``Idempotency-Key`` of a job creation: same key + same body -> same job."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- the repository -----------------------------------------------------------------------------------

KEY_PREFIX = "vk"
SECRET_PREFIX = "whsec_"  # webhook signing secrets, in the Standard Webhooks form
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
EVENTS = ("job.finished", "job.failed")


# -- the webhook rules that registering a webhook applies (deliveries check the URL again) ------------------


def blocked_reason(url: str) -> str | None:
    """Why the server must not call this webhook URL (a guard against server-side request forgery), or None.

    The one rule for every way a webhook is registered (``POST /v1/webhooks``, ``verticals webhooks
    add``: both go through :meth:`verticals.tenancy.tenants.Tenants.create_webhook`) and for every delivery.
    A URL must be ``http(s)://host...``; one whose host resolves to a loopback, private, link-local or
    otherwise non-global address is refused unless ``VERTICALS_WEBHOOK_ALLOW_PRIVATE=1`` (for receivers
    inside your network). Checked when a webhook is registered and again before every delivery (DNS
    may change in between).
    """
    malformed = f"webhook URLs must look like http(s)://host/path, got {url[:100]!r}"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return malformed
    if parts.scheme not in ("http", "https") or not hostname:
        return malformed
    if settings().webhook_allow_private:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(hostname, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError):
        return None  # not resolvable now: delivery fails and is retried like any unreachable receiver
    for address in sorted(addresses):
        if not ipaddress.ip_address(str(address).split("%")[0]).is_global:
            return (f"{hostname} resolves to {address}, a private or internal address; "
                    "set VERTICALS_WEBHOOK_ALLOW_PRIVATE=1 on the server (and where `verticals webhooks add` "
                    "runs) to allow internal receivers")
    return None



def new_secret() -> str:
    """A new signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class TenantError(ValueError):
    """A tenant, key or webhook request that cannot be done as asked; the message says why."""

    meaning: ClassVar[Meaning] = Meaning(422)  # verticals.core.errors


@dataclass
class NewKey:
    id: str
    tenant: str
    name: str
    token: str  # the full key: shown once, never stored
    allow_code_execution: bool = False


def _changed(result: Any) -> bool:
    """Whether an UPDATE changed a row (its ``rowcount``, which only a cursor result has)."""
    return bool(cast(CursorResult[Any], result).rowcount)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_tenant_name(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant or ""):
        raise TenantError(f"bad tenant name {tenant!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    return tenant


class Tenants:
    """Reads and writes of the tenant tables (same database as the jobs)."""

    def __init__(self, store: Store):
        self.store = store

    # tenants & keys ---------------------------------------------------------
    def ensure_tenant(self, tenant: str) -> str:
        check_tenant_name(tenant)
        with self.store.session() as session, session.begin():
            if session.get(Tenant, tenant) is None:
                session.add(Tenant(id=tenant))
        return tenant

    def create_key(self, tenant: str, name: str, allow_code_execution: bool = False) -> NewKey:
        """A new key. ``allow_code_execution``: the operator's grant to run tasks that execute code."""
        self.ensure_tenant(tenant)
        key_id, secret = uuid.uuid4().hex[:12], secrets.token_urlsafe(32)
        with self.store.session() as session, session.begin():
            session.add(ApiKey(id=key_id, tenant_id=tenant, name=name, secret_hash=_hash(secret),
                               allow_code_execution=allow_code_execution))
        return NewKey(key_id, tenant, name, f"{KEY_PREFIX}_{key_id}_{secret}", allow_code_execution)

    def list_tenants(self) -> list[str]:
        """Every tenant (one with a key, a quota or jobs has a row), by name."""
        with self.store.session() as session:
            return list(session.scalars(select(Tenant.id).order_by(Tenant.id)))

    # quotas (verticals.tenancy.quotas enforces them) ---------------------------------------
    QUOTA_FIELDS: ClassVar[tuple[str, ...]] = ("max_active_jobs", "items_per_day", "model_seconds_per_day")

    def set_quota(self, tenant: str, **limits: float | int | None) -> TenantQuota:
        """Set (a number) or remove (None) the named limits of ``tenant``'s quota; the others stay as they are.
        Limits are >= 0 (0: no job may start). Returns the quota as it is now."""
        unknown = set(limits) - set(self.QUOTA_FIELDS)
        if unknown:
            raise TenantError(f"unknown quota {sorted(unknown)[0]!r}: use {', '.join(self.QUOTA_FIELDS)}")
        for name, value in limits.items():
            if value is not None and not (value >= 0 and value != float("inf")):
                raise TenantError(f"bad quota {name}={value!r}: use a number >= 0, or none to remove it")
        self.ensure_tenant(tenant)
        with self.store.session() as session, session.begin():
            quota = session.get(TenantQuota, tenant)
            if quota is None:
                quota = TenantQuota(tenant_id=tenant)
                session.add(quota)
            for name, value in limits.items():
                setattr(quota, name, value if value is None or name == "model_seconds_per_day" else int(value))
            quota.updated_at = utcnow()
        return self.quota(tenant) or quota

    def quota(self, tenant: str) -> TenantQuota | None:
        with self.store.session() as session:
            return session.get(TenantQuota, tenant)

    def list_quotas(self) -> dict[str, TenantQuota]:
        with self.store.session() as session:
            return {quota.tenant_id: quota for quota in session.scalars(select(TenantQuota))}

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        with self.store.session() as session:
            query = select(ApiKey).order_by(ApiKey.tenant_id, ApiKey.created_at)
            if tenant is not None:
                query = query.where(ApiKey.tenant_id == tenant)
            return list(session.scalars(query))

    def revoke_key(self, key_id: str) -> bool:
        """Revoke by key id (or the full key); True when a live key was revoked."""
        if key_id.startswith(KEY_PREFIX + "_"):
            key_id = key_id.split("_", 2)[1]
        with self.store.session() as session, session.begin():
            return _changed(session.execute(
                update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
            ))

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key this token is, or None (unknown, malformed, revoked)."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
            return None
        with self.store.session() as session, session.begin():
            key = session.get(ApiKey, parts[1])
            if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, _hash(parts[2])):
                return None
            now = utcnow()
            last = key.last_used_at
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=now.tzinfo)
            if last is None or now - last > timedelta(minutes=1):
                key.last_used_at = now
            return key

    # jobs ---------------------------------------------------------------------
    def job(self, job_id: str, tenant: str) -> Job | None:
        """The job with exactly this id if it belongs to ``tenant`` (no prefix matching across tenants)."""
        with self.store.session() as session:
            job = session.get(Job, job_id)
        return job if job is not None and job.tenant_id == tenant else None

    # idempotency ----------------------------------------------------------------
    def claim_idempotency_key(self, tenant: str, key: str, body_hash: str) -> tuple[str, str | None]:
        """Reserve ``key`` for this body.

        Returns ('new', None), ('same', job id, or None while the first request is in flight) or ('conflict', id).
        """
        try:
            with self.store.session() as session, session.begin():
                session.add(IdempotencyKey(tenant_id=tenant, key=key, body_hash=body_hash))
            return "new", None
        except IntegrityError:
            pass
        with self.store.session() as session:
            row = session.get(IdempotencyKey, (tenant, key))
        if row is None:  # released between our insert and read: try once more
            return self.claim_idempotency_key(tenant, key, body_hash)
        return ("same" if row.body_hash == body_hash else "conflict"), row.job_id

    def complete_idempotency_key(self, tenant: str, key: str, job_id: str) -> None:
        with self.store.session() as session, session.begin():
            session.execute(update(IdempotencyKey).where(IdempotencyKey.tenant_id == tenant, IdempotencyKey.key == key)
                            .values(job_id=job_id))

    def release_idempotency_key(self, tenant: str, key: str) -> None:
        with self.store.session() as session, session.begin():
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.tenant_id == tenant,
                                                         IdempotencyKey.key == key, IdempotencyKey.job_id.is_(None)))

    # webhooks -------------------------------------------------------------------
    def create_webhook(self, tenant: str, url: str, events: list[str] | None = None,
                       secret: str | None = None) -> Webhook:
        events = list(events or EVENTS)
        unknown = sorted(set(events) - set(EVENTS))
        if unknown:
            raise TenantError(f"unknown event(s) {', '.join(unknown)}: use {', '.join(EVENTS)}")
        blocked = blocked_reason(url)  # the one URL rule, for the API and `verticals webhooks add` alike
        if blocked:
            raise TenantError(blocked)
        self.ensure_tenant(tenant)
        hook = Webhook(id=uuid.uuid4().hex, tenant_id=tenant, url=url, events=events, active=True,
                       secret=secret or new_secret())
        with self.store.session() as session, session.begin():
            session.add(hook)
        return hook

    def list_webhooks(self, tenant: str | None = None) -> list[Webhook]:
        with self.store.session() as session:
            query = select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.created_at)
            if tenant is not None:
                query = query.where(Webhook.tenant_id == tenant)
            return list(session.scalars(query))

    def webhook(self, webhook_id: str, tenant: str) -> Webhook | None:
        with self.store.session() as session:
            hook = session.get(Webhook, webhook_id)
        return hook if hook is not None and hook.tenant_id == tenant and hook.active else None

    def delete_webhook(self, webhook_id: str, tenant: str | None) -> bool:
        """Deactivate (its delivery log stays queryable)."""
        conditions = [Webhook.id == webhook_id, Webhook.active.is_(True)]
        if tenant is not None:
            conditions.append(Webhook.tenant_id == tenant)
        with self.store.session() as session, session.begin():
            return _changed(session.execute(update(Webhook).where(*conditions).values(active=False)))

    # deliveries -------------------------------------------------------------------
    def add_deliveries(self, tenant: str, job_id: str, event: str, payload_for: Any) -> list[str]:
        """Record one pending delivery per active webhook of ``tenant`` subscribed to ``event``.

        ``payload_for(delivery_id) -> str`` renders the JSON body. Returns the delivery ids.
        """
        ids = []
        with self.store.session() as session, session.begin():
            hooks = session.scalars(select(Webhook).where(Webhook.tenant_id == tenant, Webhook.active.is_(True)))
            for hook in hooks:
                if event not in (hook.events or EVENTS):
                    continue
                delivery_id = uuid.uuid4().hex
                session.add(WebhookDelivery(id=delivery_id, webhook_id=hook.id, tenant_id=tenant, job_id=job_id,
                                            event=event, payload=payload_for(delivery_id), status="pending",
                                            attempts=0, next_attempt_at=utcnow()))
                ids.append(delivery_id)
        return ids

    def due_deliveries(self, limit: int = 20) -> list[WebhookDelivery]:
        with self.store.session() as session:
            return list(session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.status == "pending",
                                              WebhookDelivery.next_attempt_at <= utcnow())
                .order_by(WebhookDelivery.next_attempt_at).limit(limit)))

    def claim_delivery(self, delivery: WebhookDelivery, lease_s: float) -> bool:
        """Take a due delivery for ``lease_s`` seconds; only one process wins (conditional UPDATE)."""
        with self.store.session() as session, session.begin():
            return _changed(session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending",
                                              WebhookDelivery.attempts == delivery.attempts)
                .values(attempts=delivery.attempts + 1, next_attempt_at=utcnow() + timedelta(seconds=lease_s))
            ))

    def record_attempt(self, delivery_id: str, ok: bool, status_code: int | None, error: str | None,
                       retry_at: datetime | None) -> None:
        values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        if ok:
            values.update(status="delivered", delivered_at=utcnow(), next_attempt_at=None)
        elif retry_at is None:
            values.update(status="failed", next_attempt_at=None)
        else:
            values.update(next_attempt_at=retry_at)
        with self.store.session() as session, session.begin():
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))

    def webhook_secret(self, webhook_id: str) -> tuple[str, str] | None:
        with self.store.session() as session:
            hook = session.get(Webhook, webhook_id)
        return (hook.url, hook.secret) if hook is not None else None

    def list_deliveries(self, tenant: str, webhook_id: str | None = None, job_id: str | None = None,
                        limit: int = 50, offset: int = 0) -> list[WebhookDelivery]:
        with self.store.session() as session:
            query = (select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant)
                     .order_by(WebhookDelivery.created_at.desc()).limit(limit).offset(offset))
            if webhook_id:
                query = query.where(WebhookDelivery.webhook_id == webhook_id)
            if job_id:
                query = query.where(WebhookDelivery.job_id == job_id)
            return list(session.scalars(query))
