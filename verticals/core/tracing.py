"""OpenTelemetry spans of a job's life: submit, the hand-over to the executor (and the Celery hop), each chunk, each
batch and each model call (forward pass), with the job id, task, batch size and device as attributes.

Off unless the standard ``OTEL_*`` variables ask for traces (``OTEL_TRACES_EXPORTER`` other than ``none``, or an
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; ``OTEL_SDK_DISABLED=true`` wins) and the
OpenTelemetry API is installed. Off, nothing of OpenTelemetry is imported and a span costs one cached check.

verticals is a library here, as OpenTelemetry intends: it uses the API only; the SDK and the exporter the variables
name are the process's, e.g. ``opentelemetry-instrument verticals serve`` (packages ``opentelemetry-distro`` and
``opentelemetry-exporter-otlp``), which sets the global tracer provider from the same variables. Spans go to
whatever provider the process has (none: the API's no-op).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["attach", "carrier", "enabled", "server_span", "span"]

_ASKING = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@functools.cache
def enabled() -> bool:
    """Whether this process traces (read once: the ``OTEL_*`` variables are the process's start-up settings)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not (exporter and exporter != "none") and not any(os.environ.get(name) for name in _ASKING):
        return False
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


def _started(name: str, attributes: dict[str, Any], **options: Any) -> contextlib.AbstractContextManager[Any]:
    """The span ``name`` with ``attributes`` (those with a None value left out) as the current one inside the
    block; ``options`` go to the tracer (a parent context, a kind). Off: a block that yields None."""
    if not enabled():
        return contextlib.nullcontext()
    from opentelemetry import trace

    return trace.get_tracer("verticals").start_as_current_span(
        name, attributes={key: value for key, value in attributes.items() if value is not None}, **options)


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` (``verticals.chunk``...) around the block, child of the current one; attributes with
    a None value are left out. Off: nothing (yields None)."""
    return _started(name, attributes)


def server_span(name: str, headers: dict[str, str], **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A server span named ``name`` (a front end's request) around the block: it continues the trace the request's
    ``headers`` carry (``traceparent``: a client that traces), else it begins one. Off: nothing (yields None)."""
    if not enabled():
        return contextlib.nullcontext()
    from opentelemetry import propagate, trace

    return _started(name, attributes, context=propagate.extract(headers), kind=trace.SpanKind.SERVER)


def carrier() -> dict[str, str]:
    """The current trace context as message headers (``traceparent``...), for a hop to another process or thread;
    empty when off."""
    if not enabled():
        return {}
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextlib.contextmanager
def attach(headers: dict[str, Any] | None) -> Iterator[None]:
    """Continue the trace ``headers`` carry (from :func:`carrier`) inside the block."""
    if not enabled() or not headers:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract({k: v for k, v in headers.items() if isinstance(v, str)}))
    try:
        yield
    finally:
        context.detach(token)
