"""Every error of the API as RFC 9457 problem details (``application/problem+json``).

``detail`` says what happened and what to do, in API terms (form fields and endpoints, never CLI options).
"""

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from verticals.api.runner import ExecutorUnavailable
from verticals.core.io import InputError
from verticals.core.jobs.engine import JobError, StoreFull
from verticals.core.jobs.service import JobConflict, JobNotFound
from verticals.core.store.secrets import SecretKeyError
from verticals.core.text import MAX_DEPTH
from verticals.tenancy.quotas import QuotaExceeded
from verticals.tenancy.tenants import TenantError

log = logging.getLogger("verticals.api")


class _AsciiJSON(JSONResponse):
    """JSON written with ``\\u`` escapes: a message that quotes what a client sent (a lone surrogate too)
    always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response as RFC 9457 problem details; ``detail`` is the message (as it always was)."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return _AsciiJSON({"type": "about:blank", "title": title, "status": status, "detail": detail},
                      status_code=status, headers=headers, media_type="application/problem+json")


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and isinstance(error.__cause__, RecursionError):  # FastAPI's JSON parse
            return problem(422, f"the request body is JSON nested too deeply (items and parameters nest at most "
                                f"{MAX_DEPTH} levels)")
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
        if isinstance(error, StoreFull):  # the server's to fix: 507 Insufficient Storage
            log.error("%s", error)
            return problem(507, str(error))
        return problem(422, str(error))

    @app.exception_handler(JobNotFound)
    async def _job_not_found(_request: Request, error: JobNotFound) -> JSONResponse:
        return problem(404, str(error))

    @app.exception_handler(JobConflict)
    async def _job_conflict(_request: Request, error: JobConflict) -> JSONResponse:
        return problem(409, str(error))

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, error: InputError) -> JSONResponse:
        return problem(422, str(error))

    @app.exception_handler(QuotaExceeded)
    async def _quota(_request: Request, error: QuotaExceeded) -> JSONResponse:
        return problem(429, error.detail, {"Retry-After": str(error.retry_after)})

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
