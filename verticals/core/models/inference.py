"""Loaded models: what a task receives for each role it declared.

Every loaded model runs under ``torch.inference_mode()`` (plus bf16 autocast
where the precision policy chose it) and batches its inputs by token budget
over length-sorted inputs, returning results in input order.

=====================  ============================================
kind                   method
=====================  ============================================
encoder                ``embed(texts) -> ndarray[n, dim]``
sequence-classifier    ``classify(texts, pairs=None) -> ndarray[n, labels]``
token-classifier       ``tag(texts) -> list[list[span]]``
causal-lm              ``generate(prompts, max_new_tokens=...) -> list[str]``
seq2seq                ``generate(texts, max_new_tokens=...) -> list[str]``
=====================  ============================================

A sequence classifier also says which tokens a prediction rests on
(:class:`verticals.contract.AttributingClassifier`): ``classify_with_contributions`` and
``classify_with_gradients`` (a linear head over pooled states: read from the prediction's own forward pass) and
``integrated_gradients`` (a pass of its own), each behind a ``can_...`` flag.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from verticals.contract import ModelSpec
from verticals.core.models.batching import pad_batch, token_budget_batches
from verticals.core.models.device import Precision, pick_device, pick_precision
from verticals.core.models.metering import count_tokens, wrap_model_methods
from verticals.core.models.sources import ResolvedSource

if TYPE_CHECKING:
    from verticals.core.models.host import ModelHost
    from verticals.core.models.runtimes import OrtRunner

log = logging.getLogger(__name__)

HEAD_FILE = "verticals_head.json"
PARITY_PROBES = [
    "Quarterly revenue rose 12% on strong demand, beating analyst estimates.",
    "The patient denies chest pain and shortness of breath.",
    "Photosynthesis turns light energy into chemical energy.",
]


class LoadedModel:
    """A model in memory on a device, with the provenance of its weights.

    ``runner``: when set (by :func:`verticals.core.models.runtimes.attach`), the forward pass runs on that ONNX Runtime
    session instead of PyTorch (same tokenization, same sorted token-budget batches, numpy tensors).
    """

    kind = "model"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        wrap_model_methods(cls)  # embed, classify, tag, generate...: model time and tokens of the job's meter

    def __init__(self, spec: ModelSpec, source: ResolvedSource, model: Any, tokenizer: Any,
                 device: torch.device, precision: Precision):
        self.spec = spec
        self.source = source
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.precision = precision
        self.runner: OrtRunner | None = None

    @property
    def runtime_label(self) -> str:
        return "onnxruntime" if self.runner is not None else "torch"

    @property
    def precision_label(self) -> str:
        return self.runner.variant.precision if self.runner is not None else self.precision.label()

    @property
    def memory_bytes(self) -> int:
        runner = self.runner.bytes if self.runner is not None else 0
        if not isinstance(self.model, torch.nn.Module):
            return runner
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return runner + sum(t.numel() * t.element_size() for t in tensors)

    def provenance(self) -> dict[str, Any]:
        out = {"model": self.spec.name, **self.source.provenance(), "runtime": self.runtime_label,
               "precision": self.precision_label}
        if self.runner is not None:
            out["variant"] = self.runner.variant.fingerprint
        return out

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.precision.autocast is not None:
                with torch.autocast(device_type=self.device.type, dtype=self.precision.autocast):
                    yield
            else:
                yield

    def _tokenize(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, list[list[int]]]:
        encoded = self.tokenizer(
            list(texts), list(pairs) if pairs is not None else None,
            truncation=True, max_length=self.spec.max_length,
        )
        count_tokens(sum(len(ids) for ids in encoded["input_ids"]))
        return {key: encoded[key] for key in encoded if key != "offset_mapping"}

    def _batches(self, encoded: dict[str, list[list[int]]]) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        lengths = [len(ids) for ids in encoded["input_ids"]]
        for batch in token_budget_batches(lengths, self.spec.max_batch_tokens):
            features = self._pad(encoded, batch)
            yield batch, {k: torch.from_numpy(a).to(self.device, non_blocking=True) for k, a in features.items()}

    def _pad(self, encoded: dict[str, list[list[int]]], batch: Sequence[int],
             padding_side: str = "right") -> dict[str, np.ndarray]:
        """Rows ``batch`` of ``encoded`` padded as the tokenizer pads them (its pad id and token type id)."""
        pad_values = {"input_ids": self.tokenizer.pad_token_id or 0,
                      "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0,
                      "special_tokens_mask": 1}
        return pad_batch(encoded, batch, pad_values, padding_side)

    def _onnx_batches(self, encoded: dict[str, list[list[int]]],
                      runner: OrtRunner | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
        """The same batches as :meth:`_batches`, run through an ONNX Runtime session (default: this model's):
        (indices, output)."""
        runner = runner or self.runner
        assert runner is not None
        lengths = [len(ids) for ids in encoded["input_ids"]]
        for batch in token_budget_batches(lengths, self.spec.max_batch_tokens):
            yield batch, runner.run(self._pad(encoded, batch))

    def _probe(self) -> np.ndarray:
        raise NotImplementedError

    def check_parity(self, tolerance: float) -> bool:
        """Compare autocast against fp32 on fixed probes; drop autocast when they differ."""
        if not self.precision.needs_parity_check:
            return True
        fast = self._probe()
        chosen = self.precision
        self.precision = Precision(torch.float32)
        reference = self._probe()
        drift = float(np.max(np.abs(fast - reference)))
        if drift <= tolerance:
            self.precision = chosen
            log.info("model %s: bf16 autocast kept (max drift %.5f vs fp32)", self.spec.name, drift)
            return True
        log.warning("model %s: bf16 autocast drifted %.5f from fp32 (> %.5f); running fp32",
                    self.spec.name, drift, tolerance)
        return False


# The LoRA adapter the current thread's forward pass uses (None: the plain base encoder).
_ACTIVE_ADAPTER: contextvars.ContextVar[str | None] = contextvars.ContextVar("verticals_active_adapter", default=None)


class LoraAdapter:
    """A LoRA adapter saved by ``peft`` (``adapter_config.json`` + ``adapter_model.safetensors``), held as its
    low-rank matrices only: ``delta(x) = (x @ A.T @ B.T) * scaling`` on each target linear layer, exactly the
    unmerged LoRA forward of peft. Only these matrices take memory; the base weights are shared."""

    PREFIX = "base_model.model."

    def __init__(self, folder: Path):
        from safetensors.torch import load_file

        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        if config.get("peft_type", "LORA") != "LORA":
            raise ValueError(f"adapter {folder.name}: peft type {config.get('peft_type')!r} is not LoRA")
        for unsupported in ("use_dora", "modules_to_save", "rank_pattern", "alpha_pattern", "layer_replication"):
            if config.get(unsupported):
                raise ValueError(f"adapter {folder.name}: {unsupported} is not supported when serving adapters")
        if config.get("bias", "none") != "none":
            raise ValueError(f"adapter {folder.name}: LoRA bias {config['bias']!r} is not supported")
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
        self.scaling = alpha / (rank**0.5) if config.get("use_rslora") else alpha / rank
        tensors = load_file(str(folder / "adapter_model.safetensors"))
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            for part in ("lora_A", "lora_B"):
                suffix = f".{part}.weight"
                if key.endswith(suffix):
                    module = key[: -len(suffix)]
                    module = module[len(self.PREFIX):] if module.startswith(self.PREFIX) else module
                    pairs.setdefault(module, {})[part] = tensor.float()
        if not pairs or any(len(p) != 2 for p in pairs.values()):
            raise ValueError(f"adapter {folder.name}: no complete lora_A/lora_B pairs in adapter_model.safetensors")
        self.layers = {module: (p["lora_A"], p["lora_B"]) for module, p in pairs.items()}

    @property
    def memory_bytes(self) -> int:
        return sum(a.numel() * a.element_size() + b.numel() * b.element_size() for a, b in self.layers.values())

    def merge_into(self, model: torch.nn.Module, skip_missing: bool = False) -> int:
        """Fold this adapter into ``model``'s weights in place: ``W += scaling * B @ A`` on each target layer
        (computed in fp32, then cast to the weight's dtype and device): what peft's ``merge_and_unload`` does.
        ``skip_missing``: layers ``model`` lacks (a truncated copy) are skipped instead of refused.
        Returns how many layers were merged."""
        modules = dict(model.named_modules())
        merged = 0
        with torch.no_grad():
            for name, (lora_a, lora_b) in self.layers.items():
                layer = modules.get(name)
                if layer is None:
                    if skip_missing:
                        continue
                    raise ValueError(f"the adapter targets a layer the model lacks: {name}")
                weight = layer.weight
                delta = (lora_b.float().to(weight.device) @ lora_a.float().to(weight.device)) * self.scaling
                weight.copy_((weight.float() + delta).to(weight.dtype))
                merged += 1
        return merged

    def merged_copy(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``model`` with this adapter merged, in which only the target layers' weights are new
        tensors: every other parameter and buffer (embeddings, biases, layer norms, untouched layers) is the
        same tensor as ``model``'s, so the copy costs the target weights only. The copy carries no hooks."""
        modules = dict(model.named_modules())
        targets = {id(modules[name].weight) for name in self.layers if name in modules}
        shared: dict[int, Any] = {id(t): t for t in [*model.parameters(), *model.buffers()] if id(t) not in targets}
        clone = copy.deepcopy(model, memo=shared)
        for module in clone.modules():
            module._forward_hooks.clear()
            module._forward_pre_hooks.clear()
        self.merge_into(clone)
        return clone.eval()

    def merged_bytes(self, model: torch.nn.Module) -> int:
        """The memory a :meth:`merged_copy` of ``model`` adds: the target layers' weights."""
        modules = dict(model.named_modules())
        return sum(modules[n].weight.numel() * modules[n].weight.element_size() for n in self.layers if n in modules)


class EncoderModel(LoadedModel):
    """Sentence embeddings: mean pooling over the last hidden state.

    LoRA adapters are served on one loaded encoder (:meth:`add_adapter`), the base encoder staying shared and
    unchanged, in one of two ways chosen per encoder:

    - **merged** (while the encoder serves a single adapter): at its first use on PyTorch, the adapter is folded
      once into a copy of its target layers' weights (:meth:`LoraAdapter.merged_copy`; every other tensor is the
      base's), and ``embed(..., adapter=key)`` runs that copy: no per-batch cost for the adapter (a head served
      by an ONNX graph never builds it);
    - **hooks** (as soon as a second adapter is added to the same encoder): forward hooks on the target layers
      add the low-rank update of the adapter the calling thread selected, and nothing when none is selected,
      so N adapters cost their low-rank matrices only (the merged copy is dropped).

    :meth:`use_hooks` / :meth:`merge` force one way for one adapter (benchmarks, tests).
    """

    kind = "encoder"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.adapters: dict[str, LoraAdapter] = {}
        self._merged: dict[str, torch.nn.Module] = {}  # adapter key -> the encoder with that adapter merged
        self._hooks_only: set[str] = set()  # adapters use_hooks() kept off the merged path
        self._hooked: set[str] = set()
        self._adapter_lock = threading.RLock()

    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def add_adapter(self, key: str, folder: Path) -> LoraAdapter:
        """Load the LoRA adapter in ``folder`` under ``key`` (once; later calls return the loaded one)."""
        with self._adapter_lock:
            if key in self.adapters:
                return self.adapters[key]
            adapter = LoraAdapter(folder)
            modules = dict(self.model.named_modules())
            missing = [name for name in adapter.layers if name not in modules]
            if missing:
                raise ValueError(f"adapter {folder.name} targets layers this encoder lacks: {missing[:3]}")
            for name, (lora_a, lora_b) in adapter.layers.items():
                layer = modules[name]
                if (lora_a.shape[1], lora_b.shape[0]) != (layer.in_features, layer.out_features):
                    raise ValueError(f"adapter {folder.name}: layer {name} shape does not match the encoder")
                adapter.layers[name] = (lora_a.to(self.device), lora_b.to(self.device))
                if name not in self._hooked:
                    layer.register_forward_hook(self._lora_hook(name))
                    self._hooked.add(name)
            self.adapters[key] = adapter
            if len(self.adapters) > 1 and self._merged:  # several adapters share this base: matrices only
                log.info("encoder %s: %d adapters share it; served unmerged (forward hooks)", self.spec.name,
                         len(self.adapters))
                self._merged.clear()
            return adapter

    def _merged_for(self, key: str) -> torch.nn.Module | None:
        """The merged copy serving adapter ``key``, built at its first use while it is the encoder's only adapter;
        None: the hooks serve it."""
        merged = self._merged.get(key)
        if merged is None and len(self.adapters) == 1 and key not in self._hooks_only:
            with self._adapter_lock:  # checked again: another thread may have added an adapter meanwhile
                if len(self.adapters) == 1 and key not in self._hooks_only:
                    self._build_merged(key)
                merged = self._merged.get(key)
        return merged

    def merge(self, key: str) -> None:
        """Serve adapter ``key`` from a copy of the encoder with it merged, now (until another adapter is added)."""
        with self._adapter_lock:
            self._hooks_only.discard(key)
            self._build_merged(key)

    def _build_merged(self, key: str) -> None:
        with self._adapter_lock:
            if key in self._merged:
                return
            adapter = self.adapters[key]
            self._merged[key] = adapter.merged_copy(self.model)
            log.info("encoder %s: adapter merged into a copy of its %d target layers (%.1f MB)", self.spec.name,
                     len(adapter.layers), adapter.merged_bytes(self.model) / 2**20)

    def use_hooks(self, key: str) -> None:
        """Serve adapter ``key`` through the forward hooks on the shared encoder (drops its merged copy)."""
        with self._adapter_lock:
            self._hooks_only.add(key)
            self._merged.pop(key, None)

    def adapter_mode(self, key: str) -> str:
        """``merged`` or ``hooks``: how the next PyTorch forward with adapter ``key`` serves it."""
        if key not in self.adapters:
            raise KeyError(f"encoder {self.spec.name} has no adapter {key!r} loaded")
        lone = len(self.adapters) == 1 and key not in self._hooks_only
        return "merged" if key in self._merged or lone else "hooks"

    def adapter_bytes(self, key: str) -> int:
        """The memory adapter ``key`` holds on this encoder: its matrices, plus its merged weights when merged."""
        adapter = self.adapters[key]  # (the merged weights once built: a head served by ONNX never builds them)
        return adapter.memory_bytes + (adapter.merged_bytes(self.model) if key in self._merged else 0)

    def _lora_hook(self, name: str) -> Callable[[torch.nn.Module, tuple[torch.Tensor, ...], torch.Tensor], Any]:
        def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> Any:
            active = _ACTIVE_ADAPTER.get()
            if active is None:
                return None
            weights = self.adapters[active].layers.get(name)
            if weights is None:
                return None
            lora_a, lora_b = weights
            delta = (inputs[0].to(lora_a.dtype) @ lora_a.T) @ lora_b.T
            return output + (delta * self.adapters[active].scaling).to(output.dtype)

        return hook

    def embed(self, texts: Sequence[str], normalize: bool = True, adapter: str | None = None,
              pairs: Sequence[str] | None = None) -> np.ndarray:
        """Mean-pooled embeddings of ``texts`` (with ``pairs``: of each ``[CLS] text [SEP] pair [SEP]``, as a
        cross-encoder reads it; truncated longest first to the spec's ``max_length``)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"encoder {self.spec.name} has no adapter {adapter!r} loaded")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        encoded = self._tokenize(texts, pairs)
        if self.runner is not None and adapter is None:  # the ONNX graph is the base encoder: adapters run on torch
            for batch, pooled in self._onnx_batches(encoded):
                out[batch] = l2_normalize(pooled) if normalize else pooled
            return out

        def pool(batch: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            pooled = mean_pool(hidden, mask)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[batch] = pooled.cpu().numpy()

        self.hidden_states(encoded, adapter, pool)
        return out

    def hidden_states(self, encoded: dict[str, list[list[int]]], adapter: str | None,
                      consume: Callable[[list[int], torch.Tensor, torch.Tensor], None]) -> None:
        """The PyTorch forward pass of :meth:`embed`: for each token-budget batch of ``encoded`` (tokenizer
        output), ``consume(indices, last_hidden_state as fp32 [n, L, dim], attention_mask [n, L])``, with LoRA
        adapter ``adapter`` served as :meth:`embed` serves it (merged copy or hooks)."""
        merged = self._merged_for(adapter) if adapter is not None else None
        model = merged if merged is not None else self.model  # merged: the adapter is in the copy's weights
        token = _ACTIVE_ADAPTER.set(None if merged is not None else adapter)
        try:
            with self.forward_context():
                for batch, features in self._batches(encoded):
                    consume(batch, model(**features).last_hidden_state.float(), features["attention_mask"])
        finally:
            _ACTIVE_ADAPTER.reset(token)

    def _probe(self) -> np.ndarray:
        return self.embed(PARITY_PROBES)


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device``'s type; None: autocast off (fp32 inside an autocast region too)."""
    with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
        yield


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token states ``hidden`` [n, L, dim] over the tokens ``mask`` [n, L] marks."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def l2_normalize(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


class SequenceClassifierModel(LoadedModel):
    """Text (or text-pair) classification with a transformers classification head."""

    kind = "sequence-classifier"

    @property
    def labels(self) -> list[str]:
        config = self.model.config
        return [str(config.id2label[i]).lower() for i in range(config.num_labels)]

    def classify(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        encoded = self._tokenize(texts, pairs)
        if self.runner is not None:
            for batch, logits in self._onnx_batches(encoded):
                out[batch] = _softmax(logits)
            return out
        with self.forward_context():
            for batch, features in self._batches(encoded):
                logits = self.model(**features).logits.float()
                out[batch] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def _probe(self) -> np.ndarray:
        return self.classify(PARITY_PROBES)

    # -- attributions ------------------------------------------------------------------------------------------
    @property
    def can_decompose(self) -> bool:
        """Whether :meth:`classify_with_contributions` works here: a linear head over mean-pooled token states
        on the PyTorch path (:class:`EncoderHeadClassifier`); a transformers head (non-linear pooler) has none."""
        return False

    def classify_with_contributions(self, texts: Sequence[str]
                                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, list[tuple[int, int]]]]]:
        """:meth:`classify` and, from the same forward pass, each token's additive share of each label's logit
        (:meth:`EncoderHeadClassifier.classify_with_contributions`). ``RuntimeError`` where
        :attr:`can_decompose` is false."""
        raise RuntimeError(f"{self.spec.name} ({self.kind} on {self.runtime_label}) has no linear head over pooled "
                           "token states to decompose")

    @property
    def can_layer_gradients(self) -> bool:
        """Whether :meth:`classify_with_gradients` works here (:class:`EncoderHeadClassifier` on PyTorch)."""
        return False

    def classify_with_gradients(self, texts: Sequence[str], steps: int = 8, layer: int = -1
                                ) -> tuple[np.ndarray, list[tuple[np.ndarray, list[tuple[int, int]]]]]:
        """:meth:`classify` and layer integrated gradients (:meth:`EncoderHeadClassifier.classify_with_gradients`).
        ``RuntimeError`` where :attr:`can_layer_gradients` is false."""
        raise RuntimeError(f"{self.spec.name} ({self.kind} on {self.runtime_label}) serves no layer integrated "
                           "gradients: integrated_gradients() takes them at the input embeddings")

    @property
    def can_integrate_gradients(self) -> bool:
        """Whether :meth:`integrated_gradients` works here: the PyTorch path (an ONNX variant has no gradients)."""
        return self.runner is None

    def _embedding_model(self) -> Any:
        """The transformer whose input embeddings the gradients are taken at."""
        return self.model

    def _probabilities_from_embeddings(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """P(label) rows from input embeddings (differentiable)."""
        return torch.softmax(self.model(inputs_embeds=embeddings, attention_mask=mask).logits.float(), dim=-1)

    def integrated_gradients(self, texts: Sequence[str], targets: Sequence[int], steps: int = 16
                             ) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """Integrated gradients (Sundararajan et al., 2017) of P(``targets[i]``) for each text, at the input
        embeddings, from a baseline that keeps the special tokens and puts the pad token's embedding everywhere
        else; ``steps`` midpoint Riemann steps, all steps of several texts in one forward and backward pass (the
        texts grouped by the spec's token budget). Per text: one attribution per token (summed over the
        embedding dimension; they add up to about P(text) - P(baseline)) and the tokens' character offsets
        ((0, 0) for special tokens). fp32, no autocast. ``RuntimeError`` on an ONNX variant
        (:attr:`can_integrate_gradients`)."""
        if not self.can_integrate_gradients:
            raise RuntimeError(f"{self.spec.name} runs on {self.runtime_label}: integrated gradients need the "
                               "PyTorch path")
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length,
                                 return_offsets_mapping=True, return_special_tokens_mask=True)
        model = self._embedding_model()
        layer = model.get_input_embeddings()
        pad = self.tokenizer.pad_token_id or 0
        alphas = (torch.arange(steps, dtype=torch.float32, device=self.device) + 0.5) / steps
        out: list[tuple[np.ndarray, list[tuple[int, int]]]] = [(np.zeros(0), [])] * len(texts)
        lengths = [len(ids) * steps for ids in encoded["input_ids"]]
        count_tokens(sum(lengths))  # the job's meter: every step is a forward (and backward) pass of the text
        for group in token_budget_batches(lengths, max(self.spec.max_batch_tokens, max(lengths, default=1))):
            width = max(len(encoded["input_ids"][i]) for i in group)
            ids = torch.full((len(group), width), pad, dtype=torch.long, device=self.device)
            base = torch.full_like(ids, pad)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(group):
                own = encoded["input_ids"][i]
                special = encoded["special_tokens_mask"][i]
                ids[row, :len(own)] = torch.tensor(own, device=self.device)
                base[row, :len(own)] = torch.tensor([t if s else pad for t, s in zip(own, special, strict=True)],
                                                    device=self.device)
                mask[row, :len(own)] = 1
            target = torch.tensor([targets[i] for i in group], device=self.device)
            with torch.enable_grad():
                x = layer(ids).detach().float()
                x0 = layer(base).detach().float()
                path = (x0.unsqueeze(1) + alphas.view(1, -1, 1, 1) * (x - x0).unsqueeze(1))  # [n, steps, L, H]
                path = path.reshape(-1, width, x.shape[-1]).requires_grad_(True)
                probs = self._probabilities_from_embeddings(path, mask.repeat_interleave(steps, dim=0))
                chosen = probs.gather(1, target.repeat_interleave(steps).unsqueeze(1)).sum()
                (grads,) = torch.autograd.grad(chosen, path)
            average = grads.reshape(len(group), steps, width, -1).mean(1)
            scores = ((x - x0) * average).sum(-1).detach().cpu().numpy()
            for row, i in enumerate(group):
                size = len(encoded["input_ids"][i])
                out[i] = (scores[row, :size], [tuple(o) for o in encoded["offset_mapping"][i]])
        return out


class EncoderHeadClassifier(SequenceClassifierModel):
    """A linear head over a shared encoder's embeddings (format ``verticals_head.json``).

    The head folder holds ``verticals_head.json`` (``encoder``: a ModelSpec
    name, ``labels``, ``normalize``) and ``head.safetensors`` (``weight``
    [labels, dim], ``bias`` [labels]). The encoder is loaded through the host,
    so every task that uses the same encoder shares one copy.

    Optional keys: ``adapter`` (a sub-folder with a peft LoRA adapter for that
    encoder: served on the shared copy, see :meth:`EncoderModel.add_adapter`) or
    ``encoder_weights`` (a sub-folder with a fully fine-tuned encoder of its own).
    """

    def __init__(self, spec: ModelSpec, source: ResolvedSource, encoder: EncoderModel, config: dict[str, Any],
                 weight: torch.Tensor, bias: torch.Tensor, adapter: str | None = None, own_encoder: bool = False):
        super().__init__(spec, source, None, encoder.tokenizer, encoder.device, encoder.precision)
        self.encoder = encoder
        self.config = config
        self.weight = weight.float().cpu().numpy()
        self.bias = bias.float().cpu().numpy()
        self.adapter = adapter
        self.own_encoder = own_encoder

    @classmethod
    def load(cls, spec: ModelSpec, source: ResolvedSource, host: ModelHost) -> EncoderHeadClassifier:
        from safetensors.torch import load_file

        config = json.loads((source.path / HEAD_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(source.path / config.get("weights", "head.safetensors")))
        adapter_key, own = None, False
        if config.get("encoder_weights"):
            base = host.spec(config["encoder"])
            folder = (source.path / config["encoder_weights"]).resolve()
            private = ModelSpec(name=f"{spec.name}/encoder", kind="encoder", local_path=str(folder),
                                max_length=base.max_length, max_batch_tokens=base.max_batch_tokens)
            encoder = load_model(private, ResolvedSource("local", folder, f"{source.reference}/encoder",
                                                         source.revision), host, device=host.device)
            own = True
        else:
            encoder = host.get(config["encoder"])
        if not isinstance(encoder, EncoderModel):
            raise TypeError(f"head {spec.name!r} needs an encoder, but {config['encoder']!r} is a {encoder.kind}")
        if tensors["weight"].shape != (len(config["labels"]), encoder.dimension):
            raise ValueError(f"head {spec.name!r}: weight shape {tuple(tensors['weight'].shape)} does not match "
                             f"{len(config['labels'])} labels x encoder dimension {encoder.dimension}")
        if config.get("adapter"):
            adapter_key = f"{spec.name}:{source.reference}"
            encoder.add_adapter(adapter_key, source.path / config["adapter"])
        return cls(spec, source, encoder, config, tensors["weight"], tensors["bias"], adapter_key, own)

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    @property
    def memory_bytes(self) -> int:
        own = self.weight.nbytes + self.bias.nbytes + (self.runner.bytes if self.runner is not None else 0)
        if self.adapter:
            own += self.encoder.adapter_bytes(self.adapter)
        if self.own_encoder:
            own += self.encoder.memory_bytes
        return own

    def provenance(self) -> dict[str, Any]:
        encoder = self.encoder.provenance()
        if self.runner is not None:  # the encoder's weights run inside this head's graph, not on its own runtime
            encoder.pop("variant", None)
            encoder.update(runtime=self.runtime_label, precision=self.precision_label)
        out = {**super().provenance(), "encoder": encoder}
        if self.adapter:
            out["adapter"] = self.config["adapter"]
        return out

    @property
    def reads_pairs(self) -> bool:
        """Trained on text pairs (``"inputs": "pair"``, ``verticals train --pair-column``): classify(texts, pairs)."""
        return self.config.get("inputs") == "pair"

    def classify(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        if pairs is not None and not self.reads_pairs:
            raise ValueError(f"{self.spec.name} classifies single texts, not pairs")
        if pairs is None and self.reads_pairs:
            raise ValueError(f"{self.spec.name} was trained on text pairs: classify(texts, pairs)")
        if self.runner is not None:  # one graph: encoder (adapter merged), pooling, head; the encoder's batching
            out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
            if texts:
                for batch, logits in self.encoder._onnx_batches(self.encoder._tokenize(texts, pairs), self.runner):
                    out[batch] = _softmax(logits)
            return out
        embeddings = self.encoder.embed(texts, normalize=self.config.get("normalize", True), adapter=self.adapter,
                                        pairs=pairs)
        return _softmax(embeddings @ self.weight.T + self.bias)

    def _probe(self) -> np.ndarray:
        if self.reads_pairs:
            return self.classify(PARITY_PROBES, list(reversed(PARITY_PROBES)))
        return self.classify(PARITY_PROBES)

    @property
    def can_decompose(self) -> bool:
        """The PyTorch path for single texts (an ONNX graph returns logits only; a pair head mixes two texts)."""
        return self.runner is None and not self.reads_pairs

    def classify_with_contributions(self, texts: Sequence[str]
                                    ) -> tuple[np.ndarray, list[tuple[np.ndarray, list[tuple[int, int]]]]]:
        """:meth:`classify` and, read from the same forward pass, each token's exact share of each label's
        logit. The head is linear over the mean of the encoder's last token states h_1..h_n (L2-normalised or
        not), so ``logit_c = sum_i W_c . h_i / (n * s) + b_c`` with ``s`` the norm of the mean (1 without
        normalisation): a token's share is ``W_c . h_i / (n * s)``, and a text's shares add up to its logits
        minus the bias (up to float rounding). Per text: the probabilities row; the shares [tokens, labels] and
        the tokens' character offsets ((0, 0) for special tokens). The cost is the prediction's plus one
        [tokens x dim] @ [dim x labels] product. ``RuntimeError`` where :attr:`can_decompose` is false."""
        if not self.can_decompose:
            raise RuntimeError(f"{self.spec.name} runs on {self.runtime_label}"
                               f"{' with text pairs' if self.reads_pairs else ''}: token contributions need the "
                               "PyTorch path and single texts")
        probabilities = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        shares: list[tuple[np.ndarray, list[tuple[int, int]]]] = [(np.zeros((0, len(self.labels))), [])] * len(texts)
        if not texts:
            return probabilities, shares
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length,
                                 return_offsets_mapping=True)
        offsets = encoded.pop("offset_mapping")
        ids = {key: encoded[key] for key in encoded}
        count_tokens(sum(len(row) for row in ids["input_ids"]))
        weight = torch.from_numpy(self.weight).to(self.device)
        bias = torch.from_numpy(self.bias).to(self.device)
        normalize = self.config.get("normalize", True)

        def head(batch: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            with _autocast(self.device, None):  # fp32, as classify's numpy head
                read(batch, hidden, mask)

        def read(batch: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            pooled = mean_pool(hidden, mask)
            scale = mask.sum(1).clamp(min=1).to(hidden.dtype)  # n per text
            if normalize:
                norm = pooled.norm(dim=-1).clamp(min=1e-12)  # as torch.nn.functional.normalize
                pooled = pooled / norm.unsqueeze(-1)
                scale = scale * norm
            probabilities[batch] = torch.softmax(pooled @ weight.T + bias, dim=-1).cpu().numpy()
            per_token = ((hidden * mask.unsqueeze(-1).to(hidden.dtype)) @ weight.T) / scale.view(-1, 1, 1)
            rows = per_token.cpu().numpy()
            for row, i in enumerate(batch):
                size = len(ids["input_ids"][i])
                shares[i] = (rows[row, :size], [tuple(o) for o in offsets[i]])

        self.encoder.hidden_states(ids, self.adapter, head)
        return probabilities, shares

    def _layers(self, model: Any) -> torch.nn.ModuleList | None:
        """The encoder's transformer layers (``model.encoder.layer``: BERT, MiniLM, RoBERTa...), or None."""
        layers = getattr(getattr(model, "encoder", None), "layer", None)
        return layers if isinstance(layers, torch.nn.ModuleList) and len(layers) else None

    @property
    def can_layer_gradients(self) -> bool:
        """Whether :meth:`classify_with_gradients` works here: :attr:`can_decompose` and an encoder whose layers
        can be run from a given one up (``encoder.layer``)."""
        return self.can_decompose and self._layers(self.encoder.model) is not None

    def classify_with_gradients(self, texts: Sequence[str], steps: int = 8, layer: int = -1
                                ) -> tuple[np.ndarray, list[tuple[np.ndarray, list[tuple[int, int]]]]]:
        """:meth:`classify` and layer integrated gradients of each text's predicted label's probability, taken at
        the input of encoder layer ``layer`` (-1: the last): the prediction's forward pass (with each text's
        baseline, pad tokens where the text has words, run alongside) keeps the states entering that layer, and
        only the layers from there up run ``steps`` times (midpoint Riemann steps on the straight path from the
        baseline's states to the text's, forward and backward, all steps of a group of texts in one pass). Per
        token: its attribution, summed over the hidden dimension (they add up to about P(text) - P(baseline)),
        and its character offsets. The prediction runs as :meth:`classify` does (autocast where the precision
        policy chose it), the steps in fp32 (bf16 steps measured no faster on CPU). ``RuntimeError`` where
        :attr:`can_layer_gradients` is false."""
        if not self.can_layer_gradients:
            raise RuntimeError(f"{self.spec.name} runs on {self.runtime_label}: layer integrated gradients need the "
                               "PyTorch path, single texts and an encoder with layers")
        probabilities = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        out: list[tuple[np.ndarray, list[tuple[int, int]]]] = [(np.zeros(0), [])] * len(texts)
        if not texts:
            return probabilities, out
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length,
                                 return_offsets_mapping=True, return_special_tokens_mask=True)
        merged = self.encoder._merged_for(self.adapter) if self.adapter is not None else None
        model = merged if merged is not None else self.encoder.model
        layers = self._layers(model)
        assert layers is not None
        first = layer % len(layers)
        pad = self.tokenizer.pad_token_id or 0
        weight = torch.from_numpy(self.weight).to(self.device)
        bias = torch.from_numpy(self.bias).to(self.device)
        normalize = self.config.get("normalize", True)
        alphas = (torch.arange(steps, dtype=torch.float32, device=self.device) + 0.5) / steps
        lengths = [len(ids) for ids in encoded["input_ids"]]
        count_tokens(sum(lengths) * (2 + steps))  # the text, its baseline, and the upper layers once per step
        caller = threading.get_ident()

        def head(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            pooled = mean_pool(hidden.float(), mask)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return torch.softmax(pooled @ weight.T + bias, dim=-1)

        kept: dict[str, Any] = {}

        def keep(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if threading.get_ident() == caller and "states" not in kept:  # this call's pass only
                kept["states"] = args[0]
                kept["mask"] = args[1] if len(args) > 1 else kwargs.get("attention_mask")

        token = _ACTIVE_ADAPTER.set(None if merged is not None else self.adapter)
        try:
            budget = max(self.spec.max_batch_tokens, max(lengths) * steps)
            for group in token_budget_batches([n * steps for n in lengths], budget):
                width = max(lengths[i] for i in group)
                ids = torch.full((len(group), width), pad, dtype=torch.long, device=self.device)
                mask = torch.zeros_like(ids)
                baselines: dict[tuple[int, ...], int] = {}  # one baseline row per distinct one (texts of a length)
                which = []
                for row, i in enumerate(group):
                    own, special = encoded["input_ids"][i], encoded["special_tokens_mask"][i]
                    ids[row, :len(own)] = torch.tensor(own, device=self.device)
                    mask[row, :len(own)] = 1
                    which.append(baselines.setdefault(
                        tuple(t if s else pad for t, s in zip(own, special, strict=True)), len(baselines)))
                base = torch.full((len(baselines), width), pad, dtype=torch.long, device=self.device)
                base_mask = torch.zeros_like(base)
                for row_ids, row in baselines.items():
                    base[row, :len(row_ids)] = torch.tensor(row_ids, device=self.device)
                    base_mask[row, :len(row_ids)] = 1
                kept.clear()
                handle = layers[first].register_forward_pre_hook(keep, with_kwargs=True)
                try:
                    with torch.no_grad(), _autocast(self.device, self.precision.autocast):
                        hidden = model(input_ids=torch.cat([ids, base]),
                                       attention_mask=torch.cat([mask, base_mask])).last_hidden_state
                finally:
                    handle.remove()
                n = len(group)
                with _autocast(self.device, None):
                    rows = head(hidden[:n], mask)
                probabilities[group] = rows.cpu().numpy()
                target = rows.argmax(-1)
                states = kept["states"].float()
                x, x0 = states[:n], states[n:][torch.tensor(which, device=self.device)]
                attention = kept["mask"]
                if isinstance(attention, torch.Tensor):
                    attention = attention[:n].repeat_interleave(steps, dim=0)
                path = (x0.unsqueeze(1) + alphas.view(1, -1, 1, 1) * (x - x0).unsqueeze(1))
                path = path.reshape(-1, width, x.shape[-1]).requires_grad_(True)
                with torch.enable_grad(), _autocast(self.device, None):
                    h = path
                    for module in layers[first:]:
                        result = module(h, attention)
                        h = result[0] if isinstance(result, tuple) else result
                    chosen = head(h, mask.repeat_interleave(steps, dim=0))
                    chosen = chosen.gather(1, target.repeat_interleave(steps).unsqueeze(1)).sum()
                    (grads,) = torch.autograd.grad(chosen, path)
                average = grads.float().reshape(n, steps, width, -1).mean(1)
                scores = ((x - x0) * average).sum(-1).detach().cpu().numpy()
                for row, i in enumerate(group):
                    out[i] = (scores[row, :lengths[i]], [tuple(o) for o in encoded["offset_mapping"][i]])
        finally:
            _ACTIVE_ADAPTER.reset(token)
        return probabilities, out

    @property
    def can_integrate_gradients(self) -> bool:
        """Not for a pair head (its attributions would need both texts' embeddings) nor an ONNX variant."""
        return self.runner is None and not self.reads_pairs

    def _embedding_model(self) -> Any:
        return self.encoder.model

    def _probabilities_from_embeddings(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The head over the encoder's mean-pooled (normalised) states, with this head's LoRA adapter active."""
        token = _ACTIVE_ADAPTER.set(self.adapter)
        try:
            hidden = self.encoder.model(inputs_embeds=embeddings, attention_mask=mask).last_hidden_state.float()
        finally:
            _ACTIVE_ADAPTER.reset(token)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        if self.config.get("normalize", True):
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        weight = torch.from_numpy(self.weight).to(pooled.device)
        bias = torch.from_numpy(self.bias).to(pooled.device)
        return torch.softmax(pooled @ weight.T + bias, dim=-1)


class TokenClassifierModel(LoadedModel):
    """Token classification (NER-style) with character spans, BIO tags merged."""

    kind = "token-classifier"

    def tag(self, texts: Sequence[str], min_score: float = 0.0) -> list[list[dict[str, Any]]]:
        results: list[list[dict[str, Any]]] = [[] for _ in texts]
        if not texts:
            return results
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.spec.max_length,
                                 return_offsets_mapping=True)
        count_tokens(sum(len(ids) for ids in encoded["input_ids"]))
        offsets = encoded.pop("offset_mapping")
        id2label = self.model.config.id2label
        if self.runner is not None:
            for batch, logits in self._onnx_batches({k: encoded[k] for k in encoded}):
                probs = _softmax(logits)
                for row, index in enumerate(batch):
                    results[index] = _merge_bio(probs[row], offsets[index], id2label, min_score)
            return results
        with self.forward_context():
            for batch, features in self._batches({k: encoded[k] for k in encoded}):
                probs = torch.softmax(self.model(**features).logits.float(), dim=-1).cpu().numpy()
                for row, index in enumerate(batch):
                    results[index] = _merge_bio(probs[row], offsets[index], id2label, min_score)
        return results


def _merge_bio(probs: np.ndarray, offsets: list[tuple[int, int]], id2label: dict[int, str],
               min_score: float) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for position, (start, end) in enumerate(offsets):
        if start == end:  # special or padding token
            continue
        label_id = int(probs[position].argmax())
        label = str(id2label[label_id])
        prefix, _, entity = label.partition("-") if "-" in label else ("", "", label)
        if label == "O" or entity == "O":
            current = None
            continue
        score = float(probs[position, label_id])
        if current and current["label"] == entity and prefix != "B" and start <= current["end"] + 1:
            current["end"] = end
            current["scores"].append(score)
        else:
            current = {"start": start, "end": end, "label": entity, "scores": [score]}
            spans.append(current)
    merged = []
    for span in spans:
        score = float(np.mean(span.pop("scores")))
        if score >= min_score:
            merged.append({**span, "score": score})
    return merged


class CausalLMModel(LoadedModel):
    """Batched generation with left padding and prompts grouped by length."""

    kind = "causal-lm"

    def format_prompt(self, prompt: str | list[dict[str, str]], system: str | None = None) -> str:
        if isinstance(prompt, str) and not getattr(self.tokenizer, "chat_template", None):
            return prompt
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system and messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": system})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompts: Sequence[str | list[dict[str, str]]], max_new_tokens: int = 64,
                 temperature: float = 0.0, system: str | None = None, seed: int | None = None,
                 on_progress: Callable[[int, int], None] | None = None, **generate_kwargs: Any) -> list[str]:
        """Generate a completion for each prompt (a string or chat messages).

        ``on_progress(done, total)``: called after each batch of prompts with how many are generated (a task
        passes it on to ``RunContext.progress``: generation is the slow part of an item)."""
        if not prompts:
            return []
        texts = [self.format_prompt(p, system) for p in prompts]
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.spec.max_length)
        encoded = {k: encoded[k] for k in ("input_ids", "attention_mask")}
        count_tokens(sum(len(ids) for ids in encoded["input_ids"]))
        lengths = [len(ids) + max_new_tokens for ids in encoded["input_ids"]]
        outputs: list[str] = [""] * len(texts)
        finished = 0
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        # A seeded sampling run draws from a fork of torch's generators: the embedding process's own random
        # state is given back untouched afterwards (torch.manual_seed alone would reseed the whole process).
        rng: Any = contextlib.nullcontext()
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature)
            if seed is not None:
                rng = torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else [])
        else:
            options.update(do_sample=False)
        options.update(generate_kwargs)
        with rng, self.forward_context():
            if temperature > 0 and seed is not None:
                torch.manual_seed(seed)
            for batch in token_budget_batches(lengths, self.spec.max_batch_tokens):
                features = {k: torch.from_numpy(a).to(self.device)
                            for k, a in self._pad(encoded, batch, padding_side="left").items()}
                generated = self.model.generate(**features, **options)
                new_tokens = generated[:, features["input_ids"].shape[1]:]
                count_tokens(_generated_tokens(new_tokens, self.tokenizer.pad_token_id))
                for index, text in zip(batch, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True),
                                       strict=True):
                    outputs[index] = text.strip()
                finished += len(batch)
                if on_progress is not None:
                    on_progress(finished, len(texts))
        return outputs


def _generated_tokens(tokens: torch.Tensor, pad_token_id: int | None) -> int:
    """Tokens a generation produced: the padding of the rows that stopped early left out."""
    if pad_token_id is None:
        return int(tokens.numel())
    return int((tokens != pad_token_id).sum())


class Seq2SeqModel(LoadedModel):
    kind = "seq2seq"

    def generate(self, texts: Sequence[str], max_new_tokens: int = 64, **generate_kwargs: Any) -> list[str]:
        outputs: list[str] = [""] * len(texts)
        if not texts:
            return outputs
        encoded = self._tokenize(texts)
        with self.forward_context():
            for batch, features in self._batches(encoded):
                generated = self.model.generate(**features, max_new_tokens=max_new_tokens, **generate_kwargs)
                count_tokens(_generated_tokens(generated, self.tokenizer.pad_token_id))
                for index, text in zip(batch, self.tokenizer.batch_decode(generated, skip_special_tokens=True),
                                       strict=True):
                    outputs[index] = text.strip()
        return outputs


_AUTO_CLASSES = {
    "encoder": ("AutoModel", EncoderModel),
    "sequence-classifier": ("AutoModelForSequenceClassification", SequenceClassifierModel),
    "token-classifier": ("AutoModelForTokenClassification", TokenClassifierModel),
    "causal-lm": ("AutoModelForCausalLM", CausalLMModel),
    "seq2seq": ("AutoModelForSeq2SeqLM", Seq2SeqModel),
}


def quiet_library_progress(gguf: bool = False) -> None:
    """Turn off the progress bars libraries draw while a model loads: they would draw over ours (the CLI's
    job bar) and on a worker's log. transformers' own bars (checkpoint shards) go through its logging switch;
    its GGUF de-quantisation bar ("Converting and de-quantizing GGUF tensors...") is a plain ``tqdm`` that
    ignores that switch, so the module's ``tqdm`` is replaced by a disabled one (``gguf``: only when a GGUF
    file is loaded, so the module is not imported otherwise)."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    if not gguf:
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    current = getattr(gguf_utils, "tqdm", None)
    if current is not None and not getattr(current, "_verticals_quiet", False):
        quiet = functools.partial(current, disable=True)
        quiet._verticals_quiet = True  # type: ignore[attr-defined]
        gguf_utils.tqdm = quiet


def load_model(spec: ModelSpec, source: ResolvedSource, host: ModelHost, device: str | None = None) -> LoadedModel:
    """Load ``spec`` from ``source`` on the chosen device and precision."""
    if spec.kind == "sequence-classifier" and (Path(source.path) / HEAD_FILE).exists():
        return EncoderHeadClassifier.load(spec, source, host)
    import transformers

    quiet_library_progress(gguf=bool(source.gguf_file))
    auto_name, wrapper = _AUTO_CLASSES[spec.kind]
    target = pick_device(device)
    generative = spec.kind in {"causal-lm", "seq2seq"}
    precision = pick_precision(target, None if spec.precision == "auto" else spec.precision, generative=generative)
    extra: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, **extra)
    if generative and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = getattr(transformers, auto_name).from_pretrained(source.path, dtype=precision.weights, **extra)
    model.to(target).eval()
    loaded = wrapper(spec, source, model, tokenizer, target, precision)
    if precision.needs_parity_check:
        loaded.check_parity(tolerance=spec.options.get("parity_tolerance", 0.02))
    return loaded


if TYPE_CHECKING:  # what the contract promises a task (verticals.contract.handles): mypy checks these classes are it
    from verticals.contract import handles

    def _encoder(model: EncoderModel) -> handles.Encoder:
        return model

    def _classifier(model: SequenceClassifierModel) -> handles.AttributingClassifier:
        return model

    def _head_classifier(model: EncoderHeadClassifier) -> handles.AttributingClassifier:
        return model

    def _tagger(model: TokenClassifierModel) -> handles.Tagger:
        return model

    def _causal(model: CausalLMModel) -> handles.Generator:
        return model

    def _chat(model: CausalLMModel) -> handles.ChatModel:
        return model

    def _seq2seq(model: Seq2SeqModel) -> handles.Generator:
        return model
