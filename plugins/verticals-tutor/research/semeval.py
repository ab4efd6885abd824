"""Loading the SemEval-2013 Task 7 training data (CC BY-SA 3.0, Dzikovska et al. 2013)."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: The data folder, relative to the repository root (the checkout that holds ``plugins/``).
RELATIVE_DATA = Path("..") / "shared" / "data" / "education"
REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """``$VERTICALS_TUTOR_DATA`` if set, else ``../shared/data/education`` relative to the repository root
    (falling back to the same path relative to the working directory, for a non-editable install)."""
    if os.environ.get("VERTICALS_TUTOR_DATA"):
        return Path(os.environ["VERTICALS_TUTOR_DATA"])
    for base in (REPO_ROOT, Path.cwd()):
        candidate = (base / RELATIVE_DATA).resolve()
        if candidate.is_dir():
            return candidate
    return (REPO_ROOT / RELATIVE_DATA).resolve()


DEFAULT_DATA = data_dir()


def load_questions(data_dir: Path = DEFAULT_DATA) -> dict[str, dict]:
    questions = {}
    with open(data_dir / "semeval2013_train_questions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            q = json.loads(line)
            questions[q["question_id"]] = q
    return questions


def reference_texts(question: dict) -> list[str]:
    """Reference answers, best first (Beetle marks BEST/GOOD/MINIMAL; SciEntsBank has one)."""
    order = {"BEST": 0, "GOOD": 1, "MINIMAL": 2}
    refs = sorted(question["reference_answers"], key=lambda r: order.get(str(r.get("category")).upper(), 3))
    return [r["text"] for r in refs if r.get("text", "").strip()]


def load_answers(data_dir: Path = DEFAULT_DATA) -> list[dict]:
    rows = []
    for name in ("semeval2013_beetle_train.jsonl", "semeval2013_sciEntsBank_train.jsonl"):
        with open(data_dir / name, encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle]
    return rows
