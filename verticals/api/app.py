"""The REST API: ``create_app()`` builds the FastAPI application that ``verticals serve`` runs.

Every ``/v1`` route needs ``Authorization: Bearer <API key>`` (``verticals keys create``) unless
the server was started with ``--no-auth`` (local use only; every request is then tenant
``local``). A tenant only ever sees its own jobs, results, webhooks and deliveries: another
tenant's job id answers 404, exactly like an unknown one.

This module is the API's composition root: it builds the shared state (:class:`~verticals.api.deps.ApiState`),
the middleware and error handlers, and includes the routers of :mod:`verticals.api.routes`; the routes
reach the state through the dependencies of :mod:`verticals.api.deps`.
"""

import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from verticals import __version__
from verticals.api.deps import LOCAL_TENANT, ApiState, Principal
from verticals.api.errors import add_error_handlers, problem
from verticals.api.limits import MB, BodyLimit, Limits
from verticals.api.routes import discovery, evals, fleet, jobs, ops, predict, usage
from verticals.api.routes import webhooks as webhook_routes
from verticals.config import settings
from verticals.core import tracing
from verticals.core.store import Store
from verticals.registry import Registry
from verticals.tenancy import webhooks

__all__ = ["LOCAL_TENANT", "MB", "ApiState", "BodyLimit", "Limits", "Principal", "create_app", "problem"]

log = logging.getLogger("verticals.api")


def create_app(store: Store | None = None, registry: Registry | None = None, auth: bool = True,
               threads: int | None = None, background: bool = True,
               preload: bool | Sequence[str] | None = None) -> FastAPI:
    """The API app. ``background=False`` starts no job threads or webhook deliverer (unit tests).

    ``preload``: load models at start-up, before the first request is taken (``verticals serve --preload``):
    ``True`` every registered task's, a list of task names those tasks'; ``None``: ``VERTICALS_PRELOAD``."""
    if store is None:
        from verticals.core.store import open_store

        store = open_store()
    if registry is None:
        from verticals.registry import get_registry

        registry = get_registry()
    outbox = webhooks.Outbox(store).attach_to(registry)  # jobs finished here reach the tenants' webhooks
    config = settings()  # read once here, passed down
    if preload is None:
        preload = config.preload
    preload_tasks = None if preload is True else list(preload) if preload else []
    for name in preload_tasks or []:
        registry.task(name)  # an unknown name is refused now (with its "did you mean"), not at start-up
    state = ApiState(store, registry, auth, threads or config.api_threads, Limits.from_settings(config), config,
                     outbox=outbox)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if not auth:
            log.warning("AUTHENTICATION IS DISABLED (--no-auth): every request acts as tenant %r. "
                        "For local use only; never expose this server.", LOCAL_TENANT)
            state.tenants.ensure_tenant(LOCAL_TENANT)
        if preload:  # before the server takes requests: the first one does not pay for loading models
            from verticals.workers import preload_models

            await run_in_threadpool(preload_models, registry, state.host, preload_tasks)
        if background:
            state.jobs.deliver_pending()  # job_finished events left pending by a process that died
            state.runner.start()
            state.deliverer.start()
        yield
        if background:
            state.deliverer.stop()
            state.runner.stop()

    make_app: Any
    try:  # Swagger UI assets served from the package, not a CDN (machines may be offline)
        from fastapi_offline import FastAPIOffline as make_app
    except ImportError:  # pragma: no cover - the api extra installs it
        make_app = FastAPI
    app = make_app(title="verticals", version=__version__, lifespan=lifespan,
                   description="Vertical AI tasks on transformer models as batch jobs: REST API. "
                               "Authenticate with `Authorization: Bearer <API key>`.")
    app.state.api = state
    app.add_middleware(BodyLimit, limits=state.limits)
    if tracing.enabled() and not framework_traces_requests():  # each request: the front end of its job's trace
        app.add_middleware(TraceRequests)
    add_error_handlers(app)
    for router in (ops.router, discovery.router, jobs.router, evals.router, predict.router, webhook_routes.router,
                   usage.router, fleet.router):
        app.include_router(router)

    from verticals.api.dashboard import add_dashboard

    add_dashboard(app, auth)
    return app


def framework_traces_requests() -> bool:
    """Whether FastAPI itself makes each request's server span: newer FastAPI has OpenTelemetry built in
    (``fastapi.telemetry``: a server span per request with its route and status, continuing a ``traceparent``, once
    the process has a tracer provider); older ones leave it to :class:`TraceRequests`."""
    import importlib.util

    return importlib.util.find_spec("fastapi.telemetry") is not None


class TraceRequests:
    """Each HTTP request as an OpenTelemetry server span, ``POST /v1/jobs`` (the route's template, not the ids
    of its path), with its method, route and status code: the root of the trace of a job the request creates,
    retries or resumes (:mod:`verticals.core.tracing`), or the child of the caller's span when the request
    carries a ``traceparent``. Added only when tracing is on and FastAPI does not make that span itself
    (:func:`framework_traces_requests`)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
        method, answered = scope["method"], {}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        with tracing.server_span(f"{method} {scope['path']}", headers,
                                 **{"http.request.method": method}) as current:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)  # FastAPI's route, once the request was routed
                if current is not None:
                    current.update_name(f"{method} {route}" if route else method)
                    if route:
                        current.set_attribute("http.route", route)
                    if "status" in answered:
                        current.set_attribute("http.response.status_code", answered["status"])
