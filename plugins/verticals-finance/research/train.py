"""The packaged ``finance.sentiment`` model: data preparation, packaging and checks for the recipe.

The shipped model is a LoRA adapter + linear head on the packaged MiniLM, trained with ``verticals train``
(see the plugin README for the exact commands and figures)::

    # train.csv, tfns_dev.csv, written_heldout.csv
    python plugins/verticals-finance/research/train.py prepare --out build/finance
    verticals train finance.sentiment build/finance/train.csv --epochs 2 --max-length 64 --evals-per-epoch 2
    python plugins/verticals-finance/research/train.py package "$VERTICALS_HOME/models/finance.sentiment/v1"
    # figures of the shipped model -> metrics.json
    python plugins/verticals-finance/research/train.py check --data build/finance
    # the unlabelled texts `verticals models warm` judges runtime variants on (ModelSpec.calibration)
    python plugins/verticals-finance/research/train.py calibration

Data: TFNS train (``../shared/data/finance/tfns_train.csv``, MIT) minus a fixed 15 % stratified dev slice
(seed 13) that is never trained on, plus the train split of the plugin's written sentences and headlines
(``data/sentences.jsonl``, ``data/headlines.jsonl``); their held-out quarter (seed 13) is never trained on either.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from verticals_finance.data import DATA_FILES, HEAD_DIR, PACKAGE, SEED, TEST_FRACTION, load_rows, split  # noqa: F401
from verticals_finance.sentiment import LABELS

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

    from verticals.core.models.training import stratified_split

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


CALIBRATION = PACKAGE / "calibration" / "texts.txt"
CALIBRATION_TFNS = 250


def calibration(tfns: Path, out: Path = CALIBRATION) -> int:
    """Write the model's calibration texts (``ModelSpec.calibration``: what ``verticals models warm`` checks runtime
    variants on, labels dropped): the 270 texts of the written held-out quarter and 250 of the TFNS dev slice
    (seeded sample), none ever trained on. One text per line; returns how many."""
    import random

    from verticals.core.models.training import stratified_split

    _train, tfns_dev = stratified_split(load_tfns(tfns), DEV_FRACTION, SEED)
    _written_train, written_test = split(load_rows())
    texts = [r["text"] for r in written_test] + [r["text"] for r in random.Random(SEED).sample(tfns_dev,
                                                                                                CALIBRATION_TFNS)]
    texts = [" ".join(text.split()) for text in texts]  # one line each
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
    return len(texts)


def _read_csv(path: Path) -> list[dict]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def scores(true: list[str], predicted: list[str]) -> dict:
    """Accuracy, macro-F1, per label, and the confusion matrix (rows: true label)."""
    from verticals.core.models.training import classification_metrics

    result = classification_metrics(true, predicted, LABELS)
    result["confusion"] = {t: {p: sum(a == t and b == p for a, b in zip(true, predicted, strict=True)) for p in LABELS}
                           for t in LABELS}
    return result


def evaluate_shipped(test: list[dict]) -> dict:
    """Figures of the model that ships, loaded through the model host as users get it (hub skipped)."""
    from verticals.core.models.host import ModelHost, resolve
    from verticals.registry import get_registry

    registry = get_registry()
    source = resolve(registry.models["finance.sentiment"], use_store=False)
    if source.kind != "packaged":
        raise RuntimeError(f"finance.sentiment resolves to {source.kind}, not the packaged model: "
                           "run with HF_HUB_OFFLINE=1 and without VERTICALS_MODELS")
    host = ModelHost(registry.models, overrides={"finance.sentiment": str(source.path)})
    classifier = host.get("finance.sentiment")
    probs = classifier.classify([r["text"] for r in test])
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    return scores([r["label"] for r in test], predicted)


def package(version_dir: Path, out: Path = HEAD_DIR) -> None:
    """Copy a model-store version (adapter + head) into the plugin as the packaged model."""
    import shutil

    config = json.loads((version_dir / "verticals_head.json").read_text(encoding="utf-8"))
    meta = json.loads((version_dir / "version.json").read_text(encoding="utf-8"))
    if config.get("encoder") != "minilm" or not config.get("adapter"):
        raise SystemExit("package expects a LoRA version on minilm")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(version_dir, out, ignore=shutil.ignore_patterns("version.json"))
    meta.pop("spec", None)
    meta["packaged_from"] = f"model store version {meta.pop('version', '?')}"
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def check(data: Path | None, out: Path = HEAD_DIR) -> dict:
    """Figures of the shipped model on the written held-out quarter (always) and on the TFNS dev slice
    (when ``data`` holds ``tfns_dev.csv`` from ``prepare``); written to ``metrics.json``."""
    _, held_out = split(load_rows())
    result = {"written_held_out": evaluate_shipped(held_out)}
    if data is not None and (data / "tfns_dev.csv").exists():
        result["tfns_dev"] = evaluate_shipped(_read_csv(data / "tfns_dev.csv"))
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write train.csv, tfns_dev.csv and written_heldout.csv")
    prep.add_argument("--out", type=Path, default=Path("build/finance"))
    prep.add_argument("--tfns", default=None, help=f"TFNS train CSV (default: {TFNS} from the repository root)")
    pack = commands.add_parser("package", help="copy a model-store version into the plugin")
    pack.add_argument("version_dir", type=Path)
    chk = commands.add_parser("check", help="figures of the shipped model -> metrics.json")
    chk.add_argument("--data", type=Path, default=None, help="the folder `prepare` wrote (for the TFNS dev slice)")
    cal = commands.add_parser("calibration", help="write verticals_finance/calibration/texts.txt (unlabelled)")
    cal.add_argument("--tfns", default=None, help=f"TFNS train CSV (default: {TFNS} from the repository root)")
    args = parser.parse_args()
    if args.command == "calibration":
        print(f"{calibration(tfns_path(args.tfns))} texts written to {CALIBRATION}")
    elif args.command == "prepare":
        print(json.dumps(prepare(args.out, tfns_path(args.tfns))))
    elif args.command == "package":
        package(args.version_dir)
        print(f"packaged {args.version_dir} into {HEAD_DIR}")
    else:
        print(json.dumps(check(args.data), indent=2))


if __name__ == "__main__":
    main()
