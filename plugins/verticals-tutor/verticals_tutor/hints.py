"""Socratic hints from a causal LM, with an answer-leak guardrail and templated fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from verticals_tutor import text as tx

SYSTEM = ("You are a patient tutor. You never give the answer. You reply with one short guiding question or "
          "hint (one or two sentences) that helps the student think.")
STRICT_SYSTEM = ("You are a Socratic tutor. Do NOT state the answer or its key words. Reply with exactly one "
                 "short question that makes the student think about the idea they are missing.")
LEVELS = {
    1: "a gentle nudge: ask what the question is really about",
    2: "a pointer to the idea the student is missing, without naming the answer",
    3: "one worked step of reasoning the student should take next, without stating the final answer",
}


@dataclass
class LeakCheck:
    overlap: float
    similarity: float
    leaked: bool


def leak_check(hint: str, reference: str, question: str, answer: str, hint_vec: np.ndarray, ref_vec: np.ndarray,
               max_overlap: float, max_similarity: float) -> LeakCheck:
    """A hint leaks when it repeats most of the reference's own words (those the question and the student's
    answer do not already contain) or is nearly the reference by MiniLM similarity."""
    wanted = {s for s in tx.content_stems(reference)} - set(tx.content_stems(question)) - set(
        tx.content_stems(answer))
    have = set(tx.content_stems(hint))
    overlap = len(wanted & have) / len(wanted) if wanted else 0.0
    similarity = float(hint_vec @ ref_vec)
    leaked = (overlap >= max_overlap and len(wanted & have) >= 1) or similarity >= max_similarity
    return LeakCheck(round(overlap, 3), round(similarity, 3), leaked)


def build_prompt(question: str, answer: str, reference: str, level: int, missing: list[str], strict: bool) -> str:
    lines = [f"Question: {question}", f"Student's answer: {answer}"]
    if level >= 2 and missing:
        lines.append(f"The student is missing the idea of: {missing[0]}")
    if level >= 3 and not strict:
        lines.append(f"(For you only, never repeat it) correct answer: {reference}")
    lines.append(f"Write {LEVELS[level]}.")
    return "\n".join(lines)


def template_hint(question: str, level: int, missing: list[str]) -> list[str]:
    """Candidate templated hints, most specific first (the caller takes the first that does not leak)."""
    candidates = []
    if missing and level >= 2:
        candidates.append(f"Your answer leaves out an important idea. How might \"{missing[0]}\" matter here?")
    if missing:
        candidates.append("Look again at the key terms of the question. Which idea in it does your answer not "
                          "explain yet?")
    candidates.append("Re-read the question: what exactly is it asking you to explain? Check each part of your "
                      "answer against that.")
    return candidates


def clean(text: str) -> str:
    text = text.strip().strip('"').strip()
    for prefix in ("Hint:", "hint:", "Tutor:", "Answer:"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return " ".join(text.split())


def generate_hints(items: list[Any], llm: Any, encoder: Any, params: Any) -> list[dict[str, Any]]:
    """One hint per item: LLM, regenerate once with a stricter prompt if it leaks, then a template."""
    missing_by_item = []
    for item in items:
        concepts = item.concepts or tx.concepts_from_reference(item.reference_answer, item.question)
        answer_stems = set(tx.content_stems(item.answer))
        missing_by_item.append([c for c in concepts if not tx.concept_present(c, answer_stems)] or concepts)
    ref_vecs = encoder.embed([i.reference_answer for i in items])
    results: list[dict[str, Any] | None] = [None] * len(items)
    pending = list(range(len(items)))
    for attempt, (system, strict, temperature) in enumerate(
            ((SYSTEM, False, 0.0), (STRICT_SYSTEM, True, params.regenerate_temperature))):
        if not pending or attempt > params.regenerations:
            break
        prompts = [build_prompt(items[i].question, items[i].answer, items[i].reference_answer, items[i].level,
                                missing_by_item[i], strict) for i in pending]
        outs = [clean(o) for o in llm.generate(prompts, max_new_tokens=params.max_new_tokens, system=system,
                                                temperature=temperature, seed=params.seed)]
        vecs = encoder.embed(outs)
        still = []
        for i, hint, vec in zip(pending, outs, vecs, strict=True):
            check = leak_check(hint, items[i].reference_answer, items[i].question, items[i].answer, vec,
                               ref_vecs[i], params.max_overlap, params.max_similarity)
            if hint and not check.leaked:
                results[i] = {"hint": hint, "path": "llm" if attempt == 0 else "llm-regenerated",
                              "overlap": check.overlap, "similarity": check.similarity, "generations": attempt + 1}
            else:
                still.append(i)
        pending = still
    for i in pending:
        item = items[i]
        candidates = template_hint(item.question, item.level, missing_by_item[i])
        vecs = encoder.embed(candidates)
        chosen = None
        for hint, vec in zip(candidates, vecs, strict=True):
            check = leak_check(hint, item.reference_answer, item.question, item.answer, vec, ref_vecs[i],
                               params.max_overlap, params.max_similarity)
            if not check.leaked:
                chosen = (hint, check)
                break
        hint, check = chosen or (candidates[-1], check)
        results[i] = {"hint": hint, "path": "template", "overlap": check.overlap, "similarity": check.similarity,
                      "generations": min(params.regenerations + 1, 2)}
    return [r for r in results if r is not None]
