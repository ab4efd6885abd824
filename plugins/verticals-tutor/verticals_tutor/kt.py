"""Next-answer prediction for knowledge tracing: a logistic model over a student's own earlier answers.

P(correct) of each attempt is predicted *before* it, from that student's earlier attempts only:

- the skill's difficulty (logit of its correct rate in the training log, shrunk towards the global rate;
  the global rate for skills it never saw);
- practice on this skill: earlier correct and wrong answers (log counts), the last two answers, an
  exponentially weighted recent accuracy and the current streak (learning and forgetting within a skill);
- a per-student ability term estimated online: the student's smoothed accuracy (as a logit) over all
  earlier attempts, weighted by how many there were, and the previous answer on any skill;
- the prediction of per-skill BKT with forgetting (forward filtering with the skill's fitted prior, learn,
  forget, guess, slip), as a logit.

So it is BKT with forgetting plus a per-student ability term, combined by a logistic regression.

It is as cheap as BKT (one pass over the attempts, a dot product per attempt), needs no per-student
fitting, and is fitted in seconds by ``python plugins/verticals-tutor/research/fit_mastery.py``
(scikit-learn at fit time only). Weights ship as ``weights/mastery_kt_assistments2009.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

FEATURE_NAMES = (
    "skill_difficulty", "log_correct_skill", "log_wrong_skill", "seen_skill", "last_correct", "last_wrong",
    "second_last_correct", "second_last_wrong", "recent_accuracy", "log_streak", "log_attempts_student",
    "ability", "previous_correct", "previous_wrong", "same_skill_as_previous", "ability_x_attempts",
    "bkt_forget_logit",
)
SHRINK = 10.0  # pseudo-attempts pulling a skill's rate towards the global rate
ABILITY_PRIOR = 2.0  # pseudo-attempts pulling a student's rate towards the global rate
DECAY = 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


class SkillRates:
    """Per-skill training counts -> difficulty logits; per-skill BKT parameters (prior, learn, forget, guess,
    slip) with a default for skills never seen."""

    def __init__(self, counts: dict[str, tuple[int, int]], global_rate: float,
                 bkt: dict[str, tuple[float, ...]] | None = None, bkt_default: tuple[float, ...] | None = None):
        self.counts = counts
        self.global_rate = global_rate
        self.bkt = bkt or {}
        self.bkt_default = tuple(bkt_default or (0.5, 0.1, 0.0, 0.2, 0.1))
        self._cache: dict[str, float] = {}

    def bkt_params(self, skill: str) -> tuple[float, ...]:
        return self.bkt.get(skill, self.bkt_default)

    def difficulty(self, skill: str) -> float:
        value = self._cache.get(skill)
        if value is None:
            n, c = self.counts.get(skill, (0, 0))
            value = self._cache[skill] = _logit((c + SHRINK * self.global_rate) / (n + SHRINK))
        return value


def student_features(attempts: Iterable[tuple[str, int]], rates: SkillRates) -> np.ndarray:
    """Feature rows of one student's attempts ``(skill, correct)`` in order; row t uses attempts < t only."""
    rows = []
    per_skill: dict[str, list[float]] = {}  # n, correct, recent, last, second_last, streak, P(learned)
    c_u = 0
    previous: int | None = None
    previous_skill: str | None = None
    g = rates.global_rate
    for n_u, (skill, correct) in enumerate(attempts):
        h = per_skill.get(skill)
        prior, learn, forget, guess, slip = rates.bkt_params(skill)
        if h is None:
            h = per_skill[skill] = [0, 0, 0.0, -1, -1, 0, prior]
        n, c, recent, last, second, streak, known = h
        p_bkt = known * (1 - slip) + (1 - known) * guess
        ability = _logit((c_u + ABILITY_PRIOR * g) / (n_u + ABILITY_PRIOR))
        rows.append([
            rates.difficulty(skill), math.log1p(c), math.log1p(n - c), float(n > 0), float(last == 1),
            float(last == 0), float(second == 1), float(second == 0), recent if n > 0 else 0.0,
            math.log1p(streak), math.log1p(n_u), ability, float(previous == 1), float(previous == 0),
            float(previous_skill == skill), ability * math.log1p(n_u), _logit(p_bkt),
        ])
        correct = int(correct)
        post = known * (1 - slip) / p_bkt if correct else known * slip / max(1 - p_bkt, 1e-9)
        h[6] = post * (1 - forget) + (1 - post) * learn
        h[0] += 1
        h[1] += correct
        h[2] = DECAY * recent + (1 - DECAY) * correct if n > 0 else float(correct)
        h[4], h[3] = last, correct
        h[5] = streak + 1 if correct else 0
        c_u += correct
        previous, previous_skill = correct, skill
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))


class KTModel:
    """The fitted logistic model: standardise, dot product, sigmoid."""

    def __init__(self, config: dict[str, Any]):
        if tuple(config["features"]) != FEATURE_NAMES:
            raise ValueError("mastery weights were fitted on other features; refit with "
                             "python plugins/verticals-tutor/research/fit_mastery.py")
        self.config = config
        self.rates = SkillRates({k: (int(v[0]), int(v[1])) for k, v in config["skills"].items()},
                                float(config["global_rate"]),
                                {k: tuple(v) for k, v in config["bkt"]["skills"].items()},
                                tuple(config["bkt"]["default"]))
        self.mean = np.asarray(config["mean"], dtype=np.float64)
        self.scale = np.asarray(config["scale"], dtype=np.float64)
        self.weight = np.asarray(config["weight"], dtype=np.float64)
        self.bias = float(config["bias"])

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        z = (features - self.mean) / self.scale @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, attempts: Sequence[tuple[str, int]]) -> np.ndarray:
        """P(correct) before each attempt of one student."""
        return self.predict_features(student_features(attempts, self.rates))

    @classmethod
    def from_json(cls, raw: str) -> KTModel:
        return cls(json.loads(raw))


@lru_cache(maxsize=1)
def shipped_model() -> KTModel:
    raw = resources.files("verticals_tutor").joinpath("weights/mastery_kt_assistments2009.json").read_text(
        encoding="utf-8")
    return KTModel.from_json(raw)
