"""A task with a tiny random encoder (tests of model preloading): ``tiny.embed`` needs the model ``tiny-encoder``,
whose weights are the folder ``$VERTICALS_TINY_MODEL`` (tests write it with :func:`write_tiny_encoder`)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from verticals import ModelSpec, Task, hookimpl


class Item(BaseModel):
    text: str


class Size(BaseModel):
    dims: int


class TinyEmbed(Task):
    name = "tiny.embed"
    description = "The width of a tiny random encoder's output (tests)."
    Input = Item
    Output = Size
    text_field = "text"
    models = {"encoder": "tiny-encoder"}
    device = "cpu"

    def run(self, batch, models, ctx):
        vectors = models["encoder"].embed([item.text for item in batch])  # a real forward pass (metered)
        return [Size(dims=int(vector.shape[0])) for vector in vectors]


def write_tiny_encoder(folder: str | Path) -> Path:
    """A BERT of one layer, 16 wide, over a 9-word vocabulary, with random weights (about 10 KB)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "a"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


@hookimpl
def register_models(register):
    register(ModelSpec(name="tiny-encoder", kind="encoder", local_path=os.environ.get("VERTICALS_TINY_MODEL", ""),
                       hub_id="verticals-tests/tiny-encoder-not-on-any-hub", max_length=32,
                       description="tiny random encoder (tests)"))


@hookimpl
def register_tasks(register):
    register(TinyEmbed)
