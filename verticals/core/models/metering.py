"""Model time and tokens, per model and device, of whatever runs under a :class:`Meter` (a job's chunk).

:func:`~verticals.core.jobs.engine.run_chunk` runs each chunk under a fresh :class:`Meter`
(:func:`metering`); every model call of the host's models (``embed``, ``classify``, ``tag``, ``generate``... of
:class:`~verticals.core.models.inference.LoadedModel` and its subclasses, wrapped by
:func:`wrap_model_methods`) adds its wall time, the tokens it tokenized and generated, and (CUDA) the process's
peak of allocated GPU memory to the meter of the thread that calls it. A call made inside another one (a head
classifier calling its encoder) counts once, for the outer model. Nothing is metered outside a meter (``predict``,
loading: the host pauses the meter while it loads a model and checks its precision).

Nothing here imports torch at import time; the cost of a metered call is two ``perf_counter`` reads and a lock.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from verticals.core import tracing

__all__ = ["METERED_METHODS", "Meter", "ModelUse", "count_tokens", "metering", "paused", "wrap_model_methods"]

METERED_METHODS = frozenset({"embed", "classify", "tag", "generate", "token_probabilities",
                             "integrated_gradients",  # explanations (its tokens: one per step)
                             "classify_with_contributions",  # a prediction with its tokens' logit shares
                             "classify_with_gradients"})  # a prediction with its layer integrated gradients

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ModelUse:
    """What one model on one device did for the meter's owner."""

    seconds: float = 0.0
    tokens: int = 0
    calls: int = 0
    peak_memory_bytes: int | None = None  # CUDA: the process's peak of allocated GPU memory (torch); else unknown


class Meter:
    """Model use of one unit of work (a chunk run), per (model name, device). Thread-safe."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], ModelUse] = {}
        self._lock = threading.Lock()

    def add(self, model: str, device: str, seconds: float = 0.0, tokens: int = 0, calls: int = 0,
            peak_memory_bytes: int | None = None) -> None:
        with self._lock:
            use = self.models.setdefault((model, device), ModelUse())
            use.seconds += seconds
            use.tokens += tokens
            use.calls += calls
            if peak_memory_bytes is not None:
                use.peak_memory_bytes = max(use.peak_memory_bytes or 0, peak_memory_bytes)

    @property
    def seconds(self) -> float:
        return sum(use.seconds for use in self.models.values())


_METER: ContextVar[Meter | None] = ContextVar("verticals_meter", default=None)
_CALL: ContextVar[list[int] | None] = ContextVar("verticals_metered_call", default=None)  # tokens of the outer call
_IN_SPAN: ContextVar[bool] = ContextVar("verticals_forward_span", default=False)  # inside a forward pass's span


@contextlib.contextmanager
def metering(meter: Meter) -> Iterator[Meter]:
    """Meter the model calls of this thread (and of the contexts copied from it) into ``meter``."""
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Nothing metered inside, and no forward span (model loading: its probes are not the job's work)."""
    token, call, quiet = _METER.set(None), _CALL.set(None), _IN_SPAN.set(True)
    try:
        yield
    finally:
        _IN_SPAN.reset(quiet)
        _CALL.reset(call)
        _METER.reset(token)


def count_tokens(count: int) -> None:
    """Add ``count`` tokens to the metered model call in progress (none: nothing)."""
    tokens = _CALL.get()
    if tokens is not None:
        tokens[0] += int(count)


def _device_label(model: Any) -> str:
    device = getattr(model, "device", None)
    return str(device) if device is not None else "unknown"


def _peak_memory(device: Any) -> int | None:
    if getattr(device, "type", None) != "cuda":
        return None
    try:
        import torch

        return int(torch.cuda.max_memory_allocated(device))
    except Exception:  # no CUDA runtime in this process after all: unknown
        return None


def metered(method: F) -> F:
    """Wrap a model method: under a meter, its outermost call adds its time and tokens to the meter."""
    if getattr(method, "__verticals_metered__", False):
        return method

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if tracing.enabled() and not _IN_SPAN.get():  # the forward pass's span (OTEL_* set): outermost call only
            flag = _IN_SPAN.set(True)
            try:
                spec = getattr(self, "spec", None)
                size = len(args[0]) if args and hasattr(args[0], "__len__") else None
                with tracing.span("verticals.forward", **{"verticals.model": getattr(spec, "name", None),
                                                          "verticals.device": _device_label(self),
                                                          "verticals.method": method.__name__,
                                                          "verticals.batch_size": size}):
                    return wrapper(self, *args, **kwargs)
            finally:
                _IN_SPAN.reset(flag)
        meter = _METER.get()
        if meter is None or _CALL.get() is not None:  # not metered, or inside a metered call: counted there
            return method(self, *args, **kwargs)
        tokens = [0]
        call = _CALL.set(tokens)
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            _CALL.reset(call)
            spec = getattr(self, "spec", None)
            meter.add(getattr(spec, "name", type(self).__name__), _device_label(self), seconds=elapsed,
                      tokens=tokens[0], calls=1, peak_memory_bytes=_peak_memory(getattr(self, "device", None)))

    wrapper.__verticals_metered__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def wrap_model_methods(cls: type) -> None:
    """Meter the public model methods (:data:`METERED_METHODS`) that ``cls`` defines itself
    (``LoadedModel.__init_subclass__`` calls it, so a plugin's own model class is metered too)."""
    for name in METERED_METHODS:
        method = cls.__dict__.get(name)
        if callable(method):
            setattr(cls, name, metered(method))
