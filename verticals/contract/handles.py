"""What a task is given, typed: the loaded models of ``Task.run(batch, models, ctx)`` and the job summary of the
``job_submitted`` / ``job_finished`` hooks.

The core's loaded models (``verticals.core.models.inference``, ``verticals.core.models.tagging``) are these
protocols structurally (mypy checks it there); the contract does not import them. Each protocol is
``runtime_checkable``, so a task narrows the handle of a role by what it needs, and a wrong model kind fails
with a clear message rather than an ``AttributeError`` deep in ``run``::

    encoder = models["encoder"]
    if not isinstance(encoder, Encoder):
        raise TypeError(f"role 'encoder' needs an encoder, got a {encoder.kind}")
    vectors = encoder.embed([item.text for item in batch])

Arrays are numpy arrays (``numpy`` is a dependency of the core; the contract names it for type checkers only).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

from verticals.contract.models import ModelSpec

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AttributingClassifier", "ChatModel", "Classifier", "Encoder", "Generator", "JobSummary", "ModelHandle",
           "ModelRoles", "Tagger"]


@runtime_checkable
class ModelHandle(Protocol):
    """Every loaded model: its spec, its kind (``encoder``, ``sequence-classifier``, ``token-classifier``,
    ``causal-lm``, ``seq2seq``), and where its weights came from (``provenance``: source, reference, revision,
    runtime, precision; stored with each result)."""

    spec: ModelSpec
    kind: str

    def provenance(self) -> dict[str, Any]: ...


@runtime_checkable
class Encoder(ModelHandle, Protocol):
    """An ``encoder``: one vector per text (L2-normalized unless ``normalize=False``), shape ``(len(texts),
    dim)``; ``adapter``: the key of a LoRA adapter added to this encoder, or None for the base weights."""

    def embed(self, texts: Sequence[str], normalize: bool = True, adapter: str | None = None) -> np.ndarray: ...


@runtime_checkable
class Classifier(ModelHandle, Protocol):
    """A ``sequence-classifier``: probabilities, shape ``(len(texts), len(labels))``, columns in the order of
    ``labels`` (lower-case); ``pairs``: a second text per text (text-pair classification)."""

    @property
    def labels(self) -> list[str]: ...

    def classify(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray: ...


TokenScores = tuple["np.ndarray", list[tuple[int, int]]]  # per text: a score per token and its character offsets


@runtime_checkable
class AttributingClassifier(Classifier, Protocol):
    """A :class:`Classifier` that can also say which tokens a prediction rests on (the model host's classifiers on
    the PyTorch path; an ONNX variant returns probabilities only). Each method has a flag saying whether it
    works on this model and runtime; where it is false the method raises ``RuntimeError``:

    - ``can_decompose``: :meth:`classify_with_contributions`: the probabilities and, from the same forward pass,
      each token's exact share of each label's logit ([tokens, labels]; a linear head over pooled token states);
    - ``can_layer_gradients``: :meth:`classify_with_gradients`: the probabilities and integrated gradients of
      each text's predicted label at the input of an upper encoder layer (the prediction's pass kept the states);
    - ``can_integrate_gradients``: :meth:`integrated_gradients`: integrated gradients of P(``targets[i]``) at the
      input embeddings (a pass of its own).

    Offsets are character spans of each text, ``(0, 0)`` for special tokens."""

    @property
    def can_decompose(self) -> bool: ...

    @property
    def can_layer_gradients(self) -> bool: ...

    @property
    def can_integrate_gradients(self) -> bool: ...

    def classify_with_contributions(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenScores]]: ...

    def classify_with_gradients(self, texts: Sequence[str], steps: int = ..., layer: int = ...
                                ) -> tuple[np.ndarray, list[TokenScores]]: ...

    def integrated_gradients(self, texts: Sequence[str], targets: Sequence[int], steps: int = ...
                             ) -> list[TokenScores]: ...


@runtime_checkable
class Tagger(ModelHandle, Protocol):
    """A ``token-classifier``: per text, its entities as dicts (``start``, ``end``, ``label``, ``score``...)
    scoring at least ``min_score``."""

    def tag(self, texts: Sequence[str], min_score: float = ...) -> list[list[dict[str, Any]]]: ...


@runtime_checkable
class Generator(ModelHandle, Protocol):
    """A ``causal-lm`` or ``seq2seq`` model: one completion per prompt (a causal LM is also a :class:`ChatModel`:
    chat messages, ``temperature``, ``system``, ``seed``)."""

    def generate(self, prompts: Sequence[str], /, max_new_tokens: int = 64) -> list[str]: ...


@runtime_checkable
class ChatModel(Generator, Protocol):
    """A ``causal-lm``: a :class:`Generator` whose prompts may also be chat messages (``[{"role": "user",
    "content": ...}]``: the model's chat template applies), with sampling ``temperature`` (0: greedy), a
    ``system`` message, a ``seed`` for reproducible sampling; other keywords go to the model's ``generate``.
    (``isinstance`` cannot tell it from a seq2seq :class:`Generator`: check ``kind == "causal-lm"``.)"""

    def generate(self, prompts: Sequence[str | list[dict[str, str]]], max_new_tokens: int = 64,
                 temperature: float = 0.0, system: str | None = None, seed: int | None = None,
                 **generate_kwargs: Any) -> list[str]: ...


class ModelRoles(Mapping[str, ModelHandle]):
    """The ``models`` a job's ``Task.run`` receives: each role's model, loaded on first access (``models[role]``),
    and :meth:`spec`, the role's :class:`ModelSpec` read without loading the model (what a task looks at to decide
    whether to use it, e.g. testgen's LLM strategy by the model's size). The core's mapping is one; a task that may
    also be given a plain dict checks ``isinstance(models, ModelRoles)``."""

    @abstractmethod
    def spec(self, role: str) -> ModelSpec:
        """The spec of ``role`` (a registered model, or one the job's parameters named); KeyError for no such role."""

    @abstractmethod
    def __contains__(self, role: object) -> bool:
        """Whether the job has ``role``, without loading its model (``Mapping``'s own ``in`` would: it calls
        ``__getitem__``)."""


class JobSummary(TypedDict, total=False):
    """The job as the hooks ``job_submitted`` and ``job_finished`` receive it (and ``verticals jobs status --json``
    prints it): never item contents. ``status``: a :class:`~verticals.contract.tasks.JobStatus` value;
    ``counts``: items per status (``pending``, ``succeeded``, ``failed``, ``cancelled``; absent: none);
    ``params``: the job's parameters, secrets masked; times are ISO 8601 (UTC) or None."""

    id: str
    task: str
    status: str
    total: int
    done: int
    progress: float
    counts: dict[str, int]
    item_progress: dict[str, Any] | None
    params: dict[str, Any]
    options: dict[str, Any]
    plugin: str | None
    plugin_version: str | None
    cancel_requested: bool
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    elapsed_s: float | None
    tenant: str | None
    usage: dict[str, Any]
