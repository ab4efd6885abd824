"""``template.topic``: which topic a customer message is about, by how close it is to each topic's description.

One module per task: its input, output and parameter models, the task, its evaluator and golden set. A zero-shot
rule (no training): the message and the topic descriptions are embedded by the plugin's encoder, and the closest
description wins. Replace the descriptions, or the rule, with your own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from verticals import ClassificationEvaluator, Encoder, ItemError, ModelHandle, RunContext, Task

Topic = Literal["billing", "shipping", "account", "product"]
TOPICS: dict[Topic, str] = {
    "billing": "a question about a bill, an invoice, a charge on my card, a payment, a refund or a price",
    "shipping": "a question about a delivery, a parcel, a courier, tracking, or an order that is late or lost",
    "account": "a question about signing in, a password, my email address, my profile or my account settings",
    "product": "a question about how a product works, its features, a fault or defect, or its instructions",
}


class TopicInput(BaseModel):
    text: str = Field(description="The customer's message.")


class TopicOutput(BaseModel):
    label: Topic
    score: float = Field(description="Cosine similarity between the message and the chosen topic's description.")


class TopicParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_score: float = Field(default=0.0, ge=-1.0, le=1.0,
                             description="A message whose best cosine is below this fails: no topic fits it.")


class TopicTask(Task[TopicInput, TopicOutput, TopicParams]):
    name = "template.topic"
    description = "Topic of a customer message (billing, shipping, account, product), zero-shot with MiniLM."
    Input = TopicInput
    Output = TopicOutput
    Params = TopicParams
    models = {"encoder": "template.encoder"}  # role -> a model registered in plugin.py
    device = "cpu"
    batch_size = 64
    text_field = "text"
    preview = ("text", "label", "score")
    # `verticals eval template.topic` scores the golden set (golden/README.md says how it was made)
    evaluator = ClassificationEvaluator(gold_field="label", output_field="label", labels=tuple(TOPICS))
    golden = "golden/topic.jsonl"

    def run(self, batch: list[TopicInput], models: Mapping[str, ModelHandle],
            ctx: RunContext[TopicParams]) -> list[TopicOutput | ItemError]:
        encoder = models["encoder"]
        if not isinstance(encoder, Encoder):  # the contract's typed handle: embed()
            raise RuntimeError(f"model {encoder.spec.name} is a {encoder.kind} model, not an encoder")
        topics = list(TOPICS)
        anchors = encoder.embed([TOPICS[topic] for topic in topics])
        texts = [item.text.strip() for item in batch]
        vectors = encoder.embed([text or "-" for text in texts])
        outputs: list[TopicOutput | ItemError] = []
        for text, similarities in zip(texts, vectors @ anchors.T, strict=True):
            if not text:
                outputs.append(ItemError("the message is empty", code="empty"))
                continue
            best = int(similarities.argmax())
            score = round(float(similarities[best]), 4)
            if score < ctx.params.min_score:
                outputs.append(ItemError(f"no topic fits (best cosine {score} < {ctx.params.min_score})",
                                         code="no_topic"))
                continue
            outputs.append(TopicOutput(label=topics[best], score=score))
        return outputs
