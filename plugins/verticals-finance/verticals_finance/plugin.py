"""Entry point of the finance plugin (group ``verticals``, name ``finance``)."""

from verticals import ModelSpec, Packaged, hookimpl
from verticals_finance.sentiment import SentimentTask

SENTIMENT_MODEL = ModelSpec(
    name="finance.sentiment",
    kind="sequence-classifier",
    hub_id="ProsusAI/finbert",
    packaged=Packaged("verticals_finance", "heads/sentiment-minilm-lora"),
    max_length=256,
    description="FinBERT from the hub; offline default: MiniLM + LoRA adapter and head (TFNS + written items)",
)


@hookimpl
def register_models(register):
    register(SENTIMENT_MODEL)


@hookimpl
def register_tasks(register):
    register(SentimentTask)
