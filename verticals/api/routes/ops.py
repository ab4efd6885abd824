"""Operations: liveness, readiness, Prometheus metrics (no authentication, no tenant data)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from verticals.api.deps import State
from verticals.api.schemas import ErrorOut
from verticals.core.jobs.executor import ExecutorUnavailable

router = APIRouter()


@router.get("/healthz", tags=["ops"], response_class=PlainTextResponse)
def healthz() -> str:
    """Liveness: the process answers."""
    return "ok"


@router.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
def readyz(state: State) -> JSONResponse:
    """Readiness: the database is reachable and migrated, jobs can be executed."""
    from verticals.core.store.db import current_revision, head_revision

    problems = []
    try:
        current = current_revision(state.store.engine)
        if current != head_revision():
            problems.append(f"database at revision {current}, expected {head_revision()}: verticals db upgrade")
    except Exception as error:
        problems.append(f"database unreachable: {type(error).__name__}")
    try:
        state.runner.ready()  # the executor was built, and can take a job now (the broker answers)
    except ExecutorUnavailable as error:
        problems.append(str(error))
    if problems:
        return JSONResponse({"detail": "; ".join(problems)}, status_code=503)
    return JSONResponse({"status": "ready", "executor": state.runner.kind, "tasks": len(state.registry.tasks)})


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
def metrics(state: State) -> Response:
    """Prometheus metrics (aggregates over all tenants; no ids or contents)."""
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard")
