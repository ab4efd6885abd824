"""Candidate tests: split generated code into one candidate per test, check imports, compose and format files."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from verticals_testgen.harness import _NAME_HINTS

TEST_LIBRARIES = {"pytest", "hypothesis", "_pytest"}
SETTINGS_DECORATOR = (
    "settings(max_examples=50, deadline=None, derandomize=True, database=None, "
    "phases=[Phase.explicit, Phase.reuse, Phase.generate])"
)


@dataclass
class Candidate:
    """One test function (plus the imports and helpers it needs) from one strategy."""

    id: str
    strategy: str
    name: str
    preamble: list[str]
    body: str
    status: str = "generated"
    message: str = ""
    arcs: frozenset[tuple[int, int]] = frozenset()
    added_lines: list[int] = field(default_factory=list)
    added_branches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    killed_mutants: list[int] = field(default_factory=list)  # lines of the mutants it kills (as a kept test)
    # mutants (indexes) the explorer saw this input tell apart: tried first on them (a hint, checked by running)
    aims: frozenset[int] = frozenset()

    @property
    def source(self) -> str:
        return "\n".join([*self.preamble, "", "", self.body]) + "\n"


def extract_code(text: str) -> str:
    """The Python code in an LLM answer: fenced blocks if any, else the text; cut to the longest parseable prefix."""
    blocks = re.findall(r"```(?:python|py|Python)?\s*\n(.*?)(?:```|$)", text, flags=re.S)
    code = "\n\n".join(blocks) if blocks else text
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        chunk = "\n".join(lines[:end])
        try:
            ast.parse(chunk)
            return chunk
        except SyntaxError:
            continue
    return ""


def _is_test(node: ast.stmt) -> TypeGuard[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name.startswith("test")
    return isinstance(node, ast.ClassDef) and node.name.startswith("Test")


def _is_noise(node: ast.stmt) -> bool:
    """Top-level statements that must not run at import: `if __name__ == ...`, bare calls (test_x(), main())."""
    if isinstance(node, ast.If):
        return "__name__" in ast.unparse(node.test)
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Constant)


def disallowed_imports(source: str, target: str) -> list[str]:
    """Top-level modules imported by ``source`` that are neither the target, the stdlib nor pytest/hypothesis."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    bad: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                bad.append("." * node.level + (node.module or ""))
                continue
            names = [node.module or ""]
        for name in names:
            root = name.split(".")[0]
            if name == target or name.startswith(target + ".") or target.startswith(name + "."):
                continue
            if root in sys.stdlib_module_names or root in TEST_LIBRARIES:
                continue
            bad.append(name)
    return sorted(set(bad))


def _public_names(target_source: str) -> set[str]:
    try:
        tree = ast.parse(target_source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _bound_names(statements: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in statements:
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _strategy_for_name(name: str) -> str:
    for pattern, kind in _NAME_HINTS:
        if pattern.match(name):
            return {
                str: "st.text(max_size=20)",
                int: "st.integers(min_value=-10, max_value=100)",
                float: "st.floats(min_value=-1000, max_value=1000, allow_nan=False)",
                list: "st.lists(st.integers(min_value=-10, max_value=10), max_size=5)",
                bool: "st.booleans()",
            }[kind]
    return "st.one_of(st.none(), st.integers(-10, 10), st.text(max_size=10))"


class _FillNothing(ast.NodeTransformer):
    """Replace ghostwriter's ``st.nothing()`` placeholders with strategies guessed from the parameter name."""

    def visit_keyword(self, node: ast.keyword) -> ast.keyword:
        if node.arg and ast.unparse(node.value) == "st.nothing()":
            node.value = ast.parse(_strategy_for_name(node.arg), mode="eval").body
        return node


def _add_settings(func: ast.FunctionDef) -> bool:
    decorators = [ast.unparse(d) for d in func.decorator_list]
    if not any(d.startswith("given") or d.startswith("hypothesis.given") for d in decorators):
        return False
    if any(d.startswith("settings") or d.startswith("hypothesis.settings") for d in decorators):
        return False
    func.decorator_list.insert(0, ast.parse(SETTINGS_DECORATOR, mode="eval").body)
    return True


def split_tests(code: str, strategy: str, target: str, target_source: str, prefix: str,
                fill_nothing: bool = False) -> list[Candidate]:
    """One candidate per top-level test function or class in ``code``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    if fill_nothing:
        tree = ast.fix_missing_locations(_FillNothing().visit(tree))
    preamble_nodes = [n for n in tree.body if not _is_test(n) and not _is_noise(n)]
    tests = [n for n in tree.body if _is_test(n)]
    if not tests:
        asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
        if asserts:  # bare asserts: wrap them into one test
            func = ast.parse("def test_generated():\n    pass").body[0]
            assert isinstance(func, ast.FunctionDef)
            func.body = list(asserts)
            tests = [func]
            preamble_nodes = [n for n in preamble_nodes if not isinstance(n, ast.Assert)]
    public = _public_names(target_source)
    candidates = []
    for index, node in enumerate(tests):
        needs_settings = isinstance(node, ast.FunctionDef) and _add_settings(node)
        preamble = [ast.unparse(n) for n in preamble_nodes]
        bound = _bound_names(preamble_nodes)
        used = _used_names(node) | set().union(*(_used_names(n) for n in preamble_nodes)) if preamble_nodes else \
            _used_names(node)
        extra = [f"import {target}"] if target.split(".")[0] not in bound else []
        missing = sorted((used - bound) & public)
        if missing:
            extra.append(f"from {target} import {', '.join(missing)}")
        if needs_settings:
            extra += [f"from hypothesis import {n}" for n in ("Phase", "settings") if n not in bound]
        if "pytest" in used and "pytest" not in bound:
            extra.append("import pytest")
        name = f"test_{prefix}_{index}"
        node.name = name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else f"Test{prefix.title()}{index}"
        candidates.append(Candidate(id=f"{strategy}:{prefix}:{index}", strategy=strategy, name=node.name,
                                    preamble=extra + preamble, body=ast.unparse(node)))
    return candidates


def asserts(candidate: Candidate) -> bool:
    """True when the test checks something: an ``assert`` or a ``pytest.raises``/``pytest.warns`` block."""
    try:
        tree = ast.parse(candidate.body)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call)
                and ast.unparse(item.context_expr.func).rpartition(".")[2] in ("raises", "warns")
                for item in node.items):
            return True
    return False


CRASH_DOC = "Crash-finding test: it checks no value, only that these calls raise nothing."


def _document_crash_test(body: str) -> str:
    """A test without an assertion says so in its docstring."""
    tree = ast.parse(body)
    func = tree.body[0] if tree.body else None
    if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return body
    if not (func.body and isinstance(func.body[0], ast.Expr) and isinstance(func.body[0].value, ast.Constant)):
        func.body.insert(0, ast.Expr(ast.Constant(CRASH_DOC)))
    return ast.unparse(tree)


def unique_name(candidate: Candidate, used: set[str]) -> None:
    """Give the candidate a test name no other candidate of the module has (``_2``, ``_3``... appended)."""
    name = candidate.name
    if name not in used:
        used.add(name)
        return
    n = 2
    while f"{name}_{n}" in used:
        n += 1
    new = f"{name}_{n}"
    try:
        tree = ast.parse(candidate.body)
    except SyntaxError:
        return
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            node.name = new
    candidate.body = ast.unparse(tree)
    candidate.name = new
    used.add(new)


def renumber(kept: list[Candidate]) -> None:
    """Readable names in the final file: round suffixes dropped, duplicates numbered 2, 3... in file order."""
    counts: dict[str, int] = {}
    for candidate in kept:
        base = re.sub(r"(_\d+)?(_r\d+)?$", "", candidate.name) or candidate.name
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}_{counts[base]}"
        if name == candidate.name:
            continue
        try:
            tree = ast.parse(candidate.body)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == candidate.name:
                node.name = name
        candidate.body = ast.unparse(tree)
        candidate.name = name


def subject(candidate: Candidate, names: list[str]) -> str:
    """The function or class of the target a test exercises: the first of ``names`` its body calls."""
    try:
        tree = ast.parse(candidate.body)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            return node.attr
        if isinstance(node, ast.Name) and node.id in names:
            return node.id
    return ""


def group_by_subject(kept: list[Candidate], target_source: str) -> list[Candidate]:
    """Kept tests grouped by the function or class they exercise, in the order the target defines them."""
    try:
        tree = ast.parse(target_source)
    except SyntaxError:
        return kept
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    rank = {name: i for i, name in enumerate(names)}
    return sorted(kept, key=lambda c: (rank.get(subject(c, names), len(names)), c.name))


def _import_key(line: str) -> tuple[int, str]:
    if line.startswith("import "):
        return (0, line)
    if line.startswith("from "):
        return (1, line)
    return (2, "")


def compose(candidates: list[Candidate], header: str) -> str:
    """One test file from kept candidates: merged imports, deduplicated helpers, then the tests."""
    imports: list[str] = []
    helpers: list[str] = []
    for candidate in candidates:
        for line in candidate.preamble:
            bucket = imports if line.startswith(("import ", "from ")) else helpers
            if line not in bucket:
                bucket.append(line)
    future = [line for line in imports if line.startswith("from __future__")]
    imports = sorted((line for line in imports if line not in future), key=_import_key)
    bodies = [c.body if asserts(c) else _document_crash_test(c.body) for c in candidates]
    blocks = [f'"""{header}"""', "\n".join(future), "\n".join(imports), *helpers, *bodies]
    return "\n\n".join(b for b in blocks if b) + "\n"


def format_code(text: str) -> tuple[str, str]:
    """Format with ruff (preferred) or black; return (text, formatter used)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if Path(ruff).exists():
        try:
            done = subprocess.run([ruff, "format", "--isolated", "--line-length", "100", "--stdin-filename",
                                   "test_generated.py", "-"], input=text, capture_output=True, text=True,
                                  timeout=30)
            if done.returncode == 0:
                return done.stdout, "ruff"
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        import black

        return black.format_str(text, mode=black.Mode(line_length=100)), "black"
    except Exception:
        return text, "none"
