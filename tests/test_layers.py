"""The layer rules, checked on the import graph of the ``verticals`` package (issue 11).

The graph holds every import statement of every module, function-level ones included (a lazy import is
still a dependency); only imports under ``if TYPE_CHECKING:`` are left out (they never run). Rules:

- ``contract`` imports no verticals module outside it; ``registry`` imports only ``contract`` (and ``config``).
- ``core`` imports no front end (``api``, ``cli``, ``workers``, ``client``, ``eval_cli``, ``train_cli``).
- ``workers`` import no ``cli`` and no ``api`` (the webhook outbox is an instance a worker process builds from
  ``verticals.tenancy.webhooks``; nothing is attached by a dotted name).
- ``api`` imports no ``cli``; ``client`` imports no ``api``.
- No cycle between top-level units, none between ``core`` modules, and none between any two modules (inside a
  package too).
- A plugin package (``plugins/*/verticals_*``, the plugin template) imports of ``verticals`` only the contract
  (``verticals``, ``verticals.contract``) and ``verticals.jail``, the platform's code jail, which a task that runs
  submitted code must use (docs/security.md).

Units: ``verticals.X`` and everything under it is unit ``X``; a command-line module living beside its
subsystem (``verticals.workers.cli``, ``verticals.api.cli``) belongs to the ``cli`` unit: it is a front end.
The root package (``verticals/__init__.py``, the public facade for plugins) is unit ``verticals``;
``from verticals import __version__`` is not counted: that constant is set before the facade imports anything.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verticals"
FRONT_ENDS = {"api", "cli", "workers", "client", "eval_cli", "train_cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: set[str]):
        self.module, self.is_package, self.modules = module, is_package, modules
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            if target == "verticals" and alias.name == "__version__":
                continue  # set before the facade imports anything: no dependency
            submodule = f"{target}.{alias.name}"
            self._add(submodule if submodule in self.modules else target)

    def _add(self, name: str) -> None:
        if name != "verticals" and not name.startswith("verticals."):
            return
        while name not in self.modules and "." in name:  # a name inside a module: the module
            name = name.rsplit(".", 1)[0]
        if name in self.modules and name != self.module:
            self.found.add(name)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[name] = visitor.found
    return graph


def unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "verticals"
    if parts[-1] == "cli" and len(parts) > 2:
        return "cli"
    return parts[1]


GRAPH = import_graph()


def edges_from(units: set[str]) -> list[tuple[str, str]]:
    return sorted((source, target) for source, targets in GRAPH.items() if unit(source) in units
                  for target in targets)


def violations(sources: set[str], allowed: set[str] | None = None, forbidden: set[str] | None = None) -> list[str]:
    bad = []
    for source, target in edges_from(sources):
        target_unit = unit(target)
        if target_unit in sources:
            continue
        if (allowed is not None and target_unit not in allowed) or (forbidden and target_unit in forbidden):
            bad.append(f"{source} -> {target}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def witnesses(component: list[str], graph: dict[str, set[str]], edge_label) -> list[str]:
    members = set(component)
    return sorted({edge_label(s, t) for s in component for t in graph.get(s, ()) if t in members})


def test_the_graph_sees_function_level_imports_and_skips_type_checking_ones():
    assert "verticals.core.models.inference" in GRAPH["verticals.core.models.host"]  # ModelHost.get's lazy import
    assert "verticals.core.models.host" not in GRAPH["verticals.core.models.inference"]  # only under TYPE_CHECKING
    assert "verticals.core.jobs.engine" in GRAPH


def test_contract_depends_on_the_standard_library_pydantic_and_pluggy_only():
    import sys

    class TopLevel(_Imports):
        def _add(self, name: str) -> None:
            self.found.add(name.split(".")[0])

    found: set[str] = set()
    for path in sorted((PACKAGE / "contract").rglob("*.py")):
        visitor = TopLevel(module_name(path), path.name == "__init__.py", set())
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        found |= visitor.found
    assert found - set(sys.stdlib_module_names) - {"__future__", "pydantic", "pluggy", "verticals"} == set()


def report(lines: list[str]) -> str:
    return "\n" + "\n".join(lines)


def test_contract_imports_no_verticals_module_outside_it():
    bad = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if unit(m) == "contract" for t in targets
                 if unit(t) != "contract")
    assert not bad, report(bad)


@pytest.mark.parametrize("module", ["verticals.registry"])
def test_plugin_machinery_imports_only_the_contract_and_config(module):
    bad = sorted(f"{module} -> {t}" for t in GRAPH[module] if unit(t) not in {"contract", "config"})
    assert not bad, report(bad)


def test_core_imports_no_front_end():
    bad = violations({"core"}, forbidden=FRONT_ENDS | {"verticals", "builtin"})
    assert not bad, report(bad)


def test_workers_import_no_cli_and_no_api():
    bad = violations({"workers"}, forbidden={"cli", "api", "eval_cli", "train_cli"})
    assert not bad, report(bad)


def test_api_imports_no_cli():
    bad = violations({"api"}, forbidden={"cli", "eval_cli", "train_cli"})
    assert not bad, report(bad)


def test_client_imports_no_api():
    bad = violations({"client"}, forbidden={"api", "cli"})
    assert not bad, report(bad)


def test_no_cycle_between_top_level_units():
    units: dict[str, set[str]] = defaultdict(set)
    labels: dict[tuple[str, str], str] = {}
    for source, targets in GRAPH.items():
        for target in targets:
            if unit(source) != unit(target):
                units[unit(source)].add(unit(target))
                labels.setdefault((unit(source), unit(target)), f"{source} -> {target}")
    found = [f"cycle {' <-> '.join(c)}: " + "; ".join(witnesses(c, units, lambda s, t: labels[(s, t)]))
             for c in cycles(units)]
    assert not found, report(found)


def test_no_cycle_between_core_modules():
    core = {m: {t for t in targets if unit(t) == "core"} for m, targets in GRAPH.items() if unit(m) == "core"}
    found = [f"cycle {' <-> '.join(c)}: " + "; ".join(witnesses(c, core, lambda s, t: f"{s} -> {t}"))
             for c in cycles(core)]
    assert not found, report(found)


def test_no_cycle_between_any_modules():
    """Inside every package too (cli, workers, tenancy, api...), a package's ``__init__`` included: no module
    imports, even lazily, a module that imports it back."""
    found = [f"cycle {' <-> '.join(c)}: " + "; ".join(witnesses(c, GRAPH, lambda s, t: f"{s} -> {t}"))
             for c in cycles(GRAPH)]
    assert not found, report(found)


def test_the_cycle_check_sees_a_cycle_inside_a_package():
    graph = {"verticals.cli.a": {"verticals.cli.b"}, "verticals.cli.b": {"verticals.cli.c"},
             "verticals.cli.c": {"verticals.cli.a"}, "verticals.cli.d": {"verticals.cli.a"}}
    assert cycles(graph) == [["verticals.cli.a", "verticals.cli.b", "verticals.cli.c"]]


def test_no_plugin_is_attached_by_its_dotted_name():
    """The webhook outbox is an instance the roots build (tenancy.webhooks.Outbox), not a module attached by
    its dotted name: no ``attach("...")`` with a string anywhere in the package."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "attach"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                calls.append(f"{module_name(path)}:{node.lineno}")
    assert not calls, report(calls)


def test_importing_the_contract_loads_no_other_verticals_module():
    """What a plugin imports is standalone (issue 25): ``import verticals`` and ``import verticals.contract``
    in a fresh interpreter load the contract's modules and nothing of core, registry, config or the front ends."""
    import subprocess
    import sys

    for statement in ("import verticals.contract", "import verticals", "from verticals import Task, hookimpl"):
        loaded = subprocess.run(
            [sys.executable, "-c", f"{statement}; import sys; print(' '.join(sorted(m for m in sys.modules "
                                   "if m.startswith('verticals'))))"],
            capture_output=True, text=True, timeout=120, check=True).stdout.split()
        outside = [m for m in loaded if m != "verticals" and not m.startswith("verticals.contract")]
        assert not outside, (statement, outside)
        assert "verticals.contract.tasks" in loaded


REPO = PACKAGE.parent
PLUGIN_PACKAGES = sorted(path.parent for path in [*REPO.glob("plugins/*/verticals_*/__init__.py"),
                                                    REPO / "examples/plugin-template/verticals_template/__init__.py"])


def _plugin_may_import(module: str) -> bool:
    return module == "verticals" or any(module == name or module.startswith(name + ".")
                                        for name in ("verticals.contract", "verticals.jail"))


@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda path: path.name)
def test_plugins_import_only_the_contract_of_the_core(package):
    modules = set(GRAPH) | {"verticals"}
    bad = []
    for path in sorted(package.rglob("*.py")):
        visitor = _Imports(f"{package.name}.{path.stem}", path.name == "__init__.py", modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        bad += [f"{path.relative_to(REPO)} -> {target}" for target in sorted(visitor.found)
                if not _plugin_may_import(target)]
    assert bad == [], "a plugin imports the core beyond the contract: " + ", ".join(bad)
