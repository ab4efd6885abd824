"""Plugin manager: discovery, quarantine, version checks, and the registry of tasks and models.

Plugins are found through the entry-point group ``verticals`` (the built-in
domain plugins too: the core imports none of them). ``VERTICALS_LOAD_PLUGINS``
is an allowlist: a comma-separated list of entry-point names to load (empty:
load none; unset: load all). A plugin that fails to import, implements an
unknown (e.g. misspelled) hook, or declares verticals versions that exclude
the running one is *quarantined*: not loaded, listed with its error by
``verticals plugins list``. With ``VERTICALS_STRICT_PLUGINS=1`` any such
problem raises instead.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from verticals import hookspecs
from verticals.core.models import ModelSpec
from verticals.core.tasks import Task

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "verticals"
BUILTIN_PLUGINS = ("verticals.builtin", "verticals.api.webhooks")


class PluginError(RuntimeError):
    """A plugin could not be loaded (strict mode) or a registration was invalid."""


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    status: str = "loaded"  # loaded | quarantined | incompatible | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Registry:
    """Everything the loaded plugins registered."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    tasks: dict[str, type[Task]]
    models: dict[str, ModelSpec]
    task_plugin: dict[str, PluginInfo]

    def task(self, name: str) -> type[Task]:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise PluginError(
                f"unknown task {name!r}. Installed tasks: {known}. "
                "Install the plugin that provides it: verticals plugins install NAME"
            ) from None

    @property
    def hook(self) -> Any:
        return self.manager.hook


def _strict() -> bool:
    return os.environ.get("VERTICALS_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _allowlist() -> set[str] | None:
    value = os.environ.get("VERTICALS_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _version_problem(module: Any, dist: importlib.metadata.Distribution | None) -> str | None:
    """Why the running verticals version is outside what the plugin supports, if it is."""
    from verticals import __version__

    running = Version(__version__)
    declared = getattr(module, "VERTICALS_REQUIRES", None)
    if declared and running not in SpecifierSet(declared, prereleases=True):
        return f"supports verticals {declared}, running {__version__}"
    for line in (dist.requires or []) if dist else []:
        requirement = Requirement(line)
        if (requirement.name.lower() == "verticals" and not requirement.marker and requirement.specifier
                and running not in SpecifierSet(str(requirement.specifier), prereleases=True)):
            return f"requires verticals{requirement.specifier}, running {__version__}"
    return None


def _unknown_hooks(manager: pluggy.PluginManager, plugin: Any) -> list[str]:
    return sorted(caller.name for caller in manager.get_hookcallers(plugin) or [] if not caller.has_spec())


def build_registry() -> Registry:
    """Discover, load and validate plugins; collect their tasks and models."""
    manager = pluggy.PluginManager("verticals")
    manager.add_hookspecs(hookspecs)
    plugins: dict[str, PluginInfo] = {}

    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        builtin_name = "builtin" if module_name == "verticals.builtin" else module_name
        manager.register(module, name=builtin_name)
        from verticals import __version__

        plugins[builtin_name] = PluginInfo(builtin_name, "verticals", __version__, module_name)

    allow = _allowlist()
    seen: set[str] = set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in seen:
            continue
        seen.add(entry_point.name)
        dist = entry_point.dist
        info = PluginInfo(entry_point.name, dist.metadata["Name"] if dist else None,
                          dist.version if dist else None, entry_point.value)
        plugins[entry_point.name] = info
        if allow is not None and entry_point.name not in allow:
            info.status = "disabled"
            info.error = "not in VERTICALS_LOAD_PLUGINS"
            continue
        try:
            module = entry_point.load()
        except Exception as error:
            _quarantine(info, "quarantined", f"import failed: {type(error).__name__}: {error}",
                        traceback.format_exc())
            continue
        problem = _version_problem(module, dist)
        if problem:
            _quarantine(info, "incompatible", problem)
            continue
        try:
            manager.register(module, name=entry_point.name)
        except Exception as error:
            _quarantine(info, "quarantined", f"invalid hook implementation: {error}")
            continue
        unknown = _unknown_hooks(manager, module)
        if unknown:
            manager.unregister(module)
            _quarantine(info, "quarantined",
                        f"implements unknown hook(s) {', '.join(unknown)}: check the spelling against "
                        "verticals.hookspecs (docs/plugins.md)")
            continue
    manager.check_pending()

    for name, plugin in manager.list_name_plugin():
        if name in plugins:
            plugins[name].hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])

    models: dict[str, ModelSpec] = {}
    tasks: dict[str, type[Task]] = {}
    task_plugin: dict[str, PluginInfo] = {}
    for impl in manager.hook.register_models.get_hookimpls():  # registration order: builtin first
        info = plugins[impl.plugin_name]

        def register_model(spec: ModelSpec, _info: PluginInfo = info) -> None:
            if not isinstance(spec, ModelSpec):
                raise PluginError(f"plugin {_info.name!r} registered {spec!r}, which is not a ModelSpec")
            models[spec.name] = spec
            _info.models.append(spec.name)

        impl.function(register=register_model)

    for impl in manager.hook.register_tasks.get_hookimpls():
        info = plugins[impl.plugin_name]

        def register_task(task: type[Task], _info: PluginInfo = info) -> None:
            if not (isinstance(task, type) and issubclass(task, Task)):
                raise PluginError(f"plugin {_info.name!r} registered {task!r}, which is not a Task subclass")
            if task.name in tasks:
                raise PluginError(f"task {task.name!r} registered twice (by {task_plugin[task.name].name!r} "
                                  f"and {_info.name!r})")
            tasks[task.name] = task
            task_plugin[task.name] = _info
            _info.tasks.append(task.name)

        try:
            impl.function(register=register_task)
        except Exception as error:
            if _strict():
                raise
            info.status, info.error = "quarantined", f"register_tasks failed: {error}"

    for task_name, task in tasks.items():
        for role, model_name in task.models.items():
            if model_name not in models:
                log.warning("task %s needs model %r (role %s), which no plugin registers", task_name, model_name, role)
    return Registry(manager, plugins, tasks, models, task_plugin)


def _quarantine(info: PluginInfo, status: str, error: str, detail: str | None = None) -> None:
    info.status, info.error = status, error
    log.debug("plugin %s %s: %s\n%s", info.name, status, error, detail or "")
    if _strict():
        raise PluginError(f"plugin {info.name!r} {status}: {error}")


_registry: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry (built on first use)."""
    global _registry
    if _registry is None or refresh:
        _registry = build_registry()
        problems = [p for p in _registry.plugins.values() if p.status in {"quarantined", "incompatible"}]
        if problems and sys.stderr.isatty():
            names = ", ".join(p.name for p in problems)
            print(f"warning: plugin(s) not loaded: {names} (see `verticals plugins list`)", file=sys.stderr)
    return _registry
