"""Explanations: why a task gave a result, as typed evidence stored with the result.

A job submitted with the option ``explain`` (off by default) asks its task for one :class:`Explanation` per
succeeded item: :meth:`verticals.contract.Task.explain` receives the batch, its validated outputs, the models
and the context, and returns one explanation (or ``None``) per item. The engine validates each one
(:func:`check_explanation`: the model's own rules, and every character span against the item's input) and
stores it next to the output; ``verticals jobs results``, the exports, the REST API and the SDK return it.
With ``explain`` off the method is never called and nothing is stored: no cost.

An :class:`Explanation` is a one-line ``summary`` a person reads, the ``method`` that found the evidence
(``occlusion``, ``integrated-gradients``, ``additive``, ``detectors``...), the ``target`` it explains (a
label, a probability) and a list of :class:`Evidence` items, strongest first.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EVIDENCE_KINDS", "Evidence", "Explanation", "ExplanationError", "check_explanation"]

EVIDENCE_KINDS = ("word", "token", "span", "cue", "scope", "field", "factor", "reference", "rule", "line", "test")
"""The kinds an evidence item may have (a task may use others; these are the ones the front ends know):
``word``/``token``: a piece of the input text with an attribution weight; ``span``: a stretch of the input a
detector found; ``cue``: a word that triggered or raised a finding; ``scope``: the stretch a cue governs;
``field``: an input field as a whole; ``factor``: a term of an additive model; ``reference``: a reference text
the decision leaned on; ``rule``: a rule that fired; ``line``: lines of code; ``test``: a generated test."""


class Evidence(BaseModel):
    """One piece of evidence.

    ``start``/``end``: a character span of the input field ``field`` (default: the task's ``text_field``),
    end exclusive; with a span, ``text`` (when given) must be exactly that stretch of the input (the engine
    checks it). Without a span, ``field`` may name an input field or a factor, and ``text`` says what the
    evidence is. ``weight``: signed, in the method's unit (a drop in probability, an attribution, a logit
    term); positive supports the result. ``source``: what produced it (``occlusion``, a recognizer, a rule).
    ``detail``: one short line (a category, a score's meaning). Never put item contents a task must not
    repeat (a sensitive task's PHI) in ``text`` or ``detail``: point at it with a span instead.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=40, description="word, token, span, cue, scope, field, factor, "
                                                               "reference, rule, line, test (EVIDENCE_KINDS)")
    weight: float = Field(description="Signed strength; positive supports the result, in the method's unit.")
    text: str | None = Field(default=None, max_length=2000, description="The evidence as it reads; with a span, "
                                                                        "exactly the input's characters")
    start: int | None = Field(default=None, ge=0, description="Character span start in the input field")
    end: int | None = Field(default=None, ge=0, description="Character span end (exclusive)")
    field: str | None = Field(default=None, max_length=200,
                              description="The input field of the span (default: the task's text field), or the "
                                          "field or factor the evidence is about")
    source: str | None = Field(default=None, max_length=200, description="What produced it: a method, detector, rule")
    detail: str | None = Field(default=None, max_length=500, description="One short line about it")

    @model_validator(mode="after")
    def _span(self) -> Evidence:
        if (self.start is None) != (self.end is None):
            raise ValueError("a span needs both start and end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"span end {self.end} is not after its start {self.start}")
        if self.weight != self.weight or self.weight in (float("inf"), float("-inf")):
            raise ValueError("weight must be a finite number")
        return self


class Explanation(BaseModel):
    """Why one result is what it is: a one-line ``summary``, the ``method``, the ``target`` explained and the
    ``evidence``, strongest first."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=500, description="One line a person reads")
    method: str = Field(min_length=1, max_length=80,
                        description="How the evidence was found: occlusion, integrated-gradients, additive, "
                                    "detectors...")
    target: str | None = Field(default=None, max_length=200, description="What is explained (a label, a score)")
    evidence: list[Evidence] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _one_line(self) -> Explanation:
        if "\n" in self.summary or "\r" in self.summary:
            raise ValueError("summary must be one line")
        return self


class ExplanationError(ValueError):
    """An explanation that breaks the contract (a bad span, text that is not the input's). The item fails with
    ``invalid explanation: ...``, as an output that fails validation does."""


def check_explanation(value: Any, item: BaseModel, text_field: str | None) -> Explanation:
    """``value`` (an :class:`Explanation` or its dict) validated, and each span checked against ``item``: the
    span's field is a text field of the input, the span lies inside it, and ``text`` (when given) is exactly
    the input's characters there. Raises :class:`ExplanationError` (its message never quotes the input)."""
    from pydantic import ValidationError

    try:
        explanation = Explanation.model_validate(value.model_dump() if isinstance(value, BaseModel) else value)
    except ValidationError as error:
        parts = []
        for problem in error.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in problem.get("loc", ())) or "explanation"
            parts.append(f"{where}: {problem.get('msg', 'invalid')}")
        raise ExplanationError("; ".join(parts)) from None
    for index, evidence in enumerate(explanation.evidence):
        if evidence.start is None or evidence.end is None:
            continue
        name = evidence.field or text_field
        if name is None:
            raise ExplanationError(f"evidence.{index}: a span needs a field (the task has no text field)")
        source = getattr(item, name, None)
        if not isinstance(source, str):
            raise ExplanationError(f"evidence.{index}: the span's field {name!r} is not a text field of the input")
        if evidence.end > len(source):
            raise ExplanationError(f"evidence.{index}: span {evidence.start}-{evidence.end} ends after the "
                                   f"{len(source)} characters of {name!r}")
        if evidence.text is not None and source[evidence.start:evidence.end] != evidence.text:
            raise ExplanationError(f"evidence.{index}: text is not the input's characters {evidence.start}-"
                                   f"{evidence.end} of {name!r}")
    return explanation


def without_input_text(explanation: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
    """``explanation`` (a stored dict) with no copy of the item's input: the job option ``purge_inputs``
    deletes the input, so the words an explanation quotes from it go too. Evidence keeps its kind, weight,
    span, field and source; ``text`` and ``detail`` are dropped wherever they could hold input (an evidence
    with a span, or one whose text occurs in an input field); a summary that quotes any input stretch of
    three or more characters, or quotes ("...") any stretch of it, is replaced by a count."""
    texts = [value for value in (item or {}).values() if isinstance(value, str) and value]

    def quotes(value: str | None) -> bool:
        stripped = (value or "").strip()
        return len(stripped) >= 3 and any(stripped in text for text in texts)

    evidence, dropped = [], 0
    for entry in explanation.get("evidence") or []:
        entry = dict(entry)
        if entry.get("start") is not None or quotes(entry.get("text")) or quotes(entry.get("detail")):
            dropped += bool(entry.get("text"))
            entry["text"] = None
            if entry.get("detail") and (entry.get("start") is not None or quotes(entry.get("detail"))):
                entry["detail"] = None
        evidence.append(entry)
    summary = str(explanation.get("summary") or "")
    quoted = [str(e.get("text")) for e in explanation.get("evidence") or [] if e.get("text")]
    if any(q.strip() and q.strip() in summary for q in quoted if len(q.strip()) >= 3) or any(
            word.strip() and any(word in text for text in texts) for word in _quoted_words(summary)):
        summary = f"{len(evidence)} evidence item(s); the quoted input was purged with it"
    return {**explanation, "summary": summary, "evidence": evidence}


def _quoted_words(summary: str) -> list[str]:
    """The stretches a summary puts in quotes ('...' or \"...\"), where tasks quote their evidence."""
    import re

    return [match.group(2) for match in re.finditer(r"([\"'\u2018\u201c])(.+?)[\"'\u2019\u201d]", summary)]

