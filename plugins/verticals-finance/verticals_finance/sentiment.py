"""``finance.sentiment``: positive / negative / neutral, with probabilities.

The typed example of the plugin contract: ``SentimentTask(Task[SentimentInput, SentimentOutput,
SentimentParams])``, so ``batch``, the outputs and ``ctx.params`` are typed in ``run`` and ``summarize``
(``mypy`` checks this module without a cast).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from verticals import (
    AttributingClassifier,
    ClassificationEvaluator,
    Classifier,
    Evidence,
    Explanation,
    ItemError,
    ModelHandle,
    RunContext,
    Task,
)

Label = Literal["positive", "negative", "neutral"]
LABELS: tuple[Label, ...] = ("positive", "negative", "neutral")

# Entities: cashtags ($AAPL, $BRK.B), and runs of capitalised words that contain a company word
# ("Castelmor Telecom", "Grayling Semiconductors plc"). A heuristic with high precision and limited recall:
# a name with no company word ("JPMorgan", "Beyond Meat") is found only through its cashtag.
CASHTAG = re.compile(r"(?<![\w$])\$[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?\b")
COMPANY_WORDS = frozenset((
    "inc", "corp", "corporation", "co", "company", "ltd", "plc", "llc", "ag", "sa", "nv", "se", "asa", "ab", "oyj",
    "group", "holdings", "holding", "bank", "bancorp", "motors", "pharma", "pharmaceuticals", "airlines", "airways",
    "energy", "foods", "telecom", "semiconductor", "semiconductors", "media", "capital", "partners", "financial",
    "insurance", "retail", "marine", "securities", "technologies", "technology", "systems", "industries",
    "logistics", "mining", "resources", "brands", "labs", "therapeutics", "biotech", "networks", "software",
    "electric", "steel", "chemicals", "petroleum", "oil", "airline", "shipping", "entertainment", "communications",
    "properties", "realty",
))
_WORD = re.compile(r"[A-Z][A-Za-z&'.-]*[A-Za-z]|[A-Z]")


def find_entities(text: str) -> list[str]:
    """Cashtags (upper-cased) and company names, in order of appearance, without duplicates."""
    found: list[tuple[int, str]] = [(m.start(), m.group(0).upper()) for m in CASHTAG.finditer(text)]
    run: list[re.Match[str]] = []

    def close() -> None:
        words = [m.group(0) for m in run]
        marks = [i for i, w in enumerate(words) if w.lower().rstrip(".") in COMPANY_WORDS]
        if marks and marks[0] > 0:  # a name before the company word ("Castelmor Telecom", not "Bank")
            found.append((run[0].start(), " ".join(words[: marks[-1] + 1])))
        run.clear()

    for match in _WORD.finditer(text):
        if run and text[run[-1].end():match.start()] not in (" ",):
            close()
        run.append(match)
    if run:
        close()
    out: list[str] = []
    for _, name in sorted(found):
        if name not in out:
            out.append(name)
    return out


ExplainMethod = Literal["auto", "token-contributions", "occlusion", "integrated-gradients"]
TOKENS = "finance.sentiment/tokens"  # ctx.extra: per item, the token weights run() read for explain()
AUTO: tuple[str, ...] = ("integrated-gradients", "occlusion")  # what auto means, first the model can do


class SentimentParams(BaseModel):
    entities: bool = Field(default=False, description="Also list the cashtags and company names each item "
                           "mentions; the job summary then gives the label shares per entity.")
    explain_method: ExplainMethod = Field(
        default="auto", description="With --explain: token-contributions (each token's share of the label's logit, "
        "read from the prediction's own forward pass; the packaged head on PyTorch), integrated-gradients (at the "
        "last encoder layer, riding on the prediction's pass, on the packaged head; at the input embeddings on "
        "another PyTorch classifier), occlusion (each word deleted in turn; every runtime, ONNX included), or auto "
        "(integrated-gradients where they ride on the prediction, else occlusion: docs/explanations.md has the "
        "figures behind the choice).")
    explain_steps: int = Field(default=8, ge=1, le=64, description="integrated-gradients: Riemann steps from the "
                               "baseline (fewer: cheaper, the attributions add up less exactly)")


class SentimentInput(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="A financial sentence, headline or paragraph.")


class SentimentOutput(BaseModel):
    label: Label
    score: float = Field(ge=0, le=1, description="Probability of the label.")
    probabilities: dict[Label, float] = Field(description="Probability of each label (one export column each).")
    entities: list[str] | None = Field(default=None, description="Cashtags and company names (with entities=true).")


class SentimentTask(Task[SentimentInput, SentimentOutput, SentimentParams]):
    name = "finance.sentiment"
    description = "Sentiment of financial text for investors: positive, negative or neutral, with probabilities."
    Input = SentimentInput
    Output = SentimentOutput
    Params = SentimentParams
    models = {"classifier": "finance.sentiment"}
    device = "gpu"
    chunk_size = 512
    batch_size = 128
    preview = ("text", "label", "score", "entities")  # the CLI preview's columns
    text_field = "text"
    evaluator = ClassificationEvaluator(gold_field="label", output_field="label", labels=LABELS)
    golden = "golden/sentiment.jsonl"  # 90 headlines written for evaluation only (golden/README.md)

    def run(self, batch: list[SentimentInput], models: Mapping[str, ModelHandle],
            ctx: RunContext[SentimentParams]) -> list[SentimentOutput | ItemError]:
        classifier = models["classifier"]
        if not isinstance(classifier, Classifier):  # the contract's typed handle: classify() and labels
            raise RuntimeError(f"model {classifier.spec.name} is a {classifier.kind} model, not a classifier")
        labels = classifier.labels
        missing = set(LABELS) - set(labels)
        if missing:
            raise RuntimeError(f"model {classifier.spec.name} has labels {labels}; expected {LABELS}")
        texts = [item.text.strip() for item in batch]
        one_pass = one_pass_method(classifier, ctx.params.explain_method) if ctx.explain else None
        if one_pass is not None and isinstance(classifier, AttributingClassifier):  # prediction + explanation: one call
            if one_pass == "token-contributions":
                probabilities, tokens = classifier.classify_with_contributions(texts)
            else:
                probabilities, tokens = classifier.classify_with_gradients(texts, steps=ctx.params.explain_steps)
            stash = ctx.extra.setdefault(TOKENS, {})
            for item, own in zip(batch, tokens, strict=True):
                stash[id(item)] = (one_pass, own)
        else:
            probabilities = classifier.classify(texts)
        outputs: list[SentimentOutput | ItemError] = []
        for text, row in zip(texts, probabilities, strict=True):
            if not text:
                outputs.append(ItemError("text is empty after stripping whitespace"))
                continue
            probs: dict[Label, float] = {label: round(float(row[labels.index(label)]), 6) for label in LABELS}
            best = max(LABELS, key=lambda label: probs[label])
            entities = find_entities(text) if ctx.params.entities else None
            outputs.append(SentimentOutput(label=best, score=probs[best], probabilities=probs, entities=entities))
        return outputs

    def explain(self, batch: list[SentimentInput], outputs: list[SentimentOutput], models: Mapping[str, Any],
                ctx: RunContext[SentimentParams]) -> list[Explanation | None]:
        """Word attributions for the predicted label, by ``explain_method`` (``auto``: :func:`resolve_method`).
        Token contributions and (on a model that serves them) last-layer integrated gradients were read by ``run``
        with the prediction (``ctx.extra``): here their tokens become words. Occlusion (each word's weight: how
        much the label's probability drops when the word is deleted) is one batched classifier call for the
        whole batch, so it works on every runtime, ONNX variants included. The summary names the top words."""
        classifier = models["classifier"]
        texts = [item.text for item in batch]
        labels: list[str] = [output.label for output in outputs]
        method = resolve_method(classifier, ctx.params.explain_method)
        one_pass = one_pass_method(classifier, method)
        if one_pass is not None:
            stash = ctx.extra.get(TOKENS, {})
            kept = [stash.pop(id(item), (None, None)) for item in batch]
            tokens = [own if kind == one_pass else None for kind, own in kept]
            scores = [output.score for output in outputs]
            if one_pass == "token-contributions":
                return contribution_explanations(classifier, texts, labels, scores, tokens)
            return layer_gradient_explanations(classifier, texts, labels, scores, tokens, ctx.params.explain_steps)
        if method == "token-contributions":
            raise ItemError(f"explain_method token-contributions needs a linear head over pooled token states on "
                            f"the PyTorch path; model {classifier.spec.name} runs on {classifier.runtime_label} "
                            "here: use occlusion (or auto)")
        if method == "integrated-gradients":
            if not getattr(classifier, "can_integrate_gradients", False):
                raise ItemError(f"explain_method integrated-gradients needs the PyTorch path; model "
                                f"{classifier.spec.name} runs on {classifier.runtime_label} here: use occlusion "
                                "(or auto)")
            return gradient_explanations(classifier, texts, labels, steps=ctx.params.explain_steps)
        return occlusion_explanations(classifier, texts, labels)

    def summarize(self, outputs: Iterable[SentimentOutput], ctx: RunContext[SentimentParams]) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        by_entity: dict[str, Counter[str]] = defaultdict(Counter)
        for output in outputs:
            counts[output.label] += 1
            for entity in output.entities or ():
                by_entity[entity][output.label] += 1
        total = sum(counts.values())
        summary: dict[str, Any] = {"labels": {label: counts.get(label, 0) for label in LABELS},
                   "share": {label: round(counts.get(label, 0) / total, 4) if total else 0.0 for label in LABELS}}
        if ctx.params.entities:
            ranked = sorted(by_entity.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:50]
            summary["entities"] = {
                entity: {"n": sum(c.values()),
                         **{label: round(c.get(label, 0) / sum(c.values()), 4) for label in LABELS},
                         "majority": c.most_common(1)[0][0]}
                for entity, c in ranked}
        return summary


# -- explanations ---------------------------------------------------------------------------------------------

# what auto asks of the model for each method: integrated gradients only where they ride on the prediction's pass
CAPABILITY = {"token-contributions": "can_decompose", "integrated-gradients": "can_layer_gradients",
              "occlusion": None}


def resolve_method(classifier: Any, method: str) -> str:
    """The method an ``explain_method`` means on ``classifier``: ``auto`` is the first of :data:`AUTO` the model
    serves (occlusion serves every runtime); any other value is itself."""
    if method != "auto":
        return method
    for candidate in AUTO:
        capability = CAPABILITY[candidate]
        if capability is None or getattr(classifier, capability, False):
            return candidate
    return "occlusion"


def one_pass_method(classifier: Any, method: str) -> str | None:
    """The method (resolved) when the model reads it from the prediction's own forward pass, which ``run`` then
    makes: token contributions (a linear head over pooled states), or integrated gradients at the last encoder
    layer (:meth:`classify_with_gradients`); None when the explanation is a model call of its own."""
    method = resolve_method(classifier, method)
    if method == "token-contributions" and getattr(classifier, "can_decompose", False):
        return method
    if method == "integrated-gradients" and getattr(classifier, "can_layer_gradients", False):
        return method
    return None

WORD = re.compile(r"\$?\w+(?:[.,'\u2019%-]\w+)*%?")
MAX_UNITS = 48  # occluded units per text: a longer text is occluded in runs of consecutive words
TOP_WORDS = 3  # evidence words named in the summary


def word_units(text: str, max_units: int = MAX_UNITS) -> list[tuple[int, int]]:
    """The character spans occlusion deletes one at a time: the words of ``text``, or for a text of more than
    ``max_units`` words, runs of consecutive words (at most ``max_units`` runs)."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if len(words) <= max_units:
        return words
    size = -(-len(words) // max_units)
    return [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in range(0, len(words), size)]


def delete_span(text: str, start: int, end: int) -> str:
    """``text`` without ``text[start:end]``, the spaces around it made one."""
    left, right = text[:start].rstrip(" "), text[end:].lstrip(" ")
    return f"{left} {right}".strip() if left and right else (left + right).strip()


def occlusion_weights(classifier: Any, texts: list[str], labels: list[str],
                      units: list[list[tuple[int, int]]] | None = None) -> tuple[list[float], list[list[float]]]:
    """P(label) of each text and, per unit (word spans: :func:`word_units`), P(label) of the text minus P(label)
    without that unit. One classifier call for every text and variant of the batch."""
    spans = units if units is not None else [word_units(text) for text in texts]
    variants: list[str] = []
    for text, own in zip(texts, spans, strict=True):
        variants.append(text)
        variants += [delete_span(text, a, b) or "." for a, b in own]  # an empty text is not classified: "."
    probabilities = classifier.classify(variants)
    order = classifier.labels
    full: list[float] = []
    weights: list[list[float]] = []
    row = 0
    for own, label in zip(spans, labels, strict=True):
        column = order.index(label)
        base = float(probabilities[row][column])
        full.append(base)
        weights.append([base - float(probabilities[row + 1 + k][column]) for k in range(len(own))])
        row += 1 + len(own)
    return full, weights


def occlusion_explanations(classifier: Any, texts: list[str], labels: list[str]) -> list[Explanation | None]:
    """The ``finance.sentiment`` explanation of each text by occlusion (see :meth:`SentimentTask.explain`)."""
    stripped = [text.strip() for text in texts]
    units = [word_units(text) for text in stripped]
    full, weights = occlusion_weights(classifier, stripped, labels, units)
    return [_explanation(text, original, own, label, base, drops, "occlusion",
                         "no single word's deletion lowers it by 0.005 or more")
            for text, original, own, label, base, drops in zip(stripped, texts, units, labels, full, weights,
                                                                strict=True)]


def token_weights(scores: Sequence[float], offsets: Sequence[tuple[int, int]], units: list[tuple[int, int]],
                  average: bool = False) -> list[float]:
    """Per unit (a word's character span), the scores of the tokens it overlaps (special tokens, offsets (0, 0),
    never), summed or (``average``) averaged."""
    out = []
    for a, b in units:
        inside = [float(score) for score, (s, e) in zip(scores, offsets, strict=True) if e > s and s < b and a < e]
        out.append((sum(inside) / len(inside) if average else sum(inside)) if inside else 0.0)
    return out


def gradient_weights(classifier: Any, texts: list[str], labels: list[str], units: list[list[tuple[int, int]]],
                     steps: int = 16) -> list[list[float]]:
    """Integrated gradients of P(label) per unit (word spans): the attributions of the tokens each unit overlaps,
    summed (:meth:`SequenceClassifierModel.integrated_gradients` of the model host)."""
    order = classifier.labels
    attributions = classifier.integrated_gradients(texts, [order.index(label) for label in labels], steps=steps)
    return [token_weights(scores, offsets, own) for own, (scores, offsets) in zip(units, attributions, strict=True)]


def gradient_explanations(classifier: Any, texts: list[str], labels: list[str], steps: int = 16
                          ) -> list[Explanation | None]:
    """The ``finance.sentiment`` explanation of each text by integrated gradients (the PyTorch path)."""
    stripped = [text.strip() for text in texts]
    units = [word_units(text) for text in stripped]
    base = classifier.classify(stripped)
    column = [classifier.labels.index(label) for label in labels]
    weights = gradient_weights(classifier, stripped, labels, units, steps)
    return [_explanation(text, original, own, label, float(row[c]), drops, "integrated-gradients",
                         "no word's attribution reaches 0.005")
            for text, original, own, label, row, c, drops in zip(stripped, texts, units, labels, base, column,
                                                                  weights, strict=True)]


def contribution_weights(shares: list[tuple[np.ndarray, list[tuple[int, int]]]], columns: list[int],
                         units: list[list[tuple[int, int]]]) -> list[list[float]]:
    """Per unit (word spans), the predicted label's logit share contrasted with the other labels' (column ``c``
    minus the mean of the others: a softmax moves with logit differences only), averaged over the tokens the unit
    overlaps. (The mean, not the sum: every token's final state carries a share of the text's overall direction,
    so a sum favours words of many sub-word tokens; on the benchmark the mean ranked words better.) ``shares``:
    per text, [tokens, labels] and the tokens' offsets (:meth:`classify_with_contributions`)."""
    out = []
    for (rows, offsets), column, own in zip(shares, columns, units, strict=True):
        others = [k for k in range(rows.shape[1]) if k != column]
        contrast = rows[:, column] - (rows[:, others].mean(1) if others else 0.0)
        out.append(token_weights(contrast.tolist(), offsets, own, average=True))
    return out


def _read_again(tokens: list[Any], read: Any, texts: list[str]) -> list[Any]:
    """``tokens`` with the texts ``run`` kept nothing for (None: explain called without ``ctx.explain``) read
    again by ``read(texts) -> (probabilities, per text tokens)``: one more forward pass for those only."""
    missing = [i for i, own in enumerate(tokens) if own is None]
    if missing:
        _, again = read([texts[i] for i in missing])
        tokens = list(tokens)
        for i, own in zip(missing, again, strict=True):
            tokens[i] = own
    return tokens


def contribution_explanations(classifier: Any, texts: list[str], labels: list[str], scores: list[float],
                              shares: list[Any]) -> list[Explanation | None]:
    """The ``finance.sentiment`` explanation of each text by its tokens' logit shares, read by ``run`` from the
    prediction's own forward pass (``shares``; a text whose shares were not kept is read again here)."""
    stripped = [text.strip() for text in texts]
    shares = _read_again(shares, classifier.classify_with_contributions, stripped)
    units = [word_units(text) for text in stripped]
    weights = contribution_weights(shares, [classifier.labels.index(label) for label in labels], units)
    return [_explanation(text, original, own, label, score, drops, "token-contributions",
                         "no word's logit share reaches 0.005")
            for text, original, own, label, score, drops in zip(stripped, texts, units, labels, scores, weights,
                                                                strict=True)]


def layer_gradient_explanations(classifier: Any, texts: list[str], labels: list[str], scores: list[float],
                                attributions: list[Any], steps: int) -> list[Explanation | None]:
    """The ``finance.sentiment`` explanation of each text by integrated gradients at the last encoder layer, read
    by ``run`` with the prediction (``attributions``; a text whose were not kept is read again here). A word's
    weight is the mean of its tokens' attributions (ranked better than their sum on the benchmark)."""
    stripped = [text.strip() for text in texts]
    attributions = _read_again(attributions, lambda t: classifier.classify_with_gradients(t, steps=steps), stripped)
    units = [word_units(text) for text in stripped]
    weights = [token_weights(scores_, offsets, own, average=True)
               for (scores_, offsets), own in zip(attributions, units, strict=True)]
    return [_explanation(text, original, own, label, score, drops, "integrated-gradients",
                         "no word's attribution reaches 0.005")
            for text, original, own, label, score, drops in zip(stripped, texts, units, labels, scores, weights,
                                                                strict=True)]


def _explanation(text: str, original: str, units: list[tuple[int, int]], label: str, base: float,
                 weights: list[float], method: str, nothing: str) -> Explanation:
    offset = len(original) - len(original.lstrip())  # spans index the text as given
    evidence = [Evidence(kind="word" if " " not in text[a:b] else "span", weight=round(weight, 4), text=text[a:b],
                         start=offset + a, end=offset + b, field="text", source=method)
                for (a, b), weight in zip(units, weights, strict=True)]
    evidence.sort(key=lambda e: -abs(e.weight))
    top = sorted((e for e in evidence if e.weight >= 0.005), key=lambda e: -e.weight)[:TOP_WORDS]
    named = ", ".join(f'"{_short(e.text or "")}" ({e.weight:+.2f})' for e in top)
    summary = f"{label} {base:.2f}: " + (f"most evidence from {named}" if top else nothing)
    return Explanation(summary=summary, method=method, target=f"P({label})", evidence=evidence)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"
