"""What the routes depend on (FastAPI ``Depends``): the app's state, the caller (``Who``), a job of the
caller's tenant (``OwnedJob``) and the check that the caller may run a task.

The state (store, registry, job runner, limits...) is built once by :func:`verticals.api.app.create_app`
and kept on ``app.state.api``; the routes only ever reach it through :func:`api_state`.
"""

import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from verticals.api.limits import Limits
from verticals.api.metrics import Metrics
from verticals.api.runner import JobRunner
from verticals.api.schemas import ErrorOut
from verticals.config import Settings, settings
from verticals.core.models.host import ModelHost
from verticals.core.store import Store
from verticals.registry import Registry
from verticals.tenancy import webhooks
from verticals.tenancy.quotas import Quotas
from verticals.tenancy.tenants import Tenants

LOCAL_TENANT = "local"

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid API key"},
    404: {"model": ErrorOut, "description": "Not found (or another tenant's)"}}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "The task executes code and this key has no grant for that"}}


@dataclass
class Principal:
    tenant: str
    key_id: str | None = None
    key_name: str | None = None
    allow_code_execution: bool = False  # an operator's grant (verticals keys create --allow-code-execution)


class ApiState:
    """Everything the routes share, built once per app."""

    def __init__(self, store: Store, registry: Registry, auth: bool, threads: int, limits: Limits,
                 config: Settings | None = None, outbox: webhooks.Outbox | None = None):
        config = config or settings()
        self.store, self.registry, self.auth, self.limits = store, registry, auth, limits
        self.tenants = Tenants(store)
        self.host = ModelHost(registry.models)
        self.quotas = Quotas.from_settings(store, config)  # 429 past a tenant's quota (tenancy.quotas)
        self.runner = JobRunner(store, registry, self.host, threads, on_progress=self._count,
                                per_tenant=config.api_jobs_per_tenant, admission=self.quotas)
        self.jobs = self.runner.service  # every job rule: submit and start, cancel, retry, resume, evaluate...
        self.metrics = Metrics(store, self.host, self.runner)
        self.outbox = outbox  # the webhook outbox create_app attached to the registry (None: not attached)
        self.deliverer = webhooks.Deliverer(store, poll_s=config.webhook_poll_s,
                                            wake=outbox.wake if outbox is not None else None)
        self.predict_slots = threading.BoundedSemaphore(config.api_predict_concurrency)

    def _count(self, n: int) -> None:
        self.metrics.items_processed.inc(n)


def api_state(request: Request) -> ApiState:
    return request.app.state.api


State = Annotated[ApiState, Depends(api_state)]

bearer = HTTPBearer(auto_error=False, description="An API key from `verticals keys create`")


def principal(state: State,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller: the tenant of the API key (401 without a valid one), or ``local`` with ``--no-auth``."""
    if not state.auth:
        return Principal(LOCAL_TENANT)
    hint = "create a key with: verticals keys create --tenant TENANT --name NAME"
    if credentials is None:
        raise HTTPException(401, f"missing API key: send the header Authorization: Bearer <key> ({hint})",
                            headers={"WWW-Authenticate": "Bearer"})
    key = state.tenants.authenticate(credentials.credentials)
    if key is None:
        raise HTTPException(401, f"invalid or revoked API key ({hint})", headers={"WWW-Authenticate": "Bearer"})
    return Principal(key.tenant_id, key.id, key.name, bool(key.allow_code_execution))


Who = Annotated[Principal, Depends(principal)]


def owned_job(job_id: str, who: Who, state: State) -> str:
    """The job id when the job is the caller's tenant's; 404 otherwise (exactly like an unknown id)."""
    if len(job_id) > 64 or state.tenants.job(job_id, who.tenant) is None:
        raise HTTPException(404, f"no job {job_id[:64]!r} for tenant {who.tenant!r} (list yours with GET /v1/jobs)")
    return job_id


OwnedJob = Annotated[str, Depends(owned_job)]


def known_task(state: ApiState, name: str, who: Principal) -> None:
    """422 for an unknown (or quarantined) task (a ``PluginError``: verticals.core.errors), 403 when the caller
    may not run it."""
    may_run(state, state.registry.task(name), who)


def may_run(state: ApiState, task_cls: Any, who: Principal) -> None:
    """403 unless the key may run this task: code-executing tasks need an operator's grant."""
    if getattr(task_cls, "operator_only", False):
        raise HTTPException(403, f"task {task_cls.name} is for operators only (it writes to the server's model "
                                 "store): run it with the CLI on the server, e.g. `verticals train`")
    if getattr(task_cls, "executes_code", False) and not who.allow_code_execution:
        how = ("this server runs with --no-auth, where code execution is never allowed: use API keys"
               if not state.auth else
               "an operator must grant it with: verticals keys create --tenant "
               f"{who.tenant} --name NAME --allow-code-execution (and use that key)")
        raise HTTPException(403, f"task {task_cls.name} executes submitted code on the server, and this API key "
                                 f"is not allowed to run code: {how}. See docs/security.md")
