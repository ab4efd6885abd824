"""Request size limits (``VERTICALS_API_MAX_BODY_MB``, ``_MAX_UPLOAD_MB``, ``_MAX_JOB_ITEMS``) and their middleware."""

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from verticals.api.errors import problem
from verticals.config import Settings, settings

MB = 1 << 20


@dataclass
class Limits:
    max_body_bytes: int  # JSON bodies
    max_upload_bytes: int  # file uploads
    max_job_items: int  # items in one JSON job creation

    @classmethod
    def from_settings(cls, config: Settings) -> "Limits":
        return cls(max_body_bytes=config.api_max_body_mb * MB, max_upload_bytes=config.api_max_upload_mb * MB,
                   max_job_items=config.api_max_job_items)

    @classmethod
    def from_env(cls) -> "Limits":
        return cls.from_settings(settings())


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
