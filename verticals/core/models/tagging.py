"""Serving a token classifier trained by :mod:`verticals.core.models.token_training` (format ``verticals-token-head``).

The folder holds ``verticals_head.json`` (``encoder``: a ModelSpec name, ``labels``: BIO tags, ``layers``: how
many transformer layers the tagger reads, ``adapter`` or ``encoder_weights``) and ``head.safetensors``.
The tagger runs on its own copy of the encoder's first ``layers`` layers with the LoRA update merged into
their weights (so it costs what a plain encoder of that depth costs); the token embeddings are the shared
encoder's own module, not a copy. ``ModelSpec.options["quantize"] = "int8"``: its linear layers are
quantized dynamically (CPU only; the host checks parity against fp32 on probe sentences and falls back when
the scores move more than ``parity_tolerance``).

:meth:`EncoderTokenTagger.tag` cuts long texts into overlapping windows, batches them by token budget like
every other model of the host, and returns character spans: consecutive word pieces whose PHI probability
(1 - P(O)) reaches ``min_score``, grown to whole words; each span carries its label (the entity type with the
most probability mass), ``score`` (mean PHI probability of its pieces) and ``max_score``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from verticals.contract import ModelSpec
from verticals.core.models.batching import token_budget_batches
from verticals.core.models.inference import HEAD_FILE, PARITY_PROBES, EncoderModel, LoadedModel, LoraAdapter, load_model
from verticals.core.models.metering import count_tokens
from verticals.core.models.sources import ResolvedSource

if TYPE_CHECKING:
    from verticals.core.models.host import ModelHost

log = logging.getLogger(__name__)

TOKEN_FORMAT = "verticals-token-head"


def is_token_head(folder: Path) -> bool:
    try:
        return json.loads((Path(folder) / HEAD_FILE).read_text(encoding="utf-8")).get("format") == TOKEN_FORMAT
    except (OSError, ValueError):
        return False


def _truncated_copy(encoder: Any, layers: int | None) -> Any:
    """A copy of a BERT-like encoder with its first ``layers`` layers (own weights), sharing the embeddings."""
    embeddings = encoder.embeddings
    encoder.embeddings = None  # not deep-copied: the copy points at the shared module
    try:
        clone = copy.deepcopy(encoder)
    finally:
        encoder.embeddings = embeddings
    clone.embeddings = embeddings
    if layers is not None:
        clone.encoder.layer = torch.nn.ModuleList(list(clone.encoder.layer)[:layers])
        clone.config = copy.deepcopy(encoder.config)
        clone.config.num_hidden_layers = layers
    if getattr(clone, "pooler", None) is not None:
        clone.pooler = None
    return clone


class EncoderTokenTagger(LoadedModel):
    kind = "token-classifier"

    def __init__(self, spec: ModelSpec, source: ResolvedSource, encoder: EncoderModel, model: torch.nn.Module,
                 config: dict[str, Any], weight: torch.Tensor, bias: torch.Tensor):
        super().__init__(spec, source, model, encoder.tokenizer, encoder.device, encoder.precision)
        self.encoder = encoder
        self.config = config
        self.tags = list(config["labels"])
        self.head = torch.nn.Linear(weight.shape[1], weight.shape[0]).to(encoder.device)
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.copy_(bias)
        self.head.eval()
        self.quantized = False
        entities = sorted({t[2:] for t in self.tags if t != "O"})
        self.entities = entities
        # (tags -> entity) summing matrix: P(entity) = P(B-entity) + P(I-entity)
        self._entity_matrix = np.zeros((len(self.tags), len(entities)), dtype=np.float32)
        for i, tag in enumerate(self.tags):
            if tag != "O":
                self._entity_matrix[i, entities.index(tag[2:])] = 1.0

    @classmethod
    def load(cls, spec: ModelSpec, source: ResolvedSource, host: ModelHost) -> EncoderTokenTagger:
        from safetensors.torch import load_file

        config = json.loads((source.path / HEAD_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(source.path / config.get("weights", "head.safetensors")))
        base = host.get(config["encoder"])
        if not isinstance(base, EncoderModel):
            raise TypeError(f"tagger {spec.name!r} needs an encoder, but {config['encoder']!r} is a {base.kind}")
        if config.get("encoder_weights"):
            folder = (source.path / config["encoder_weights"]).resolve()
            private = ModelSpec(name=f"{spec.name}/encoder", kind="encoder", local_path=str(folder),
                                max_length=base.spec.max_length, max_batch_tokens=base.spec.max_batch_tokens)
            own = load_model(private, ResolvedSource("local", folder, f"{source.reference}/encoder", source.revision),
                             host, device=host.device)
            model = own.model
        else:
            model = _truncated_copy(base.model, config.get("layers"))
            if config.get("adapter"):
                # layers beyond the kept depth are skipped
                LoraAdapter(source.path / config["adapter"]).merge_into(model, skip_missing=True)
        model.eval()
        if tensors["weight"].shape != (len(config["labels"]), int(model.config.hidden_size)):
            raise ValueError(f"tagger {spec.name!r}: head shape {tuple(tensors['weight'].shape)} does not match "
                             f"{len(config['labels'])} tags x hidden size {model.config.hidden_size}")
        tagger = cls(spec, source, base, model, config, tensors["weight"].float(), tensors["bias"].float())
        if spec.options.get("quantize") == "int8" and tagger.device.type == "cpu":
            tagger.quantize(float(spec.options.get("parity_tolerance", 0.05)))
        return tagger

    def quantize(self, tolerance: float) -> bool:
        """Dynamic int8 linear layers (CPU); kept only when the PHI scores of the probes move <= ``tolerance``."""
        reference = self._phi_probe()
        fp32 = self.model
        self.model = torch.ao.quantization.quantize_dynamic(_truncated_copy(fp32, None), {torch.nn.Linear},
                                                            dtype=torch.qint8)
        drift = float(np.max(np.abs(self._phi_probe() - reference)))
        if drift > tolerance:
            log.warning("int8 tagger %s drifts by %.3f on the probes (> %.3f): serving fp32", self.spec.name, drift,
                        tolerance)
            self.model = fp32
            return False
        self.quantized = True
        return True

    @property
    def precision_label(self) -> str:
        return "int8-dynamic" if self.quantized else super().precision_label

    def provenance(self) -> dict[str, Any]:
        out = {**super().provenance(), "encoder": self.encoder.provenance(), "layers": self.config.get("layers")}
        if self.config.get("adapter"):
            out["adapter"] = self.config["adapter"]
        return out

    @property
    def memory_bytes(self) -> int:
        own = sum(t.numel() * t.element_size() for name, t in self.model.state_dict().items()
                  if not name.startswith("embeddings.") and hasattr(t, "numel"))
        return own + sum(p.numel() * p.element_size() for p in self.head.parameters())

    def _phi_probe(self) -> np.ndarray:
        probs = self.token_probabilities(PARITY_PROBES)
        return np.concatenate([1.0 - p[:, 0] for p, _ in probs])

    def _probe(self) -> np.ndarray:
        return self._phi_probe()

    def token_probabilities(self, texts: Sequence[str]) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """Per text: (tag probabilities [pieces, tags], character offsets of the pieces), windows stitched."""
        max_length = int(min(self.spec.max_length, self.config.get("max_length") or self.spec.max_length))
        stride = int(self.config.get("stride", 32))
        encoded = self.tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride,
                                 return_overflowing_tokens=True, return_offsets_mapping=True)
        ids: list[list[int]] = encoded["input_ids"]
        count_tokens(sum(len(window) for window in ids))
        owners: list[int] = encoded["overflow_to_sample_mapping"]
        window_probs: list[np.ndarray | None] = [None] * len(ids)
        pad = self.tokenizer.pad_token_id or 0
        with self.forward_context():
            for batch in token_budget_batches([len(i) for i in ids], self.spec.max_batch_tokens):
                width = max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):
                    input_ids[row, :len(ids[index])] = torch.tensor(ids[index])
                    mask[row, :len(ids[index])] = 1
                hidden = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                                    ).last_hidden_state
                logits = self.head(hidden.float()).float()  # fp32 also under bf16 autocast (numpy has no bf16)
                probs = torch.softmax(logits, dim=-1).cpu().numpy()
                for row, index in enumerate(batch):
                    window_probs[index] = probs[row, :len(ids[index])]
        out: list[tuple[np.ndarray, list[tuple[int, int]]]] = []
        per_text: dict[int, dict[tuple[int, int], np.ndarray]] = {i: {} for i in range(len(texts))}
        for window, owner in enumerate(owners):
            probs_w = window_probs[window]
            assert probs_w is not None
            for position, (start, end) in enumerate(encoded["offset_mapping"][window]):
                if start == end:
                    continue
                seen = per_text[owner].get((start, end))
                # a piece seen by two windows keeps its most confident PHI reading (recall first)
                if seen is None or 1.0 - probs_w[position, 0] > 1.0 - seen[0]:
                    per_text[owner][(start, end)] = probs_w[position]
        for index in range(len(texts)):
            pieces = sorted(per_text[index])
            matrix = np.stack([per_text[index][p] for p in pieces]) if pieces else np.zeros((0, len(self.tags)))
            out.append((matrix.astype(np.float32), pieces))
        return out

    def tag(self, texts: Sequence[str], min_score: float = 0.5) -> list[list[dict[str, Any]]]:
        results: list[list[dict[str, Any]]] = []
        if not texts:
            return results
        for text, (probs, pieces) in zip(texts, self.token_probabilities(texts), strict=True):
            results.append(self._spans(text, probs, pieces, min_score))
        return results

    def _spans(self, text: str, probs: np.ndarray, pieces: list[tuple[int, int]], min_score: float
               ) -> list[dict[str, Any]]:
        if not pieces:
            return []
        phi = 1.0 - probs[:, 0]
        entity = probs @ self._entity_matrix
        spans: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        top = entity.argmax(axis=1)
        begins = probs[:, 1::2].sum(axis=1) > probs[:, 2::2].sum(axis=1)  # B-* outweighs I-*
        for i, (start, end) in enumerate(pieces):
            if phi[i] < min_score:
                current = None
                continue
            gap = text[current["end"]:start] if current else ""
            same_entity = current is not None and (
                gap == "" or (top[i] == top[current["pieces"][-1]] and not begins[i]))
            if current is not None and same_entity and (gap == "" or (gap.isspace() and "\n" not in gap)):
                current["end"] = end
                current["pieces"].append(i)
            else:
                current = {"start": start, "end": end, "pieces": [i]}
                spans.append(current)
        out = []
        for span in spans:
            start, end = span["start"], span["end"]
            while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
                start -= 1  # grow to whole words: half a word is half a leak
            while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
                end += 1
            members = span["pieces"]
            label = self.entities[int(entity[members].sum(axis=0).argmax())]
            out.append({"start": start, "end": end, "label": label, "score": float(phi[members].mean()),
                        "max_score": float(phi[members].max())})
        return out


if TYPE_CHECKING:  # what the contract promises a task (verticals.contract.handles): mypy checks it
    from verticals.contract import handles

    def _contract_handle(tagger: EncoderTokenTagger) -> handles.Tagger:
        return tagger
