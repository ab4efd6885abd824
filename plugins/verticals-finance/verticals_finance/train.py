"""Train the packaged sentiment head: MiniLM sentence embeddings + multinomial logistic regression.

    python -m verticals_finance.train            # train on the train split, report held-out figures, save head
    python -m verticals_finance.train --check    # only evaluate the shipped head on the held-out split

The data is ``verticals_finance/data/sentences.jsonl`` and ``headlines.jsonl``
(both written for this project). The split is stratified by label and seeded, so figures reproduce.
The shipped head is the one trained on the train split only, so the held-out
figures describe exactly what ships.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from verticals_finance.sentiment import LABELS

PACKAGE = Path(__file__).resolve().parent
DATA_FILES = (PACKAGE / "data" / "sentences.jsonl", PACKAGE / "data" / "headlines.jsonl")
HEAD_DIR = PACKAGE / "heads" / "sentiment-minilm"
SEED = 13
TEST_FRACTION = 0.25


def load_rows(paths: tuple[Path, ...] = DATA_FILES) -> list[dict]:
    """Every row of the data files, each tagged with the file it came from (``source``)."""
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            rows += [{**json.loads(line), "source": path.stem} for line in handle if line.strip()]
    return rows


def split(rows: list[dict], seed: int = SEED, test_fraction: float = TEST_FRACTION) -> tuple[list[dict], list[dict]]:
    """Stratified by data file and label, seeded."""
    by_label: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row.get("source", ""), row["label"]].append(row)
    train, test = [], []
    rng = random.Random(seed)
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda r: r["text"])
        rng.shuffle(group)
        cut = round(len(group) * test_fraction)
        test += group[:cut]
        train += group[cut:]
    return train, test


REPO = PACKAGE.parents[2]
TFNS = "../shared/data/finance/tfns_train.csv"  # relative to the repository root
DEV_FRACTION = 0.15


def tfns_path(path: str | Path | None = None) -> Path:
    """The TFNS train file: ``path``, else ``VERTICALS_TFNS``, else ``../shared/data/finance/tfns_train.csv``
    resolved from the repository root."""
    import os

    chosen = Path(path or os.environ.get("VERTICALS_TFNS") or TFNS)
    return chosen if chosen.is_absolute() else (REPO / chosen).resolve()


def load_tfns(path: Path) -> list[dict]:
    """TFNS rows as {text, label}, duplicates (same text) dropped, first one kept."""
    import csv

    seen, rows = set(), []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            if text and text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": row["label"].strip().lower()})
    return rows


def prepare(out: Path, tfns: Path) -> dict[str, int]:
    """Write the fixed files of the recipe into ``out``:

    - ``tfns_dev.csv``: 15 % of TFNS train, stratified by label, seed 13: never trained on;
    - ``written_heldout.csv``: the held-out quarter of the plugin's written sentences/headlines (seed 13);
    - ``train.csv``: the rest of TFNS plus the written train split (``verticals train`` holds out its own
      early-stopping dev slice from it).
    """
    import csv

    from verticals.core.training import stratified_split

    tfns_rows = load_tfns(tfns)
    tfns_train, tfns_dev = stratified_split(tfns_rows, DEV_FRACTION, SEED)
    written_train, written_test = split(load_rows())
    written_train = [{"text": r["text"], "label": r["label"]} for r in written_train]
    written_test = [{"text": r["text"], "label": r["label"]} for r in written_test]
    out.mkdir(parents=True, exist_ok=True)
    files = {"train.csv": tfns_train + written_train, "tfns_dev.csv": tfns_dev, "written_heldout.csv": written_test}
    for name, rows in files.items():
        with (out / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    return {name: len(rows) for name, rows in files.items()}


def encoder():
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry

    return ModelHost(get_registry().models).get("minilm")


def fit_head(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by L-BFGS (full batch; a few hundred rows)."""
    torch.manual_seed(SEED)
    features, targets = torch.tensor(x), torch.tensor(y)
    weight = torch.zeros(len(LABELS), x.shape[1], requires_grad=True)
    bias = torch.zeros(len(LABELS), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(features @ weight.T + bias, targets) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def choose_l2(x: np.ndarray, y: np.ndarray, folds: int = 5) -> tuple[float, dict[float, float]]:
    """Pick the L2 strength by stratified k-fold accuracy on the training split only."""
    rng = np.random.default_rng(SEED)
    fold_of = np.zeros(len(y), dtype=int)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = np.arange(len(members)) % folds
    accuracy = {}
    for l2 in L2_GRID:
        correct = 0
        for fold in range(folds):
            train, held = fold_of != fold, fold_of == fold
            weight, bias = fit_head(x[train], y[train], l2=l2)
            correct += int(((x[held] @ weight.T + bias).argmax(axis=1) == y[held]).sum())
        accuracy[l2] = correct / len(y)
    return max(accuracy, key=accuracy.get), accuracy


def scores(true: list[str], predicted: list[str]) -> dict:
    accuracy = sum(t == p for t, p in zip(true, predicted, strict=True)) / len(true)
    per_label = {}
    for label in LABELS:
        tp = sum(t == p == label for t, p in zip(true, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(true, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(true, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
    macro_f1 = sum(v["f1"] for v in per_label.values()) / len(LABELS)
    confusion = {t: {p: sum(a == t and b == p for a, b in zip(true, predicted, strict=True)) for p in LABELS}
                 for t in LABELS}
    return {"n": len(true), "accuracy": round(accuracy, 4), "macro_f1": round(macro_f1, 4), "per_label": per_label,
            "confusion": confusion}


def evaluate_shipped(test: list[dict]) -> dict:
    """Held-out figures of the head that ships, loaded through the model host as users get it."""
    from verticals.core.models import ModelHost
    from verticals.plugins import get_registry

    classifier = ModelHost(get_registry().models).get("finance.sentiment")
    probs = classifier.classify([r["text"] for r in test])
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    return scores([r["label"] for r in test], predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only evaluate the shipped head")
    parser.add_argument("--out", type=Path, default=HEAD_DIR)
    args = parser.parse_args()
    train, test = split(load_rows())
    if not args.check:
        from safetensors.numpy import save_file

        model = encoder()
        x = model.embed([r["text"] for r in train], normalize=True)
        y = np.array([LABELS.index(r["label"]) for r in train])
        l2, cv = choose_l2(x, y)
        print("5-fold CV accuracy on the train split by L2:", {k: round(v, 4) for k, v in cv.items()}, "->", l2)
        weight, bias = fit_head(x, y, l2=l2)
        args.out.mkdir(parents=True, exist_ok=True)
        save_file({"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)},
                  str(args.out / "head.safetensors"))
        config = {"format": "verticals-linear-head", "version": 1, "encoder": "minilm", "labels": list(LABELS),
                  "normalize": True, "weights": "head.safetensors",
                  "l2": l2,
                  "trained_on": f"verticals_finance/data/{{sentences,headlines}}.jsonl train split "
                                f"({len(train)} rows, seed {SEED})"}
        (args.out / "verticals_head.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        train_pred = [LABELS[i] for i in (x @ weight.T + bias).argmax(axis=1)]
        print(f"train: {scores([r['label'] for r in train], train_pred)['accuracy']:.4f} accuracy on {len(train)}")
    result = evaluate_shipped(test)
    print(json.dumps({"held_out": result}, indent=2))
    if not args.check:
        (args.out / "metrics.json").write_text(json.dumps({"held_out": result}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
