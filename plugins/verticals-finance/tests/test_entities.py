"""finance.sentiment entities: cashtags and company names per item, label shares per entity in the summary."""

from __future__ import annotations

import numpy as np
from verticals_finance.sentiment import LABELS, SentimentOutput, SentimentTask, find_entities

from verticals import RunContext


def test_find_entities_cashtags_and_company_names():
    assert find_entities("Rating agency downgrades Castelmor Telecom to junk") == ["Castelmor Telecom"]
    assert find_entities("$CCL $rcl - Nomura points to bookings weakness at Carnival") == ["$CCL", "$RCL"]
    assert find_entities("Shares of Halvorsen Marine ASA and $BRK.B rose; Halvorsen Marine ASA up") == [
        "Halvorsen Marine ASA", "$BRK.B"]
    assert find_entities("Bank of England holds rates; unemployment claims drop to a six-month low") == []
    assert find_entities("Price is $5 and US$ costs rose") == []  # amounts are not cashtags


class FakeClassifier:
    """A verticals.Classifier (the contract's typed handle): spec, kind, provenance, labels, classify."""

    labels = list(LABELS)
    kind = "sequence-classifier"

    class spec:
        name = "fake"

    def provenance(self):
        return {}

    def classify(self, texts):
        return np.array([[0.7, 0.2, 0.1] if "record" in t else [0.1, 0.8, 0.1] for t in texts])


def test_entities_are_optional_and_summarised_per_entity():
    task = SentimentTask()
    texts = ["Castelmor Telecom posts record profit", "Castelmor Telecom cut to junk", "$ABC falls after warning",
             "Castelmor Telecom sets record subscriber numbers"]
    batch = [SentimentTask.Input(text=t) for t in texts]
    plain = task.run(batch, {"classifier": FakeClassifier()}, RunContext("j", SentimentTask.Params()))
    assert all(o.entities is None for o in plain)
    assert "entities" not in task.summarize(plain, RunContext("j", SentimentTask.Params()))
    ctx = RunContext("j", SentimentTask.Params(entities=True))
    outputs = task.run(batch, {"classifier": FakeClassifier()}, ctx)
    assert [o.entities for o in outputs] == [["Castelmor Telecom"], ["Castelmor Telecom"], ["$ABC"],
                                             ["Castelmor Telecom"]]
    summary = task.summarize([SentimentOutput.model_validate(o.model_dump()) for o in outputs], ctx)
    assert summary["entities"]["Castelmor Telecom"] == {"n": 3, "positive": 0.6667, "negative": 0.3333,
                                                         "neutral": 0.0, "majority": "positive"}
    assert summary["entities"]["$ABC"]["majority"] == "negative"


def test_the_export_columns_come_from_the_schema_without_reading_the_rows():
    """probabilities is keyed by the labels (a Literal), so an export knows its columns from the schema: no open
    field, no read of every output before the file is written."""
    from verticals.core.jobs.export import schema_columns

    columns = schema_columns(SentimentOutput)
    assert columns.open == []
    assert columns.outputs == ["label", "score", *(f"probabilities.{label}" for label in LABELS), "entities"]
    assert SentimentOutput(label="neutral", score=0.5, probabilities={"neutral": 0.5}).probabilities == {"neutral": 0.5}
