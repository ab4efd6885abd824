"""Fine-tuning a task's classifier on labelled rows: a new version in the local model store.

Methods (``TrainConfig.method``):

- ``lora`` (default): LoRA adapters (``peft``) on the encoder's linear layers, trained with a linear head
  over mean-pooled embeddings. Saves the adapter (hundreds of KB to ~1 MB) and the head; served on the one
  shared encoder (:meth:`verticals.core.models.inference.EncoderModel.add_adapter`).
- ``head``: the encoder stays frozen; a multinomial logistic regression over its normalized embeddings
  (L2 strength picked on the dev slice). Saves only the head (kilobytes).
- ``full``: every encoder weight is trained; saves a whole encoder copy (~90 MB for MiniLM).

A stratified, seeded dev slice (``dev_fraction``) is never trained on: it picks the best epoch / evaluation
point (early stopping with ``patience``) and its metrics are stored with the version. Runs are deterministic
for a seed on a given machine. A run that fails (empty data, missing or unknown labels, a single class) or is
cancelled raises before anything is stored; a finished run is written to a temporary folder and renamed into
the store in one step (:meth:`verticals.core.models.versions.ModelStore.new_version`).

Training runs as a job of the job service: the task ``verticals.train`` (registered by the core) takes one
item (the task to train, the labelled rows, the configuration) and trains in its ``run``; progress (step,
loss, dev metric, ETA) is written to the job's options under ``training`` and to listeners registered with
:func:`listen`, and ``verticals jobs cancel`` stops it at the next step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import threading
import time
import typing
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from verticals.contract import Task
from verticals.contract.evaluators import label_scores, macro_average

log = logging.getLogger(__name__)

METHODS = ("lora", "head", "full")
DEFAULT_LR = {"lora": 1e-3, "full": 5e-5, "head": 0.0}


class TrainingError(ValueError):
    """The training data or configuration cannot produce a model; the message says why."""


class TrainingCancelled(RuntimeError):
    """The job was cancelled while training; nothing was stored."""


@dataclass
class TrainConfig:
    method: Literal["lora", "head", "full"] = "lora"
    base: str | None = None  # encoder ModelSpec name; default: the one the current head uses, else minilm
    epochs: int = 3
    batch_size: int = 32
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_length: int = 128
    dev_fraction: float = 0.15
    seed: int = 13
    patience: int = 2
    evals_per_epoch: int = 1
    max_steps: int | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    dev_metric: str = "macro_f1"
    pair_inputs: bool = False  # rows carry a second text ("pair"): the encoder reads [CLS] text [SEP] pair [SEP]
    lr_decay: float = 1.0  # layer-wise learning-rate decay (lora/full): layer k of L trains at lr * decay^(L-k)
    seeds: int = 1  # independent runs (seeds seed, seed+1, ...) on the same split; the best dev metric is kept
    group_by_length: bool = False  # batches of rows of similar length (less padding: faster on varied lengths)
    fixed_dev: bool = False  # rows carry "split" (train/dev): the dev slice is given, not drawn (dev_fraction unused)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise TrainingError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        if not 0 < self.dev_fraction < 1:
            raise TrainingError("dev_fraction must be between 0 and 1 (exclusive)")
        if self.epochs < 1 or self.batch_size < 1 or self.max_length < 8:
            raise TrainingError("epochs and batch_size must be >= 1, max_length >= 8")
        if self.dev_metric not in ("macro_f1", "accuracy"):
            raise TrainingError("dev_metric must be macro_f1 or accuracy")
        if not 0 < self.lr_decay <= 1:
            raise TrainingError("lr_decay must be in (0, 1] (1: every layer at the same learning rate)")
        if self.lr_decay < 1 and self.method == "head":
            raise TrainingError("lr_decay applies to --method full or lora: the head method trains no layer")
        if not 1 <= self.seeds <= 20:
            raise TrainingError("seeds must be between 1 and 20")
        if self.seeds > 1 and self.method == "head":
            raise TrainingError("seeds applies to --method full or lora: the head method is deterministic")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


@dataclass
class TrainProgress:
    phase: str  # "tokenize", "train", "eval", "save", "done"
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    dev: float | None = None  # last dev metric
    best_dev: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0


# -- listeners (the CLI's progress bar) -----------------------------------------------------------

_listeners: dict[str, Callable[[TrainProgress], None]] = {}
_listeners_lock = threading.Lock()


def listen(job_id: str, callback: Callable[[TrainProgress], None] | None) -> None:
    """Receive the progress of the training job ``job_id`` when it runs in this process (None: stop)."""
    with _listeners_lock:
        if callback is None:
            _listeners.pop(job_id, None)
        else:
            _listeners[job_id] = callback


# -- data -----------------------------------------------------------------------------------------

def task_labels(task_cls: type[Task]) -> list[str] | None:
    """The labels a task's output declares (``label: Literal[...]``), or None when it does not say."""
    info = task_cls.Output.model_fields.get("label")
    if info is None:
        return None
    args = typing.get_args(info.annotation)
    return [str(a) for a in args] if args and all(isinstance(a, str) for a in args) else None


DEV_VALUES = ("dev", "validation", "val", "valid")


def prepare_rows(rows: Iterable[dict[str, Any]], text_field: str = "text", label_field: str = "label",
                 labels: Sequence[str] | None = None, pair_field: str | None = None,
                 split_field: str | None = None) -> list[dict[str, str]]:
    """``{"text", "label"}`` rows (plus ``"pair"``, the second text, when ``pair_field`` names its column, and
    ``"split"``, ``dev`` or ``train``, when ``split_field`` does: a value in :data:`DEV_VALUES` is dev, any other
    train), checked: no empty file, no blank text, pair or label, no unknown label."""
    out: list[dict[str, str]] = []
    unknown: dict[str, int] = defaultdict(int)
    for number, row in enumerate(rows, start=1):
        for column in (text_field, pair_field, label_field, split_field):
            if column is not None and column not in row:
                raise TrainingError(f"row {number} has no column {column!r} (columns: {', '.join(map(str, row))})")
        text, label = str(row[text_field] or "").strip(), str(row[label_field] or "").strip().lower()
        if not text:
            raise TrainingError(f"row {number}: the text is empty")
        if not label:
            raise TrainingError(f"row {number}: the label is empty")
        if labels is not None and label not in labels:
            unknown[label] += 1
        prepared = {"text": text, "label": label}
        if pair_field is not None:
            prepared["pair"] = str(row[pair_field] or "").strip()
            if not prepared["pair"]:
                raise TrainingError(f"row {number}: the second text ({pair_field!r}) is empty")
        if split_field is not None:
            prepared["split"] = "dev" if str(row[split_field] or "").strip().lower() in DEV_VALUES else "train"
        out.append(prepared)
    if unknown:
        shown = ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())[:5])
        raise TrainingError(f"unknown label(s) {shown}: this task's labels are {', '.join(labels or [])}")
    if not out:
        raise TrainingError("the training data is empty")
    if len({r["label"] for r in out}) < 2:
        raise TrainingError("the training data has a single label: a classifier needs at least two")
    return out


def data_hash(rows: Sequence[dict[str, str]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        fields = [row["text"], row["label"]] + [row[k] for k in ("pair", "split") if k in row]
        digest.update(json.dumps(fields, ensure_ascii=False).encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def stratified_split(rows: Sequence[dict[str, str]], dev_fraction: float, seed: int
                     ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Per label: sort by text, shuffle with ``seed``, the first ``round(n * dev_fraction)`` (at least 1) go to dev."""
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    train, dev = [], []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda r: (r["text"], r.get("pair", "")))
        rng.shuffle(group)
        cut = max(1, round(len(group) * dev_fraction)) if len(group) > 1 else 0
        dev += group[:cut]
        train += group[cut:]
    if not dev or not train:
        raise TrainingError("too few rows to hold out a dev slice: label more rows or raise dev_fraction")
    return train, dev


def fixed_split(rows: Sequence[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The rows marked ``split == "dev"`` are the dev slice, the others train (``verticals train --dev-column``)."""
    train = [r for r in rows if r.get("split") != "dev"]
    dev = [r for r in rows if r.get("split") == "dev"]
    if not dev or not train:
        raise TrainingError(f"the dev column marks {len(dev)} of {len(rows)} rows as dev (values "
                            f"{', '.join(DEV_VALUES)}): both the dev slice and the training rows need some")
    return train, dev


def classification_metrics(true: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the labels the dev slice has) and per-label figures: the rules of
    :class:`~verticals.contract.ClassificationEvaluator`, computed by the contract's :func:`label_scores`."""
    per_label = label_scores(true, predicted, labels, digits=4)
    n = len(true)
    return {"n": n, "accuracy": round(sum(t == p for t, p in zip(true, predicted, strict=True)) / max(1, n), 4),
            "macro_f1": round(macro_average(per_label), 4), "per_label": per_label}


# -- training ---------------------------------------------------------------------------------------

# Other methods of this path, by the kind of model they train: kind -> (config class, train function with
# train_model's signature). verticals.core.models.token_training adds "token-classifier" when imported (the core's
# builtin plugin imports it with the training task).
TRAINERS: dict[str, tuple[type[TrainConfig], Callable[..., Any]]] = {}


def trained_kind(registry: Any, task_name: str) -> str | None:
    """The kind of the model ``verticals train`` trains for the task when another method handles it, else None."""
    try:
        task_cls = registry.task(task_name)
    except KeyError:  # train_model says so, as for any task
        return None
    kinds = {registry.models[n].kind for n in dict(task_cls.models).values() if n in registry.models}
    return next((kind for kind in sorted(kinds) if kind in TRAINERS), None)


def _classifier_spec(registry: Any, task_cls: type[Task]) -> str:
    roles = dict(task_cls.models)
    candidates = [name for name in roles.values()
                  if name in registry.models and registry.models[name].kind == "sequence-classifier"]
    if len(candidates) != 1:
        raise TrainingError(f"{task_cls.name} does not have exactly one sequence-classifier model to train "
                            f"(models: {roles or 'none'})")
    return candidates[0]


def _default_base(registry: Any, spec_name: str) -> str:
    from verticals.core.models.host import ModelUnavailable, resolve
    from verticals.core.models.inference import HEAD_FILE

    try:
        source = resolve(registry.models[spec_name])
        config = json.loads((source.path / HEAD_FILE).read_text(encoding="utf-8"))
        if config.get("encoder") in registry.models:
            return str(config["encoder"])
    except (ModelUnavailable, OSError, ValueError):
        pass
    return "minilm"


class _Classifier:
    """Mean-pooled encoder + dropout + linear head (the forward the served head reproduces in eval mode)."""

    def __init__(self, encoder: Any, labels: int, dropout: float = 0.1):
        import torch

        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, labels)

    def parameters(self) -> list[Any]:
        return [p for p in self.encoder.parameters() if p.requires_grad] + list(self.head.parameters())

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.dropout.train(mode)

    def pooled(self, features: dict[str, Any]) -> Any:
        hidden = self.encoder(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def __call__(self, features: dict[str, Any]) -> Any:
        return self.head(self.dropout(self.pooled(features)))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's and Python's global generators for a training run, and give the process its own back after.

    Model initialisation (PEFT, ``nn.Linear``) and dropout draw from torch's global CPU generator, which
    cannot be swapped for a local ``torch.Generator``; so the run forks it (``torch.random.fork_rng``)
    and seeds the fork: the run is reproducible for a seed, and the application that embeds verticals
    finds its generators where they were (training runs on the CPU: no CUDA generator is touched).
    Other threads drawing from the global generators during the run still share them.
    """
    import torch

    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def train_model(registry: Any, task_name: str, rows: Sequence[dict[str, str]], config: TrainConfig,
                on_progress: Callable[[TrainProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None, store: Any = None,
                data_name: str | None = None) -> Any:
    """Train a new version of ``task_name``'s classifier on ``rows`` ({"text", "label"}); returns its ModelVersion."""
    import torch

    from verticals.core.models.host import resolve
    from verticals.core.models.versions import ModelStore

    kind = trained_kind(registry, task_name)
    if kind in TRAINERS:  # e.g. a token classifier (BIO tags): its own method, same job and store
        return TRAINERS[kind][1](registry, task_name, rows, config, on_progress, should_stop, store, data_name)
    config.validate()
    started = time.perf_counter()
    task_cls = registry.task(task_name)
    spec_name = _classifier_spec(registry, task_cls)
    declared = task_labels(task_cls)
    rows = prepare_rows(rows, labels=declared, pair_field="pair" if config.pair_inputs else None,
                        split_field="split" if config.fixed_dev else None)
    labels = declared or sorted({r["label"] for r in rows})
    base = config.base or _default_base(registry, spec_name)
    if base not in registry.models or registry.models[base].kind != "encoder":
        raise TrainingError(f"base {base!r} is not a registered encoder model")
    base_source = resolve(registry.models[base], use_store=False)
    train_rows, dev_rows = fixed_split(rows) if config.fixed_dev else stratified_split(rows, config.dev_fraction,
                                                                                      config.seed)
    report = on_progress or (lambda progress: None)
    stop = should_stop or (lambda: False)

    if config.method == "head":
        with seeded(config.seed):
            head_weight, head_bias, dev, extra = _train_head(registry, base, train_rows, dev_rows, labels, config,
                                                             report, stop, started)
        trained = None
    else:
        trained, head_weight, head_bias, dev, extra = _train_seeds(base_source.path, train_rows, dev_rows, labels,
                                                                   config, report, stop, started)
    if stop():
        raise TrainingCancelled("training cancelled; nothing was stored")
    report(TrainProgress("save", elapsed_s=time.perf_counter() - started))
    meta = {
        "task": task_name, "method": config.method, "labels": labels,
        "inputs": "pair" if config.pair_inputs else "text",
        "base": {"model": base, "source": base_source.kind, "reference": base_source.reference,
                 "revision": base_source.revision},
        "data": {"name": data_name, "hash": data_hash(rows), "rows": len(rows), "train_rows": len(train_rows),
                 "dev_rows": len(dev_rows), "label_counts": {lb: sum(r["label"] == lb for r in rows) for lb in labels}},
        "config": asdict(config), "dev": dev, **extra,
        "train_seconds": round(time.perf_counter() - started, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library": {"torch": torch.__version__},
    }
    store = store or ModelStore()
    with store.new_version(spec_name, meta) as pending:
        write_version(pending.path, base, labels, head_weight, head_bias, config.method, trained,
                      base_reference=base_source.reference if base_source.kind != "override" else base,
                      pair=config.pair_inputs)
    log.info("stored %s %s (%s, dev %s %.4f)", spec_name, pending.version, config.method, config.dev_metric,
             dev.get(config.dev_metric, 0.0))
    return store.get(spec_name, pending.version)


def write_version(folder: Path, base: str, labels: Sequence[str], weight: Any, bias: Any, method: str,
                  trained: Any = None, base_reference: str | None = None, pair: bool = False) -> None:
    """Write a head folder (``verticals_head.json`` + ``head.safetensors`` [+ ``adapter/`` or ``encoder/``]);
    ``pair``: the head reads text pairs (``"inputs": "pair"``), served by ``classify(texts, pairs)``."""
    import numpy as np
    from safetensors.numpy import save_file

    from verticals.core.models.inference import HEAD_FILE

    save_file({"weight": np.asarray(weight, dtype=np.float32), "bias": np.asarray(bias, dtype=np.float32)},
              str(folder / "head.safetensors"))
    config: dict[str, Any] = {"format": "verticals-linear-head", "version": 1, "encoder": base, "labels": list(labels),
                              "normalize": method == "head", "weights": "head.safetensors", "method": method}
    if pair:
        config["inputs"] = "pair"
    if method == "lora":
        trained.save_pretrained(str(folder / "adapter"))
        (folder / "adapter" / "README.md").unlink(missing_ok=True)  # peft's empty model card
        adapter_config = folder / "adapter" / "adapter_config.json"
        values = json.loads(adapter_config.read_text(encoding="utf-8"))
        values["base_model_name_or_path"] = base_reference or base  # not this machine's path to the weights
        adapter_config.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        config["adapter"] = "adapter"
    elif method == "full":
        model, tokenizer = trained
        model.save_pretrained(str(folder / "encoder"))
        tokenizer.save_pretrained(str(folder / "encoder"))
        config["encoder_weights"] = "encoder"
    (folder / HEAD_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _train_head(registry: Any, base: str, train_rows: list[dict[str, str]], dev_rows: list[dict[str, str]],
                labels: list[str], config: TrainConfig, report: Callable[[TrainProgress], None],
                stop: Callable[[], bool], started: float) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Logistic regression on frozen normalized embeddings; the L2 strength with the best dev metric wins."""
    import numpy as np
    import torch

    from verticals.core.models.host import ModelHost
    from verticals.core.models.inference import EncoderModel

    encoder = ModelHost(registry.models).get(base)
    if not isinstance(encoder, EncoderModel):
        raise TrainingError(f"base {base!r} did not load as an encoder")
    report(TrainProgress("tokenize", elapsed_s=time.perf_counter() - started))
    x_train = torch.tensor(encoder.embed([r["text"] for r in train_rows], normalize=True, pairs=_pairs(train_rows)))
    x_dev = encoder.embed([r["text"] for r in dev_rows], normalize=True, pairs=_pairs(dev_rows))
    y_train = torch.tensor([labels.index(r["label"]) for r in train_rows])
    grid = (1e-4, 1e-3, 1e-2)
    best: tuple[float, Any, Any, dict[str, Any], float] | None = None
    for step, l2 in enumerate(grid, start=1):
        if stop():
            raise TrainingCancelled("training cancelled; nothing was stored")
        torch.manual_seed(config.seed)
        weight = torch.zeros(len(labels), x_train.shape[1], requires_grad=True)
        bias = torch.zeros(len(labels), requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure(weight=weight, bias=bias, optimizer=optimizer, l2=l2):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(x_train @ weight.T + bias, y_train) + l2 * (weight**2).sum()
            loss.backward()
            return loss

        loss = float(optimizer.step(closure).detach())
        w, b = weight.detach().numpy(), bias.detach().numpy()
        predicted = [labels[i] for i in (x_dev @ w.T + b).argmax(axis=1)]
        dev = classification_metrics([r["label"] for r in dev_rows], predicted, labels)
        if best is None or dev[config.dev_metric] > best[0]:
            best = (dev[config.dev_metric], w, b, dev, l2)
        elapsed = time.perf_counter() - started
        report(TrainProgress("train", step, len(grid), float(step), loss, dev[config.dev_metric], best[0],
                             elapsed / step * (len(grid) - step), elapsed))
    assert best is not None
    return np.asarray(best[1]), np.asarray(best[2]), best[3], {"l2": best[4]}


def _pairs(rows: Sequence[dict[str, str]]) -> list[str] | None:
    """The rows' second texts, or None when they are single texts."""
    return [r["pair"] for r in rows] if rows and "pair" in rows[0] else None


def _train_seeds(base_path: Path, train_rows: list[dict[str, str]], dev_rows: list[dict[str, str]],
                 labels: list[str], config: TrainConfig, report: Callable[[TrainProgress], None],
                 stop: Callable[[], bool], started: float) -> tuple[Any, Any, Any, dict[str, Any], dict[str, Any]]:
    """``config.seeds`` runs of :func:`_train_encoder` (seeds ``seed``, ``seed + 1``, ...; the same dev slice, which
    the split's ``seed`` fixes); the run with the best dev metric is kept. Progress counts the steps of all runs."""
    best: tuple[Any, Any, Any, dict[str, Any], dict[str, Any]] | None = None
    runs: list[dict[str, Any]] = []
    for offset in range(config.seeds):
        run_started = time.perf_counter() - started  # seconds since the job started, when this run starts

        def relay(progress: TrainProgress, offset: int = offset, run_started: float = run_started) -> None:
            if progress.phase == "train" and config.seeds > 1:
                run_total = progress.elapsed_s - run_started + (progress.eta_s or 0.0)
                progress = TrainProgress("train", progress.step + offset * progress.total_steps,
                                         progress.total_steps * config.seeds, progress.epoch, progress.loss,
                                         progress.dev, progress.best_dev,
                                         (progress.eta_s or 0.0) + (config.seeds - offset - 1) * run_total,
                                         progress.elapsed_s)
            report(progress)

        seed = config.seed + offset
        with seeded(seed):
            result = _train_encoder(base_path, train_rows, dev_rows, labels, config, relay, stop, started, seed)
        score = result[3].get(config.dev_metric, 0.0)
        runs.append({"seed": seed, config.dev_metric: score, "best_step": result[4]["best_step"]})
        if best is None or score > best[3].get(config.dev_metric, 0.0):
            best = result
        del result  # a full encoder copy per run otherwise
        if stop():
            raise TrainingCancelled("training cancelled; nothing was stored")
    assert best is not None
    extra = dict(best[4])
    if config.seeds > 1:
        extra["seed_runs"] = runs
        extra["chosen_seed"] = max(runs, key=lambda run: run[config.dev_metric])["seed"]
    return best[0], best[1], best[2], best[3], extra


def length_grouped(order: list[int], lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[int]:
    """``order`` (already shuffled) regrouped so that each batch holds rows of similar length: windows of 50
    batches are sorted by length, cut into batches, and the batches shuffled (the HF ``group_by_length`` idea)."""
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    last = [batches.pop()] if batches and len(batches[-1]) < batch_size else []  # the one short batch stays
    rng.shuffle(batches)                                                        # last: the loop slices by size
    return [i for batch in batches + last for i in batch]


def layer_depth(name: str, layers: int) -> int:
    """Depth of an encoder parameter for layer-wise learning-rate decay: 0 for the embeddings, ``k + 1`` for
    transformer layer ``k`` (``...layer.k...`` / ``...layers.k...``), ``layers + 1`` for anything above them."""
    import re

    if "embeddings" in name:
        return 0
    match = re.search(r"\.layers?\.(\d+)\.", f".{name}")
    return int(match.group(1)) + 1 if match else layers + 1


def parameter_groups(encoder: Any, head: Any, lr: float, decay: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: the head (and the layers above the last transformer layer) at ``lr``, transformer layer
    ``k`` of ``L`` at ``lr * decay ** (L - k)``, the embeddings at ``lr * decay ** (L + 1)``; frozen weights left
    out. ``decay == 1`` gives one group at ``lr``."""
    layers = int(getattr(encoder.config, "num_hidden_layers", 0) or 0)
    groups: dict[int, list[Any]] = defaultdict(list)
    for name, parameter in encoder.named_parameters():
        if parameter.requires_grad:
            groups[layer_depth(name, layers)].append(parameter)
    groups[layers + 1] += list(head.parameters())
    return [{"params": params, "lr": lr * decay ** (layers + 1 - depth), "weight_decay": weight_decay}
            for depth, params in sorted(groups.items())]


def _train_encoder(base_path: Path, train_rows: list[dict[str, str]], dev_rows: list[dict[str, str]],
                   labels: list[str], config: TrainConfig, report: Callable[[TrainProgress], None],
                   stop: Callable[[], bool], started: float, seed: int | None = None
                   ) -> tuple[Any, Any, Any, dict[str, Any], dict[str, Any]]:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    encoder = transformers.AutoModel.from_pretrained(base_path, dtype=torch.float32)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules=list(config.target_modules), bias="none")
        with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing: a
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated",  # warning
                                    category=FutureWarning)                 # for a library, not for a user
            encoder = get_peft_model(encoder, peft_config)
    seed = config.seed if seed is None else seed
    torch.manual_seed(seed)
    model = _Classifier(encoder, len(labels))
    report(TrainProgress("tokenize", elapsed_s=time.perf_counter() - started))
    keys = ("input_ids", "token_type_ids") if config.pair_inputs else ("input_ids",)

    def encode(rows: list[dict[str, str]]) -> list[dict[str, list[int]]]:
        """Token ids per row (and segment ids for pairs: [CLS] text [SEP] pair [SEP], truncated longest first)."""
        encoded = tokenizer([r["text"] for r in rows], _pairs(rows), truncation=True, max_length=config.max_length)
        present = [k for k in keys if k in encoded]
        return [{k: encoded[k][i] for k in present} for i in range(len(rows))]

    train_ids, dev_ids = encode(train_rows), encode(dev_rows)
    y_train = [labels.index(r["label"]) for r in train_rows]
    steps_per_epoch = math.ceil(len(train_rows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    parameters = model.parameters()
    optimizer = torch.optim.AdamW(parameter_groups(encoder, model.head, config.learning_rate, config.lr_decay,
                                                   config.weight_decay))
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(total * config.warmup_fraction), total)
    eval_every = max(1, steps_per_epoch // max(1, config.evals_per_epoch))
    rng = random.Random(seed)

    def batch_features(ids: list[dict[str, list[int]]]) -> Any:  # a transformers BatchEncoding
        return tokenizer.pad({k: [row[k] for row in ids] for k in ids[0]}, return_tensors="pt")

    def evaluate() -> dict[str, Any]:
        model.train(False)
        predicted: list[str] = []
        order = sorted(range(len(dev_ids)), key=lambda i: len(dev_ids[i]["input_ids"]))
        out = [0] * len(dev_ids)
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                chunk = order[start:start + 64]
                logits = model(batch_features([dev_ids[i] for i in chunk]))
                for i, label in zip(chunk, logits.argmax(-1).tolist(), strict=True):
                    out[i] = label
        predicted = [labels[i] for i in out]
        model.train(True)
        return classification_metrics([r["label"] for r in dev_rows], predicted, labels)

    def snapshot() -> dict[int, Any]:
        return {id(p): p.detach().clone() for p in parameters}

    best_state: dict[int, Any] | None = None
    best_score, best_dev, best_step, stale = -1.0, {}, 0, 0
    step, losses, last_dev = 0, [], None
    model.train(True)
    done = False
    for _epoch in range(config.epochs):
        order = list(range(len(train_ids)))
        rng.shuffle(order)
        if config.group_by_length:
            order = length_grouped(order, [len(row["input_ids"]) for row in train_ids], config.batch_size, rng)
        for start in range(0, len(order), config.batch_size):
            if step % 5 == 0 and stop():
                raise TrainingCancelled("training cancelled; nothing was stored")
            chunk = order[start:start + config.batch_size]
            logits = model(batch_features([train_ids[i] for i in chunk]))
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([y_train[i] for i in chunk]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            last_step = step >= total or start + config.batch_size >= len(order)
            if step % eval_every == 0 or last_step:
                dev = evaluate()
                last_dev = dev[config.dev_metric]
                if last_dev > best_score:
                    best_score, best_state, best_dev, best_step, stale = last_dev, snapshot(), dev, step, 0
                else:
                    stale += 1
            elapsed = time.perf_counter() - started
            report(TrainProgress("train", step, total, step / steps_per_epoch, sum(losses[-20:]) / len(losses[-20:]),
                                 last_dev, best_score if best_score >= 0 else None,
                                 elapsed / step * (total - step), elapsed))
            if step >= total or stale >= config.patience:
                done = True
                break
        if done:
            break
    assert best_state is not None  # the last step always evaluates
    with torch.no_grad():
        for p in parameters:
            p.copy_(best_state[id(p)])
    model.train(False)
    head = model.head
    extra = {"best_step": best_step, "steps": step, "stopped_early": stale >= config.patience,
             "train_loss_last": round(sum(losses[-20:]) / len(losses[-20:]), 4)}
    if config.method == "lora":
        trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
        extra["trainable_parameters"] = trainable + sum(p.numel() for p in head.parameters())
        trained: Any = encoder
    else:
        trained = (encoder, tokenizer)
    return trained, head.weight.detach().numpy(), head.bias.detach().numpy(), best_dev, extra


# -- hyper-parameter search -----------------------------------------------------------------------------

SEARCH_FIXED = {
    "seed": "the dev slice is drawn with it: trials on different slices are not comparable (use --seeds)",
    "dev_fraction": "it changes the dev slice: trials on different slices are not comparable",
    "fixed_dev": "it changes the dev slice: trials on different slices are not comparable",
    "dev_metric": "trials are compared on one metric",
    "pair_inputs": "it changes what the model reads, not how it learns",
}
"""Training settings a search may not vary, and why: every trial is scored on the same dev slice by one metric."""

MAX_TRIALS = 16


def search_trials(config: dict[str, Any], search: Mapping[str, Sequence[Any]],
                  config_cls: type[TrainConfig] = TrainConfig) -> list[dict[str, Any]]:
    """The configurations of a grid search: ``config`` with each combination of ``search``'s values (the first
    key varies slowest). Refused (:class:`TrainingError`) before anything runs: a setting that changes the dev
    slice or the metric (:data:`SEARCH_FIXED`), a key with no value, a repeated value, more than
    :data:`MAX_TRIALS` trials, or a trial ``config_cls`` refuses. ``lora_alpha`` follows ``lora_r`` (2 r) where the
    search varies the rank and not the alpha, as a single run's default does."""
    import itertools

    for key, values in search.items():
        if key in SEARCH_FIXED:
            raise TrainingError(f"--search {key}: not searchable, {SEARCH_FIXED[key]}")
        if not values:
            raise TrainingError(f"--search {key}: give at least one value")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise TrainingError(f"--search {key}: a value is repeated")
    total = math.prod(len(values) for values in search.values())
    if total > MAX_TRIALS:
        raise TrainingError(f"--search gives {total} trials; at most {MAX_TRIALS} (fewer values per setting)")
    tie_alpha = "lora_r" in search and "lora_alpha" not in search
    trials = []
    for combination in itertools.product(*search.values()):
        trial = {**config, **dict(zip(search, combination, strict=True))}
        if tie_alpha and isinstance(trial.get("lora_r"), int):
            trial["lora_alpha"] = 2 * trial["lora_r"]
        try:
            config_cls(**trial).validate()
        except TypeError as error:
            raise TrainingError(f"bad training setting: {error}") from None
        except TrainingError as error:
            settings = ", ".join(f"{key}={trial[key]}" for key in search)
            raise TrainingError(f"trial {settings}: {error}") from None
        trials.append(trial)
    return trials


def trial_score(output: dict[str, Any] | None, metric: str) -> float | None:
    """The dev ``metric`` a finished trial (a training output) is ranked by; None if it did not finish."""
    value = ((output or {}).get("dev") or {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def best_trial(outputs: Sequence[dict[str, Any] | None], metric: str) -> int | None:
    """The index of the trial with the best dev ``metric`` (the first of equals), None if none finished."""
    scored = [(score, -index) for index, output in enumerate(outputs)
              if (score := trial_score(output, metric)) is not None]
    return -max(scored)[1] if scored else None


# -- the training job -----------------------------------------------------------------------------------

class TrainInput(BaseModel):
    task: str = Field(description="The task whose classifier is trained, e.g. finance.sentiment.")
    rows: list[dict[str, Any]] = Field(description="Labelled rows: {'text': ..., 'label': ...} (a token classifier's "
                                                   "label is a list of spans {start, end, label}).")
    config: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields.")
    data_name: str | None = Field(default=None, description="Name of the data file (recorded in the metadata).")


class TrainOutput(BaseModel):
    spec: str
    version: str
    method: str
    dev: dict[str, Any]
    train_rows: int
    dev_rows: int
    train_seconds: float
    size_bytes: int


class TrainTask(Task):
    """``verticals.train``: one item = one training run; the output names the new model version."""

    name = "verticals.train"
    description = "Fine-tune a task's classifier on labelled rows (LoRA / head / full); stores a new model version."
    Input = TrainInput
    Output = TrainOutput
    device = "gpu"
    chunk_size = 1
    batch_size = 1
    operator_only = True  # writes model versions on the server: the REST API refuses it (403)

    def run(self, batch, models, ctx):
        from verticals.contract import ItemError
        from verticals.registry import get_registry

        outputs: list[Any] = []
        for item in batch:
            try:
                kind = trained_kind(get_registry(), item.task)
                config_cls = TRAINERS[kind][0] if kind in TRAINERS else TrainConfig
                config = config_cls(**item.config)
            except TypeError as error:
                outputs.append(ItemError(f"bad training configuration: {error}"))
                continue
            job = _JobLink(ctx.job_id)
            try:
                version = train_model(get_registry(), item.task, item.rows, config, on_progress=job.publish,
                                      should_stop=job.cancelled, data_name=item.data_name)
            except TrainingCancelled as error:  # the job was cancelled: the item is cancelled, not failed
                outputs.append(ItemError(str(error), code="cancelled"))
                continue
            except (TrainingError, KeyError) as error:
                message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
                outputs.append(ItemError(message, code="training"))
                continue
            meta = version.meta
            outputs.append(TrainOutput(spec=version.spec, version=version.version, method=meta["method"],
                                       dev=meta["dev"], train_rows=meta["data"]["train_rows"],
                                       dev_rows=meta["data"]["dev_rows"], train_seconds=meta["train_seconds"],
                                       size_bytes=version.size_bytes()))
        return outputs


class _JobLink:
    """Progress to in-process listeners every step and to the job's options (``training``) every few seconds;
    the job's cancel flag, read every few steps. One store connection per run."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self._store: Any = None
        self._last = 0.0

    def store(self) -> Any:
        if self._store is None:
            from verticals.core.store import open_store

            self._store = open_store()
        return self._store

    def publish(self, progress: TrainProgress) -> None:
        with _listeners_lock:
            listener = _listeners.get(self.job_id)
        if listener:
            listener(progress)
        now = time.monotonic()
        if now - self._last >= 5 or progress.phase in ("save", "done"):
            self._last = now
            try:
                self.store().update_options(self.job_id, {"training": asdict(progress)})
            except Exception:  # progress is best effort; the run goes on
                log.debug("could not store training progress", exc_info=True)

    def cancelled(self) -> bool:
        try:
            return self.store().cancel_requested(self.job_id)
        except Exception:
            return False
