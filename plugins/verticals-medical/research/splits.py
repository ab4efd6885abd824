"""The fixed splits of the medical development files (issue 23): a validation part nobody reads errors from.

Rule (committed before any tuning; do not change the salts):

- ``physionet_deid_dev.jsonl`` is split **by patient**: ``bucket = int(sha256(SALT + ":" + patient)[:8], 16) % 100``;
  buckets 0-24 (about a quarter of the patients) are the **validation** split, whose errors are never printed or
  read (only aggregate figures); the others are the training/tuning folds, fold ``bucket % 4`` (k = 4 by patient).
- ``negex_context_dev.jsonl`` is split **by report number** with the same rule and its own salt.

    python plugins/verticals-medical/research/splits.py --data ../shared/data/medical --out /tmp/medsplits

writes ``deid_val.jsonl``, ``deid_train.jsonl`` (with a ``fold`` field), ``negex_val.jsonl`` and
``negex_train.jsonl`` there (never into the repository: the notes must not be shipped) and prints the sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

DEID_SALT = "verticals-medical/deid-split/v1"
NEGEX_SALT = "verticals-medical/negex-split/v1"
VALIDATION_BUCKETS = 25  # of 100
FOLDS = 4


def bucket(salt: str, key: object) -> int:
    return int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:8], 16) % 100


def deid_part(patient: object) -> str:
    """``"val"`` or ``"fold0"`` .. ``"fold3"`` for a patient id of the PhysioNet deid file."""
    b = bucket(DEID_SALT, patient)
    return "val" if b < VALIDATION_BUCKETS else f"fold{b % FOLDS}"


def negex_part(number: object) -> str:
    """``"val"`` or ``"train"`` for a NegEx/ConText report number."""
    return "val" if bucket(NEGEX_SALT, number) < VALIDATION_BUCKETS else "train"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def split_deid(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    val, train = [], []
    for row in rows:
        part = deid_part(row["patient"])
        if part == "val":
            val.append(row)
        else:
            train.append({**row, "fold": int(part[-1])})
    return val, train


def split_negex(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    val = [r for r in rows if negex_part(r["number"]) == "val"]
    train = [r for r in rows if negex_part(r["number"]) != "val"]
    return val, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/medical", help="folder of the development files")
    parser.add_argument("--out", required=True, help="folder to write the split files to (outside the repository)")
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deid = read_jsonl(data / "physionet_deid_dev.jsonl")
    val, train = split_deid(deid)
    write_jsonl(out / "deid_val.jsonl", val)
    write_jsonl(out / "deid_train.jsonl", train)
    print(f"deid: validation {len(val)} notes of {len({r['patient'] for r in val})} patients, "
          f"{sum(len(r['spans']) for r in val)} spans; training folds {len(train)} notes of "
          f"{len({r['patient'] for r in train})} patients "
          f"(notes per fold {dict(sorted(Counter(r['fold'] for r in train).items()))})")
    negex = read_jsonl(data / "negex_context_dev.jsonl")
    nval, ntrain = split_negex(negex)
    write_jsonl(out / "negex_val.jsonl", nval)
    write_jsonl(out / "negex_train.jsonl", ntrain)
    print(f"negex: validation {len(nval)} items of {len({r['number'] for r in nval})} reports; training "
          f"{len(ntrain)} items of {len({r['number'] for r in ntrain})} reports")


if __name__ == "__main__":
    main()
