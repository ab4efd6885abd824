"""``finance.sentiment``: positive / negative / neutral, with probabilities.

The typed example of the plugin contract: ``SentimentTask(Task[SentimentInput, SentimentOutput,
SentimentParams])``, so ``batch``, the outputs and ``ctx.params`` are typed in ``run`` and ``summarize``
(``mypy`` checks this module without a cast).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from verticals import ClassificationEvaluator, ItemError, RunContext, Task

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


class SentimentParams(BaseModel):
    entities: bool = Field(default=False, description="Also list the cashtags and company names each item "
                           "mentions; the job summary then gives the label shares per entity.")


class SentimentInput(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="A financial sentence, headline or paragraph.")


class SentimentOutput(BaseModel):
    label: Label
    score: float = Field(ge=0, le=1, description="Probability of the label.")
    probabilities: dict[str, float]
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

    def run(self, batch: list[SentimentInput], models: Mapping[str, Any],
            ctx: RunContext[SentimentParams]) -> list[SentimentOutput | ItemError]:
        classifier = models["classifier"]  # a SequenceClassifierModel (verticals.core.models.inference)
        labels = classifier.labels
        missing = set(LABELS) - set(labels)
        if missing:
            raise RuntimeError(f"model {classifier.spec.name} has labels {labels}; expected {LABELS}")
        texts = [item.text.strip() for item in batch]
        probabilities = classifier.classify(texts)
        outputs: list[SentimentOutput | ItemError] = []
        for text, row in zip(texts, probabilities, strict=True):
            if not text:
                outputs.append(ItemError("text is empty after stripping whitespace"))
                continue
            probs: dict[str, float] = {label: round(float(row[labels.index(label)]), 6) for label in LABELS}
            best = max(LABELS, key=lambda label: probs[label])
            entities = find_entities(text) if ctx.params.entities else None
            outputs.append(SentimentOutput(label=best, score=probs[best], probabilities=probs, entities=entities))
        return outputs

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
