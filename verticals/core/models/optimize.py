"""The quality gate of a runtime variant: ``verticals models optimize``.

Builds the ONNX variant of a model (:mod:`verticals.core.models.runtimes`), evaluates the task that uses it twice on the
labelled data given (never its golden set, which stays a measure: without data, parity and speed are checked on the
model's calibration texts, else the golden set's texts, labels unread) through
:func:`verticals.core.evaluation.scoring.evaluate` in a scratch store, checks output parity and speed, and records
the decision in the model store (``<store>/<spec>/runtimes.json``), where ``auto`` finds the kept variants. Kept
apart from ``runtimes`` because it runs jobs: the model host imports ``runtimes``, and the job engine imports the
model host.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from verticals.core.models.inference import PARITY_PROBES, l2_normalize
from verticals.core.models.runtimes import (
    DEFAULT_BUDGET,
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_MIN_COSINE,
    FILES,
    RuntimeUnavailable,
    build_variant,
    fingerprint,
    load_records,
    machine,
    onnxruntime_version,
    runtime_choice,
    same_baseline,
    same_machine,
    save_record,
    variants_root,
)

if TYPE_CHECKING:
    from verticals.core.models.host import ModelHost
    from verticals.core.models.inference import LoadedModel


def outputs(model: LoadedModel, texts: Sequence[str]) -> np.ndarray:
    """What parity compares: probabilities of a classifier, embeddings of an encoder, token probabilities
    flattened to labels for a token classifier."""
    if getattr(model, "reads_pairs", False):  # a pair model (verticals train --pair-column): each text with the next
        return np.asarray(model.classify(texts, [*texts[1:], *texts[:1]]))  # type: ignore[attr-defined]
    if hasattr(model, "classify"):
        return np.asarray(model.classify(texts))
    if hasattr(model, "embed"):
        return np.asarray(model.embed(texts))
    if hasattr(model, "tag"):
        tagged = model.tag(texts)
        return np.array([json.dumps([(s["start"], s["end"], s["label"]) for s in spans]) for spans in tagged])
    raise RuntimeUnavailable(f"no parity check for a {model.kind}")


def parity(model: LoadedModel, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    if reference.dtype.kind in "US":  # token spans
        return {"agreement": float((reference == candidate).mean())}
    if hasattr(model, "embed") and not hasattr(model, "classify"):
        cosine = (l2_normalize(reference) * l2_normalize(candidate)).sum(1)
        return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}
    return {"agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
            "max_prob_drift": float(np.abs(reference - candidate).max()),
            "mean_prob_drift": float(np.abs(reference - candidate).mean())}


def items_per_second(model: LoadedModel, texts: Sequence[str], repeat: int = 3) -> float:
    outputs(model, texts[: min(len(texts), 16)])  # warm-up (first-call allocations)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        outputs(model, texts)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def _task_for(registry: Any, spec: str, task: str | None) -> str | None:
    from verticals.core.evaluation.scoring import golden_path

    if task:
        return task
    users = sorted(name for name, cls in registry.tasks.items() if spec in cls.models.values()
                   and getattr(cls, "evaluator", None) is not None)
    with_golden = [name for name in users if golden_path(registry.tasks[name]) is not None]
    return (with_golden or users or [None])[0]


@contextlib.contextmanager
def _scratch_store() -> Iterator[Any]:
    from verticals.core.store import open_store

    with tempfile.TemporaryDirectory(prefix="verticals-gate-") as folder:
        yield open_store(f"sqlite:///{Path(folder) / 'gate.db'}")


def _evaluate(registry: Any, task: str, host: ModelHost, data: Path | None, gold: str | None,
              text_column: str | None) -> tuple[Any, list[str]]:
    from verticals.core.evaluation.scoring import evaluate
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService

    with _scratch_store() as store:  # the candidate's host, in this process
        service = JobService(store, registry, LocalExecutor(store, registry, host), host=host)
        result = evaluate(task, data, gold=gold, text_column=text_column, save=False, service=service)
        field = registry.task(task).text_field
        texts = [str((item.input or {}).get(field, "")) for item in store.iter_items(result.job_id)] if field else []
    return result, [t for t in texts if t]


def calibration_texts(spec: Any) -> list[str]:
    """The unlabelled texts ``spec`` ships for the gate (:attr:`ModelSpec.calibration`), or none."""
    from verticals.core.models.sources import locate_packaged

    if getattr(spec, "calibration", None) is None:
        return []
    path = locate_packaged(spec.calibration)  # the file inside the installed package
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _golden_texts(registry: Any, task: str) -> list[str]:
    """The texts of the task's golden set (their labels are not read), or none."""
    from verticals.core.evaluation.scoring import golden_path
    from verticals.core.io import read_rows

    task_cls = registry.task(task)
    path = golden_path(task_cls)
    if path is None or not task_cls.text_field or not path.is_file():
        return []
    return [str(row.get(task_cls.text_field) or "") for row in read_rows(path) if row.get(task_cls.text_field)]


def wilson_lower(agreeing: int, total: int, z: float = 1.96) -> float:
    """The lower end of the 95 % Wilson score interval of ``agreeing / total`` (0 for no texts)."""
    if total <= 0:
        return 0.0
    share = agreeing / total
    centre = share + z * z / (2 * total)
    margin = z * ((share * (1 - share) + z * z / (4 * total)) / total) ** 0.5
    return max(0.0, (centre - margin) / (1 + z * z / total))


def texts_needed(min_agreement: float, z: float = 1.96) -> int:
    """The fewest texts, all agreeing, whose 95 % lower bound reaches ``min_agreement`` (189 for 98 %)."""
    if min_agreement <= 0:
        return 0
    total = 1
    while wilson_lower(total, total, z) < min_agreement and total < 10**7:
        total += 1
    return total


def optimize(spec_name: str, *, quantize: str | None = None, budget: float = DEFAULT_BUDGET,
             min_agreement: float = DEFAULT_MIN_AGREEMENT, min_cosine: float = DEFAULT_MIN_COSINE,
             min_speedup: float = 1.0, task: str | None = None, data: Path | None = None, gold: str | None = None,
             text_column: str | None = None, registry: Any = None, root: Path | None = None,
             speed_items: int = 256, rebuild: bool = False,
             on_step: Callable[[str], None] | None = None, torch_host: Any = None) -> dict[str, Any]:
    """Build the ONNX variant of ``spec_name`` (int8 when ``quantize="int8"``), gate it against the current
    PyTorch model and record the decision in the model store. Returns the record.

    The gate: with labelled ``data``, the task's main metric on it may drop by at most ``budget`` points
    (a percentage point of a 0-1 metric); the outputs must agree (classifiers: the 95 % lower bound of the
    share of labels unchanged at least ``min_agreement``, so a small text set cannot pass by luck; encoders:
    every embedding within cosine ``min_cosine``) on the texts of ``data``, else of
    the task's golden set (its labels never read: a golden set stays out of every choice); and it
    must run at least ``min_speedup`` times as fast as PyTorch (1: faster). Speed: items/s of each model's own
    batched forward over those texts (repeated to ``speed_items``), best of 3, in this process.
    ``torch_host``: a CPU :class:`ModelHost` serving ``spec_name`` on PyTorch that the caller already has (its
    model is used, not loaded again).
    """
    from verticals.core.models.host import ModelHost

    step = on_step or (lambda message: None)
    if registry is None:
        from verticals.registry import get_registry

        registry = get_registry()
    precision = quantize or "fp32"
    if precision not in FILES:
        raise ValueError(f"unknown quantization {quantize!r}: use int8 (or none for fp32)")
    base_host = torch_host or ModelHost(registry.models, device="cpu", runtimes={spec_name: "torch"},
                                        store_root=root)
    current = base_host.get(spec_name)
    step(f"building the onnx {precision} variant of {spec_name}")
    started = time.perf_counter()
    variant = build_variant(current, precision, root, rebuild=rebuild)
    build_seconds = time.perf_counter() - started
    candidate_host = ModelHost(registry.models, device="cpu", runtimes={spec_name: variant}, store_root=root)
    candidate = candidate_host.get(spec_name)
    if getattr(candidate, "runner", None) is None:
        raise RuntimeUnavailable(f"the built variant at {variant.path} could not be loaded (see the warning)")

    task_name = _task_for(registry, spec_name, task)
    metric_name, before, after, texts = None, None, None, list(PARITY_PROBES)
    calibration = calibration_texts(registry.models[spec_name]) if data is None else []
    if calibration:  # no labelled data given: parity and speed on the texts the model ships for it
        texts = calibration + texts
    elif task_name is not None and data is None:
        # nor calibration texts: parity and speed on the golden set's texts, its labels unread. A golden set
        # whose labels decide which variant serves would no longer measure it (the metric part needs --data)
        texts = _golden_texts(registry, task_name) + texts
    elif task_name is not None and data is not None:
        step(f"evaluating PyTorch on {data.name}")
        result_before, texts_seen = _evaluate(registry, task_name, base_host, data, gold, text_column)
        step("evaluating the variant")
        result_after, _ = _evaluate(registry, task_name, candidate_host, data, gold, text_column)
        metric_name = result_before.main_metric
        before = float(result_before.metrics.get(metric_name, float("nan")))
        after = float(result_after.metrics.get(metric_name, float("nan")))
        texts = texts_seen + texts
    step("checking output parity and speed")
    check = parity(current, outputs(current, texts), outputs(candidate, texts))
    speed_texts = (texts * (speed_items // max(len(texts), 1) + 1))[: max(speed_items, len(texts))]
    torch_rate = items_per_second(current, speed_texts)
    variant_rate = items_per_second(candidate, speed_texts)

    reasons = []
    drop = None if before is None or after is None else round((before - after) * 100, 4)
    if drop is not None and not drop <= budget:
        reasons.append(f"{metric_name} drops {drop:.2f} points (budget {budget:g})")
    if "agreement" in check:  # judged by the 95 % lower bound: 93 agreeing texts do not show 98 % agreement
        agreeing = round(check["agreement"] * len(texts))
        check["agreement_low95"] = round(wilson_lower(agreeing, len(texts)), 4)
        if check["agreement_low95"] < min_agreement:
            reasons.append(f"labels agree on {check['agreement']:.1%} of {len(texts)} texts: its 95% lower bound "
                           f"{check['agreement_low95']:.1%} is below {min_agreement:.1%}"
                           + (f" (at least {texts_needed(min_agreement)} texts are needed; give --data)"
                              if min_agreement < 1 and len(texts) < texts_needed(min_agreement) else ""))
    if "min_cosine" in check and check["min_cosine"] < min_cosine:
        reasons.append(f"an embedding drifts to cosine {check['min_cosine']:.4f} (< {min_cosine})")
    if variant_rate < torch_rate * min_speedup or (min_speedup >= 1 and variant_rate == torch_rate):
        reasons.append(f"speed-up {variant_rate / torch_rate:.2f}x is below {min_speedup:g}x "
                       f"({variant_rate:.0f} vs {torch_rate:.0f} items/s)")
    record = {
        "variant": variant.name, "runtime": "onnxruntime", "precision": precision,
        "path": variant.path.relative_to(variants_root(spec_name, root)).as_posix(),
        "fingerprint": variant.fingerprint, "source": current.source.provenance(),
        "torch_precision": current.precision.label(),
        "task": task_name,
        "data": str(data.name) if data else "calibration texts" if calibration else ("golden texts" if task_name
                                                                                      else "probes"),
        "metric": metric_name, "before": before, "after": after, "drop_points": drop, "budget_points": budget,
        "parity": {**check, "texts": len(texts), "required_agreement": min_agreement, "required_cosine": min_cosine},
        "torch_items_per_s": round(torch_rate, 2), "items_per_s": round(variant_rate, 2),
        "speedup": round(variant_rate / torch_rate, 3), "min_speedup": min_speedup, "speed_texts": len(speed_texts),
        "build_seconds": round(build_seconds, 1), "size_bytes": variant.path.stat().st_size,
        "machine": machine(), "decision": "rejected" if reasons else "kept", "reasons": reasons,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_record(spec_name, record, root)
    return record


VARIANT_PRECISIONS = ("fp32", "int8")
"""The ONNX variants ``verticals models warm`` judges for a model that ships calibration texts."""


def choosable(spec: Any) -> str | None:
    """Why ``models warm`` does not judge runtime variants for ``spec`` here, or None when it does: the spec ships
    calibration texts, its runtime is ``auto``, onnxruntime is installed and models run on the CPU."""
    from verticals.core.models.device import pick_device

    if getattr(spec, "calibration", None) is None:
        return "it ships no calibration texts"
    if spec.kind not in ("sequence-classifier", "encoder"):
        return f"{spec.kind} models have no ONNX variant"
    choice = runtime_choice(spec)
    if choice != "auto":
        return f"its runtime is set to {getattr(choice, 'name', choice)}"
    if onnxruntime_version() is None:
        return "onnxruntime is not installed (pip install 'verticals[onnx]')"
    device = pick_device()
    if device.type != "cpu":
        return f"models run on {device} here (ONNX variants serve the CPU only)"
    return None


def choose_runtimes(spec_name: str, *, registry: Any, root: Path | None = None,
                    on_step: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Judge each ONNX variant of ``spec_name`` (:data:`VARIANT_PRECISIONS`) that has no record yet for these
    weights on this machine against PyTorch at its current precision, by :func:`optimize` with its defaults on
    the spec's calibration texts (parity and speed; no metric: those texts carry no labels); returns one record
    per variant, earlier ones included.
    ``auto`` then serves the fastest kept variant (``runtimes.best_kept``), else PyTorch."""
    from verticals.core.models.host import ModelHost

    host = ModelHost(registry.models, device="cpu", runtimes={spec_name: "torch"}, store_root=root)
    model = host.get(spec_name)  # loaded once: every variant is judged against this model
    key, here = fingerprint(model), machine()
    records = []
    for precision in VARIANT_PRECISIONS:
        earlier = [r for r in load_records(spec_name, root) if r.get("fingerprint") == key
                   and r.get("precision") == precision and same_machine(r.get("machine", {}), here)
                   and same_baseline(r, model)]
        records.append(earlier[-1] if earlier else
                       optimize(spec_name, quantize=None if precision == "fp32" else precision, registry=registry,
                                root=root, on_step=on_step, torch_host=host))
    return records
