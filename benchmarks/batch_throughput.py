"""Throughput of finance.sentiment: plain transformers vs the model host vs a whole verticals job.

    python benchmarks/batch_throughput.py [--n 3000] [--repeat 1]

Prints sentences/s of:
  (a1) transformers.pipeline("text-classification", batch_size=32) over a
       BertForSequenceClassification built from the same MiniLM checkpoint
       (same encoder compute; its classifier is untrained, only speed counts),
  (a2) the same encoder + the shipped head in an unsorted, fixed 32-item batch loop
       (what a plain script does),
  (b)  the model host's classify(): length-sorted, token-budget batches (the ceiling),
  (c)  a whole job in process: items stored in SQLite, chunks run by the local
       executor, results written back, exported to CSV (model already loaded),
and the ratios (c)/(b) and (c)/(a*). Texts: 3,000 financial-looking texts of
10-120 words built (seeded) from the plugin's own sentences.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def make_texts(n: int, seed: int = 7) -> list[str]:
    from verticals_finance.train import load_rows

    sentences = [r["text"] for r in load_rows()]
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        target = rng.randint(10, 120)
        words: list[str] = []
        while len(words) < target:
            words += rng.choice(sentences).split()
        texts.append(" ".join(words[:target]))
    return texts


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per variant")
    args = parser.parse_args()

    import numpy as np
    import torch
    import transformers

    from verticals.core.export import result_rows
    from verticals.core.io import flat_row, write_rows
    from verticals.core.jobs import submit_job
    from verticals.core.models import ModelHost
    from verticals.core.store import open_store
    from verticals.plugins import build_registry
    from verticals.workers.local import LocalExecutor

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    texts = make_texts(args.n)
    registry = build_registry()
    host = ModelHost(registry.models)
    classifier = host.get("finance.sentiment")
    encoder = classifier.encoder
    device = encoder.device
    print(f"{args.n} texts, {np.mean([len(t.split()) for t in texts]):.0f} words on average; device {device}, "
          f"precision {encoder.precision.label()}, torch threads {torch.get_num_threads()}, "
          f"python {sys.version.split()[0]}")

    # (a1) a plain transformers pipeline over the same encoder
    model_dir = encoder.source.path
    seq_model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3)
    pipe = transformers.pipeline("text-classification", model=seq_model, tokenizer=encoder.tokenizer,
                                 device=device, batch_size=32, truncation=True, max_length=256)
    a1 = timed(lambda: pipe(texts), args.repeat)

    # (a2) same encoder + head, unsorted fixed batches of 32
    tokenizer, model = encoder.tokenizer, encoder.model

    def unsorted_loop():
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                feats = tokenizer(texts[i:i + 32], padding=True, truncation=True, max_length=256,
                                  return_tensors="pt").to(device)
                hidden = model(**feats).last_hidden_state
                mask = feats["attention_mask"].unsqueeze(-1).float()
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
                out.append(pooled.cpu().numpy() @ classifier.weight.T + classifier.bias)
        return np.concatenate(out)

    a2 = timed(unsorted_loop, args.repeat)
    reference = unsorted_loop().argmax(1)

    # (b) the model host: sorted token-budget batches
    b = timed(lambda: classifier.classify(texts), args.repeat)
    agreement = float((classifier.classify(texts).argmax(1) == reference).mean())

    # (c) a whole job through SQLite
    def whole_job():
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            job_id = submit_job(store, registry, "finance.sentiment", ({"text": t} for t in texts))
            status = LocalExecutor(store, registry, host).execute(job_id)
            assert status == "succeeded", status
            columns = list(flat_row(next(result_rows(store, job_id))))
            write_rows(Path(tmp) / "scored.csv", result_rows(store, job_id), columns)

    c = timed(whole_job, args.repeat)

    rate = {name: args.n / seconds for name, seconds in
            {"a1": a1, "a2": a2, "b": b, "c": c}.items()}
    print(f"(a1) transformers.pipeline, batch_size=32       {rate['a1']:8.1f} sentences/s")
    print(f"(a2) unsorted fixed batches of 32 (encoder+head) {rate['a2']:8.1f} sentences/s")
    print(f"(b)  model host, sorted token-budget batches     {rate['b']:8.1f} sentences/s")
    print(f"(c)  whole job: SQLite + local executor + export {rate['c']:8.1f} sentences/s")
    print(f"(c)/(b) = {rate['c'] / rate['b']:.2f}   (c)/(a1) = {rate['c'] / rate['a1']:.2f}   "
          f"(c)/(a2) = {rate['c'] / rate['a2']:.2f}")
    print(f"labels of (b) agree with (a2) on {agreement:.1%} of texts")


if __name__ == "__main__":
    main()
