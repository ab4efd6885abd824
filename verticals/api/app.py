"""The REST API: ``create_app()`` builds the FastAPI application that ``verticals serve`` runs.

Every ``/v1`` route needs ``Authorization: Bearer <API key>`` (``verticals keys create``) unless
the server was started with ``--no-auth`` (local use only; every request is then tenant
``local``). A tenant only ever sees its own jobs, results, webhooks and deliveries: another
tenant's job id answers 404, exactly like an unknown one.
"""

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from verticals import __version__
from verticals.api import evals, webhooks
from verticals.api.metrics import Metrics
from verticals.api.predict import TooManyItems, predict
from verticals.api.runner import ExecutorUnavailable, JobRunner
from verticals.api.schemas import (
    DeliveryOut,
    ErrorOut,
    JobCreate,
    JobList,
    JobOut,
    MeOut,
    PluginOut,
    PredictIn,
    PredictOut,
    ResultOut,
    ResultPage,
    RetryOut,
    TaskOut,
    WebhookIn,
    WebhookOut,
)
from verticals.api.uploads import iter_rows, scan, upload_format
from verticals.core.io import InputError, map_fields
from verticals.core.jobs import JobError, cancel_job, finish_if_done, submit_job
from verticals.core.models import ModelHost
from verticals.core.store import Store
from verticals.core.store.secrets import SecretKeyError, redact_request_params
from verticals.core.store.tenants import TenantError, Tenants
from verticals.plugins import PluginError, Registry

log = logging.getLogger("verticals.api")


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response as RFC 9457 problem details; ``detail`` is the message (as it always was)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, headers=headers, media_type="application/problem+json")

LOCAL_TENANT = "local"
MB = 1 << 20


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@dataclass
class Limits:
    max_body_bytes: int  # JSON bodies
    max_upload_bytes: int  # file uploads
    max_job_items: int  # items in one JSON job creation

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(max_body_bytes=_env_int("VERTICALS_API_MAX_BODY_MB", 16) * MB,
                   max_upload_bytes=_env_int("VERTICALS_API_MAX_UPLOAD_MB", 512) * MB,
                   max_job_items=_env_int("VERTICALS_API_MAX_JOB_ITEMS", 10_000))


@dataclass
class Principal:
    tenant: str
    key_id: str | None = None
    key_name: str | None = None
    allow_code_execution: bool = False  # an operator's grant (verticals keys create --allow-code-execution)


class ApiState:
    def __init__(self, store: Store, registry: Registry, auth: bool, threads: int, limits: Limits):
        self.store, self.registry, self.auth, self.limits = store, registry, auth, limits
        self.tenants = Tenants(store)
        self.host = ModelHost(registry.models)
        self.runner = JobRunner(store, registry, self.host, threads, on_progress=self._count)
        self.metrics = Metrics(store, self.host, self.runner)
        self.deliverer = webhooks.Deliverer(store, poll_s=float(os.environ.get("VERTICALS_WEBHOOK_POLL_S", "1")))
        self.predict_slots = threading.BoundedSemaphore(_env_int("VERTICALS_API_PREDICT_CONCURRENCY", 2))

    def _count(self, n: int) -> None:
        self.metrics.items_processed.inc(n)


class BodyLimit:
    """413 for request bodies over the limit: by Content-Length up front, by counting when streamed."""

    def __init__(self, app: Any, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        upload = scope["path"].endswith("/jobs/upload")
        limit = self.limits.max_upload_bytes if upload else self.limits.max_body_bytes
        what = ("uploaded file (VERTICALS_API_MAX_UPLOAD_MB)" if upload
                else "request body (VERTICALS_API_MAX_BODY_MB); send big inputs as a file to POST /v1/jobs/upload")
        detail = f"the {what} is larger than the server's limit of {limit // MB} MiB"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = problem(413, detail)
                await response(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counting_receive, send)


def _job_out(summary: dict[str, Any]) -> JobOut:
    rate = eta = None
    if summary.get("elapsed_s"):
        rate = summary["done"] / summary["elapsed_s"] if summary["done"] else 0.0
        if summary["status"] == "running" and rate:
            eta = (summary["total"] - summary["done"]) / rate
    return JobOut(**{k: v for k, v in summary.items() if k in JobOut.model_fields}, items_per_s=rate, eta_s=eta)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _delivery_out(d: Any) -> DeliveryOut:
    return DeliveryOut(id=d.id, webhook_id=d.webhook_id, job_id=d.job_id, event=d.event, status=d.status,
                       attempts=d.attempts, last_status_code=d.last_status_code, last_error=d.last_error,
                       created_at=_iso(d.created_at), delivered_at=_iso(d.delivered_at),
                       next_attempt_at=_iso(d.next_attempt_at) if d.status == "pending" else None)


ERRORS = {401: {"model": ErrorOut, "description": "Missing or invalid API key"},
          404: {"model": ErrorOut, "description": "Not found (or another tenant's)"}}
FORBIDDEN = {403: {"model": ErrorOut, "description": "The task executes code and this key has no grant for that"}}


def create_app(store: Store | None = None, registry: Registry | None = None, auth: bool = True,
               threads: int | None = None, background: bool = True) -> FastAPI:
    """The API app. ``background=False`` starts no job threads or webhook deliverer (unit tests)."""
    if store is None:
        from verticals.core.store import open_store

        store = open_store()
    if registry is None:
        from verticals.plugins import get_registry

        registry = get_registry()
    state = ApiState(store, registry, auth, threads or _env_int("VERTICALS_API_THREADS", 1), Limits.from_env())
    webhooks.use_store(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if not auth:
            log.warning("AUTHENTICATION IS DISABLED (--no-auth): every request acts as tenant %r. "
                        "For local use only; never expose this server.", LOCAL_TENANT)
            state.tenants.ensure_tenant(LOCAL_TENANT)
        if background:
            state.runner.start()
            state.deliverer.start()
        yield
        if background:
            state.deliverer.stop()
            state.runner.stop()

    try:  # Swagger UI assets served from the package, not a CDN (machines may be offline)
        from fastapi_offline import FastAPIOffline as make_app
    except ImportError:  # pragma: no cover - the api extra installs it
        make_app = FastAPI
    app = make_app(title="verticals", version=__version__, lifespan=lifespan,
                  description="Vertical AI tasks on transformer models as batch jobs: REST API. "
                              "Authenticate with `Authorization: Bearer <API key>`.")
    app.state.api = state
    app.add_middleware(BodyLimit, limits=state.limits)
    bearer = HTTPBearer(auto_error=False, description="An API key from `verticals keys create`")

    def principal(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        if not auth:
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

    def owned_job(job_id: str, who: Who) -> str:
        if len(job_id) > 64 or state.tenants.job(job_id, who.tenant) is None:
            raise HTTPException(404, f"no job {job_id[:64]!r} for tenant {who.tenant!r} "
                                     "(list yours with GET /v1/jobs)")
        return job_id

    OwnedJob = Annotated[str, Depends(owned_job)]

    # Every error is RFC 9457 problem details (application/problem+json): "detail" says what happened and
    # what to do, in API terms (form fields and endpoints, never CLI options).
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "request"
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return problem(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(JobError)
    async def _job_error(_request: Request, error: JobError) -> JSONResponse:
        return problem(422, str(error))

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, error: InputError) -> JSONResponse:
        return problem(422, str(error))

    @app.exception_handler(TenantError)
    async def _tenant_error(_request: Request, error: TenantError) -> JSONResponse:
        return problem(422, str(error))

    @app.exception_handler(SecretKeyError)
    async def _secret_key_error(_request: Request, error: SecretKeyError) -> JSONResponse:
        log.error("%s", error)  # the operator's to fix (the message names settings, never a secret)
        return problem(503, "the server cannot encrypt secret parameters now (server key problem); tell its operator")

    @app.exception_handler(ExecutorUnavailable)
    async def _executor_error(_request: Request, error: ExecutorUnavailable) -> JSONResponse:
        return problem(503, str(error))

    # -- health, metrics ---------------------------------------------------------------
    @app.get("/healthz", tags=["ops"], response_class=PlainTextResponse)
    def healthz() -> str:
        """Liveness: the process answers."""
        return "ok"

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
    def readyz() -> JSONResponse:
        """Readiness: the database is reachable and migrated, jobs can be executed."""
        from verticals.core.store.db import current_revision, head_revision

        problems = []
        try:
            current = current_revision(state.store.engine)
            if current != head_revision():
                problems.append(f"database at revision {current}, expected {head_revision()}: verticals db upgrade")
        except Exception as error:
            problems.append(f"database unreachable: {type(error).__name__}")
        if state.runner.problem:
            problems.append(state.runner.problem)
        if problems:
            return JSONResponse({"detail": "; ".join(problems)}, status_code=503)
        return JSONResponse({"status": "ready", "executor": state.runner.kind, "tasks": len(state.registry.tasks)})

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics (aggregates over all tenants; no ids or contents)."""
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    # -- discovery ------------------------------------------------------------------------
    @app.get("/v1/me", response_model=MeOut, tags=["auth"], responses=ERRORS)
    def me(who: Who) -> MeOut:
        """The tenant and key this request authenticates as."""
        return MeOut(tenant=who.tenant, key_id=who.key_id, key_name=who.key_name, auth=auth,
                     executor=state.runner.kind, allow_code_execution=who.allow_code_execution)

    @app.get("/v1/plugins", response_model=list[PluginOut], tags=["tasks"], responses=ERRORS)
    def plugins(who: Who) -> list[PluginOut]:
        """Installed plugins and their status."""
        return [PluginOut(**p.as_dict()) for p in state.registry.plugins.values() if p.name]

    def _task_out(name: str) -> TaskOut:
        task = state.registry.tasks[name]
        plugin = state.registry.task_plugin.get(name)
        return TaskOut(**task.info(), plugin=plugin.name if plugin else None, sensitive=task.sensitive,
                       text_field=task.text_field)

    @app.get("/v1/tasks", response_model=list[TaskOut], tags=["tasks"], responses=ERRORS)
    def tasks(who: Who) -> list[TaskOut]:
        """Every task with its input, output and params JSON schemas."""
        return [_task_out(name) for name in sorted(state.registry.tasks)]

    @app.get("/v1/tasks/{task}", response_model=TaskOut, tags=["tasks"], responses=ERRORS)
    def task(task: str, who: Who) -> TaskOut:
        """One task and its schemas."""
        if task not in state.registry.tasks:
            known = ", ".join(sorted(state.registry.tasks))
            raise HTTPException(404, f"unknown task {task[:200]!r}; installed: {known}")
        return _task_out(task)

    # -- jobs ---------------------------------------------------------------------------
    def _known_task(name: str, who: Principal) -> None:
        try:
            task_cls = state.registry.task(name)
        except PluginError as error:
            raise HTTPException(422, str(error)) from None
        _may_run(task_cls, who)

    def _may_run(task_cls: Any, who: Principal) -> None:
        """403 unless the key may run this task: code-executing tasks need an operator's grant."""
        if getattr(task_cls, "operator_only", False):
            raise HTTPException(403, f"task {task_cls.name} is for operators only (it writes to the server's model "
                                     "store): run it with the CLI on the server, e.g. `verticals train`")
        if getattr(task_cls, "executes_code", False) and not who.allow_code_execution:
            how = ("this server runs with --no-auth, where code execution is never allowed: use API keys"
                   if not auth else
                   "an operator must grant it with: verticals keys create --tenant "
                   f"{who.tenant} --name NAME --allow-code-execution (and use that key)")
            raise HTTPException(403, f"task {task_cls.name} executes submitted code on the server, and this API key "
                                     f"is not allowed to run code: {how}. See docs/security.md")

    def _create(who: Principal, idempotency_key: str | None, body_hash: str, make: Any) -> JSONResponse:
        state.runner.check()
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise HTTPException(422, "Idempotency-Key must be 1 to 255 characters")
            outcome, job_id = state.tenants.claim_idempotency_key(who.tenant, idempotency_key, body_hash)
            if outcome == "conflict":
                raise HTTPException(409, "this Idempotency-Key was already used with a different request body: "
                                         "use a new key for a new job")
            if outcome == "same":
                if job_id is None:
                    raise HTTPException(409, "a request with this Idempotency-Key is still being processed: "
                                             "retry in a moment")
                return JSONResponse(_job_out(state.store.summary(job_id)).model_dump(mode="json"), status_code=200,
                                    headers={"Idempotent-Replayed": "true", "Location": f"/v1/jobs/{job_id}"})
        try:
            job_id = make()
        except BaseException:
            if idempotency_key is not None:
                state.tenants.release_idempotency_key(who.tenant, idempotency_key)
            raise
        if idempotency_key is not None:
            state.tenants.complete_idempotency_key(who.tenant, idempotency_key, job_id)
        state.runner.submit(job_id)
        return JSONResponse(_job_out(state.store.summary(job_id)).model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/v1/jobs/{job_id}"})

    job_responses = {**ERRORS, **FORBIDDEN,
                     409: {"model": ErrorOut, "description": "Idempotency-Key reused with another body"},
                     413: {"model": ErrorOut, "description": "Too many items or too large a body"},
                     422: {"model": ErrorOut}, 503: {"model": ErrorOut, "description": "No executor"}}

    @app.post("/v1/jobs", response_model=JobOut, status_code=202, tags=["jobs"], responses=job_responses)
    def create_job(body: JobCreate, who: Who,
                   idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> JSONResponse:
        """Create a job from JSON items; it runs in the background. Poll GET /v1/jobs/{id} or use a webhook."""
        _known_task(body.task, who)
        if len(body.items) > state.limits.max_job_items:
            raise HTTPException(413, f"{len(body.items)} items is more than the {state.limits.max_job_items} one JSON "
                                     "request takes (VERTICALS_API_MAX_JOB_ITEMS): upload a file to "
                                     "POST /v1/jobs/upload instead")
        hashed = {**body.model_dump(mode="json"),  # secret parameters enter the hash as their fingerprint
                  "params": redact_request_params(state.registry.task(body.task).Params, body.params)}
        body_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()
        return _create(who, idempotency_key, body_hash, lambda: submit_job(
            state.store, state.registry, body.task, body.items, body.params, {"purge_inputs": body.purge_inputs},
            body.chunk_size, tenant=who.tenant))

    @app.post("/v1/jobs/upload", response_model=JobOut, status_code=202, tags=["jobs"], responses=job_responses)
    async def upload_job(
        who: Who,
        task: Annotated[str, Form(description="Task name", min_length=1, max_length=200)],
        file: Annotated[UploadFile, File(description="CSV (header row), JSONL or TXT (one text per line), UTF-8")],
        params: Annotated[str, Form(description="Task parameters as a JSON object")] = "{}",
        text_column: Annotated[str | None, Form(description="Column holding the task's text field")] = None,
        format: Annotated[str | None, Form(description="csv, jsonl or txt (default: from the file name)")] = None,
        chunk_size: Annotated[int | None, Form(ge=1, le=100_000)] = None,
        purge_inputs: Annotated[bool, Form()] = False,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        """Create a job from an uploaded file, streamed into the database row by row."""
        _known_task(task, who)
        try:
            parsed_params = json.loads(params)
        except json.JSONDecodeError:
            raise HTTPException(422, "params must be a JSON object, e.g. {\"mode\": \"fast\"}") from None
        if not isinstance(parsed_params, dict):
            raise HTTPException(422, "params must be a JSON object, e.g. {\"mode\": \"fast\"}")
        kind = upload_format(file.filename, format)
        task_cls = state.registry.task(task)
        mapping: dict[str, str] = {}
        if text_column:
            if not task_cls.text_field:
                raise HTTPException(422, f"{task} has no single text field, so text_column cannot be used")
            mapping[task_cls.text_field] = text_column
        extra = json.dumps([task, redact_request_params(task_cls.Params, parsed_params), text_column, kind, chunk_size,
                            purge_inputs], sort_keys=True, default=str)

        def rows() -> Iterator[dict[str, Any]]:
            return map_fields(iter_rows(file.file, kind), dict(mapping), required=task_cls.text_field,
                              pick="the form field text_column=COLUMN")

        def make() -> str:
            return submit_job(state.store, state.registry, task, rows(), parsed_params,
                              {"purge_inputs": purge_inputs, "source": kind}, chunk_size, tenant=who.tenant,
                              allow_empty=False)

        def work() -> JSONResponse:
            count, digest = scan(file.file, kind, extra.encode())  # every row parses before a job exists
            if not count:
                raise InputError("the upload has no rows (an empty file, or a header and no row): nothing to run")
            first = rows()
            try:
                next(first)  # column mapping problems are reported before a job exists
            finally:
                first.close()
            return _create(who, idempotency_key, digest, make)

        try:
            return await run_in_threadpool(work)
        finally:
            await file.close()

    evals.add_routes(app, state, Who, owned_job, _known_task, {**ERRORS, **FORBIDDEN, 422: {"model": ErrorOut}})

    @app.get("/v1/jobs", response_model=JobList, tags=["jobs"], responses=ERRORS)
    def list_jobs(who: Who, limit: Annotated[int, Query(ge=1, le=200)] = 20,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> JobList:
        """The tenant's jobs, newest first."""
        jobs = state.store.list_jobs(limit, offset, tenant=who.tenant)
        return JobList(jobs=[_job_out(state.store.summary(j.id)) for j in jobs],
                       next_offset=offset + limit if len(jobs) == limit else None)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    def job_status(job_id: OwnedJob) -> JobOut:
        """Status, counts, progress, throughput and ETA of a job."""
        return _job_out(state.store.summary(job_id))

    def _result(item: Any, include_inputs: bool) -> dict[str, Any]:
        row = {"seq": item.seq, "status": item.status, "output": item.output, "error": item.error}
        if include_inputs:
            row["input"] = item.input
        return row

    StatusFilter = Annotated[str | None, Query(pattern="^(pending|succeeded|failed|cancelled)$",
                                               description="Only items with this status")]

    @app.get("/v1/jobs/{job_id}/results", response_model=ResultPage, tags=["results"], responses=ERRORS,
             response_model_exclude_unset=True)
    def results(job_id: OwnedJob, status: StatusFilter = None,
                offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="First item number (seq)")] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100, include_inputs: bool = False) -> ResultPage:
        """One page of results in input order (seq >= offset)."""
        items = list(state.store.iter_items(job_id, status=status, offset=offset, limit=limit))
        return ResultPage(job_id=job_id, items=[ResultOut(**_result(i, include_inputs)) for i in items],
                          next_offset=items[-1].seq + 1 if len(items) == limit else None)

    @app.get("/v1/jobs/{job_id}/results.ndjson", tags=["results"], responses={
        **ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "One JSON result per line"}})
    def results_ndjson(job_id: OwnedJob, status: StatusFilter = None, include_inputs: bool = False,
                       ) -> StreamingResponse:
        """Every result as NDJSON, streamed (constant memory, any job size)."""

        def lines() -> Iterator[bytes]:
            for item in state.store.iter_items(job_id, status=status):
                yield (json.dumps(_result(item, include_inputs), ensure_ascii=False) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/v1/jobs/{job_id}/summary", tags=["results"], responses=ERRORS)
    def job_summary(job_id: OwnedJob) -> JSONResponse:
        """The task's job-level summary (summary.json), once the job finished."""
        artifact = state.store.get_artifact(job_id, "summary.json")
        if artifact is None:
            raise HTTPException(404, "this job has no summary (yet): it appears when the job finishes, "
                                     "for tasks that compute one")
        return JSONResponse(json.loads(artifact.content))

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"], responses=ERRORS)
    def cancel(job_id: OwnedJob) -> JobOut:
        """Cancel: running chunks stop at their next batch; items not started are cancelled."""
        cancel_job(state.store, job_id)
        if state.store.summary(job_id)["status"] == "queued":
            state.store.cancel_pending(job_id)
            finish_if_done(state.store, state.registry, job_id)
        return _job_out(state.store.summary(job_id))

    @app.post("/v1/jobs/{job_id}/retry", response_model=RetryOut, tags=["jobs"],
              responses={**ERRORS, **FORBIDDEN, 409: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    def retry(job_id: OwnedJob, who: Who) -> RetryOut:
        """Re-run the failed items of a finished job; re-dispatch a job still queued."""
        state.runner.check()
        task_name = state.store.job(job_id).task
        if task_name in state.registry.tasks:
            _may_run(state.registry.tasks[task_name], who)
        if state.store.summary(job_id)["status"] == "running":
            raise HTTPException(409, "the job is still running: retry its failed items once it finished")
        count = state.store.reset_failed(job_id)
        if count or state.store.summary(job_id)["counts"].get("pending"):
            state.runner.submit(job_id)
        return RetryOut(requeued=count, job=_job_out(state.store.summary(job_id)))

    # -- predict -----------------------------------------------------------------------------
    @app.post("/v1/predict", response_model=PredictOut, tags=["predict"], response_model_exclude_unset=True, responses={
        **ERRORS, **FORBIDDEN, 413: {"model": ErrorOut, "description": "More items than a synchronous call takes"},
        422: {"model": ErrorOut}})
    def predict_endpoint(body: PredictIn, who: Who) -> PredictOut:
        """Run a task on a few items now and return the results (nothing is stored)."""
        _known_task(body.task, who)
        with state.predict_slots:
            try:
                results = predict(state.registry, state.host, body.task, body.items, body.params)
            except TooManyItems as error:
                raise HTTPException(413, str(error)) from None
        return PredictOut(task=body.task, results=[ResultOut(**r) for r in results])

    # -- webhooks -------------------------------------------------------------------------------
    def _webhook_out(hook: Any, secret: bool = False) -> WebhookOut:
        return WebhookOut(id=hook.id, url=hook.url, events=hook.events, created_at=_iso(hook.created_at),
                          secret=hook.secret if secret else None)

    @app.post("/v1/webhooks", response_model=WebhookOut, status_code=201, tags=["webhooks"],
              responses={**ERRORS, 422: {"model": ErrorOut}})
    def create_webhook(body: WebhookIn, who: Who) -> WebhookOut:
        """Register a URL for job.finished / job.failed events. The signing secret is returned once."""
        blocked = webhooks.blocked_reason(body.url)
        if blocked:
            raise HTTPException(422, blocked)
        hook = state.tenants.create_webhook(who.tenant, body.url, list(body.events or []) or None, body.secret)
        return _webhook_out(hook, secret=True)

    @app.get("/v1/webhooks", response_model=list[WebhookOut], tags=["webhooks"], responses=ERRORS)
    def list_webhooks(who: Who) -> list[WebhookOut]:
        """The tenant's webhooks (secrets are not shown again)."""
        return [_webhook_out(h) for h in state.tenants.list_webhooks(who.tenant)]

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204, tags=["webhooks"], responses=ERRORS)
    def delete_webhook(webhook_id: str, who: Who) -> Response:
        """Stop sending events to this webhook (its delivery log stays)."""
        if not state.tenants.delete_webhook(webhook_id[:64], who.tenant):
            raise HTTPException(404, f"no webhook {webhook_id[:64]!r} for tenant {who.tenant!r}")
        return Response(status_code=204)

    @app.get("/v1/webhook-deliveries", response_model=list[DeliveryOut], tags=["webhooks"], responses=ERRORS)
    def deliveries(who: Who, webhook_id: Annotated[str | None, Query(max_length=64)] = None,
                   job_id: Annotated[str | None, Query(max_length=64)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> list[DeliveryOut]:
        """The delivery log: each event, its attempts, the receiver's last answer."""
        rows = state.tenants.list_deliveries(who.tenant, webhook_id, job_id, limit, offset)
        return [_delivery_out(d) for d in rows]

    from verticals.api.dashboard import add_dashboard

    add_dashboard(app, auth)
    return app
