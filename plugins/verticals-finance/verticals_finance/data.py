"""The plugin's written sentiment data (``data/sentences.jsonl``, ``data/headlines.jsonl``) and its seeded
held-out split: the quarter ``verticals train`` never sees, on which the shipped model's figures are measured."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
DATA_FILES = (PACKAGE / "data" / "sentences.jsonl", PACKAGE / "data" / "headlines.jsonl")
HEAD_DIR = PACKAGE / "heads" / "sentiment-minilm-lora"
SEED = 13
TEST_FRACTION = 0.25


def load_rows(paths: tuple[Path, ...] = DATA_FILES) -> list[dict[str, Any]]:
    """Every row of the data files, each tagged with the file it came from (``source``)."""
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            rows += [{**json.loads(line), "source": path.stem} for line in handle if line.strip()]
    return rows


def split(rows: list[dict[str, Any]], seed: int = SEED,
          test_fraction: float = TEST_FRACTION) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stratified by data file and label, seeded."""
    by_label: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
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
