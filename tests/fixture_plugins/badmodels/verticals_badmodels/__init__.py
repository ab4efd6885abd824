"""A plugin whose register_models raises after registering one model: it must be quarantined whole."""

from __future__ import annotations

from pydantic import BaseModel

from verticals import ModelSpec, Task, hookimpl


class Item(BaseModel):
    text: str


class NeverTask(Task):
    name = "badmodels.never"
    Input = Output = Item

    def run(self, batch, models, ctx):
        return list(batch)


@hookimpl
def register_models(register):
    register(ModelSpec(name="badmodels.half", kind="encoder", hub_id="nobody/nothing"))
    raise RuntimeError("model catalogue unreadable")


@hookimpl
def register_tasks(register):
    register(NeverTask)
