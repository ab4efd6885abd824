"""Plugin manager: discovery, quarantine, version checks, the registry of tasks and models, and hook calls.

Plugins are found through the entry-point group ``verticals`` (the built-in
domain plugins too: the core imports none of them). ``VERTICALS_LOAD_PLUGINS``
is an allowlist: a comma-separated list of entry-point names to load (empty:
load none; unset: load all). A plugin that fails to import, implements an
unknown (e.g. misspelled) hook, declares a hook wrapper, declares verticals versions that exclude
the running one, or whose ``register_models`` / ``register_tasks`` raises is *quarantined*: not loaded,
nothing of it registered, listed with its error by
``verticals plugins list``. With ``VERTICALS_STRICT_PLUGINS=1`` any such
problem raises instead.

The :class:`Registry` calls the hooks: each implementation on its own, in pluggy's call order, so that a
failure is attributed to its plugin (:class:`HookError`). What each failure does is stated in
:mod:`verticals.contract`. This module imports only the contract and the settings.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ValidationError

from verticals import contract
from verticals.config import settings
from verticals.contract import ModelSpec, Task

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "verticals"
# Always registered, first. Optional built-in parts (the webhook outbox, ``verticals.tenancy.webhooks``) are not
# here: the composition roots that need them (API server, worker, CLI) add them with ``Registry.attach``.
BUILTIN_PLUGINS = ("verticals.builtin",)
# Hooks the registry calls implementation by implementation: a hook wrapper cannot take part in them.
DRIVEN_HOOKS = ("register_tasks", "register_models", "register_commands", "prepare_items", "finish_items",
                "job_submitted", "job_finished")


class PluginError(RuntimeError):
    """A plugin could not be loaded (strict mode) or a registration was invalid."""


def close_matches(name: str, choices: Iterable[str], limit: int = 3) -> list[str]:
    """The names in ``choices`` closest to ``name`` (a typo's intended name), best first; ``[]`` when none is
    close. Case and ``-``/``_`` are ignored (``time-budgt`` finds ``time_budget``); a name without a dot is
    also compared with the last part of dotted choices (``sentiment`` finds ``finance.sentiment``). Only the
    matches about as close as the best are kept."""
    def key(text: str) -> str:
        return str(text).lower().replace("-", "_")

    wanted = key(name)
    scored: list[tuple[float, str]] = []
    for choice in dict.fromkeys(choices):
        candidates = [key(choice)] + ([key(choice).rsplit(".", 1)[-1]] if "." not in wanted else [])
        score = max(difflib.SequenceMatcher(None, wanted, candidate).ratio() for candidate in candidates)
        if score >= 0.6:
            scored.append((score, choice))
    scored.sort(key=lambda pair: -pair[0])
    best = scored[0][0] if scored else 0.0
    return [choice for score, choice in scored if score >= best - 0.08][:limit]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``": did you mean X?"`` / ``": did you mean X or Y?"`` for the closest ``choices``, or ``""``."""
    matches = close_matches(name, choices)
    if not matches:
        return ""
    return f": did you mean {' or '.join(matches)}?"


class UnknownTask(PluginError):
    """No loaded plugin provides the task ``name``. ``suggestions``: the closest installed names (may be empty).

    The message is the same for every front end (it names no CLI command): ``unknown task 'x': did you mean
    y? Installed tasks: ...``.
    """

    def __init__(self, name: str, installed: Iterable[str]):
        self.name = name
        self.installed = sorted(installed)
        self.suggestions = close_matches(name, self.installed)
        shown = str(name)[:200]
        super().__init__(f"unknown task {shown!r}{did_you_mean(shown, self.installed) or '.'} "
                         f"Installed tasks: {', '.join(self.installed) or 'none'} (any other task comes with "
                         "the plugin that provides it: install that plugin).")


class HookError(PluginError):
    """A plugin's implementation of a hook raised, or broke the hook's contract (e.g. changed a batch's length).

    ``plugin`` is the plugin's name, ``hook`` the hook's, ``error`` what it raised (``None`` when it broke the
    contract: ``problem`` says how, in words that never quote item contents).
    """

    def __init__(self, plugin: str, hook: str, error: BaseException | None = None, problem: str | None = None):
        self.plugin, self.hook, self.error, self.problem = plugin, hook, error, problem
        super().__init__(self.describe(sensitive=False))

    def describe(self, sensitive: bool) -> str:
        """``plugin NAME failed in HOOK: ErrorType: message`` (no message when ``sensitive``: it may quote PHI)."""
        head = f"plugin {self.plugin} failed in {self.hook}"
        if self.error is None:
            return f"{head}: {self.problem}"
        what = type(self.error).__name__
        if not sensitive and str(self.error):
            what = f"{what}: {self.error}"
        return f"{head}: {what}"[:2000]


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


def _call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation the way pluggy does: with the arguments it declares (it may take fewer)."""
    return impl.function(*[kwargs[name] for name in impl.argnames])


def _validation_problem(error: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in problem.get('loc', ())) or 'item'}: {problem.get('msg', 'invalid')}"
             for problem in error.errors(include_input=False, include_url=False)]
    return "; ".join(parts)


class _HookRelay:
    """``registry.hook``: the hooks the registry drives go through its attributed calls, others to pluggy.

    ``registry.hook.job_finished(job=...)`` thus has the documented semantics too (a raising plugin is
    logged, the others still run), and returns pluggy's list of results (empty: these hooks return nothing;
    ``prepare_items`` returns ``[the chained batch]``).
    """

    def __init__(self, registry: Registry):
        self._registry = registry

    def prepare_items(self, *, task: Task[Any, Any, Any], items: list[BaseModel]) -> list[list[BaseModel]]:
        return [self._registry.prepare_items(task, items)]

    def finish_items(self, *, task: Task[Any, Any, Any], items: list[BaseModel], outputs: list[Any]) -> list[Any]:
        self._registry.finish_items(task, items, outputs)
        return []

    def job_submitted(self, *, job: dict[str, Any]) -> list[Any]:
        self._registry.fire_job_submitted(job)
        return []

    def job_finished(self, *, job: dict[str, Any]) -> list[Any]:
        self._registry.fire_job_finished(job)
        return []

    def register_commands(self, *, cli: Any) -> list[Any]:
        self._registry.register_commands(cli)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry.manager.hook, name)


@dataclass
class Registry:
    """Everything the loaded plugins registered, and the one place their hooks are called from."""

    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    tasks: dict[str, type[Task[Any, Any, Any]]]
    models: dict[str, ModelSpec]
    task_plugin: dict[str, PluginInfo]

    def task(self, name: str) -> type[Task[Any, Any, Any]]:
        """The task class called ``name``; :class:`UnknownTask` (with the closest names) when none is."""
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(name, sorted(self.tasks)) from None

    @property
    def hook(self) -> Any:
        return _HookRelay(self)

    # ---------------------------------------------------------------------------------------- composition

    def attach(self, plugin: ModuleType | object | str, name: str | None = None, replace: bool = False) -> PluginInfo:
        """Register an optional built-in plugin (a module, an object, or a dotted module name) after the build.

        The composition roots use it for the parts only they need (the API server, the worker and the CLI
        attach the webhook outbox they build, a :class:`verticals.tenancy.webhooks.Outbox`). Idempotent:
        attaching a plugin already registered (same object or same name) returns its info; with ``replace``,
        another plugin registered under ``name`` is unregistered first (a root's new instance takes the place
        of an older one). Its ``register_models`` and ``register_tasks`` run now. A plugin with an unknown hook
        or a hook wrapper raises :class:`PluginError` (these are the platform's own parts: a problem is a bug,
        not a quarantine).
        """
        module: object = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        label = name or (plugin if isinstance(plugin, str) else getattr(module, "__name__", None) or repr(module))
        if replace and not self.manager.is_registered(module) and self.manager.has_plugin(label):
            self.manager.unregister(name=label)
            self.plugins.pop(label, None)
        existing = self.manager.get_name(module) if self.manager.is_registered(module) else None
        if existing is None and self.manager.has_plugin(label):
            existing = label
        if existing is not None:
            return self.plugins.setdefault(existing, PluginInfo(existing, "verticals", _version(), label))
        self.manager.register(module, name=label)
        problem = _hook_problem(self.manager, module)
        if problem:
            self.manager.unregister(module)
            raise PluginError(f"cannot attach {label!r}: {problem}")
        info = PluginInfo(label, "verticals", _version(), getattr(module, "__name__", label))
        info.hooks = sorted(caller.name for caller in self.manager.get_hookcallers(module) or [])
        self.plugins[label] = info
        self._collect(info, module)
        if info.status != "loaded":
            raise PluginError(f"cannot attach {label!r}: {info.error}")
        return info

    def _collect(self, info: PluginInfo, plugin: object) -> None:
        """Run one plugin's ``register_models`` then ``register_tasks``; keep what they registered only if both
        return (else quarantine the plugin: unregistered, nothing of it kept)."""
        models: dict[str, ModelSpec] = {}
        tasks: dict[str, type[Task[Any, Any, Any]]] = {}

        def register_model(spec: ModelSpec) -> None:
            if not isinstance(spec, ModelSpec):
                raise PluginError(f"plugin {info.name!r} registered {spec!r}, which is not a ModelSpec")
            models[spec.name] = spec

        def register_task(task: type[Task[Any, Any, Any]]) -> None:
            if not (isinstance(task, type) and issubclass(task, Task)):
                raise PluginError(f"plugin {info.name!r} registered {task!r}, which is not a Task subclass")
            if task.name in self.tasks or task.name in tasks:
                first = self.task_plugin[task.name].name if task.name in self.tasks else info.name
                raise PluginError(f"task {task.name!r} registered twice (by {first!r} and {info.name!r})")
            tasks[task.name] = task

        calls: list[tuple[str, Callable[..., None]]] = [("register_models", register_model),
                                                         ("register_tasks", register_task)]
        for hook_name, register in calls:
            for impl in self._impls(hook_name, plugin):
                try:
                    _call(impl, register=register)
                except Exception as error:
                    if _strict():
                        raise
                    info.status, info.error = "quarantined", f"{hook_name} failed: {type(error).__name__}: {error}"
                    log.debug("plugin %s quarantined: %s", info.name, info.error, exc_info=True)
                    self.manager.unregister(plugin)
                    return
        self.models.update(models)
        self.tasks.update(tasks)
        for task_name in tasks:
            self.task_plugin[task_name] = info
        info.models.extend(models)
        info.tasks.extend(tasks)

    def _impls(self, hook_name: str, plugin: object | None = None) -> list[pluggy.HookImpl]:
        """The implementations of a hook in pluggy's call order (tryfirst, then last registered first, then
        trylast), optionally only one plugin's."""
        caller = getattr(self.manager.hook, hook_name)
        return [impl for impl in reversed(caller.get_hookimpls())
                if not (impl.hookwrapper or impl.wrapper) and (plugin is None or impl.plugin is plugin)]

    # ------------------------------------------------------------------------------------------ item hooks

    def prepare_items(self, task: Task[Any, Any, Any], items: list[BaseModel]) -> list[BaseModel]:
        """Run the ``prepare_items`` chain: each implementation receives the batch the previous one returned.

        Returns the prepared batch (items of ``task.Input``). Raises :class:`HookError` naming the plugin
        when an implementation raises, returns a list of another length or an item that is not a valid input.
        """
        current = list(items)
        for impl in self._impls("prepare_items"):
            try:
                result = _call(impl, task=task, items=current)
            except Exception as error:
                raise HookError(impl.plugin_name, "prepare_items", error) from error
            if result is None:
                continue
            if not isinstance(result, list | tuple):
                raise HookError(impl.plugin_name, "prepare_items",
                                problem=f"returned a {type(result).__name__}, not a list of items")
            if len(result) != len(current):
                raise HookError(impl.plugin_name, "prepare_items",
                                problem=f"returned {len(result)} items for a batch of {len(current)}")
            current = [self._as_input(task, item, impl.plugin_name) for item in result]
        return current

    @staticmethod
    def _as_input(task: Task[Any, Any, Any], item: Any, plugin: str) -> BaseModel:
        model = type(task).Input
        if isinstance(item, model):
            return item
        try:
            return model.model_validate(item.model_dump() if isinstance(item, BaseModel) else item)
        except ValidationError as error:
            raise HookError(plugin, "prepare_items",
                            problem=f"returned an item that is not a valid input: {_validation_problem(error)}"
                            ) from None

    def finish_items(self, task: Task[Any, Any, Any], items: list[BaseModel], outputs: list[Any]) -> list[Any]:
        """Run every ``finish_items`` implementation on the same ``outputs`` list (they may replace entries in
        place); return it. Raises :class:`HookError` naming the plugin when one raises or changes its length."""
        expected = len(outputs)
        for impl in self._impls("finish_items"):
            try:
                _call(impl, task=task, items=items, outputs=outputs)
            except Exception as error:
                raise HookError(impl.plugin_name, "finish_items", error) from error
            if len(outputs) != expected:
                raise HookError(impl.plugin_name, "finish_items",
                                problem=f"changed the number of outputs from {expected} to {len(outputs)}")
        return outputs

    # ----------------------------------------------------------------------------------- notification hooks

    def fire_job_submitted(self, job: dict[str, Any]) -> list[HookError]:
        """Call every ``job_submitted`` implementation; a failure is logged with its plugin's name and returned,
        never raised (the job is not affected)."""
        return self._notify("job_submitted", job=job)

    def fire_job_finished(self, job: dict[str, Any]) -> list[HookError]:
        """Call every ``job_finished`` implementation; a failure is logged with its plugin's name and returned,
        never raised: the other plugins still get the event. (An outbox that redelivers can use the list.)"""
        return self._notify("job_finished", job=job)

    def register_commands(self, cli: Any) -> list[HookError]:
        """Let every plugin add its commands to the root ``typer.Typer``; a failing plugin is logged, the CLI starts."""
        return self._notify("register_commands", cli=cli)

    def _notify(self, hook_name: str, **kwargs: Any) -> list[HookError]:
        failures = []
        for impl in self._impls(hook_name):
            try:
                _call(impl, **kwargs)
            except Exception as error:
                failures.append(HookError(impl.plugin_name, hook_name, error))
                log.warning("plugin %s failed in %s: %s: %s", impl.plugin_name, hook_name, type(error).__name__,
                            error)
                log.debug("traceback of plugin %s in %s", impl.plugin_name, hook_name, exc_info=True)
        return failures


def _strict() -> bool:
    return settings().strict_plugins


def _version() -> str:
    from verticals import __version__  # set before the package's __init__ imports anything

    return __version__


def _version_problem(module: Any, dist: importlib.metadata.Distribution | None) -> str | None:
    """Why the running verticals version is outside what the plugin supports, if it is."""
    running = Version(_version())
    declared = getattr(module, "VERTICALS_REQUIRES", None)
    if declared and running not in SpecifierSet(declared, prereleases=True):
        return f"supports verticals {declared}, running {running}"
    for line in (dist.requires or []) if dist else []:
        requirement = Requirement(line)
        if (requirement.name.lower() == "verticals" and not requirement.marker and requirement.specifier
                and running not in SpecifierSet(str(requirement.specifier), prereleases=True)):
            return f"requires verticals{requirement.specifier}, running {running}"
    return None


def _hook_problem(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """An unknown (misspelled) hook, or a hook wrapper on a hook the registry calls one implementation at a time."""
    callers = manager.get_hookcallers(plugin) or []
    unknown = sorted(caller.name for caller in callers if not caller.has_spec())
    if unknown:
        return (f"implements unknown hook(s) {', '.join(unknown)}: check the spelling against "
                "verticals.contract (docs/plugins.md)")
    wrapped = sorted(caller.name for caller in callers if caller.name in DRIVEN_HOOKS
                     and any((impl.hookwrapper or impl.wrapper) and impl.plugin is plugin
                             for impl in caller.get_hookimpls()))
    if wrapped:
        return f"declares a hook wrapper on {', '.join(wrapped)}, which these hooks do not support"
    return None


def build_registry() -> Registry:
    """Discover, load and validate plugins; collect their tasks and models."""
    manager = pluggy.PluginManager("verticals")
    manager.add_hookspecs(contract.hooks)
    registry = Registry(manager, {}, {}, {}, {})
    plugins = registry.plugins
    loaded: list[tuple[PluginInfo, object]] = []

    for module_name in BUILTIN_PLUGINS:
        builtin = importlib.import_module(module_name)
        builtin_name = "builtin" if module_name == "verticals.builtin" else module_name
        manager.register(builtin, name=builtin_name)
        plugins[builtin_name] = PluginInfo(builtin_name, "verticals", _version(), module_name)
        loaded.append((plugins[builtin_name], builtin))

    allow = settings().plugin_allowlist
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
        problem = _hook_problem(manager, module)
        if problem:
            manager.unregister(module)
            _quarantine(info, "quarantined", problem)
            continue
        loaded.append((info, module))
    manager.check_pending()

    for info, module in loaded:
        info.hooks = sorted(caller.name for caller in manager.get_hookcallers(module) or [])
        registry._collect(info, module)  # registration order: builtin first, so a plugin can swap its models

    for task_name, task in registry.tasks.items():
        for role, model_name in task.models.items():
            if model_name not in registry.models:
                log.warning("task %s needs model %r (role %s), which no plugin registers", task_name, model_name, role)
    return registry


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
