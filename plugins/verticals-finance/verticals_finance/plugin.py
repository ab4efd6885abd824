"""Entry point of the finance plugin (group ``verticals``, name ``finance``)."""

from collections.abc import Callable
from typing import Any

from verticals import ModelSpec, Packaged, Task, hookimpl
from verticals_finance.sentiment import SentimentTask

SENTIMENT_MODEL = ModelSpec(
    name="finance.sentiment",
    kind="sequence-classifier",
    packaged=Packaged("verticals_finance", "heads/sentiment-minilm-lora"),
    max_length=256,
    # no hub_id: a hub model here would answer differently from the packaged one whenever a download succeeds;
    # FinBERT is one override away: VERTICALS_MODELS='finance.sentiment=ProsusAI/finbert'
    description="MiniLM + LoRA adapter and head, in this package (TFNS + written items)",
    # 520 unlabelled texts never trained on (research/train.py calibration): `verticals models warm` judges the
    # ONNX variants on them, so that runtime auto serves the fastest one that agrees with PyTorch on this CPU
    calibration=Packaged("verticals_finance", "calibration/texts.txt"),
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(SENTIMENT_MODEL)


@hookimpl
def register_tasks(register: Callable[[type[Task[Any, Any, Any]]], None]) -> None:
    register(SentimentTask)
