"""tutor.hint: Socratic hints for wrong answers, each checked not to give the answer away."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verticals import LeakEvaluator, RunContext, Task
from verticals.contract.explain import Evidence, Explanation
from verticals_tutor.text import split_list


class HintInput(BaseModel):
    question: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    answer: str = Field("", description="the student's wrong answer")
    level: int = Field(1, ge=1, le=3, description="1 nudge, 2 pointer to the missing idea, 3 worked step")
    concepts: list[str] | None = None

    _lists = field_validator("concepts", mode="before")(lambda v: split_list(v) or None)


class HintOutput(BaseModel):
    hint: str
    path: Literal["llm", "llm-regenerated", "template"]
    level: int
    answer_overlap: float = Field(description="share of the reference answer's own key words in the hint")
    answer_similarity: float = Field(description="MiniLM cosine between hint and reference answer")
    generations: int
    rejected: list[str] = Field(default_factory=list, description="rules that rejected earlier generations")


class HintParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int = Field(32, ge=8, le=256)
    max_overlap: float = Field(0.3, gt=0, le=1, description="leak: share of the answer's key words in the hint")
    max_similarity: float = Field(0.7, gt=0, le=1, description="leak: cosine(hint, reference) at or above this")
    regenerations: int = Field(1, ge=0, le=1, description="sampled regenerations before the template fallback")
    regenerate_temperature: float = Field(0.7, ge=0, le=2)
    seed: int = 0


class TutorHint(Task[HintInput, HintOutput, HintParams]):
    """A Socratic hint for a stuck student, guarded against giving the answer away."""

    name = "tutor.hint"
    description = "Socratic hints for wrong answers (causal LM), each validated; template fallback"
    Input = HintInput
    Output = HintOutput
    Params = HintParams
    models = {"llm": "smollm2", "encoder": "minilm"}
    device = "cpu"
    chunk_size = 4  # ~6 min of generation per chunk: cancel, redelivery and progress stay fine-grained
    batch_size = 64
    expected_item_seconds = 90.0  # SmolLM2 generations on a 2-core CPU
    preview = ("answer", "hint", "path")
    text_field = "answer"
    evaluator = LeakEvaluator(gold_field="forbidden", output_field="hint")  # the hint shown holds none of them
    golden = "golden/hints.jsonl"  # 32 wrong answers written for evaluation only (golden/README.md)

    def run(self, batch: list[HintInput], models: Mapping[str, Any], ctx: RunContext[HintParams]) -> list[HintOutput]:
        from verticals_tutor.hints import generate_hints

        params = ctx.params
        results = generate_hints(batch, models["llm"], models["encoder"], params, progress=ctx.progress)
        return [HintOutput(hint=r["hint"], path=r["path"], level=item.level, answer_overlap=r["overlap"],
                           answer_similarity=r["similarity"], generations=r["generations"],
                           rejected=r["rejected"])
                for item, r in zip(batch, results, strict=True)]

    def explain(self, batch: list[HintInput], outputs: list[HintOutput], models: Mapping[str, Any],
                ctx: RunContext[HintParams]) -> list[Explanation | None]:
        """Why this hint may be shown: the leak checks it passed, with their measures against the job's limits,
        how it was made (the model's first try, a regeneration, or the template after rejections) and the rules
        that rejected earlier generations. Read from the output itself: exact, and no model call."""
        params = ctx.params
        out: list[Explanation | None] = []
        for output in outputs:
            evidence = [
                Evidence(kind="check", field="answer_overlap",
                         weight=round(params.max_overlap - output.answer_overlap, 4), source="leak check",
                         detail=f"key words of the reference in the hint: {output.answer_overlap:.2f} "
                                f"(limit {params.max_overlap:.2f})"),
                Evidence(kind="check", field="answer_similarity",
                         weight=round(params.max_similarity - output.answer_similarity, 4), source="leak check",
                         detail=f"MiniLM cosine to the reference: {output.answer_similarity:.2f} "
                                f"(limit {params.max_similarity:.2f})"),
            ]
            for rule in sorted(set(output.rejected)):
                evidence.append(Evidence(kind="rule", text=rule, weight=-1.0, source="rejected an earlier generation",
                                         detail=f"{output.rejected.count(rule)} time(s)"))
            made = {"llm": "the model's first generation",
                    "llm-regenerated": f"a regeneration (generation {output.generations})",
                    "template": f"the template, after {output.generations} rejected generation(s)"}[output.path]
            below = {True: "<", False: ">="}
            summary = (f"level-{output.level} hint from {made}; key-word overlap {output.answer_overlap:.2f} "
                       f"{below[output.answer_overlap < params.max_overlap]} {params.max_overlap:.2f}, similarity "
                       f"{output.answer_similarity:.2f} {below[output.answer_similarity < params.max_similarity]} "
                       f"{params.max_similarity:.2f}")
            out.append(Explanation(summary=summary[:500], method="leak-checks", target="the hint shown",
                                   evidence=evidence))
        return out

