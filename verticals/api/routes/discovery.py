"""Who am I, which plugins and tasks are there: ``/v1/me``, ``/v1/plugins``, ``/v1/tasks``."""

from fastapi import APIRouter, HTTPException

from verticals.api.deps import ERRORS, ApiState, State, Who
from verticals.api.schemas import MeOut, PluginOut, TaskOut
from verticals.registry import UnknownTask

router = APIRouter()


@router.get("/v1/me", response_model=MeOut, tags=["auth"], responses=ERRORS)
def me(who: Who, state: State) -> MeOut:
    """The tenant and key this request authenticates as."""
    return MeOut(tenant=who.tenant, key_id=who.key_id, key_name=who.key_name, auth=state.auth,
                 executor=state.runner.kind, allow_code_execution=who.allow_code_execution)


@router.get("/v1/plugins", response_model=list[PluginOut], tags=["tasks"], responses=ERRORS)
def plugins(who: Who, state: State) -> list[PluginOut]:
    """Installed plugins and their status."""
    return [PluginOut(**p.as_dict()) for p in state.registry.plugins.values() if p.name]


def task_out(state: ApiState, name: str) -> TaskOut:
    task = state.registry.tasks[name]
    plugin = state.registry.task_plugin.get(name)
    return TaskOut(**task.info(), plugin=plugin.name if plugin else None, sensitive=task.sensitive,
                   text_field=task.text_field)


@router.get("/v1/tasks", response_model=list[TaskOut], tags=["tasks"], responses=ERRORS)
def tasks(who: Who, state: State) -> list[TaskOut]:
    """Every task with its input, output and params JSON schemas."""
    return [task_out(state, name) for name in sorted(state.registry.tasks)]


@router.get("/v1/tasks/{task}", response_model=TaskOut, tags=["tasks"], responses=ERRORS)
def task(task: str, who: Who, state: State) -> TaskOut:
    """One task and its schemas."""
    try:
        state.registry.task(task[:200])
    except UnknownTask as error:
        raise HTTPException(404, str(error)) from None  # with the closest names ("did you mean ...?")
    return task_out(state, task)
