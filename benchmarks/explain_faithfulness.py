"""Faithfulness and cost of finance.sentiment's explanations (issue 29), against a random-word baseline.

For each text the packaged model predicts a label with probability p. Each method ranks the words (token
contributions, integrated gradients at the last encoder layer and at the input embeddings, occlusion, through the
model host; attention weights and random weights as baselines); with the top k % of the words
(at least one, rounded up), the ERASER measures (DeYoung et al., 2020) are:

- comprehensiveness = p - P(label | text without the top words): high when the evidence carries the label;
- sufficiency = p - P(label | the top words alone): low (near 0, or negative) when the evidence suffices.

Cost per item: wall time of ``SentimentTask.run`` plus ``SentimentTask.explain`` over the texts, divided by the
time of ``run`` alone (the plain prediction), measured side by side in this process after a warm-up call, best
of ``--repeat`` (the methods interleaved in each round), with the task's batch size. Data: the plugin's golden
set (90 written headlines) and a seeded sample of the TFNS dev slice (the 15 % stratified slice the model never
trained on;
``../shared/data/finance/tfns_train.csv``).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/explain_faithfulness.py --tfns 300

Prints a Markdown table (docs/explanations.md quotes it) and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def golden() -> list[str]:
    from verticals_finance import sentiment

    path = Path(sentiment.__file__).parent / str(sentiment.SentimentTask.golden)
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tfns_dev(n: int, seed: int = 13) -> list[str]:
    sys.path.insert(0, str(REPO / "plugins" / "verticals-finance" / "research"))
    import train  # the recipe's own split

    from verticals.core.models.training import stratified_split

    path = train.tfns_path()
    if not path.exists():
        print(f"(no TFNS file at {path}: the TFNS slice is skipped)", file=sys.stderr)
        return []
    _, dev = stratified_split(train.load_tfns(path), train.DEV_FRACTION, train.SEED)
    rng = random.Random(seed)
    return [row["text"] for row in rng.sample(dev, min(n, len(dev)))]


def keep(text: str, units: list[tuple[int, int]], chosen: set[int], inside: bool) -> str:
    """The text with only the chosen units (``inside``) or without them, spaces made one."""
    from verticals_finance.sentiment import delete_span

    if inside:
        return " ".join(text[a:b] for i, (a, b) in enumerate(units) if i in chosen) or "."
    for i in sorted(chosen, key=lambda i: -units[i][0]):
        text = delete_span(text, *units[i])
    return text or "."


def attention_weights(classifier, texts: list[str], units: list[list[tuple[int, int]]]) -> list[list[float]]:
    """The attention baseline: the attention each token receives in the encoder's last layer (mean over heads
    and over the attending tokens: the head pools every token), summed over a word's tokens. The encoder runs
    eager attention for it (SDPA returns no weights), with the head's LoRA adapter active."""
    import torch

    from verticals.core.models.inference import _ACTIVE_ADAPTER

    encoder = classifier.encoder
    model = encoder.model
    model.set_attn_implementation("eager")
    out = []
    try:
        for text, own in zip(texts, units, strict=True):
            encoded = encoder.tokenizer([text], truncation=True, max_length=classifier.spec.max_length,
                                        return_offsets_mapping=True, return_tensors="pt")
            offsets = encoded.pop("offset_mapping")[0].tolist()
            token = _ACTIVE_ADAPTER.set(classifier.adapter)
            try:
                with torch.no_grad():
                    attentions = model(**encoded.to(encoder.device), output_attentions=True).attentions
            finally:
                _ACTIVE_ADAPTER.reset(token)
            received = attentions[-1][0].float().mean(0).mean(0).cpu().numpy()
            out.append([float(sum(w for w, (s, e) in zip(received, offsets, strict=True) if e > s and s < b and a < e))
                        for a, b in own])
    finally:
        model.set_attn_implementation("sdpa")
    return out


def faithfulness(classifier, texts: list[str], fractions: list[float], seeds: int) -> dict[str, dict[float, tuple]]:
    from verticals_finance.sentiment import (
        contribution_weights,
        gradient_weights,
        occlusion_weights,
        token_weights,
        word_units,
    )

    labels_order = classifier.labels
    probs = classifier.classify(texts)
    labels = [labels_order[int(row.argmax())] for row in probs]
    p = [float(row.max()) for row in probs]
    units = [word_units(text) for text in texts]
    columns = [labels_order.index(label) for label in labels]

    def layer_ig(steps: int) -> list[list[float]]:
        _, attributions = classifier.classify_with_gradients(texts, steps=steps)
        return [token_weights(scores, offsets, own, average=True)
                for (scores, offsets), own in zip(attributions, units, strict=True)]

    methods: dict[str, list[list[list[float]]]] = {
        "token-contributions": [contribution_weights(classifier.classify_with_contributions(texts)[1], columns,
                                                     units)],
        "integrated-gradients, last layer, 8 steps": [layer_ig(8)],
        "integrated-gradients, last layer, 4 steps": [layer_ig(4)],
        "occlusion": [occlusion_weights(classifier, texts, labels, units)[1]],
        "integrated-gradients, input embeddings, 16 steps": [gradient_weights(classifier, texts, labels, units)],
        "attention (last layer)": [attention_weights(classifier, texts, units)],
        "random": [[[rng.random() for _ in own] for own in units]
                   for rng in (random.Random(seed) for seed in range(seeds))],
    }
    out: dict[str, dict[float, tuple]] = {}
    for method, runs in methods.items():
        out[method] = {}
        for fraction in fractions:
            comp, suff = [], []
            for weights in runs:
                variants = []
                for text, own, w in zip(texts, units, weights, strict=True):
                    k = max(1, math.ceil(fraction * len(own)))
                    top = set(np.argsort(-np.asarray(w), kind="stable")[:k].tolist())
                    variants += [keep(text, own, top, inside=False), keep(text, own, top, inside=True)]
                scored = classifier.classify(variants)
                for i, label in enumerate(labels):
                    column = labels_order.index(label)
                    comp.append(p[i] - float(scored[2 * i][column]))
                    suff.append(p[i] - float(scored[2 * i + 1][column]))
            out[method][fraction] = (float(np.mean(comp)), float(np.mean(suff)))
    return out


def cost(task, classifier, texts: list[str], repeat: int) -> dict[str, float]:
    """Seconds of ``run`` (+ ``explain``) over ``texts`` per method, best of ``repeat``; the methods interleaved
    within each round, so a change of the machine's load hits them alike."""
    from verticals_finance.sentiment import gradient_explanations

    from verticals import RunContext

    batch = [task.Input(text=t) for t in texts]
    size = task.batch_size
    warm = RunContext("bench", task.Params())
    task.run(batch[:size], {"classifier": classifier}, warm)  # warm-up: the first call is not the prediction's cost
    runs = {  # name: (params, explain with the task's explain, or None: a direct call after run)
        "plain prediction (explain off)": ({}, False),
        "token-contributions": ({"explain_method": "token-contributions"}, True),
        "integrated-gradients, last layer, 8 steps": ({"explain_method": "integrated-gradients"}, True),
        "integrated-gradients, last layer, 4 steps": ({"explain_method": "integrated-gradients", "explain_steps": 4},
                                                      True),
        "occlusion": ({"explain_method": "occlusion"}, True),
        "integrated-gradients, input embeddings, 16 steps": ({}, None),  # the host's integrated_gradients
    }
    times = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, (params, explain) in runs.items():
            ctx = RunContext("bench", task.Params(**params), explain=bool(explain))
            started = time.perf_counter()
            for start in range(0, len(batch), size):
                part = batch[start:start + size]
                outputs = task.run(part, {"classifier": classifier}, ctx)
                if explain:
                    task.explain(part, outputs, {"classifier": classifier}, ctx)
                elif explain is None:
                    gradient_explanations(classifier, [i.text for i in part], [o.label for o in outputs], steps=16)
            times[name] = min(times[name], time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfns", type=int, default=300, help="TFNS dev texts (seeded sample; 0: none)")
    parser.add_argument("--fractions", default="0.1,0.2,0.5", help="k as fractions of the words")
    parser.add_argument("--seeds", type=int, default=3, help="random baselines averaged")
    parser.add_argument("--repeat", type=int, default=2, help="cost: best of this many runs")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from verticals_finance.sentiment import SentimentTask

    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    torch.manual_seed(0)
    host = ModelHost(build_registry().models)
    classifier = host.get("finance.sentiment")
    fractions = [float(f) for f in args.fractions.split(",")]
    sets = {"golden (90 headlines)": golden()}
    dev = tfns_dev(args.tfns)
    if dev:
        sets[f"TFNS dev ({len(dev)} texts)"] = dev
    print(f"model: {classifier.provenance().get('model')} on {classifier.runtime_label}/"
          f"{classifier.precision_label}, device {classifier.device}; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs at start")
    for name, texts in sets.items():
        result = faithfulness(classifier, texts, fractions, args.seeds)
        print(f"\n{name}: comprehensiveness / sufficiency (mean over texts; comp higher is better, suff lower)\n")
        print("| method | " + " | ".join(f"comp@{f:.0%}" for f in fractions) + " | "
              + " | ".join(f"suff@{f:.0%}" for f in fractions) + " |")
        print("| --- " * (1 + 2 * len(fractions)) + "|")
        for method, by_k in result.items():
            print(f"| {method} | " + " | ".join(f"{by_k[f][0]:.3f}" for f in fractions) + " | "
                  + " | ".join(f"{by_k[f][1]:.3f}" for f in fractions) + " |")
        ratio = {m: result[m][0.2][0] / result["random"][0.2][0] for m in result if 0.2 in result[m]} \
            if 0.2 in fractions and result["random"][0.2][0] > 0 else {}
        if ratio:
            print("\ncomprehensiveness@20% / random: " + ", ".join(f"{m} {r:.1f}x" for m, r in ratio.items()))
    texts = sets["golden (90 headlines)"]
    times = cost(SentimentTask(), classifier, texts, args.repeat)
    plain = times["plain prediction (explain off)"]
    print(f"\ncost over the {len(texts)} golden headlines (best of {args.repeat}; load "
          f"{os.getloadavg()[0]:.1f} at the end):\n")
    print("| | seconds | per item (ms) | x plain prediction |\n| --- | --- | --- | --- |")
    for method, seconds in times.items():
        print(f"| {method} | {seconds:.2f} | {1000 * seconds / len(texts):.1f} | {seconds / plain:.1f} |")


if __name__ == "__main__":
    main()
