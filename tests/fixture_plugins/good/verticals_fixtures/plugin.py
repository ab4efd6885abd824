"""A model-free plugin for testing the engine (see README.md next to this folder)."""

from __future__ import annotations

import os
import re
import time
from collections import Counter

from pydantic import BaseModel, Field

from verticals import ClassificationEvaluator, Evidence, Explanation, ItemError, Task, hookimpl


class EchoInput(BaseModel):
    text: str = Field(min_length=1)


class EchoOutput(BaseModel):
    upper: str
    length: int


class EchoParams(BaseModel):
    sleep: float = Field(default=0.0, ge=0, description="seconds to sleep per batch")
    reject: str | None = Field(default=None, description="return ItemError for texts equal to this")


class EchoTask(Task):
    name = "fixtures.echo"
    description = "Upper-cases text (tests)."
    Input = EchoInput
    Output = EchoOutput
    Params = EchoParams
    chunk_size = 10
    batch_size = 4
    text_field = "text"

    def run(self, batch, models, ctx):
        if ctx.params.sleep:
            time.sleep(ctx.params.sleep)
        outputs = []
        for item in batch:
            if "CRASH" in item.text and os.environ.get("VERTICALS_FIXTURES_ALLOW_CRASH") == "1":
                os._exit(17)  # simulates a worker process dying mid-chunk
            if "POISON" in item.text:
                raise ValueError("poisoned item")
            if item.text == ctx.params.reject:
                outputs.append(ItemError("rejected by parameter"))
                continue
            outputs.append(EchoOutput(upper=item.text.upper(), length=len(item.text)))
        return outputs

    def summarize(self, outputs, ctx):
        return {"lengths": dict(Counter(o.length for o in outputs))}

    def files(self, item, output):
        return {f"{output.length}/{output.upper[:10].replace(' ', '_') or 'x'}.txt": output.upper}


class KeywordOutput(BaseModel):
    label: str


class KeywordParams(BaseModel):
    sleep: float = Field(default=0.0, ge=0, description="seconds to sleep per batch (tests of interrupts)")


class KeywordTask(Task):
    """A model-free classifier with an evaluator and a golden set (tests of `verticals eval`)."""

    name = "fixtures.keyword"
    description = "positive if the text says up, negative if down, else neutral (tests)."
    Input = EchoInput
    Output = KeywordOutput
    Params = KeywordParams
    text_field = "text"
    evaluator = ClassificationEvaluator(gold_field="label", output_field="label",
                                        labels=("positive", "negative", "neutral"))
    golden = "golden.csv"

    def run(self, batch, models, ctx):
        if ctx.params.sleep:
            time.sleep(ctx.params.sleep)
        outputs = []
        for item in batch:
            words = item.text.lower().split()
            if "POISON" in item.text:
                outputs.append(ItemError("poisoned item"))
            else:
                outputs.append(KeywordOutput(label="positive" if "up" in words else "negative" if "down" in words
                                             else "neutral"))
        return outputs

    def explain(self, batch, outputs, models, ctx):
        """The keyword that decided the label, as a word span (tests of the job option explain). Test hooks:
        a text with EXPLODE makes the explanation raise; one with BADSPAN quotes text that is not the input's."""
        out = []
        for item, output in zip(batch, outputs, strict=True):
            if "EXPLODE" in item.text:
                raise ValueError("explanation exploded")
            keyword = {"positive": "up", "negative": "down"}.get(output.label)
            match = re.search(rf"\b{keyword}\b", item.text, re.IGNORECASE) if keyword else None
            if match is None:
                out.append(Explanation(summary=f"{output.label}: no keyword", method="keyword"))
                continue
            quoted = "not the input" if "BADSPAN" in item.text else match.group(0)
            out.append(Explanation(summary=f'{output.label}: the word "{match.group(0)}"', method="keyword",
                                   target=output.label,
                                   evidence=[Evidence(kind="word", weight=1.0, text=quoted, start=match.start(),
                                                      end=match.end(), source="keyword rule")]))
        return out


@hookimpl
def register_tasks(register):
    register(EchoTask)
    register(KeywordTask)


@hookimpl
def job_finished(job):
    path = os.environ.get("VERTICALS_FIXTURES_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{job['id']} {job['status']}\n")
