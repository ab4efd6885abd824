"""Every error of the API as RFC 9457 problem details (``application/problem+json``).

``detail`` says what happened and what to do, in API terms (form fields and endpoints, never CLI options).
The status of each expected error is its meaning in :mod:`verticals.core.errors` (one table for the API, the
CLI and the SDK).
"""

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from verticals.core.errors import expected_errors, meaning_of
from verticals.core.text import MAX_DEPTH
from verticals.registry import HookError
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

    async def _expected(_request: Request, error: Exception) -> JSONResponse:
        meaning = meaning_of(error)
        if meaning is None:  # pragma: no cover - only the table's classes are registered
            raise error
        if meaning.operator:  # the operator's to fix (messages name settings or paths, never a secret)
            log.error("%s", error.describe(sensitive=True) if isinstance(error, HookError) else error)  # no PHI
        retry_after = getattr(error, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return problem(meaning.status, meaning.detail or str(error), headers)

    # one handler for every expected error: the status (and whether the operator must hear of it) is the
    # error's meaning in verticals.core.errors, the same table the CLI and the SDK read
    for cls in (*expected_errors(), QuotaExceeded, TenantError):
        app.add_exception_handler(cls, _expected)
