"""Token classification as a method of the training path: BIO tags over word pieces of a shared encoder.

:func:`verticals.core.models.training.train_model` hands a task over here when the model it trains is a
``token-classifier`` (e.g. ``medical.deidentify``'s PHI tagger). Rows are ``{"text": ..., "label": spans}``
(``spans``: a list of ``{start, end, label}`` character spans; the key ``spans`` works too). The tags are
``O``, ``B-X``, ``I-X`` per span label ``X``; every word piece of a span is tagged (``B`` on its first piece).

Methods: ``lora`` (adapters on the encoder's linear layers + a linear tag head: a few hundred KB, served on
the shared encoder) and ``full`` (every encoder weight; saves an encoder copy). ``layers`` keeps only the first
N transformer layers (a faster tagger: the served model runs the same N layers). Long texts are cut into
windows of ``max_length`` word pieces overlapping by ``stride``. A seeded dev slice of the rows (by ``group``
when rows carry one, e.g. a patient id) picks the best evaluation point (early stopping) and is never trained
on; its token-level figures (precision/recall/F1 of "PHI or not", recall per label) are stored with the version.

The saved folder: ``verticals_head.json`` (``format: verticals-token-head``, ``encoder``, ``labels`` (the BIO
tags), ``layers``, ``adapter`` or ``encoder_weights``) + ``head.safetensors``; served by
:class:`verticals.core.models.tagging.EncoderTokenTagger`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from verticals.core.models.training import (
    TRAINERS,
    TrainConfig,
    TrainingCancelled,
    TrainingError,
    TrainProgress,
    seeded,
    trained_kind,
)

TOKEN_FORMAT = "verticals-token-head"


@dataclass
class TokenTrainConfig(TrainConfig):
    """:class:`TrainConfig` plus what only token classification needs."""

    layers: int | None = None  # keep the first N transformer layers (None: all)
    stride: int | None = None  # word pieces shared by consecutive windows of a long text (None: max_length // 4)
    o_weight: float = 1.0  # loss weight of the O tag (< 1: recall first)
    dev_metric: str = "f1"

    @property
    def window_stride(self) -> int:
        """``stride``, or a quarter of the window: 32 of 128, and still valid for a short ``--max-length``."""
        return self.max_length // 4 if self.stride is None else self.stride

    def validate(self) -> None:
        if self.method not in ("lora", "full"):
            raise TrainingError(f"method {self.method!r} does not train a token classifier: use lora or full")
        if self.dev_metric not in ("f1", "recall"):
            raise TrainingError("dev_metric of a token classifier must be f1 or recall")
        if self.layers is not None and self.layers < 1:
            raise TrainingError("layers must be >= 1")
        if not 0 <= self.window_stride < self.max_length // 2:
            raise TrainingError(f"stride must be >= 0 and less than half of max_length ({self.max_length}): "
                                f"got {self.window_stride}")
        saved, self.dev_metric = self.dev_metric, "macro_f1"
        try:
            super().validate()
        finally:
            self.dev_metric = saved


def is_token_task(registry: Any, task_name: str) -> bool:
    """Whether the model ``verticals train`` trains for this task is a token classifier."""
    return trained_kind(registry, task_name) == "token-classifier"


def _tagger_spec(registry: Any, task_cls: Any) -> str:
    names = [n for n in dict(task_cls.models).values()
             if n in registry.models and registry.models[n].kind == "token-classifier"]
    if len(names) != 1:
        raise TrainingError(f"{task_cls.name} does not have exactly one token-classifier model to train")
    return names[0]


# -- data -----------------------------------------------------------------------------------------------------

def prepare_span_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{"text", "spans": [(start, end, label)], "group"}`` rows, checked (offsets inside the text, no blank)."""
    out = []
    for number, row in enumerate(rows, start=1):
        text = str(row.get("text") or "")
        spans = row.get("spans", row.get("label"))
        if isinstance(spans, str):
            try:
                spans = json.loads(spans)
            except ValueError:
                raise TrainingError(f"row {number}: the spans are not a JSON list") from None
        if not text.strip():
            raise TrainingError(f"row {number}: the text is empty")
        if not isinstance(spans, list):
            raise TrainingError(f"row {number}: expected a list of spans {{start, end, label}}")
        kept = []
        for span in spans:
            try:
                start, end, label = int(span["start"]), int(span["end"]), str(span["label"]).upper()
            except (KeyError, TypeError, ValueError):
                raise TrainingError(f"row {number}: a span needs start, end and label") from None
            if not 0 <= start < end <= len(text):
                raise TrainingError(f"row {number}: span {start}-{end} is outside the text")
            kept.append((start, end, label))
        out.append({"text": text, "spans": sorted(kept), "group": str(row.get("group", number))})
    if not out:
        raise TrainingError("the training data is empty")
    if not any(r["spans"] for r in out):
        raise TrainingError("no row has a span: a tagger needs examples of what to tag")
    return out


def bio_tags(labels: Sequence[str]) -> list[str]:
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


def encode_windows(tokenizer: Any, rows: Sequence[dict[str, Any]], tags: Sequence[str], max_length: int,
                   stride: int) -> list[tuple[list[int], list[int]]]:
    """(input ids, tag ids) per window; special tokens get -100 (not scored)."""
    index = {tag: i for i, tag in enumerate(tags)}
    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    windows = []
    for ids, offsets, row_index in zip(encoded["input_ids"], encoded["offset_mapping"],
                                       encoded["overflow_to_sample_mapping"], strict=True):
        spans = rows[row_index]["spans"]
        labels, previous = [], None
        for start, end in offsets:
            if start == end:
                labels.append(-100)
                previous = None
                continue
            span = next((s for s in spans if s[0] <= start < s[1]), None)
            if span is None:
                labels.append(0)
            else:
                labels.append(index[f"{'I' if previous == span else 'B'}-{span[2]}"])
            previous = span
        windows.append((list(ids), labels))
    return windows


def group_split(rows: Sequence[dict[str, Any]], dev_fraction: float, seed: int
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Whole groups to dev by a seeded hash, about ``dev_fraction`` of the rows."""
    def bucket(group: str) -> float:
        return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    train = [r for r in rows if bucket(r["group"]) >= dev_fraction]
    dev = [r for r in rows if bucket(r["group"]) < dev_fraction]
    if not dev or not train:
        raise TrainingError("too few rows (or groups) to hold out a dev slice: add rows or raise dev_fraction")
    return train, dev


def token_metrics(gold: Sequence[int], predicted: Sequence[int], tags: Sequence[str]) -> dict[str, Any]:
    """Token-level precision/recall/F1 of "any PHI tag" vs O, and recall per span label."""
    tp = fp = fn = 0
    per_label: Counter[str] = Counter()
    per_label_hit: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g < 0:
            continue
        tp += g > 0 and p > 0
        fp += g == 0 and p > 0
        fn += g > 0 and p == 0
        if g > 0:
            label = tags[g][2:]
            per_label[label] += 1
            per_label_hit[label] += p > 0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tokens": tp + fn, "recall_per_label": {k: round(per_label_hit[k] / v, 4) for k, v in per_label.items()}}


# -- model ----------------------------------------------------------------------------------------------------

def truncate_layers(encoder: Any, layers: int | None) -> Any:
    """Keep the first ``layers`` transformer layers of a BERT-like encoder (in place)."""
    import torch

    if layers is None:
        return encoder
    stack = encoder.encoder.layer
    if layers > len(stack):
        raise TrainingError(f"layers={layers}: the encoder has only {len(stack)}")
    encoder.encoder.layer = torch.nn.ModuleList(list(stack)[:layers])
    encoder.config.num_hidden_layers = layers
    return encoder


class _Tagger:
    """Encoder + dropout + linear tag head over every word piece."""

    def __init__(self, encoder: Any, tags: int, dropout: float = 0.1):
        import torch

        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, tags)

    def parameters(self) -> list[Any]:
        return [p for p in self.encoder.parameters() if p.requires_grad] + list(self.head.parameters())

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.dropout.train(mode)

    def __call__(self, features: dict[str, Any]) -> Any:
        hidden = self.encoder(input_ids=features["input_ids"], attention_mask=features["attention_mask"]
                              ).last_hidden_state
        return self.head(self.dropout(hidden))


def _length_grouped(windows: Sequence[tuple[list[int], list[int]]], batch_size: int, rng: random.Random
                    ) -> list[int]:
    """A shuffled order whose batches hold windows of similar length (less padding), batches in random order."""
    order = list(range(len(windows)))
    rng.shuffle(order)
    pool = batch_size * 32
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(windows[i][0]))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return [i for b in batches for i in b]


def train_tagger(registry: Any, task_name: str, rows: Sequence[dict[str, Any]], config: TrainConfig,
                 on_progress: Callable[[TrainProgress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, store: Any = None,
                 data_name: str | None = None) -> Any:
    """Train a new version of ``task_name``'s token classifier on span rows; returns its ModelVersion."""
    import torch

    from verticals.core.models.host import resolve
    from verticals.core.models.versions import ModelStore

    if not isinstance(config, TokenTrainConfig):
        config = TokenTrainConfig(**{k: v for k, v in asdict(config).items()})
    if config.dev_metric == "macro_f1":  # the sequence classifiers' default
        config.dev_metric = "f1"
    config.validate()
    started = time.perf_counter()
    task_cls = registry.task(task_name)
    spec_name = _tagger_spec(registry, task_cls)
    rows = prepare_span_rows(rows)
    labels = sorted({s[2] for r in rows for s in r["spans"]})
    tags = bio_tags(labels)
    base = config.base or "minilm"
    if base not in registry.models or registry.models[base].kind != "encoder":
        raise TrainingError(f"base {base!r} is not a registered encoder model")
    base_source = resolve(registry.models[base], use_store=False)
    train_rows, dev_rows = group_split(rows, config.dev_fraction, config.seed)
    report = on_progress or (lambda progress: None)
    stop = should_stop or (lambda: False)
    with seeded(config.seed):
        trained, head, dev, extra = _train(base_source.path, train_rows, dev_rows, tags, config, report, stop,
                                           started)
    if stop():
        raise TrainingCancelled("training cancelled; nothing was stored")
    report(TrainProgress("save", elapsed_s=time.perf_counter() - started))
    meta = {
        "task": task_name, "method": config.method, "kind": "token-classifier", "labels": tags,
        "base": {"model": base, "source": base_source.kind, "reference": base_source.reference,
                 "revision": base_source.revision},
        "data": {"name": data_name, "hash": _span_hash(rows), "rows": len(rows), "train_rows": len(train_rows),
                 "dev_rows": len(dev_rows), "label_counts": dict(Counter(s[2] for r in rows for s in r["spans"]))},
        "config": asdict(config), "dev": dev, **extra,
        "train_seconds": round(time.perf_counter() - started, 1),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library": {"torch": torch.__version__},
    }
    store = store or ModelStore()
    with store.new_version(spec_name, meta) as pending:
        write_tagger(pending.path, base, tags, head, config, trained,
                     base_reference=base_source.reference if base_source.kind != "override" else base)
    return store.get(spec_name, pending.version)


def _span_hash(rows: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["text"], row["spans"]], ensure_ascii=False).encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def write_tagger(folder: Path, base: str, tags: Sequence[str], head: Any, config: TokenTrainConfig, trained: Any,
                 base_reference: str | None = None) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from verticals.core.models.inference import HEAD_FILE

    save_file({"weight": np.asarray(head.weight.detach().numpy(), dtype=np.float32),
               "bias": np.asarray(head.bias.detach().numpy(), dtype=np.float32)}, str(folder / "head.safetensors"))
    out: dict[str, Any] = {"format": TOKEN_FORMAT, "version": 1, "encoder": base, "labels": list(tags),
                           "layers": config.layers, "weights": "head.safetensors", "method": config.method,
                           "max_length": config.max_length, "stride": config.window_stride}
    if config.method == "lora":
        trained.save_pretrained(str(folder / "adapter"))
        (folder / "adapter" / "README.md").unlink(missing_ok=True)
        adapter_config = folder / "adapter" / "adapter_config.json"
        values = json.loads(adapter_config.read_text(encoding="utf-8"))
        values["base_model_name_or_path"] = base_reference or base
        adapter_config.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out["adapter"] = "adapter"
    else:
        model, tokenizer = trained
        model.save_pretrained(str(folder / "encoder"))
        tokenizer.save_pretrained(str(folder / "encoder"))
        out["encoder_weights"] = "encoder"
    (folder / HEAD_FILE).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def _train(base_path: Path, train_rows: list[dict[str, Any]], dev_rows: list[dict[str, Any]], tags: list[str],
           config: TokenTrainConfig, report: Callable[[TrainProgress], None], stop: Callable[[], bool],
           started: float) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # the unused pooler's "load report" is not the user's business
    try:
        encoder = transformers.AutoModel.from_pretrained(base_path, dtype=torch.float32, add_pooling_layer=False)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    encoder = truncate_layers(encoder, config.layers)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        encoder = get_peft_model(encoder, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                     lora_dropout=config.lora_dropout, bias="none",
                                                     target_modules=list(config.target_modules)))
    torch.manual_seed(config.seed)
    model = _Tagger(encoder, len(tags))
    report(TrainProgress("tokenize", elapsed_s=time.perf_counter() - started))
    train_windows = encode_windows(tokenizer, train_rows, tags, config.max_length, config.window_stride)
    dev_windows = encode_windows(tokenizer, dev_rows, tags, config.max_length, config.window_stride)
    steps_per_epoch = math.ceil(len(train_windows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    parameters = model.parameters()
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(total * config.warmup_fraction), total)
    eval_every = max(1, min(steps_per_epoch, total) // max(1, config.evals_per_epoch))
    weights = torch.ones(len(tags))
    weights[0] = config.o_weight
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=-100)
    pad_id = tokenizer.pad_token_id or 0
    rng = random.Random(config.seed)

    def batch(windows: list[tuple[list[int], list[int]]]) -> tuple[dict[str, Any], Any]:
        width = max(len(ids) for ids, _ in windows)
        ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        gold = torch.full((len(windows), width), -100, dtype=torch.long)
        for row, (w_ids, w_tags) in enumerate(windows):
            ids[row, :len(w_ids)] = torch.tensor(w_ids)
            mask[row, :len(w_ids)] = 1
            gold[row, :len(w_tags)] = torch.tensor(w_tags)
        return {"input_ids": ids, "attention_mask": mask}, gold

    def evaluate() -> dict[str, Any]:
        model.train(False)
        gold_all: list[int] = []
        pred_all: list[int] = []
        order = sorted(range(len(dev_windows)), key=lambda i: len(dev_windows[i][0]))
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                features, gold = batch([dev_windows[i] for i in order[start:start + 64]])
                predicted = model(features).argmax(-1)
                gold_all += gold.flatten().tolist()
                pred_all += predicted.flatten().tolist()
        model.train(True)
        return token_metrics(gold_all, pred_all, tags)

    def snapshot() -> dict[int, Any]:
        return {id(p): p.detach().clone() for p in parameters}

    best_state: dict[int, Any] | None = None
    best_score, best_dev, best_step, stale, step = -1.0, {}, 0, 0, 0
    losses: list[float] = []
    last_dev = None
    model.train(True)
    done = False
    for _epoch in range(config.epochs):
        order = _length_grouped(train_windows, config.batch_size, rng)
        for start in range(0, len(order), config.batch_size):
            if step % 5 == 0 and stop():
                raise TrainingCancelled("training cancelled; nothing was stored")
            features, gold = batch([train_windows[i] for i in order[start:start + config.batch_size]])
            logits = model(features)
            loss = loss_fn(logits.reshape(-1, len(tags)), gold.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            if step % eval_every == 0 or step >= total:
                dev = evaluate()
                last_dev = dev[config.dev_metric]
                if last_dev > best_score:
                    best_score, best_state, best_dev, best_step, stale = last_dev, snapshot(), dev, step, 0
                else:
                    stale += 1
            elapsed = time.perf_counter() - started
            report(TrainProgress("train", step, total, step / steps_per_epoch, sum(losses[-20:]) / len(losses[-20:]),
                                 last_dev, best_score if best_score >= 0 else None, elapsed / step * (total - step),
                                 elapsed))
            if step >= total or stale >= config.patience:
                done = True
                break
        if done:
            break
    if best_state is None:
        best_dev, best_state, best_step = evaluate(), snapshot(), step
    with torch.no_grad():
        for p in parameters:
            p.copy_(best_state[id(p)])
    model.train(False)
    extra = {"best_step": best_step, "steps": step, "stopped_early": stale >= config.patience,
             "train_windows": len(train_windows), "dev_windows": len(dev_windows),
             "train_loss_last": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4)}
    if config.method == "lora":
        extra["trainable_parameters"] = sum(p.numel() for p in parameters)
        return encoder, model.head, best_dev, extra
    return (encoder, tokenizer), model.head, best_dev, extra


TRAINERS["token-classifier"] = (TokenTrainConfig, train_tagger)
