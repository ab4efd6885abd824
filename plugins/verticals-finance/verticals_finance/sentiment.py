"""``finance.sentiment``: positive / negative / neutral, with probabilities."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

from verticals import ClassificationEvaluator, ItemError, Task

LABELS = ("positive", "negative", "neutral")


class SentimentInput(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="A financial sentence, headline or paragraph.")


class SentimentOutput(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: float = Field(ge=0, le=1, description="Probability of the label.")
    probabilities: dict[str, float]


class SentimentTask(Task):
    name = "finance.sentiment"
    description = "Sentiment of financial text for investors: positive, negative or neutral, with probabilities."
    Input = SentimentInput
    Output = SentimentOutput
    models = {"classifier": "finance.sentiment"}
    device = "gpu"
    chunk_size = 512
    batch_size = 128
    text_field = "text"
    evaluator = ClassificationEvaluator(gold_field="label", output_field="label", labels=LABELS)
    golden = "golden/sentiment.jsonl"  # 90 headlines written for evaluation only (golden/README.md)

    def run(self, batch, models, ctx):
        classifier = models["classifier"]
        labels = classifier.labels
        missing = set(LABELS) - set(labels)
        if missing:
            raise RuntimeError(f"model {classifier.spec.name} has labels {labels}; expected {LABELS}")
        texts = [item.text.strip() for item in batch]
        probabilities = classifier.classify(texts)
        outputs = []
        for text, row in zip(texts, probabilities, strict=True):
            if not text:
                outputs.append(ItemError("text is empty after stripping whitespace"))
                continue
            probs = {label: round(float(row[labels.index(label)]), 6) for label in LABELS}
            best = max(probs, key=probs.get)
            outputs.append(SentimentOutput(label=best, score=probs[best], probabilities=probs))
        return outputs

    def summarize(self, outputs, ctx):
        counts = Counter(output.label for output in outputs)
        total = sum(counts.values())
        return {"labels": {label: counts.get(label, 0) for label in LABELS},
                "share": {label: round(counts.get(label, 0) / total, 4) if total else 0.0 for label in LABELS}}
