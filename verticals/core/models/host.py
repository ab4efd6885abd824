"""Model specs and the per-process model cache (:class:`ModelHost`).

:class:`~verticals.contract.ModelSpec` and :class:`~verticals.contract.Packaged` are part of the plugin
contract (:mod:`verticals.contract`); where weights are looked for, and in which order, is
:mod:`verticals.core.models.sources`. Both are re-exported here for the code that imports them from this module.
The host loads each model once per process through :mod:`verticals.core.models.inference`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from verticals.config import settings
from verticals.contract import MODEL_KINDS, ModelKind, ModelSpec, Packaged
from verticals.core import tracing
from verticals.core.models.metering import paused
from verticals.core.models.sources import (
    ModelUnavailable,
    ResolvedSource,
    locate_packaged,
    parse_overrides,
    resolve,
)

if TYPE_CHECKING:
    from verticals.core.models.inference import LoadedModel
    from verticals.core.models.runtimes import Variant

__all__ = [
    "MODEL_KINDS",
    "ModelHost",
    "ModelKind",
    "ModelSpec",
    "ModelUnavailable",
    "Packaged",
    "ResolvedSource",
    "locate_packaged",
    "parse_overrides",
    "resolve",
]

log = logging.getLogger(__name__)


class ModelHost:
    """Loads each model once per process and shares it across tasks.

    Loaded models are kept in LRU order; when ``memory_budget_mb`` (or
    ``VERTICALS_MODEL_MEMORY_MB``) is set, the least recently used models are
    evicted once the loaded total exceeds it.

    ``runtimes`` forces a model's runtime in this host (``torch``, ``onnx``, ``onnx-int8``, ``auto`` or a built
    :class:`~verticals.core.models.runtimes.Variant`), winning over the settings (the gate and benchmarks use it);
    ``store_root`` is the model store where ONNX variants and their records are kept (default: the settings').
    """

    def __init__(
        self,
        specs: dict[str, ModelSpec],
        overrides: dict[str, str] | None = None,
        device: str | None = None,
        memory_budget_mb: float | None = None,
        runtimes: dict[str, str | Variant] | None = None,
        store_root: Path | None = None,
    ):
        self.specs = specs
        config = settings()
        self.overrides = overrides if overrides is not None else parse_overrides(config.models)
        self.device = device
        budget = memory_budget_mb if memory_budget_mb is not None else config.model_memory_mb
        self.memory_budget_bytes = int(float(budget) * 2**20) if budget else None
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.RLock()
        self.load_seconds: dict[str, float] = {}
        self.runtimes: dict[str, str | Variant] = dict(runtimes or {})
        self.store_root = store_root
        self._named: dict[str, ModelSpec] = {}  # models a job's parameters named, by their key (see named())

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name] if name in self.specs else self._named[name]
        except KeyError:
            known = ", ".join(sorted(self.specs)) or "none"
            raise KeyError(f"unknown model {name!r}; registered models: {known}") from None

    def resolve(self, name: str) -> ResolvedSource:
        if name in self._named:  # its folder or hub id is the job's: no operator override replaces it
            return resolve(self._named[name], None, use_store=False)
        return resolve(self.spec(name), self.overrides.get(name))

    def named(self, spec: ModelSpec) -> str:
        """The key under which a model a job's parameters built (``Task.models_for``) is loaded and kept: one per
        distinct spec (name, folder or hub id, revision...), never a registered name."""
        with self._lock:
            for key, known in self._named.items():
                if known == spec:
                    return key
            key = f"{spec.name}@{spec.local_path or spec.hub_id or ''}#{len(self._named) + 1}"
            self._named[key] = spec
            return key

    def get(self, name: str | ModelSpec) -> LoadedModel:
        if isinstance(name, ModelSpec):
            name = self.named(name)
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            from verticals.core.models.inference import HEAD_FILE, load_model
            from verticals.core.models.runtimes import attach

            spec = self.spec(name)
            source = self.resolve(name)
            started = time.perf_counter()
            with paused(), tracing.span("verticals.model_load", **{"verticals.model": name}):
                # loading (and its precision probes) is not a job's model time
                if spec.kind == "token-classifier" and (source.path / HEAD_FILE).exists():
                    from verticals.core.models.tagging import EncoderTokenTagger  # a tag head over a shared encoder

                    model: LoadedModel = EncoderTokenTagger.load(spec, source, self)
                else:
                    model = load_model(spec, source, host=self, device=self.device)
                attach(model, self, self.runtimes.get(name))
            self.load_seconds[name] = time.perf_counter() - started
            log.info(
                "loaded model %s from %s %s on %s (%s, %s) in %.1fs", name, source.kind, source.reference,
                model.device, model.runtime_label, model.precision_label, self.load_seconds[name],
            )
            self._loaded[name] = model
            self._evict(keep=name)
            return model

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def loaded_devices(self) -> list[tuple[str, str, str]]:
        """(name, device, runtime) of each loaded model (``verticals workers`` shows them)."""
        with self._lock:
            return [(name, str(model.device), model.runtime_label) for name, model in self._loaded.items()]

    def unload(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)

    def _evict(self, keep: str) -> None:
        if self.memory_budget_bytes is None:
            return
        while sum(m.memory_bytes for m in self._loaded.values()) > self.memory_budget_bytes and len(self._loaded) > 1:
            victim = next(n for n in self._loaded if n != keep)
            log.info("evicting model %s to stay within the model memory budget", victim)
            self._loaded.pop(victim)
