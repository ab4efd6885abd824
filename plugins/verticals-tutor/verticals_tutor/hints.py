"""Socratic hints from a causal LM, each one validated, with regeneration and a templated fallback.

The LLM never sees the reference answer nor its key phrases (a small model parrots what it is shown), only
the question, the student's answer and a one-line instruction. Every generated hint is then validated
(:func:`validate`); a hint that fails any rule is regenerated once (sampling) and, if that fails too, replaced
by a template built from the question and the *number* of missing concepts (never their words). The path
that served each hint (``llm``, ``llm-regenerated``, ``template``) and the rules that rejected earlier
generations are recorded.

Rules (a hint is rejected when any holds):

- ``scaffolding``: it echoes the prompt: an instruction marker ("correct answer", "for you only", "the
  student", "Question:", ...) or any word 3-gram of the system prompt or the instructions.
- ``key-phrase``: it contains a key phrase of the reference answer (a concept the student's answer lacks).
- ``reference-words``: it holds at least ``max_overlap`` (0.3) of the reference's own key words (those neither the
  question nor the student's answer contains).
- ``reference-ngram``: it repeats two consecutive key words of the reference.
- ``reference-similarity``: its MiniLM cosine to the reference is at least ``max_similarity`` (0.7).
- ``affirmation``: it asserts an answer or praises ("the answer is", "that's right", "correct", ...), or
  restates the student's wrong answer as a statement (60% of its content words, no question mark).
- ``question-echo``: it is the question again (half or more of the question's content words, and at most one
  word of its own): a student who could not answer the question learns nothing from reading it twice.
- ``empty`` / ``too-long``: fewer than 3 words, or more than 45.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verticals_tutor import text as tx

SYSTEM = "You are a tutor. Never give the answer. Reply with one short question that makes the student think."
LEVELS = {
    1: "Ask one short question about what the question is really asking.",
    2: "Ask one short question that points to the idea this answer misses.",
    3: "Ask one short question about the next reasoning step.",
}
RETRY_SYSTEM = "You are a Socratic tutor. Reply with one short question. Do not state any answer."
SCAFFOLD_TEXT = " ".join([SYSTEM, RETRY_SYSTEM, *LEVELS.values(), "Question:", "Wrong answer:"])
MARKERS = re.compile(
    r"for you only|never repeat|correct answer|reference answer|right answer|model answer|student'?s answer|"
    r"wrong answer|the student|missing the idea|question:|hint:|answer:|tutor:|\bwrite (a|one)\b|nudge|"
    r"worked step|guiding question|socratic|<\||\bassistant\b|\binstruction",
    re.IGNORECASE)
AFFIRM = re.compile(
    r"\b(the|your|an?) (correct |right |real |final |true )?answer (is|was|would be)\b|"
    r"\bthat'?s (right|correct|true|it)\b|\bthat is (right|correct)\b|\byou('re| are) (right|correct)\b|"
    r"\b(is|was) correct\b|\bcorrect[.!]|\bwell done\b|\bgood job\b|\bgreat (job|answer|work)\b|"
    r"\banswers?\b[^.?!]{0,30}\b(is|are|was|were|would be|lies|lie)\b|\b(precise|better|short) answer\b|"
    r"\bexactly( right)?[.!]|\bperfect[.!]|\bnice work\b|\bspot on\b",
    re.IGNORECASE)
MAX_WORDS = 45


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


SCAFFOLD_GRAMS = _grams(tx.tokens(SCAFFOLD_TEXT), 3)


@dataclass
class HintContext:
    """What validation needs to know about one case (derived once per case)."""

    question: str
    reference: str
    answer: str
    key_phrases: list[str]
    missing: list[str]
    wanted: set[str] = field(default_factory=set)
    bigrams: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def build(cls, question: str, reference: str, answer: str, concepts: list[str] | None) -> HintContext:
        answer_stems = set(tx.content_stems(answer))
        given = set(tx.content_stems(question)) | answer_stems
        phrases = list(concepts) if concepts else tx.concepts_from_reference(reference, question)
        # a key phrase the student already wrote is not a leak when the hint repeats it
        key = [c for c in phrases if not tx.concept_present(c, answer_stems)]
        ref = tx.content_stems(reference)
        wanted = set(ref) - given
        bigrams = {(a, b) for a, b in itertools.pairwise(ref) if a in wanted or b in wanted}
        return cls(question, reference, answer, key, key or phrases, wanted, bigrams)


@dataclass
class Verdict:
    reasons: list[str]
    overlap: float
    similarity: float

    @property
    def ok(self) -> bool:
        return not self.reasons


def validate(hint: str, ctx: HintContext, similarity: float, max_overlap: float = 0.3,
             max_similarity: float = 0.7) -> Verdict:
    """Every rule a hint must pass (see the module docstring); ``similarity`` is cosine(hint, reference)."""
    reasons = []
    words = tx.tokens(hint)
    if len(words) < 3:
        reasons.append("empty")
    if len(words) > MAX_WORDS:
        reasons.append("too-long")
    if MARKERS.search(hint) or _grams(words, 3) & SCAFFOLD_GRAMS:
        reasons.append("scaffolding")
    stems = tx.content_stems(hint)
    have = set(stems)
    if any(tx.concept_present(c, have) for c in ctx.key_phrases):
        reasons.append("key-phrase")
    hits = len(ctx.wanted & have)
    overlap = hits / len(ctx.wanted) if ctx.wanted else 0.0
    if hits and overlap >= max_overlap:
        reasons.append("reference-words")
    if ctx.bigrams & set(itertools.pairwise(stems)):
        reasons.append("reference-ngram")
    if similarity >= max_similarity:
        reasons.append("reference-similarity")
    if AFFIRM.search(hint) or restates_answer(hint, ctx.answer):
        reasons.append("affirmation")
    if echoes_question(hint, ctx.question):
        reasons.append("question-echo")
    return Verdict(reasons, round(overlap, 3), round(float(similarity), 3))


def echoes_question(hint: str, question: str) -> bool:
    """The hint repeats the question: it holds at least half of the question's content words (two or more) and
    adds at most one of its own ("Why do plants need sunlight?" for "Why do plants need sunlight?"; not "What do
    the particles of a heated gas do?", which points at one new idea)."""
    own = set(tx.content_stems(hint))
    asked = set(tx.content_stems(question))
    shared = own & asked
    return len(shared) >= max(2, len(asked) / 2) and len(own - asked) <= 1


def restates_answer(hint: str, answer: str) -> bool:
    """The hint repeats most of the student's (wrong) answer as a statement, not as a question about it."""
    own = set(tx.content_stems(answer))
    if len(own) < 2 or "?" in hint:
        return False
    return len(own & set(tx.content_stems(hint))) / len(own) >= 0.6


def build_prompt(question: str, answer: str, level: int) -> str:
    """A short prompt: no reference answer, no key phrases (nothing to leak)."""
    return f"Question: {question}\nWrong answer: {answer or '(none)'}\n{LEVELS[level]}"


def topic(ctx: HintContext, max_words: int = 4) -> str:
    """Words the question and the reference share (in the reference's order): what the answer is about."""
    question_stems = set(tx.content_stems(ctx.question))
    words, seen = [], set()
    for word in tx.tokens(ctx.reference):
        s = tx.stem(word)
        if word in tx.STOPWORDS or s not in question_stems or s in seen or s in ctx.wanted:
            continue
        seen.add(s)
        words.append(word)
    return " ".join(words[:max_words])


def template_hints(ctx: HintContext, level: int) -> list[str]:
    """Templated hints, most specific first; they name the question's topic and how many ideas are missing,
    never the missing ideas themselves (the caller validates them and takes the first that passes)."""
    about = topic(ctx)
    n = len(ctx.missing)
    ideas = "one key idea" if n <= 1 else f"{n} key ideas"
    out = []
    if about:
        if level == 1:
            out.append(f"Re-read the question. What does it ask you to explain about the {about}? "
                       "Does your answer explain that?")
        elif level == 2:
            out.append(f"Your answer still misses {ideas} about the {about}. What do you know about the "
                       f"{about} that could explain this?")
        else:
            out.append(f"Take one step: start from the facts given in the question, then work out what they "
                       f"mean for the {about}. What links the two?")
    out.append(f"Your answer still misses {ideas}. Which part of the question does your answer not explain "
               "yet?")
    out.append("Re-read the question. What exactly is it asking you to explain? Check each part of your answer "
               "against it.")
    return out


def clean(text: str) -> str:
    """First question (or first sentence) of a generation, without quotes or a role prefix."""
    text = " ".join(text.strip().strip('"').split())
    text = re.sub(r"^(hint|tutor|assistant|answer|question)\s*:\s*", "", text, flags=re.IGNORECASE)
    match = re.search(r"[^?]*\?", text)
    if match and len(tx.tokens(match.group(0))) >= 3:
        return match.group(0).strip().strip('"')
    match = re.search(r"[^.!]*[.!]", text)
    return (match.group(0) if match else text).strip().strip('"')


Progress = Callable[[float, float, str], None]


def _accepts_progress(llm: Any) -> bool:
    try:
        return "on_progress" in inspect.signature(llm.generate).parameters
    except (TypeError, ValueError):
        return False


def generate_hints(items: list[Any], llm: Any, encoder: Any, params: Any,
                   progress: Progress | None = None) -> list[dict[str, Any]]:
    """One validated hint per item: LLM (greedy), one sampled regeneration, then a template.

    ``progress(done, total, note)`` follows the generation steps (``RunContext.progress``): one step per
    generation pass (prompts generated / prompts of the pass within it) and one for validation and templates.
    Its notes hold counts only, never a question, an answer or a hint."""
    steps = params.regenerations + 2
    report = progress or (lambda done, total, note: None)
    contexts = [HintContext.build(i.question, i.reference_answer, i.answer, i.concepts) for i in items]
    ref_vecs = encoder.embed([i.reference_answer for i in items])
    results: list[dict[str, Any] | None] = [None] * len(items)
    rejections: list[list[str]] = [[] for _ in items]
    first = [""] * len(items)  # the first (greedy) generation, kept for evaluation
    pending = list(range(len(items)))
    passes = ((SYSTEM, 0.0), (RETRY_SYSTEM, params.regenerate_temperature))
    for attempt, (system, temperature) in enumerate(passes[: params.regenerations + 1]):
        if not pending:
            break
        report(attempt, steps, f"pass {attempt + 1} of {steps - 1}: generating {len(pending)} hint(s)")
        prompts = [build_prompt(items[i].question, items[i].answer, items[i].level) for i in pending]
        extra: dict[str, Any] = {}
        if progress is not None and _accepts_progress(llm):
            def generated(done: int, total: int, attempt: int = attempt) -> None:
                report(attempt + done / max(total, 1), steps,
                       f"pass {attempt + 1} of {steps - 1}: {done}/{total} hint(s) generated")

            extra["on_progress"] = generated
        outs = [clean(o) for o in llm.generate(prompts, max_new_tokens=params.max_new_tokens, system=system,
                                                temperature=temperature, seed=params.seed + attempt, **extra)]
        vecs = encoder.embed(outs)
        if attempt == 0:
            for i, hint in zip(pending, outs, strict=True):
                first[i] = hint
        still = []
        for i, hint, vec in zip(pending, outs, vecs, strict=True):
            verdict = validate(hint, contexts[i], float(vec @ ref_vecs[i]), params.max_overlap,
                               params.max_similarity)
            if verdict.ok:
                results[i] = {"hint": hint, "path": "llm" if attempt == 0 else "llm-regenerated",
                              "overlap": verdict.overlap, "similarity": verdict.similarity,
                              "generations": attempt + 1, "rejected": rejections[i],
                              "first": first[i]}
            else:
                rejections[i] = rejections[i] + verdict.reasons
                still.append(i)
        pending = still
        report(attempt + 1, steps, f"pass {attempt + 1} of {steps - 1}: {len(prompts) - len(still)} hint(s) "
                                   f"passed, {len(still)} rejected")
    generations = min(params.regenerations + 1, 2) if llm is not None else 0
    if pending:
        report(steps - 1, steps, f"templates for {len(pending)} hint(s)")
    for i in pending:
        hint, verdict = template_for(contexts[i], items[i].level, ref_vecs[i], encoder, params)
        results[i] = {"hint": hint, "path": "template", "overlap": verdict.overlap,
                      "similarity": verdict.similarity, "generations": generations, "rejected": rejections[i],
                      "first": first[i]}
    return [r for r in results if r is not None]


def template_for(ctx: HintContext, level: int, ref_vec: Any, encoder: Any, params: Any) -> tuple[str, Verdict]:
    """The first templated hint that passes validation (the most generic one as the last resort)."""
    candidates = template_hints(ctx, level)
    vecs = encoder.embed(candidates)
    verdict = None
    for hint, vec in zip(candidates, vecs, strict=True):
        verdict = validate(hint, ctx, float(vec @ ref_vec), params.max_overlap, params.max_similarity)
        if verdict.ok:
            return hint, verdict
    assert verdict is not None
    return candidates[-1], verdict
