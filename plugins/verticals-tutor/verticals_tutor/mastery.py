"""tutor.mastery: Bayesian Knowledge Tracing mastery per student and skill from attempt logs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from html import escape
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from verticals import (
    Evidence,
    Explanation,
    ProbabilityEvaluator,
    RunContext,
    ServerFile,
    ServerFileHandle,
    ServerPathError,
    Task,
)
from verticals_tutor import bkt, kt


class Attempt(BaseModel):
    skill: str
    correct: bool
    timestamp: str | None = None

    @field_validator("skill", mode="before")
    @classmethod
    def _skill_str(cls, value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()


class MasteryInput(BaseModel):
    student: str
    attempts: list[Attempt] = Field(min_length=1)

    @field_validator("student", mode="before")
    @classmethod
    def _student_str(cls, value: Any) -> str:
        return str(value)


class SkillMastery(BaseModel):
    skill: str
    attempts: int
    correct: int
    mastery: float = Field(description="P(skill learned) before the next attempt")
    p_next_correct: float
    mastered: bool
    params: Literal["fitted", "default"]


class AttemptPrediction(BaseModel):
    attempt: int = Field(description="1-based position in the student's attempts, in order")
    skill: str
    correct: bool
    p_correct: float = Field(description="P(correct) predicted before this attempt, from the earlier ones only")


class MasteryOutput(BaseModel):
    student: str
    skills: list[SkillMastery]
    recommended_skill: str | None
    recommendation: str
    mean_mastery: float
    at_risk: bool
    predictions: list[AttemptPrediction] | None = Field(
        None, description="with --predictions true: P(correct) before every attempt, in order")


class MasteryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mastery_threshold: float = Field(0.95, gt=0, lt=1)
    risk_threshold: float = Field(0.5, gt=0, lt=1, description="a student whose mean mastery is below this is at risk")
    params_file: ServerFile | None = Field(None, description="BKT parameter table from `python "
                                                             "plugins/verticals-tutor/research/fit_bkt.py` (default: "
                                                             "shipped ASSISTments 2009 fit)")
    predictions: bool = Field(False, description="also output P(correct) before every attempt (next-answer "
                                                 "predictions a knowledge-tracing evaluation scores)")
    predictor_file: ServerFile | None = Field(None, description="next-answer model from `python "
                                                                "plugins/verticals-tutor/research/fit_mastery.py` "
                                                                "(default: shipped fit)")
    sorted_input: bool = Field(True, description="rows are grouped by student (streamed); false: group in memory")
    max_rows_in_memory: int = Field(5_000_000, gt=0)


STUDENT_KEYS = ("student", "user_id", "student_id")
SKILL_KEYS = ("skill", "skill_name", "skill_id", "kc")
TIME_KEYS = ("timestamp", "time", "order_id")


def _field(row: dict[str, Any], keys: tuple[str, ...], what: str) -> Any:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    raise ValueError(f"attempt row has no {what} column (expected one of {', '.join(keys)})")


class TutorMastery(Task[MasteryInput, MasteryOutput, MasteryParams]):
    """Bayesian Knowledge Tracing: per-student, per-skill mastery and what to practise next.

    Input rows ``student, skill, correct[, timestamp]`` are grouped into one item per student by
    :meth:`read_items`; parameters come from the shipped ASSISTments 2009 fit or ``--params-file``.
    """

    name = "tutor.mastery"
    description = "BKT mastery per student and skill from attempt logs, next-correct probability, next skill"
    Input = MasteryInput
    Output = MasteryOutput
    Params = MasteryParams
    # `verticals eval tutor.mastery attempts.csv`: each P(correct) against the observed outcome (an evaluation job
    # always runs with predictions on)
    evaluator = ProbabilityEvaluator(gold_field="predictions.*.correct", output_field="predictions.*.p_correct",
                                     gold_from_output=True, job_params={"predictions": True})
    golden = "golden/attempts.jsonl"  # a synthetic log of 24 students made for evaluation only (golden/README.md)
    models = {}
    device = "cpu"
    chunk_size = 2000
    batch_size = 500
    preview = ("student", "mean_mastery", "at_risk", "recommended_skill")

    def read_items(self, rows: Iterable[dict[str, Any]], params: MasteryParams) -> Iterator[dict[str, Any]]:
        p = params

        def item(student: str, attempts: list[dict[str, Any]]) -> dict[str, Any]:
            if any(a.get("timestamp") for a in attempts):
                attempts = sorted(attempts, key=lambda a: _sort_key(a.get("timestamp")))
            return {"student": student, "attempts": attempts}

        def attempt(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            student = str(_field(row, STUDENT_KEYS, "student"))
            stamp = next((row[k] for k in TIME_KEYS if row.get(k) not in (None, "")), None)
            return student, {"skill": _field(row, SKILL_KEYS, "skill"), "correct": row.get("correct"),
                             "timestamp": None if stamp is None else str(stamp)}

        if not p.sorted_input:
            groups: dict[str, list[dict[str, Any]]] = {}
            for n, row in enumerate(rows, 1):
                if n > p.max_rows_in_memory:
                    raise ValueError(f"more than {p.max_rows_in_memory} rows: sort the log by student and use "
                                     "sorted_input=true (streams), or raise max_rows_in_memory")
                student, a = attempt(row)
                groups.setdefault(student, []).append(a)
            for student, attempts in groups.items():
                yield item(student, attempts)
            return
        seen: set[str] = set()
        current: str | None = None
        buffer: list[dict[str, Any]] = []
        for row in rows:
            student, a = attempt(row)
            if student != current:
                if current is not None:
                    yield item(current, buffer)
                if student in seen:
                    raise ValueError(f"attempt rows are not grouped by student (a student reappears after "
                                     f"{len(seen)} students): sort the log by student, or set the parameter "
                                     "sorted_input to false")
                seen.add(student)
                current, buffer = student, []
            buffer.append(a)
        if current is not None:
            yield item(current, buffer)

    def _table(self, params: MasteryParams) -> bkt.ParamTable:
        if params.params_file:
            try:  # read through the core's reader; a table that does not load never quotes the file
                return bkt.ParamTable.from_json(params.params_file.read_text())
            except ServerPathError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise ValueError(f"params_file is not a BKT parameter table from "
                                 f"plugins/verticals-tutor/research/fit_bkt.py ({type(error).__name__})") from None
        return bkt.shipped_params()

    def run(self, batch: list[MasteryInput], models: Mapping[str, Any],
            ctx: RunContext[MasteryParams]) -> list[MasteryOutput]:
        params = ctx.params
        table = self._table(params)
        chains, chain_params, owners, skill_names, sources = [], [], [], [], []
        for index, item in enumerate(batch):
            by_skill: dict[str, list[int]] = {}
            for a in item.attempts:
                by_skill.setdefault(a.skill, []).append(int(a.correct))
            for skill, seq in by_skill.items():
                sp, source = table.get(skill)
                chains.append(np.asarray(seq, dtype=np.float64))
                chain_params.append([sp.prior, sp.learn, sp.forget, sp.guess, sp.slip])
                owners.append(index)
                skill_names.append(skill)
                sources.append(source)
        matrix = np.asarray(chain_params, dtype=np.float64).T
        _, mastery, next_correct = bkt.predict(chains, list(range(len(chains))), matrix)
        per_student: list[list[SkillMastery]] = [[] for _ in batch]
        for c, owner in enumerate(owners):
            per_student[owner].append(SkillMastery(
                skill=skill_names[c], attempts=len(chains[c]), correct=int(chains[c].sum()),
                mastery=round(float(mastery[c]), 4), p_next_correct=round(float(next_correct[c]), 4),
                mastered=bool(mastery[c] >= params.mastery_threshold), params=sources[c]))
        outputs = []
        for item, skills in zip(batch, per_student, strict=True):
            open_skills = [s for s in skills if not s.mastered]
            if open_skills:
                pick = max(open_skills, key=lambda s: (s.mastery, s.attempts))
                reason = (f"closest to mastery among {len(open_skills)} unmastered skill(s) "
                          f"(mastery {pick.mastery:.2f} < {params.mastery_threshold})")
                recommended = pick.skill
            else:
                recommended, reason = None, "all practised skills mastered: move on to a new skill"
            mean = float(np.mean([s.mastery for s in skills]))
            predictions = None
            if params.predictions:
                attempts = [(a.skill, int(a.correct)) for a in item.attempts]
                probs = self._predictor(params).predict(attempts)
                predictions = [AttemptPrediction(attempt=k + 1, skill=skill, correct=bool(c),
                                                 p_correct=round(float(p), 4))
                               for k, ((skill, c), p) in enumerate(zip(attempts, probs, strict=True))]
            outputs.append(MasteryOutput(student=item.student, skills=skills, recommended_skill=recommended,
                                         recommendation=reason, mean_mastery=round(mean, 4),
                                         at_risk=mean < params.risk_threshold, predictions=predictions))
        return outputs

    def explain(self, batch: list[MasteryInput], outputs: list[MasteryOutput], models: Mapping[str, Any],
                ctx: RunContext[MasteryParams]) -> list[Explanation | None]:
        """The exact contribution of each factor to P(correct) on the student's next attempt at the recommended
        skill (or, with every skill mastered, the last practised one), from the next-answer model
        (:mod:`verticals_tutor.kt`): a logistic regression, so its logit is the intercept plus one term per
        feature, and the terms of a factor's features add up to that factor's share."""
        params = ctx.params
        predictor = self._predictor(params)
        out: list[Explanation | None] = []
        for item, output in zip(batch, outputs, strict=True):
            skill = output.recommended_skill or item.attempts[-1].skill
            out.append(factor_explanation(predictor, [(a.skill, int(a.correct)) for a in item.attempts], skill))
        return out

    def files(self, item: MasteryInput, output: MasteryOutput) -> dict[str, str]:
        """With ``--predictions true`` and a folder export: one mastery-curve plot (SVG) per student."""
        out = output
        if not out.predictions:
            return {}
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", out.student)[:80] or "student"
        return {f"mastery_curves/{name}.svg": mastery_svg(out.student, out.predictions)}

    def _predictor(self, params: MasteryParams) -> kt.KTModel:
        if params.predictor_file:
            return _predictor_from_file(params.predictor_file)
        return kt.shipped_model()

    def summarize(self, outputs: Iterable[MasteryOutput], ctx: RunContext[MasteryParams]) -> dict[str, Any]:
        params = ctx.params
        students = 0
        at_risk: list[str] = []
        skill_stats: dict[str, list[float]] = {}
        for out in outputs:
            students += 1
            if out.at_risk:
                at_risk.append(out.student)
            for s in out.skills:
                skill_stats.setdefault(s.skill, []).append(s.mastery)
        below: list[dict[str, Any]] = []
        for skill, values in skill_stats.items():
            mean = float(np.mean(values))
            share = float(np.mean([v >= params.mastery_threshold for v in values]))
            if mean < params.mastery_threshold:
                below.append({"skill": skill, "students": len(values), "mean_mastery": round(mean, 3),
                              "share_mastered": round(share, 3)})
        below.sort(key=lambda s: (s["mean_mastery"], -s["students"]))
        return {
            "students": students, "skills": len(skill_stats), "mastery_threshold": params.mastery_threshold,
            "skills_below_threshold": below[:25], "skills_below_threshold_count": len(below),
            "students_at_risk_count": len(at_risk), "students_at_risk": at_risk[:50],
            "risk_rule": f"mean mastery over practised skills < {params.risk_threshold}",
        }


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def mastery_svg(student: str, predictions: list[AttemptPrediction], width: int = 640, height: int = 260) -> str:
    """A plain SVG mastery curve (no plotting library is a dependency): P(correct) before each attempt,
    one line per skill, answers marked at the top (correct) or bottom (wrong)."""
    left, right, top, bottom = 40, 110, 24, 28
    n = len(predictions)
    w, h = width - left - right, height - top - bottom

    def xy(k: int, p: float) -> str:
        x = left + (w * k / max(n - 1, 1))
        return f"{x:.1f},{top + h * (1 - p):.1f}"

    skills = list(dict.fromkeys(p.skill for p in predictions))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">',
             f'<text x="{left}" y="15">Mastery curve: {escape(student)} (P(correct) before each attempt)</text>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for level in (0.25, 0.5, 0.75):
        y = top + h * (1 - level)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 28}" y="{y + 4:.1f}">{level:.2f}</text>')
    for index, skill in enumerate(skills):
        colour = PALETTE[index % len(PALETTE)]
        points = [(k, p) for k, p in enumerate(predictions) if p.skill == skill]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                     + " ".join(xy(k, p.p_correct) for k, p in points) + '"/>')
        for k, p in points:
            parts.append(f'<circle cx="{xy(k, 1.0 if p.correct else 0.0).split(",")[0]}" '
                         f'cy="{top + (3 if p.correct else h - 3)}" r="2.5" fill="{colour}"/>')
        if index < 12:
            parts.append(f'<text x="{left + w + 8}" y="{top + 12 + 14 * index}" fill="{colour}">skill '
                         f'{escape(skill)[:14]}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}">attempt 1 to {n}</text></svg>')
    return "\n".join(parts) + "\n"


@lru_cache(maxsize=4)
def _predictor_from_file(file: ServerFileHandle) -> kt.KTModel:
    try:  # read through the core's reader; a model that does not load never quotes the file
        return kt.KTModel.from_json(file.read_text())
    except ServerPathError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"predictor_file is not a model from plugins/verticals-tutor/research/fit_mastery.py "
                         f"({type(error).__name__})") from None


def _sort_key(stamp: Any) -> tuple[int, float, str]:
    if stamp is None:
        return (1, 0.0, "")
    try:
        return (0, float(stamp), "")
    except (TypeError, ValueError):
        return (0, 0.0, str(stamp))


FACTORS: dict[str, tuple[str, ...]] = {  # the next-answer model's features (kt.FEATURE_NAMES), by factor
    "skill difficulty": ("skill_difficulty",),
    "practice": ("log_correct_skill", "log_wrong_skill", "seen_skill", "log_attempts_student"),
    "recent answers": ("last_correct", "last_wrong", "second_last_correct", "second_last_wrong", "recent_accuracy",
                       "log_streak", "previous_correct", "previous_wrong", "same_skill_as_previous"),
    "ability": ("ability", "ability_x_attempts"),
    "BKT mastery": ("bkt_forget_logit",),
}
assert sorted(f for names in FACTORS.values() for f in names) == sorted(kt.FEATURE_NAMES)


def factor_terms(predictor: kt.KTModel, attempts: list[tuple[str, int]], skill: str) -> tuple[np.ndarray, float]:
    """Each feature's term of the logit of P(correct) on a next attempt at ``skill`` after ``attempts``, and the
    intercept: ``terms.sum() + intercept`` is that logit exactly."""
    features = kt.student_features([*attempts, (skill, 0)], predictor.rates)[-1]  # row t reads attempts < t only
    return (features - predictor.mean) / predictor.scale * predictor.weight, predictor.bias


def factor_explanation(predictor: kt.KTModel, attempts: list[tuple[str, int]], skill: str) -> Explanation:
    terms, intercept = factor_terms(predictor, attempts, skill)
    logit = float(terms.sum() + intercept)
    p = 1.0 / (1.0 + np.exp(-logit))
    index = {name: i for i, name in enumerate(kt.FEATURE_NAMES)}
    on_skill = [c for s, c in attempts if s == skill]
    details = {"skill difficulty": f"this skill's correct rate in the training log, as a logit: "
                                   f"{predictor.rates.difficulty(skill):+.2f}",
               "practice": f"{sum(on_skill)} right, {len(on_skill) - sum(on_skill)} wrong on this skill; "
                           f"{len(attempts)} attempts in all",
               "recent answers": "last answers on this skill, oldest first: " + (
                   ", ".join("right" if c else "wrong" for c in on_skill[-2:]) or "none"),
               "ability": f"{sum(c for _, c in attempts)} of {len(attempts)} answers right over all skills",
               "BKT mastery": "the skill's BKT prediction (with forgetting), as a logit"}
    evidence = [Evidence(kind="factor", field="intercept", weight=round(intercept, 4), source="kt-logistic",
                         detail="the model's intercept (the logit before any factor)")]
    for factor, names in FACTORS.items():
        share = float(sum(terms[index[name]] for name in names))
        parts = ", ".join(f"{name} {terms[index[name]]:+.3f}" for name in names)
        evidence.append(Evidence(kind="factor", field=factor, weight=round(share, 4), source="kt-logistic",
                                 text=details[factor], detail=parts[:500]))
    evidence.sort(key=lambda e: -abs(e.weight))
    ranked = [e for e in evidence if e.field != "intercept"][:3]
    named = ", ".join(f"{e.field} {e.weight:+.2f}" for e in ranked)
    return Explanation(summary=f"P(correct) next on skill {skill[:60]}: {p:.2f} (logit {logit:+.2f} = intercept "
                               f"{intercept:+.2f} + factors; largest: {named})",
                       method="additive", target=f"P(correct) next attempt, skill {skill[:60]}", evidence=evidence)

