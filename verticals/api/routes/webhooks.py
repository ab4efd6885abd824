"""The tenant's webhooks and their delivery log: ``/v1/webhooks``, ``/v1/webhook-deliveries``."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from verticals.api.deps import ERRORS, State, Who
from verticals.api.schemas import DeliveryOut, ErrorOut, WebhookIn, WebhookOut, iso

router = APIRouter()


def _webhook_out(hook: Any, secret: bool = False) -> WebhookOut:
    return WebhookOut(id=hook.id, url=hook.url, events=hook.events, created_at=iso(hook.created_at),
                      secret=hook.secret if secret else None)


def _delivery_out(d: Any) -> DeliveryOut:
    return DeliveryOut(id=d.id, webhook_id=d.webhook_id, job_id=d.job_id, event=d.event, status=d.status,
                       attempts=d.attempts, last_status_code=d.last_status_code, last_error=d.last_error,
                       created_at=iso(d.created_at), delivered_at=iso(d.delivered_at),
                       next_attempt_at=iso(d.next_attempt_at) if d.status == "pending" else None)


@router.post("/v1/webhooks", response_model=WebhookOut, status_code=201, tags=["webhooks"],
             responses={**ERRORS, 422: {"model": ErrorOut}})
def create_webhook(body: WebhookIn, who: Who, state: State) -> WebhookOut:
    """Register a URL for job.finished / job.failed events. The signing secret is returned once.

    A URL that the server must not call (not http(s), or a private address without
    VERTICALS_WEBHOOK_ALLOW_PRIVATE=1) is refused with a 422 by the store (the rule `verticals webhooks add`
    follows too)."""
    hook = state.tenants.create_webhook(who.tenant, body.url, list(body.events or []) or None, body.secret)
    return _webhook_out(hook, secret=True)


@router.get("/v1/webhooks", response_model=list[WebhookOut], tags=["webhooks"], responses=ERRORS)
def list_webhooks(who: Who, state: State) -> list[WebhookOut]:
    """The tenant's webhooks (secrets are not shown again)."""
    return [_webhook_out(h) for h in state.tenants.list_webhooks(who.tenant)]


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, tags=["webhooks"], responses=ERRORS)
def delete_webhook(webhook_id: str, who: Who, state: State) -> Response:
    """Stop sending events to this webhook (its delivery log stays)."""
    if not state.tenants.delete_webhook(webhook_id[:64], who.tenant):
        raise HTTPException(404, f"no webhook {webhook_id[:64]!r} for tenant {who.tenant!r}")
    return Response(status_code=204)


@router.get("/v1/webhook-deliveries", response_model=list[DeliveryOut], tags=["webhooks"], responses=ERRORS)
def deliveries(who: Who, state: State, webhook_id: Annotated[str | None, Query(max_length=64)] = None,
               job_id: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[DeliveryOut]:
    """The delivery log: each event, its attempts, the receiver's last answer."""
    rows = state.tenants.list_deliveries(who.tenant, webhook_id, job_id, limit, offset)
    return [_delivery_out(d) for d in rows]
