"""Runtimes per model: ONNX Runtime variants (fp32, int8), built, gated and chosen per model.

A loaded encoder / sequence classifier / token classifier / head classifier runs on PyTorch by default. A
*variant* is the same model exported to ONNX (``torch.onnx.export``; a head classifier as one graph: encoder
with its LoRA adapter merged, mean pooling, linear head), with ONNX Runtime's transformer graph fusions applied
(``onnxruntime.transformers.optimizer``) and, for ``int8``, dynamic quantization with per-channel int8 weights
(``onnxruntime.quantization.quantize_dynamic``). Variants are cached in the model store next to the spec's
versions, keyed by a fingerprint of the weights::

    <store>/<spec>/runtimes/<fingerprint>/model.onnx       onnx fp32 (graph-optimized)
    <store>/<spec>/runtimes/<fingerprint>/model-int8.onnx  onnx int8
    <store>/<spec>/runtimes.json                           the gate's records (:mod:`~verticals.core.models.optimize`)

Which runtime a model runs on (:func:`runtime_choice`): ``VERTICALS_RUNTIMES`` (per spec) > an explicitly set
``VERTICALS_RUNTIME`` > the spec's ``options["runtime"]`` > ``auto``. ``auto`` uses the fastest variant the gate
*kept* for these weights on this machine (same CPU model and instruction set, same onnxruntime version), else
PyTorch; ``torch`` forces PyTorch; ``onnx`` / ``onnx-int8`` force that variant (built on first use when missing,
gated or not). ONNX variants run on the CPU only; a missing onnxruntime, a missing or corrupt file falls back to
PyTorch with a warning that says why.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from verticals.config import RUNTIME_CHOICES as CHOICES
from verticals.core.io import file_sha256

if TYPE_CHECKING:
    from verticals.core.models.host import ModelHost
    from verticals.core.models.inference import LoadedModel

log = logging.getLogger(__name__)

RECORDS_FILE = "runtimes.json"
VARIANTS_DIR = "runtimes"
FILES = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
DEFAULT_BUDGET = 0.5  # points of the task's main metric
DEFAULT_MIN_AGREEMENT = 0.98  # share of items whose label is unchanged
DEFAULT_MIN_COSINE = 0.99  # encoders: smallest cosine between the variant's and PyTorch's embeddings


class RuntimeUnavailable(RuntimeError):
    """A variant cannot be built or loaded here (no onnxruntime, a model kind or device it does not serve)."""


@dataclass(frozen=True)
class Variant:
    """A built ONNX variant of one model's weights."""

    precision: str  # "fp32" | "int8"
    path: Path
    fingerprint: str
    runtime: str = "onnx"

    @property
    def name(self) -> str:
        return "onnx" if self.precision == "fp32" else f"onnx-{self.precision}"


def parse_choice(choice: str) -> tuple[str, str | None]:
    """``onnx-int8`` -> (``onnx``, ``int8``); ``onnx`` -> (``onnx``, ``fp32``); ``torch``/``auto`` -> (it, None)."""
    choice = choice.strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"unknown runtime {choice!r}: use one of {', '.join(CHOICES)}")
    if choice.startswith("onnx"):
        return "onnx", choice.partition("-")[2] or "fp32"
    return choice, None


def parse_runtimes(text: str | None) -> dict[str, str]:
    """``VERTICALS_RUNTIMES``: ``name=choice;other=choice`` -> dict (choices checked)."""
    out: dict[str, str] = {}
    for part in (text or "").replace(",", ";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"bad runtime setting {part!r}: expected MODEL=RUNTIME, e.g. finance.sentiment=onnx")
        parse_choice(value)
        out[name.strip()] = value.strip().lower()
    return out


def runtime_choice(spec: Any, host_choice: str | Variant | None = None) -> str | Variant:
    """The runtime asked for ``spec``: the host's own choice (the gate's and benchmarks'), ``VERTICALS_RUNTIMES``,
    an explicitly set ``VERTICALS_RUNTIME``, the spec's ``options["runtime"]``, else the default ``auto``."""
    from verticals.config import settings

    if host_choice is not None:
        return host_choice
    current = settings()
    per_spec = parse_runtimes(current.runtimes)
    if spec.name in per_spec:
        return per_spec[spec.name]
    if "runtime" in current.model_fields_set:
        return current.runtime
    option = (spec.options or {}).get("runtime")
    if option:
        parse_choice(str(option))
        return str(option).lower()
    return current.runtime


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


# machine and weights ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What a record's speed was measured on: CPU model, its relevant instruction sets, cores, onnxruntime."""
    cpu, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return {"cpu": cpu, "isa": [f for f in ISA_FLAGS if f in flags], "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "onnxruntime": onnxruntime_version()}


def same_machine(recorded: dict[str, Any], here: dict[str, Any] | None = None) -> bool:
    here = here or machine()
    return all(recorded.get(key) == here.get(key) for key in ("cpu", "isa", "onnxruntime"))


def same_baseline(record: dict[str, Any], model: LoadedModel) -> bool:
    """Whether ``record`` judged its variant against PyTorch at the precision ``model`` runs at (records that
    do not say are taken as such)."""
    recorded = record.get("torch_precision")
    return recorded is None or recorded == model.precision.label()


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_hash(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = file_sha256(path)
    return _FILE_HASHES[key]


def _folder_digest(folder: Path, digest: Any) -> None:
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if path.name in {"version.json", "README.md", ".gitattributes"} or relative.startswith("."):
            continue
        digest.update(f"{relative}\0{_file_hash(path)}\n".encode())


def fingerprint(model: LoadedModel) -> str:
    """A hash of everything the exported graph is made of: the kind, the files of the model's folder and, for a
    head over a shared encoder, the encoder's files (content hashes, cached per file size and mtime)."""
    digest = hashlib.sha256(f"{model.kind}\0{type(model).__name__}\n".encode())
    _folder_digest(Path(model.source.path), digest)
    encoder = getattr(model, "encoder", None)
    if encoder is not None and not getattr(model, "own_encoder", False):
        digest.update(b"encoder\n")
        _folder_digest(Path(encoder.source.path), digest)
    return digest.hexdigest()[:20]


# export -------------------------------------------------------------------------------------------------------


def _input_names(model: LoadedModel) -> list[str]:
    names = list(getattr(model.tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in names]


def _plain_copy(module: torch.nn.Module) -> torch.nn.Module:
    """An fp32 copy of a transformers model with eager attention and no hooks (exportable)."""
    clone = copy.deepcopy(module).float().eval()
    for sub in clone.modules():
        sub._forward_hooks.clear()
    with contextlib.suppress(Exception):
        clone.set_attn_implementation("eager")  # type: ignore[operator]
    return clone


class _Pooled(torch.nn.Module):
    """Encoder + mean pooling (+ an optional linear head): the graph exported for encoders and heads."""

    def __init__(self, encoder: torch.nn.Module, names: list[str], weight: np.ndarray | None = None,
                 bias: np.ndarray | None = None, normalize: bool = False):
        super().__init__()
        self.encoder, self.names, self.normalize = encoder, names, normalize
        self.weight = None if weight is None else torch.nn.Parameter(torch.tensor(weight), requires_grad=False)
        self.bias = None if bias is None else torch.nn.Parameter(torch.tensor(bias), requires_grad=False)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        features = dict(zip(self.names, inputs, strict=True))
        hidden = self.encoder(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.weight is None:
            return pooled
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled @ self.weight.T + self.bias


class _Logits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).logits


def export_module(model: LoadedModel) -> tuple[torch.nn.Module, list[str], str, torch.nn.Module]:
    """The module to export for ``model``: (module, input names, output name, the transformers model inside)."""
    from verticals.core.models.inference import (
        EncoderHeadClassifier,
        EncoderModel,
        SequenceClassifierModel,
        TokenClassifierModel,
    )

    names = _input_names(model)
    if isinstance(model, EncoderHeadClassifier):
        encoder = _plain_copy(model.encoder.model)
        if model.adapter:
            model.encoder.adapters[model.adapter].merge_into(encoder)  # W += scaling * B @ A
        head = _Pooled(encoder, names, model.weight, model.bias, bool(model.config.get("normalize", True)))
        return head, names, "logits", encoder
    if isinstance(model, EncoderModel):
        encoder = _plain_copy(model.model)
        return _Pooled(encoder, names), names, "pooled", encoder
    if isinstance(model, SequenceClassifierModel | TokenClassifierModel):
        inner = _plain_copy(model.model)
        return _Logits(inner, names), names, "logits", inner
    raise RuntimeUnavailable(f"model {model.spec.name}: a {model.kind} has no ONNX runtime (encoders and "
                             "classifiers only)")


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as temp:
        produced = Path(temp) / target.name
        write(produced)
        os.replace(produced, target)


def _export_fp32(model: LoadedModel, target: Path) -> None:
    import warnings

    module, names, output, inner = export_module(model)
    example = model.tokenizer(["a short example text", "and another one"], padding=True, return_tensors="pt")
    args = tuple(example[n] for n in names)

    def write(path: Path) -> None:
        raw = path.with_name("raw.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(raw), dynamo=False, input_names=names, output_names=[output],
                              dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names}, opset_version=17)
        config = getattr(inner, "config", None)
        heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
        try:
            from onnxruntime.transformers import optimizer

            optimized = optimizer.optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden)
            optimized.save_model_to_file(str(path))
        except Exception as error:  # fusions are an optimization: the plain export is still a correct graph
            log.warning("model %s: transformer graph fusions failed (%s); the plain export is used",
                        model.spec.name, error)
            shutil.copyfile(raw, path)

    _atomic_write(target, write)


def _quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(path: Path) -> None:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its advice to pre-process (for static quantization) goes to the root logger
        try:
            quantize_dynamic(str(source), str(path), per_channel=True, weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        finally:
            root.setLevel(level)

    _atomic_write(target, write)


def variants_root(spec: str, root: Path | None = None) -> Path:
    from verticals.core.models.versions import ModelStore, _check_spec

    return ModelStore(root).root / _check_spec(spec)


def build_variant(model: LoadedModel, precision: str = "fp32", root: Path | None = None,
                  rebuild: bool = False) -> Variant:
    """Export (and quantize) ``model`` into the store's cache, or reuse the variant already built for its weights."""
    if onnxruntime_version() is None:
        raise RuntimeUnavailable("onnxruntime is not installed (pip install 'verticals[onnx]')")
    if precision not in FILES:
        raise ValueError(f"unknown precision {precision!r} for an ONNX variant: use fp32 or int8")
    key = fingerprint(model)
    folder = variants_root(model.spec.name, root) / VARIANTS_DIR / key
    fp32 = folder / FILES["fp32"]
    if rebuild or not fp32.is_file():
        started = time.perf_counter()
        _export_fp32(model, fp32)
        log.info("model %s: exported to ONNX in %.1fs", model.spec.name, time.perf_counter() - started)
    path = fp32
    if precision == "int8":
        path = folder / FILES["int8"]
        if rebuild or not path.is_file():
            _quantize_int8(fp32, path)
    return Variant(precision, path, key)


def built_variant(model: LoadedModel, precision: str, root: Path | None = None) -> Variant | None:
    key = fingerprint(model)
    path = variants_root(model.spec.name, root) / VARIANTS_DIR / key / FILES[precision]
    return Variant(precision, path, key) if path.is_file() else None


# running ------------------------------------------------------------------------------------------------------


class OrtRunner:
    """An ONNX Runtime session over a variant: numpy features in, the graph's one output out."""

    def __init__(self, variant: Variant, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.variant = variant
        self.session = ort.InferenceSession(str(variant.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.bytes = variant.path.stat().st_size

    def run(self, features: dict[str, Any]) -> np.ndarray:
        feed = {name: np.asarray(features[name], dtype=np.int64) for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def attach(model: LoadedModel, host: ModelHost | None = None, choice: str | Variant | None = None) -> None:
    """Put ``model`` on the runtime chosen for it (see the module doc); on any problem it stays on PyTorch and
    a warning says why. Sets ``model.runner`` (``None``: PyTorch)."""
    chosen = runtime_choice(model.spec, choice)
    if chosen == "torch" or (chosen == "auto" and not _has_records(model.spec.name, host)):
        return
    try:
        variant = select_variant(model, chosen, host)
    except Exception as error:
        log.warning("model %s: runtime %s unavailable (%s); running on PyTorch", model.spec.name,
                    getattr(chosen, "name", chosen), error)
        return
    if variant is None:
        return
    try:
        model.runner = OrtRunner(variant)
    except Exception as error:
        log.warning("model %s: the %s variant at %s could not be loaded (%s: %s); running on PyTorch. "
                    "Rebuild it with `verticals models optimize %s`", model.spec.name, variant.name, variant.path,
                    type(error).__name__, str(error)[:200], model.spec.name)
        return
    log.info("model %s: running on onnxruntime (%s)", model.spec.name, variant.precision)


def _store_root(host: ModelHost | None) -> Path | None:
    return getattr(host, "store_root", None)


def _has_records(spec: str, host: ModelHost | None) -> bool:
    try:
        return (variants_root(spec, _store_root(host)) / RECORDS_FILE).is_file()
    except Exception:  # a spec name the store does not take (a head's private encoder)
        return False


def select_variant(model: LoadedModel, choice: str | Variant, host: ModelHost | None = None) -> Variant | None:
    """The variant ``model`` should run on for ``choice``, or None for PyTorch."""
    if isinstance(choice, Variant):
        return choice
    runtime, precision = parse_choice(choice)
    if runtime == "torch":
        return None
    if model.device.type != "cpu":
        if runtime == "onnx":
            log.warning("model %s: ONNX variants run on the CPU only; on %s it runs on PyTorch",
                        model.spec.name, model.device)
        return None
    if onnxruntime_version() is None:
        if runtime == "onnx":
            raise RuntimeUnavailable("onnxruntime is not installed (pip install 'verticals[onnx]')")
        return None
    root = _store_root(host)
    if runtime == "onnx":
        return built_variant(model, precision or "fp32", root) or build_variant(model, precision or "fp32", root)
    return best_kept(model, root)


def best_kept(model: LoadedModel, root: Path | None = None) -> Variant | None:
    """``auto``: the fastest variant the gate kept for these weights on this machine, against PyTorch at the
    precision it runs at now (a variant judged faster than fp32 PyTorch is not judged against bf16 autocast)."""
    records = [r for r in load_records(model.spec.name, root) if r.get("decision") == "kept"]
    if not records:
        return None
    key, here = fingerprint(model), machine()
    candidates = [r for r in records if r.get("fingerprint") == key and same_machine(r.get("machine", {}), here)
                  and same_baseline(r, model)]
    for record in sorted(candidates, key=lambda r: -float(r.get("speedup") or 0)):
        path = variants_root(model.spec.name, root) / record["path"]
        if path.is_file():
            return Variant(record["precision"], path, key)
        log.warning("model %s: the kept %s variant is missing (%s); looking further", model.spec.name,
                    record.get("variant"), record["path"])
    return None


# records ------------------------------------------------------------------------------------------------------


def load_records(spec: str, root: Path | None = None) -> list[dict[str, Any]]:
    path = variants_root(spec, root) / RECORDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except ValueError:
        log.warning("model %s: %s is not valid JSON; ignored", spec, path.name)
        return []
    return [r for r in data.get("records", []) if isinstance(r, dict)] if isinstance(data, dict) else []


def save_record(spec: str, record: dict[str, Any], root: Path | None = None) -> None:
    """Add ``record``, replacing an earlier one for the same weights, variant and machine (atomic write)."""
    folder = variants_root(spec, root)
    folder.mkdir(parents=True, exist_ok=True)
    same = ("fingerprint", "variant")
    kept = [r for r in load_records(spec, root)
            if not (all(r.get(k) == record.get(k) for k in same) and same_machine(r.get("machine", {}),
                                                                                 record["machine"]))]
    handle, temp = tempfile.mkstemp(prefix=".runtimes-", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump({"records": [*kept, record]}, stream, indent=2, default=str)
        stream.write("\n")
    os.replace(temp, folder / RECORDS_FILE)
