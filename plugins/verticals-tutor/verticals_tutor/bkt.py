"""Bayesian Knowledge Tracing in vectorised numpy: EM fit (Baum-Welch) and forward filtering.

Every (student, skill) attempt sequence is one HMM chain with two states
(unlearned, learned) and per-skill parameters ``prior, learn, forget, guess,
slip``. All chains of all skills are processed at once: sequences are sorted
by length and packed time-major (like a PackedSequence), so step ``t`` is one
vector operation over the chains still running at ``t``; the M-step sums per
skill with ``np.bincount``. Several initialisations run side by side and the
best log-likelihood is kept per skill.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np

EPS = 1e-6
PARAM_NAMES = ("prior", "learn", "forget", "guess", "slip")
DEFAULT_INITS = (
    (0.5, 0.1, 0.2, 0.1),
    (0.2, 0.2, 0.3, 0.15),
    (0.7, 0.05, 0.15, 0.05),
)


@dataclass
class SkillParams:
    prior: float
    learn: float
    forget: float
    guess: float
    slip: float
    n: int = 0  # attempts the parameters were fitted on (0: defaults)


@dataclass
class Packed:
    """Chains sorted by length (descending) and packed time-major."""

    obs: np.ndarray  # [total] float64, 0/1
    chain: np.ndarray  # [total] chain index (in sorted order) of each packed position
    skill: np.ndarray  # [total] skill index of each packed position
    offsets: np.ndarray  # [T + 1] start of step t in the packed arrays
    counts: np.ndarray  # [T] chains still running at step t
    chain_skill: np.ndarray  # [N] skill index of each (sorted) chain
    order: np.ndarray  # [N] original chain index of each sorted chain
    lengths: np.ndarray  # [N] sorted lengths


def pack(sequences: Sequence[np.ndarray], chain_skill: Sequence[int]) -> Packed:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("empty attempt sequence")
    order = np.argsort(-lengths, kind="stable")
    lengths_sorted = lengths[order]
    steps = int(lengths_sorted[0]) if len(lengths_sorted) else 0
    # chains still running at step t: those whose length exceeds t (a sorted, descending array)
    counts = np.searchsorted(-lengths_sorted, -np.arange(steps), side="left").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    obs = np.empty(int(offsets[-1]), dtype=np.float64)
    chain = np.empty(int(offsets[-1]), dtype=np.int64)
    for row, idx in enumerate(order):
        pos = offsets[: lengths[idx]] + row  # chain `row` sits at index `row` of every step it is active in
        obs[pos] = sequences[idx]
        chain[pos] = row
    skills_sorted = np.asarray(chain_skill, dtype=np.int64)[order]
    return Packed(obs, chain, skills_sorted[chain], offsets, counts, skills_sorted, order, lengths_sorted)


def chain_positions(p: Packed, row: int) -> np.ndarray:
    """Packed positions of sorted chain ``row``, in time order."""
    return p.offsets[: p.lengths[row]] + row


def _forward(p: Packed, prior, learn, forget, guess, slip):
    """Per packed position: predicted P(learned) before the answer, the answer's likelihood and P(learned) after."""
    pred = np.empty_like(p.obs)
    like = np.empty_like(p.obs)
    post = np.empty_like(p.obs)
    ck = p.chain_skill
    state = prior[ck].copy()
    for t in range(len(p.counts)):
        a, b, k = p.offsets[t], p.offsets[t + 1], p.counts[t]
        sk = ck[:k]
        o = p.obs[a:b]
        s = state[:k]
        e1 = np.where(o > 0, 1 - slip[sk], slip[sk])
        e0 = np.where(o > 0, guess[sk], 1 - guess[sk])
        c = s * e1 + (1 - s) * e0
        q = s * e1 / c
        pred[a:b], like[a:b], post[a:b] = s, c, q
        state[:k] = q * (1 - forget[sk]) + (1 - q) * learn[sk]
    return pred, like, post


def _e_step(p: Packed, prior, learn, forget, guess, slip, n_skills: int):
    _, like, post = _forward(p, prior, learn, forget, guess, slip)
    ck = p.chain_skill
    total = len(p.obs)
    gamma1 = np.empty(total)
    xi01 = np.zeros(total)  # at position of step t: expected 0->1 transition between t and t+1
    xi10 = np.zeros(total)
    has_next = np.zeros(total, dtype=bool)
    beta0 = np.ones(len(ck))
    beta1 = np.ones(len(ck))
    steps = len(p.counts)
    for t in range(steps - 1, -1, -1):
        a, b, k = p.offsets[t], p.offsets[t + 1], p.counts[t]
        alpha1 = post[a:b]
        alpha0 = 1 - alpha1
        if t + 1 < steps:
            an, bn, kn = p.offsets[t + 1], p.offsets[t + 2], p.counts[t + 1]
            sk = ck[:kn]
            o = p.obs[an:bn]
            e1 = np.where(o > 0, 1 - slip[sk], slip[sk])
            e0 = np.where(o > 0, guess[sk], 1 - guess[sk])
            lr, fg = learn[sk], forget[sk]
            # betas carry an arbitrary per-step scale (renormalised below); xi is normalised per transition
            m0 = e0 * beta0[:kn]
            m1 = e1 * beta1[:kn]
            a0, a1 = alpha0[:kn], alpha1[:kn]
            x00, x01 = a0 * (1 - lr) * m0, a0 * lr * m1
            x10, x11 = a1 * fg * m0, a1 * (1 - fg) * m1
            z = np.maximum(x00 + x01 + x10 + x11, 1e-300)
            xi01[a: a + kn] = x01 / z
            xi10[a: a + kn] = x10 / z
            has_next[a: a + kn] = True
            new0 = (1 - lr) * m0 + lr * m1
            new1 = fg * m0 + (1 - fg) * m1
            top = np.maximum(np.maximum(new0, new1), 1e-300)
            beta0[:kn], beta1[:kn] = new0 / top, new1 / top
        beta0[kn if t + 1 < steps else 0: k] = 1.0
        beta1[kn if t + 1 < steps else 0: k] = 1.0
        g1 = alpha1 * beta1[:k]
        g0 = alpha0 * beta0[:k]
        gamma1[a:b] = g1 / np.maximum(g0 + g1, 1e-300)
    loglik = np.bincount(p.skill, weights=np.log(like), minlength=n_skills)
    return gamma1, xi01, xi10, has_next, loglik


def _m_step(p: Packed, gamma1, xi01, xi10, has_next, n_skills: int):
    sk, o = p.skill, p.obs
    gamma0 = 1 - gamma1
    first = np.zeros(len(o), dtype=bool)
    first[p.offsets[0]: p.offsets[1]] = True

    def ratio(num_w, den_w, mask=None):
        if mask is not None:
            num_w, den_w, s = num_w[mask], den_w[mask], sk[mask]
        else:
            s = sk
        num = np.bincount(s, weights=num_w, minlength=n_skills)
        den = np.bincount(s, weights=den_w, minlength=n_skills)
        return num, den

    pn, pd = ratio(gamma1, np.ones_like(gamma1), first)
    ln, ld = ratio(xi01, gamma0, has_next)
    fn, fd = ratio(xi10, gamma1, has_next)
    gn, gd = ratio(gamma0 * o, gamma0)
    sn, sd = ratio(gamma1 * (1 - o), gamma1)

    def safe(num, den, fallback):
        out = np.where(den > 0, num / np.maximum(den, 1e-12), fallback)
        return np.clip(out, EPS, 1 - EPS)

    return pn, pd, ln, ld, fn, fd, gn, gd, sn, sd, safe


def fit(sequences: Sequence[np.ndarray], chain_skill: Sequence[int], n_skills: int, *, fit_forget: bool = False,
        max_iter: int = 100, tol: float = 1e-5, inits: Iterable[tuple[float, float, float, float]] = DEFAULT_INITS,
        max_guess: float = 0.5, max_slip: float = 0.5):
    """EM over all chains. Returns (params [5, n_skills] rows in PARAM_NAMES order, loglik per skill, iterations)."""
    p = pack(sequences, chain_skill)
    best = None
    best_ll = np.full(n_skills, -np.inf)
    iterations = 0
    for init in inits:
        prior = np.full(n_skills, init[0])
        learn = np.full(n_skills, init[1])
        guess = np.full(n_skills, init[2])
        slip = np.full(n_skills, init[3])
        forget = np.full(n_skills, 0.05 if fit_forget else 0.0)
        previous = None
        for it in range(max_iter):
            gamma1, xi01, xi10, has_next, loglik = _e_step(p, prior, learn, forget, guess, slip, n_skills)
            total = float(loglik.sum())
            iterations = max(iterations, it + 1)
            if previous is not None and abs(total - previous) <= tol * abs(previous):
                break
            previous = total
            pn, pd, ln, ld, fn, fd, gn, gd, sn, sd, safe = _m_step(p, gamma1, xi01, xi10, has_next, n_skills)
            prior = safe(pn, pd, prior)
            learn = safe(ln, ld, learn)
            forget = safe(fn, fd, forget) if fit_forget else forget
            guess = np.minimum(safe(gn, gd, guess), max_guess)
            slip = np.minimum(safe(sn, sd, slip), max_slip)
        *_, loglik = _e_step(p, prior, learn, forget, guess, slip, n_skills)
        current = np.stack([prior, learn, forget, guess, slip])
        if best is None:
            best = current.copy()
            best_ll = loglik
        else:
            better = loglik > best_ll
            best[:, better] = current[:, better]
            best_ll = np.where(better, loglik, best_ll)
    return best, best_ll, iterations


def predict(sequences: Sequence[np.ndarray], chain_skill: Sequence[int], params: np.ndarray):
    """Forward filtering. Returns per chain (in input order): P(correct) before each answer, and the final
    (mastery after the last answer and its learning transition, P(next answer correct))."""
    p = pack(sequences, chain_skill)
    prior, learn, forget, guess, slip = params
    pred, _, post = _forward(p, prior, learn, forget, guess, slip)
    sk = p.skill
    p_correct = pred * (1 - slip[sk]) + (1 - pred) * guess[sk]
    n = len(p.order)
    per_chain: list[np.ndarray] = [np.empty(0)] * n
    final_post = np.empty(n)
    for row in range(n):
        pos = chain_positions(p, row)
        per_chain[p.order[row]] = p_correct[pos]
        final_post[p.order[row]] = post[pos[-1]]
    cs = np.asarray(chain_skill, dtype=np.int64)
    mastery = final_post * (1 - forget[cs]) + (1 - final_post) * learn[cs]
    next_correct = mastery * (1 - slip[cs]) + (1 - mastery) * guess[cs]
    return per_chain, mastery, next_correct


class ParamTable:
    """Fitted parameters by skill id (strings), with a fallback for skills never seen."""

    def __init__(self, skills: dict[str, SkillParams], default: SkillParams, meta: dict | None = None):
        self.skills = skills
        self.default = default
        self.meta = meta or {}

    def get(self, skill: str) -> tuple[SkillParams, Literal["fitted", "default"]]:
        found = self.skills.get(skill)
        return (found, "fitted") if found is not None else (self.default, "default")

    def to_json(self) -> str:
        return json.dumps({"meta": self.meta, "default": asdict(self.default),
                           "skills": {k: asdict(v) for k, v in sorted(self.skills.items())}}, indent=0) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> ParamTable:
        data = json.loads(raw)
        return cls({k: SkillParams(**v) for k, v in data["skills"].items()}, SkillParams(**data["default"]),
                   data.get("meta"))

    @classmethod
    def from_fit(cls, skill_names: Sequence[str], params: np.ndarray, counts: np.ndarray, meta: dict | None = None):
        skills = {name: _rounded([float(v) for v in params[:, i]], int(counts[i]))
                  for i, name in enumerate(skill_names)}
        weights = np.asarray(counts, dtype=float)
        default = _rounded([float(np.average(params[j], weights=weights)) for j in range(5)], 0)
        return cls(skills, default, meta)


def _rounded(values: Sequence[float], n: int) -> SkillParams:
    """Fitted (prior, learn, forget, guess, slip), rounded to 6 places, fitted on ``n`` attempts."""
    prior, learn, forget, guess, slip = (round(v, 6) for v in values)
    return SkillParams(prior, learn, forget, guess, slip, n=n)


@lru_cache(maxsize=1)
def shipped_params() -> ParamTable:
    raw = resources.files("verticals_tutor").joinpath("weights/bkt_assistments2009.json").read_text(encoding="utf-8")
    return ParamTable.from_json(raw)


def sequences_from_rows(rows: Iterable[tuple[str, str, int]]):
    """Group (student, skill, correct) rows, in order, into chains. Returns (students, skills, chains)."""
    chains: dict[tuple[str, str], list[int]] = {}
    for student, skill, correct in rows:
        chains.setdefault((student, skill), []).append(int(correct))
    keys = list(chains)
    return keys, [np.asarray(chains[k], dtype=np.float64) for k in keys]
