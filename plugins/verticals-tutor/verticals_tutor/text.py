"""Light text processing shared by grading and hints: tokens, stems, concepts, negation.

Deliberately dependency-free (no spaCy/NLTK): a small stop-word list and a
crude suffix stemmer are enough to compare short answers with reference answers.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STOP = (
    """a an the and or but if then than so of to in on at by for with from into onto about as is are was were be
    been being am do does did doing have has had having it its it's this that these those there here which who whom
    what when where why how i you he she we they me him her us them my your his our their will would can could should
    may might must shall also just very too more most less some any each other such only own same both all because
    since while until up down out over under again further once one s t"""
)
STOPWORDS = frozenset(_STOP.split())
_NEG = (
    """not no never none nothing nobody neither nor cannot can't won't don't doesn't didn't isn't aren't wasn't weren't
    hasn't haven't hadn't shouldn't wouldn't couldn't without n't"""
)
NEGATIONS = frozenset(_NEG.split())
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|n't")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match connect/connected/connection."""
    for suffix in ("ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "ly", "ions", "ion", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if suffix == "ies":
                word += "y"
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def content_stems(text: str) -> list[str]:
    return [stem(t) for t in tokens(text) if t not in STOPWORDS and t not in NEGATIONS]


def negation_count(text: str) -> int:
    toks = tokens(text)
    return sum(t in NEGATIONS or t.endswith("n't") for t in toks)


def concepts_from_reference(reference: str, question: str = "", max_concepts: int = 6) -> list[str]:
    """Key concepts of a reference answer: runs of content words the question does not already give.

    "Terminal 1 and the positive terminal are separated by the gap" for the
    question "... terminal 1 and the positive terminal" gives ["separated", "gap"].
    Falls back to all content-word runs when the question covers everything.
    """
    question_stems = set(content_stems(question))
    runs: list[list[str]] = []
    fallback: list[list[str]] = []
    current: list[str] = []
    current_all: list[str] = []
    for word in re.findall(r"[A-Za-z0-9]+(?:'[a-z]+)?", reference):
        low = word.lower()
        if low in STOPWORDS or low in NEGATIONS:
            if current:
                runs.append(current)
            if current_all:
                fallback.append(current_all)
            current, current_all = [], []
            continue
        current_all.append(low)
        if stem(low) in question_stems:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(low)
    if current:
        runs.append(current)
    if current_all:
        fallback.append(current_all)
    chosen = runs or fallback
    seen: set[str] = set()
    concepts = []
    for run in chosen:
        phrase = " ".join(run)
        if phrase not in seen and not phrase.isdigit():
            seen.add(phrase)
            concepts.append(phrase)
    return concepts[:max_concepts]


def concept_present(concept: str, answer_stems: set[str]) -> bool:
    """A concept counts as present when at least half of its content stems (and one or more) appear."""
    stems = content_stems(concept)
    if not stems:
        return False
    hits = sum(s in answer_stems for s in stems)
    return hits >= max(1, (len(stems) + 1) // 2)


def overlap_recall(target: str, text: str, exclude: str = "") -> float:
    """Share of ``target``'s content stems (minus those of ``exclude``) found in ``text``."""
    excluded = set(content_stems(exclude))
    wanted = {s for s in content_stems(target) if s not in excluded}
    if not wanted:
        return 0.0
    have = set(content_stems(text))
    return len(wanted & have) / len(wanted)


def split_list(value: Any) -> Any:
    """CSV cells carry lists as ``a | b | c`` (or a JSON array)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                pass
        return [part.strip() for part in re.split(r"\s*\|\s*", stripped) if part.strip()]
    return value
