"""The program that runs *inside* the sandbox (``python -I harness.py CONFIG.json``).

It imports nothing from ``verticals``: only the standard library, coverage,
pytest and hypothesis. Before any target or candidate code runs it installs
an audit hook (:func:`install_guard`) that refuses writes outside the sandbox
directory, process creation, network use, ctypes, signals to other processes
and reads of ``/proc/*/environ``. Then, in mode

- ``run``: imports the target fresh under coverage (the baseline: what
  import alone covers), runs the candidate test files with pytest, and for
  every test records its outcome and the arcs it executed (coverage.py,
  branch mode, measured only while the test body runs);
- ``explore``: calls the target's public functions and methods with values
  drawn from type hints, defaults, parameter names and constants of the
  module, keeps the calls that execute new arcs, and records what they
  returned or raised; it also asks Hypothesis' ghostwriter for property tests.

Every event is appended to ``record.jsonl`` as soon as it happens, so the
parent still learns what happened before a test that killed the process.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import importlib
import inspect
import json
import math
import os
import random
import re
import signal
import sys
import threading
import time
import types
import typing

RECORD = None


class SandboxViolation(PermissionError):
    """Raised by the audit hook when sandboxed code tries something it may not."""


class TestTimeout(BaseException):
    """A single test or call ran past its time limit."""


def emit(event: dict) -> None:
    if RECORD is None:
        raise RuntimeError("emit() before main() opened the record")
    RECORD.write(json.dumps(event) + "\n")
    RECORD.flush()


# ---------------------------------------------------------------- the guard

_BLOCKED_EVENTS = {
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.startfile", "pty.spawn", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "ctypes.addressof", "http.client.connect", "urllib.Request", "ftplib.connect", "smtplib.connect",
    "poplib.connect", "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open", "webbrowser.open",
    "sys.remote_exec", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
}
# event -> indexes of the path arguments that must stay inside the sandbox
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.chflags": (0,), "os.lchflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "os.mkfifo": (0,),
    "os.mknod": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copymode": (1,),
    "shutil.copystat": (1,), "shutil.move": (0, 1), "shutil.chown": (0,), "sqlite3.connect": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ENVIRON_FILE = re.compile(r"^/proc/[^/]+/(task/[^/]+/)?environ$")


def install_guard(root: str) -> None:
    """Install the audit hook. It cannot be removed afterwards (PEP 578)."""
    root = os.path.realpath(root)
    inside_prefix = root + os.sep
    busy = threading.local()

    def resolve(path: object) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        if not isinstance(path, str | bytes | os.PathLike):  # what os.fspath raises
            raise TypeError(f"expected str, bytes or os.PathLike object, not {type(path).__name__}")
        path = os.fsdecode(os.fspath(path))
        if path == ":memory:" or path.startswith("file::memory"):
            return None
        return os.path.realpath(os.path.join(os.getcwd(), path))

    def inside(path: object) -> bool:
        real = resolve(path)
        return real is None or real == root or real.startswith(inside_prefix) or real == "/dev/null"

    watched = frozenset(_BLOCKED_EVENTS) | frozenset(_PATH_EVENTS) | {"open", "os.kill"}

    def hook(event: str, args: tuple) -> None:
        if event not in watched or getattr(busy, "on", False):
            return
        busy.on = True
        try:
            if event == "open":
                path, mode, flags = (*tuple(args), None, None, None)[:3]
                real = resolve(path)
                if real and _ENVIRON_FILE.match(real):
                    raise SandboxViolation("sandbox: reading process environments is blocked")
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & _WRITE_FLAGS)
                if writing and not inside(path):
                    raise SandboxViolation("sandbox: writing outside the sandbox directory is blocked")
            elif event in _BLOCKED_EVENTS:
                raise SandboxViolation(f"sandbox: {event} is blocked")
            elif event == "os.kill":
                if args and args[0] != os.getpid():
                    raise SandboxViolation("sandbox: signalling other processes is blocked")
            elif event in _PATH_EVENTS:
                for index in _PATH_EVENTS[event]:
                    if index < len(args) and not inside(args[index]):
                        raise SandboxViolation(f"sandbox: {event} outside the sandbox directory is blocked")
        finally:
            busy.on = False

    sys.addaudithook(hook)

    import socket

    def _no_network(*_args: object, **_kwargs: object) -> typing.NoReturn:
        raise SandboxViolation("sandbox: network access is blocked")

    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.socket.connect_ex = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]


# ---------------------------------------------------------------- timers


def _on_alarm(_signum: int, _frame: object) -> None:
    raise TestTimeout("time limit exceeded")


@contextlib.contextmanager
def time_limit(seconds: float):
    signal.signal(signal.SIGALRM, _on_alarm)
    # re-fires every 0.5 s so a test that catches the first one cannot keep running
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)


# ---------------------------------------------------------------- target


def import_target(target: dict, cov):
    for path in reversed(target.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    name = target["name"]
    parent = name.rpartition(".")[0]
    if parent:
        importlib.import_module(parent)
    sys.modules.pop(name, None)
    cov.erase()
    cov.start()
    try:
        module = importlib.import_module(name)
    finally:
        cov.stop()
    return module, _arcs(cov, target["file"])


def _arcs(cov, filename: str) -> list[list[int]]:
    data = cov.get_data()
    return sorted([a, b] for a, b in (data.arcs(filename) or []))


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) < 300 else text[:297] + "..."


# ---------------------------------------------------------------- run mode


def run_tests(cfg: dict, cov) -> None:
    import pytest

    target_file = cfg["target"]["file"]
    limit = float(cfg.get("test_timeout", 5.0))

    class Recorder:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_call(self, item):
            emit({"event": "start", "nodeid": item.nodeid})
            cov.erase()
            cov.start()
            try:
                with time_limit(limit):
                    yield
            finally:
                cov.stop()
                self.arcs = _arcs(cov, target_file)

        def pytest_runtest_logreport(self, report):
            if report.when == "call" or (report.when == "setup" and not report.passed):
                message = ""
                if report.failed:
                    crash = getattr(report.longrepr, "reprcrash", None)
                    message = (crash.message if crash else str(report.longrepr))[-300:]
                arcs = getattr(self, "arcs", []) if report.when == "call" else []
                emit({"event": "result", "nodeid": report.nodeid, "outcome": report.outcome,
                      "message": message, "arcs": arcs, "seconds": round(report.duration, 4)})
                self.arcs = []

        def pytest_collectreport(self, report):
            if report.failed:
                emit({"event": "collect_error", "nodeid": report.nodeid,
                      "message": str(report.longrepr)[-400:]})

    ini = os.path.join(cfg["sandbox"], "pytest.ini")
    with open(ini, "w") as handle:
        handle.write("[pytest]\n")
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:stepwise", "-c", ini, "--rootdir", cfg["sandbox"],
            "--continue-on-collection-errors", "-W", "ignore::DeprecationWarning", "--tb=line"]
    for nodeid in cfg.get("deselect", []):
        args += ["--deselect", nodeid]
    code = pytest.main(args + list(cfg["files"]), plugins=[Recorder()])
    emit({"event": "done", "exit_code": int(code)})


# ---------------------------------------------------------------- mutation mode
#
# Mutants of the target: one small change inside a function or method body (never module-level code, docstrings
# or annotations). The host enumerates them with ``mutation_points`` (it parses the source, it never runs it) and
# the jail applies one by index with ``apply_mutant``: the same walk on both sides.

_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Mod: ast.Mult, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
               ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitAnd}
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
            ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
            ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and", ast.Or: "or"}


def _short_src(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Mutator(ast.NodeTransformer):
    """Walks function bodies; lists the mutation points (``apply=None``) or applies the one numbered ``apply``."""

    def __init__(self, apply: int | None = None):
        self.apply = apply
        self.count = 0
        self.points: list[dict] = []
        self.depth = 0  # > 0 inside a function body
        self.done = False
        self.statements: list[int] = []  # first lines of the statements around the node being visited

    def visit(self, node):
        if isinstance(node, ast.stmt):
            self.statements.append(node.lineno)
            try:
                return super().visit(node)
            finally:
                self.statements.pop()
        return super().visit(node)

    def point(self, node: ast.AST, operator: str, change: str) -> bool:
        """Count a mutation point; True when it is the one to apply."""
        if self.depth == 0:
            return False
        index = self.count
        self.count += 1
        if self.apply is None:
            line = getattr(node, "lineno", 0)
            # coverage.py reports a statement that spans lines by its first line: a mutant on a later line of it
            # is reached when that first line runs
            self.points.append({"index": index, "line": line, "operator": operator, "change": change,
                                "statement": self.statements[-1] if self.statements else line})
            return False
        if index == self.apply:
            self.done = True
            return True
        return False

    def _function(self, node):
        body = node.body
        start = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
            isinstance(body[0].value.value, str) else 0  # the docstring is not code
        self.depth += 1
        node.body = body[:start] + [self.visit(statement) for statement in body[start:]]
        self.depth -= 1
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node):
        return node if self.depth == 0 else self.generic_visit(node)

    def visit_JoinedStr(self, node):
        return node  # f-string parts: formatting, not logic

    def visit_arg(self, node):
        return node  # annotations

    def visit_AnnAssign(self, node):
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None and self.point(node, "operator",
                                           f"{_OP_TEXT[type(node.op)]!r} -> {_OP_TEXT[swap]!r}"):
            node.op = swap()
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None and self.point(node, "operator",
                                           f"'{_OP_TEXT[type(node.op)]}=' -> '{_OP_TEXT[swap]}='"):
            node.op = swap()
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        for i, op in enumerate(list(node.ops)):
            swap = _CMP_SWAP.get(type(op))
            if swap is not None and self.point(node, "comparison", f"{_OP_TEXT[type(op)]!r} -> {_OP_TEXT[swap]!r}"):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self.point(node, "condition", f"{_OP_TEXT[type(node.op)]!r} -> {_OP_TEXT[swap]!r}"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self.point(node, "condition", f"'not {_short_src(node.operand)}' -> "
                                                                           f"'{_short_src(node.operand)}'"):
            return node.operand
        return node

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            if self.point(node, "constant", f"{value!r} -> {not value!r}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int | float) and not isinstance(value, complex):
            if self.point(node, "constant", f"{value!r} -> {value + 1!r}"):
                return ast.copy_location(ast.Constant(value + 1), node)
        elif isinstance(value, str) and value:
            changed = "XX" + value + "XX"
            if self.point(node, "constant", f"{_short_src(node, 30)} -> {_short_src(ast.Constant(changed), 34)}"):
                return ast.copy_location(ast.Constant(changed), node)
        return node

    def _condition(self, node, keyword: str):
        self.generic_visit(node)
        if self.point(node, "condition", f"'{keyword} {_short_src(node.test, 30)}' -> "
                                         f"'{keyword} not ({_short_src(node.test, 30)})'"):
            node.test = ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=node.test), node.test)
        return node

    def visit_If(self, node):
        return self._condition(node, "if")

    def visit_While(self, node):
        return self._condition(node, "while")

    def visit_IfExp(self, node):
        return self._condition(node, "if")

    def visit_Return(self, node):
        self.generic_visit(node)
        returns = node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        if returns and self.point(node, "return", f"'return {_short_src(node.value, 30)}' -> 'return None'"):
            node.value = ast.copy_location(ast.Constant(None), node.value)
        return node

    def visit_Break(self, node):
        if self.point(node, "statement", "'break' -> 'continue'"):
            return ast.copy_location(ast.Continue(), node)
        return node

    def visit_Continue(self, node):
        if self.point(node, "statement", "'continue' -> 'break'"):
            return ast.copy_location(ast.Break(), node)
        return node


def mutation_points(source: str) -> list[dict]:
    """Every mutant of ``source``: {index, line, operator, change}, in a fixed order."""
    mutator = _Mutator()
    mutator.visit(ast.parse(source))
    return mutator.points


def apply_mutant(source: str, index: int) -> ast.Module:
    """The module's AST with mutant ``index`` applied."""
    mutator = _Mutator(apply=index)
    tree = ast.fix_missing_locations(mutator.visit(ast.parse(source)))
    if not mutator.done:
        raise ValueError(f"no mutant {index}")
    return tree


class MutantBuilder:
    """Builds mutants without parsing or compiling the whole module each time: the source is parsed once, each
    top-level statement compiled once; a mutant deep-copies and mutates only the outermost function that holds it
    (its points are numbered consecutively in :func:`mutation_points`' walk), and only the top-level statement
    around that function is compiled again. Executing :meth:`module_codes` in order in a namespace is executing
    the mutated module (each statement compiled with the module's own ``__future__`` flags, none inherited from
    this file). The same mutants as :func:`apply_mutant`, two to six times faster (pprint 44 -> 20 ms,
    packaging.version 67 -> 11 ms per mutant on a loaded machine)."""

    def __init__(self, source: str, file: str):
        import __future__

        self.file = file
        self.tree = ast.parse(source)
        self.flags = 0
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                for alias in node.names:
                    self.flags |= getattr(getattr(__future__, alias.name, None), "compiler_flag", 0)
        self.codes = [self._compile(node) for node in self.tree.body]
        self.owners: list[tuple[int, list[tuple[str, int]], ast.AST, int]] = []  # (first point, path, def, count)
        count = 0
        for top, node in enumerate(self.tree.body):
            for path, function in self._functions(node, []):
                points = _Mutator()
                points.visit(function)  # listing leaves the tree as it is
                self.owners.append((count, [("body", top), *path], function, points.count))
                count += points.count
        self.total = count

    def _compile(self, node: ast.stmt):
        return compile(ast.Module(body=[node], type_ignores=[]), self.file, "exec", flags=self.flags,
                       dont_inherit=True)

    @staticmethod
    def _functions(node: ast.AST, path: list[tuple[str, int]]):
        """The outermost function definitions under ``node`` in the mutator's walk order, with their paths."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield path, node
            return
        if not isinstance(node, ast.stmt | ast.excepthandler | ast.match_case):
            return  # expressions hold no statements (a lambda is not mutated outside a function)
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                for index, child in enumerate(value):
                    yield from MutantBuilder._functions(child, [*path, (field, index)])

    def mutated_statement(self, index: int) -> tuple[int, ast.stmt]:
        """(position, mutated copy) of the top-level statement that holds mutant ``index``."""
        import bisect
        import copy

        owner = bisect.bisect_right([o[0] for o in self.owners], index) - 1
        if owner < 0 or index >= self.total:
            raise ValueError(f"no mutant {index}")
        first, path, function, _count = self.owners[owner]
        mutator = _Mutator(apply=index - first)
        changed = mutator.visit(copy.deepcopy(function))
        if not mutator.done:
            raise ValueError(f"no mutant {index}")

        def rebuilt(node: ast.AST, rest: list[tuple[str, int]]) -> ast.AST:
            if not rest:
                return changed
            field, position = rest[0]
            clone = copy.copy(node)  # shallow: the statements beside the path stay shared (compiling reads them)
            children = list(getattr(node, field))
            children[position] = rebuilt(children[position], rest[1:])
            setattr(clone, field, children)
            return clone

        top = path[0][1]
        statement = rebuilt(self.tree.body[top], path[1:])
        assert isinstance(statement, ast.stmt)  # a copy of a top-level statement, or the mutated one
        return top, ast.fix_missing_locations(statement)

    def module_codes(self, index: int) -> list:
        """The code objects that, executed in order in the module's namespace, define the module with mutant
        ``index`` applied."""
        top, statement = self.mutated_statement(index)
        codes = list(self.codes)
        codes[top] = self._compile(statement)
        return codes

    def changed_codes(self, index: int) -> dict[tuple[str, int], types.CodeType]:
        """Every code object (:func:`_codes`) of the top-level statement that holds mutant ``index``, mutated."""
        return _codes(self._compile(self.mutated_statement(index)[1]))

    @classmethod
    def checked(cls, source: str, file: str) -> MutantBuilder | None:
        """A builder whose numbering agrees with :func:`mutation_points` (None when it does not: the caller
        builds each mutant from the whole module instead)."""
        try:
            builder = cls(source, file)
        except Exception:
            return None
        return builder if builder.total == len(mutation_points(source)) else None


def _codes(code: types.CodeType, found: dict[tuple[str, int], types.CodeType] | None = None,
           ) -> dict[tuple[str, int], types.CodeType]:
    """Every code object inside ``code`` (functions, methods, lambdas, nested ones), by (qualname, first line)."""
    found = {} if found is None else found
    for const in code.co_consts:
        if inspect.iscode(const):
            found.setdefault((const.co_qualname, const.co_firstlineno), const)
            _codes(const, found)
    return found


def _code_differs(a, b) -> bool:
    if a.co_code != b.co_code or a.co_names != b.co_names or len(a.co_consts) != len(b.co_consts):
        return True
    for x, y in zip(a.co_consts, b.co_consts, strict=True):
        if inspect.iscode(x) or inspect.iscode(y):
            if not (inspect.iscode(x) and inspect.iscode(y)) or _code_differs(x, y):
                return True
        elif type(x) is not type(y) or repr(x) != repr(y):
            return True
    return False


MAX_TRIES = 150  # inputs tried on one surviving mutant in a targeted round before the explorer gives up on it


class MutantSwitch:
    """Turns one mutant on in the live module by swapping the code of the function objects that hold it (the
    function or method whose body has the change; classes and objects stay the same, so values built with the
    original module work with the mutant). Used by the explorer to tell whether an input tells a surviving mutant
    apart from the original before it records a test (strong mutation)."""

    def __init__(self, module, file: str, source: str):
        self.source, self.file = source, file
        self.functions: dict[tuple[str, int], list] = {}
        self.caches: list = []  # lru_cache wrappers: cleared after a mutant ran (they may hold its results)
        self._walk(module, module.__name__)
        self.builder = MutantBuilder.checked(source, file)
        self.plain: dict[tuple[str, int], types.CodeType] = {}
        if self.builder is None:
            self.plain = _codes(compile(ast.parse(source), file, "exec", dont_inherit=True))
        else:  # compiled as the builder compiles its mutants (a statement at a time: same code where unchanged)
            for code in self.builder.codes:
                _codes(code, self.plain)
        self._swaps: dict[int, list | None] = {}

    def _walk(self, module, modname: str) -> None:
        seen: set[int] = set()
        stack = [(v, 0) for v in list(vars(module).values())]
        while stack:
            obj, depth = stack.pop()
            if id(obj) in seen or depth > 6:
                continue
            seen.add(id(obj))
            if isinstance(obj, staticmethod | classmethod):
                stack.append((obj.__func__, depth + 1))
            elif isinstance(obj, property):
                stack += [(f, depth + 1) for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
            elif isinstance(obj, functools.cached_property):
                stack.append((obj.func, depth + 1))
            elif inspect.isfunction(obj):
                code = obj.__code__
                if code.co_filename == self.file:
                    self.functions.setdefault((code.co_qualname, code.co_firstlineno), []).append(obj)
                wrapped = vars(obj).get("__wrapped__")
                if wrapped is not None:
                    stack.append((wrapped, depth + 1))
            elif inspect.isclass(obj):
                if getattr(obj, "__module__", None) == modname:
                    stack += [(v, depth + 1) for v in list(vars(obj).values())]
            elif isinstance(obj, functools._lru_cache_wrapper):
                self.caches.append(obj)
                stack.append((obj.__wrapped__, depth + 1))

    def swaps(self, index: int) -> list | None:
        """(function, mutated code) pairs that turn mutant ``index`` on; None when it cannot be switched."""
        if index not in self._swaps:
            pairs: list | None = None
            try:
                codes = (self.builder.changed_codes(index) if self.builder is not None else
                         _codes(compile(apply_mutant(self.source, index), self.file, "exec", dont_inherit=True)))
                changed = [k for k, c in codes.items() if k in self.plain and _code_differs(self.plain[k], c)]
                pairs = [(f, codes[k]) for k in changed for f in self.functions.get(k, [])
                         if len(f.__code__.co_freevars) == len(codes[k].co_freevars)] or None
            except Exception:
                pairs = None
            self._swaps[index] = pairs
        return self._swaps[index]

    @contextlib.contextmanager
    def on(self, pairs: list):
        saved = [(f, f.__code__) for f, _ in pairs]
        try:
            for function, code in pairs:
                function.__code__ = code
            self.clear()
            yield
        finally:
            for function, code in saved:
                function.__code__ = code
            self.clear()

    def clear(self) -> None:
        for cache in self.caches:
            with contextlib.suppress(Exception):
                cache.cache_clear()


def _match_key(error: BaseException) -> object:
    """The part of an exception's message a generated ``pytest.raises(match=...)`` checks (render.Renderer.check)."""
    return _match_text(_message(error))


def _match_text(message: str | None) -> object:
    """The part of a message a generated ``match=...`` checks (render._match)."""
    if not (isinstance(message, str) and message.strip() and message.isascii() and message.isprintable()):
        return None
    return message if len(message) <= 60 else (message[:60], "...")


def _argument_state(args: list, kwargs: dict, passed: list, passed_kwargs: dict, limit: int = 4) -> list[dict]:
    """Checks of the arguments after a call: what it wrote to an ``io.StringIO``/``io.BytesIO`` argument
    (``getvalue()``), and a list, dict, set or bytearray argument it changed (its new value)."""
    import io

    found: list[dict] = []
    pairs = [(i, args[i], value) for i, value in enumerate(passed[:len(args)])]
    pairs += [(k, kwargs[k], value) for k, value in passed_kwargs.items() if k in kwargs]
    for where, given, value in pairs:
        if len(found) >= limit:
            break
        try:
            if isinstance(value, io.StringIO | io.BytesIO):
                text = value.getvalue()
                if text:
                    found.append({"arg": where, "kind": "getvalue", **_describe_value(text)})
            elif type(value) in (list, dict, set, bytearray) and literal_ok(value) and literal_ok(given) \
                    and repr(value) != repr(given):
                found.append({"arg": where, "kind": "value", **_describe_value(value)})
        except Exception:
            continue
    return [f for f in found if f.get("compare") in ("eq", "approx")]


class _Replayed:
    """What :meth:`Explorer.replay` returns: the outcome keys of a whole call sequence."""

    def __init__(self, key: tuple):
        self.key = key


def pins_int(text: str) -> bool:
    """True when a value text is an int literal (not a bool): its assertion checks the type as well
    (``render.Renderer.check``), since ``5 == 5.0`` and ``1 == True``."""
    try:
        return type(ast.literal_eval(text)) is int
    except Exception:
        return False


def _approx_key(described: dict) -> tuple:
    """(compare, returns, type) of a described value, compared as the generated assertion compares: an
    approximate number as ("approx", value), a literal under ``==`` as its value (``[49] == [49.0]``), an int
    with its type (``5`` is not ``5.0``), ``is True/False/None`` by its text."""
    returns = described.get("returns")
    compare = described.get("compare")
    if compare == "eq" and isinstance(returns, str) and pins_int(returns):
        return ("int", ast.literal_eval(returns))
    if compare in ("approx", "eq") and isinstance(returns, str) and returns not in ("True", "False", "None"):
        with contextlib.suppress(Exception):
            return ("value", ast.literal_eval(returns), compare == "approx")
    return (compare, returns, described.get("type"))


def _same_outcome(a, b) -> bool:
    """Two outcome keys a generated test cannot tell apart (``pytest.approx`` for approximate numbers)."""
    try:
        if a == b:
            return True
    except Exception:
        return False
    if not (isinstance(a, tuple) and isinstance(b, tuple)):
        return False
    if len(a) == 3 and len(b) == 2 and a[0] == "value" and b[0] == "int":  # an int under `pytest.approx`
        b = ("value", b[1], False)
    if len(a) == 3 and len(b) == 3 and a[0] == b[0] == "value":  # `== expected` or `== pytest.approx(expected)`
        x, y = a[1], b[1]
        if not a[2]:
            try:
                return bool(x == y) and type(x) is not bool and type(y) is not bool
            except Exception:
                return False
        xs = list(x) if isinstance(x, list | tuple) else [x]
        ys = list(y) if isinstance(y, list | tuple) else [y]
        return len(xs) == len(ys) and all(
            isinstance(p, int | float) and isinstance(q, int | float)
            and math.isclose(p, q, rel_tol=1e-6, abs_tol=1e-12) for p, q in zip(xs, ys, strict=True))
    return len(a) == len(b) and all(_same_outcome(x, y) for x, y in zip(a, b, strict=True))


def run_mutants(cfg: dict, module) -> None:
    """Run the test files against each mutant in turn (the module's namespace is rebuilt from the mutated code,
    the tests then run in this process); per mutant, stop at the first test that fails."""
    import pytest
    from _pytest.runner import runtestprotocol

    spec = cfg["mutation"]
    file = cfg["target"]["file"]
    with open(file, encoding="utf-8") as handle:
        source = handle.read()
    deadline = time.monotonic() + float(spec["seconds"])
    namespace = module.__dict__
    original = dict(namespace)
    keep = {k: original[k] for k in ("__name__", "__file__", "__spec__", "__loader__", "__package__", "__path__",
                                     "__builtins__", "__cached__", "__doc__") if k in original}
    by_identity = {id(v): k for k, v in original.items() if not k.startswith("__")}
    builder = MutantBuilder.checked(source, file)

    class Mutation:
        def pytest_runtestloop(self, session):
            items: dict[str, list] = {}
            for item in session.items:
                items.setdefault(item.nodeid.split("::")[0], []).append(item)
            test_modules = {id(m): m for m in (getattr(i, "module", None) for i in session.items) if m is not None}
            for mutant in spec["mutants"]:
                if time.monotonic() > deadline:
                    break
                started = time.monotonic()
                outcome, by = ("survived", None) if mutant["tests"] else ("no_tests", None)
                rebound: list[tuple] = []
                if mutant["tests"]:
                    try:
                        codes = (builder.module_codes(mutant["index"]) if builder is not None else
                                 [compile(apply_mutant(source, mutant["index"]), file, "exec", dont_inherit=True)])
                        namespace.clear()
                        namespace.update(keep)
                        with time_limit(5.0), _quiet():
                            for code in codes:
                                exec(code, namespace)
                    except BaseException:  # the mutated module does not even import: the tests would all fail
                        outcome, by = "killed", "import"
                    else:
                        for test_module in test_modules.values():  # `from target import f` in a test file
                            for name, value in list(vars(test_module).items()):
                                key = by_identity.get(id(value))
                                if key is not None and value is original.get(key) and key in namespace:
                                    rebound.append((test_module, name, value))
                                    setattr(test_module, name, namespace[key])
                        for name, limit in zip(mutant["tests"], mutant["limits"], strict=False):
                            failed = False
                            for item in items.get(name, []):
                                try:
                                    with time_limit(float(limit)), _quiet():
                                        reports = runtestprotocol(item, nextitem=None, log=False)
                                    failed = any(report.failed for report in reports)
                                except BaseException:
                                    failed = True
                                if failed:
                                    break
                            if failed:
                                outcome, by = "killed", name
                                break
                    finally:
                        namespace.clear()
                        namespace.update(original)
                        for test_module, name, value in rebound:
                            setattr(test_module, name, value)
                emit({"event": "mutant", "id": mutant["id"], "outcome": outcome, "by": by,
                      "seconds": round(time.monotonic() - started, 3)})
            return True

    ini = os.path.join(cfg["sandbox"], "pytest.ini")
    with open(ini, "w") as handle:
        handle.write("[pytest]\n")
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:stepwise", "-c", ini, "--rootdir", cfg["sandbox"],
            "--continue-on-collection-errors", "-W", "ignore::DeprecationWarning", "--tb=no", "-o",
            "console_output_style=classic"]
    with _quiet():
        code = pytest.main(args + list(cfg["files"]), plugins=[Mutation()])
    emit({"event": "done", "exit_code": int(code)})


# ---------------------------------------------------------------- explore mode

BASE_POOLS: dict[type, list] = {
    int: [0, 1, -1, 2, 3, 10, 255, -7, 1000],
    float: [0.0, 0.5, 1.0, -1.5, 0.25, 2.0, 0.75, 100.0],
    str: ["", "a", "abc", "Hello World", "  padded  ", "a,b;c", "x\ny", "*.py", "foo.py", "a'b\"c", "über", "  "],
    bool: [True, False],
    bytes: [b"", b"abc", b"\x00\xff"],
    list: [[], [1, 2, 3], [3, 1, 2], ["a", "b"], [0.5, 0.25]],
    tuple: [(), (1, 2), (0.1, 0.2, 0.3)],
    dict: [{}, {"a": 1}],
    set: [set(), {1, 2}],
    type(None): [None],
}
_NAME_HINTS = [
    (re.compile(r"^(s|text|string|pat|pattern|name|path|word|line|sep|char|prefix|suffix|fmt|chars|"
                r"delim.*|quote.*|punctuation|comment.*|pattern.*|.*name|.*text|.*str|.*_chars)$"), str),
    (re.compile(r"^(n|i|j|k|width|count|size|index|num|lo|hi|pos|start|stop|step|length|depth|level|"
                r"tabsize|max_.*|min_.*|.*_count|.*_size|.*_width|.*lines)$"), int),
    (re.compile(r"^(x|y|z|r|g|b|h|l|v|q|a|c|m1|m2|hue|value|ratio|.*_float|alpha|t|dist)$"), float),
    (re.compile(r"^(seq|items|lst|values|data|xs|elements|iterable|names|lines|words)$"), list),
    (re.compile(r"^(flag|strict|posix|punctuation_chars|.*_on_.*|drop_.*|fix_.*|break_.*|expand_.*|"
                r"replace_.*|is_.*|use_.*|allow_.*|ignore_.*|keep.*)$"), bool),
]


def literal_ok(value: object) -> bool:
    """True when ``repr(value)`` is source text that evaluates back to an equal value."""
    try:
        text = repr(value)
        if len(text) > 400:
            return False
        back = ast.literal_eval(text)
    except Exception:
        return False
    if _has_nan(value):
        return False
    try:
        return type(back) is type(value) and back == value
    except Exception:
        return False


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value) or math.isinf(value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nan(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    return False


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


def _flat_numbers(value: object) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def module_constants(source: str) -> dict[type, list]:
    found: dict[type, list] = {int: [], str: [], float: [], bytes: []}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in found:
            value = node.value
            if isinstance(value, str) and (len(value) > 40 or ("\n" in value and len(value) > 10)):
                continue
            if isinstance(value, bytes) and (len(value) > 40 or (b"\n" in value and len(value) > 10)):
                continue
            if value not in found[type(value)]:
                found[type(value)].append(value)
    # values next to the numbers a comparison tests (`n > 3` -> 2, 3, 4; `len(s) <= 5`): what tells `>` from `>=`
    # and `3` from `4` apart
    near: dict[type, list] = {int: [], float: []}
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if (isinstance(side, ast.Constant) and isinstance(side.value, int | float)
                        and not isinstance(side.value, bool)):
                    for value in (side.value, side.value - 1, side.value + 1):
                        if value not in near[type(value)]:
                            near[type(value)].append(value)
    for key in found:
        found[key] = found[key][:60]
        found[key] += [v for v in near.get(key, []) if v not in found[key]][:20]
    return found


def pool_for_hint(hint: object, consts: dict[type, list], depth: int = 0) -> list:
    if depth > 2:
        return []
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is typing.Any or hint is inspect.Parameter.empty:
        return []
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        pool: list = []
        for arg in args:
            pool += pool_for_hint(arg, consts, depth + 1)
        return pool
    if origin is typing.Literal:
        return list(args)
    if origin in (list, set, frozenset, tuple) or hint in (list, set, tuple):
        inner = pool_for_hint(args[0], consts, depth + 1) if args else BASE_POOLS[int]
        inner = [v for v in inner if v is not None][:6] or [1, 2]
        container = origin or hint
        if container is tuple and args and args[-1] is not Ellipsis and len(args) > 1:
            choices = [pool_for_hint(a, consts, depth + 1) or [0] for a in args]
            return [tuple(c[i % len(c)] for c in choices) for i in range(4)]
        seqs = [[], inner[:1], inner[:3], list(reversed(inner[:4]))]
        if container in (set, frozenset):
            return [container(s) for s in seqs]
        return [container(s) for s in seqs] if container is tuple else seqs
    if origin is dict or hint is dict:
        return [{}, {"a": 1}, {"x": "y", "b": 2}]
    if isinstance(hint, type):
        for kind in (bool, int, float, str, bytes, list, tuple, dict, set, type(None)):
            if issubclass(hint, kind) and hint in BASE_POOLS:
                return list(BASE_POOLS[hint]) + [c for c in consts.get(hint, []) if c not in BASE_POOLS[hint]]
    return []


def pool_for_param(param: inspect.Parameter, hint: object, consts: dict[type, list]) -> list:
    pool = pool_for_hint(hint, consts) if hint is not None else []
    if param.default is not inspect.Parameter.empty:
        default = param.default
        if literal_ok(default):
            pool = [default, *pool]
            if not pool[1:] and type(default) in BASE_POOLS:
                pool += BASE_POOLS[type(default)] + consts.get(type(default), [])
    if not pool:
        for pattern, kind in _NAME_HINTS:
            if pattern.match(param.name):
                pool = BASE_POOLS[kind] + consts.get(kind, [])
                break
    if not pool:
        pool = [0, 1, -1, 5, 0.5, "", "abc", "a b", [], [1, 2, 3], None, True,
                *consts.get(str, [])[:10], *consts.get(int, [])[:10]]
    unique: list = []
    for value in pool:
        if literal_ok(value) and not any(type(value) is type(u) and value == u for u in unique):
            unique.append(value)
    return unique


class ArcTracer:
    """A light line tracer for exploration (coverage.py measures the real thing later)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.arcs: set[tuple[int, int]] = set()
        self._paths: dict[str, bool] = {}

    def _mine(self, code) -> bool:
        name = code.co_filename
        if name not in self._paths:
            self._paths[name] = os.path.realpath(name) == self.filename
        return self._paths[name]

    def _global(self, frame, event, arg):
        if not self._mine(frame.f_code):
            return None
        last = [-frame.f_code.co_firstlineno]
        arcs = self.arcs

        def local(frame, event, arg):
            if event == "line":
                arcs.add((last[0], frame.f_lineno))
                last[0] = frame.f_lineno
            elif event == "return":
                arcs.add((last[0], -frame.f_code.co_firstlineno))
            return local

        return local

    def __enter__(self):
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        return False


class Expr:
    """A value that is not a literal: the source text that builds it and a function that builds a fresh one."""

    __slots__ = ("code", "make")

    def __init__(self, code: str, make):
        self.code, self.make = code, make

    def __repr__(self) -> str:
        return self.code


def _copy(value):
    if isinstance(value, Expr):
        return value.make()
    return ast.literal_eval(repr(value))


def _usable(value) -> bool:
    return isinstance(value, Expr) or literal_ok(value)


# ---------------------------------------------------------------- values mined from the module

_QUOTED = re.compile(r"``([^`\n]{1,40})``|'([^'\n]{1,40})'|\"([^\"\n]{1,40})\"")


def mine_docs(module, source: str) -> tuple[list[str], list[str], dict[str, list[tuple[list, dict]]]]:
    """(short strings quoted in docstrings, whole docstrings and doctest inputs, doctest call seeds by name)."""
    short: list[str] = []
    long: list[str] = []
    seeds: dict[str, list[tuple[list, dict]]] = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return short, long, seeds
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                docs.append(doc)
    import doctest

    parser = doctest.DocTestParser()
    for doc in docs:
        for match in _QUOTED.finditer(doc):
            text = next(g for g in match.groups() if g is not None)
            if text not in short:
                short.append(text)
        if len(doc) <= 200:
            long.append(doc)
        try:
            examples = parser.get_examples(doc)
        except ValueError:
            continue
        for example in examples:
            try:
                expr = ast.parse(example.source)
            except SyntaxError:
                continue
            for call in ast.walk(expr):
                if not isinstance(call, ast.Call):
                    continue
                name = ast.unparse(call.func).rpartition(".")[2]
                try:
                    args = [ast.literal_eval(a) for a in call.args]
                    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
                except (ValueError, SyntaxError, TypeError):
                    continue
                seeds.setdefault(name, []).append((args, kwargs))
                for value in [*args, *kwargs.values()]:
                    if isinstance(value, str) and value not in short and len(value) <= 200:
                        (short if len(value) <= 40 else long).append(value)
    return short[:60], long[:30], seeds


def _from_type(hint, limit: int = 6) -> list:
    """Literal values Hypothesis draws for a type hint (``st.from_type``); [] when it cannot."""
    try:
        import warnings

        from hypothesis import strategies as st

        strategy = st.from_type(hint)
        values = []
        with warnings.catch_warnings(), time_limit(1.0):
            warnings.simplefilter("ignore")
            for _ in range(limit * 2):
                value = strategy.example()
                if literal_ok(value) and value not in values:
                    values.append(value)
                if len(values) >= limit:
                    break
        return values
    except BaseException:
        return []


def _regex_examples(pattern, count: int = 6, until: float | None = None) -> list[str]:
    """Strings that match one of the module's regular expressions (Hypothesis ``st.from_regex``).

    Drawing can be slow for large verbose patterns: it stops at ``until`` (a ``time.monotonic()`` value).
    """
    if until is not None and time.monotonic() > until:
        return []
    try:
        import warnings

        from hypothesis import strategies as st

        strategy = st.from_regex(pattern, fullmatch=True)
        found: list[str] = []
        limit = 1.0 if until is None else max(0.05, until - time.monotonic())
        with warnings.catch_warnings(), time_limit(limit):
            warnings.simplefilter("ignore")
            for _ in range(count + 2):
                if until is not None and time.monotonic() > until:
                    break
                text = strategy.example()
                if text not in found and len(text) <= 40:
                    found.append(text)
                if len(found) >= count:
                    break
        return found
    except BaseException:
        return []


def source_regexes(source: str) -> list[str]:
    """Patterns passed as literals to ``re.compile``/``re.match``/... in the source."""
    patterns: list[str] = []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return patterns
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in ("compile", "match", "search", "fullmatch", "sub", "split", "findall",
                                       "finditer") and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            patterns.append(node.args[0].value)
    return patterns[:20]


def runtime_constants(module, until: float | None = None) -> dict[type, list]:
    """Strings, numbers and bytes in the module's globals, including those it imported and the elements of
    its constant sets, lists, tuples and dicts (``PARAM_KEYWORDS = {"param", "arg"}``); strings its compiled
    regular expressions match, drawn until ``until``."""
    found: dict[type, list] = {str: [], int: [], bytes: [], float: []}

    def add(value) -> None:
        kind = type(value)
        if kind in found and len(found[kind]) < 60 and value not in found[kind]:
            if kind in (str, bytes) and len(value) > 40:
                return
            found[kind].append(value)

    for value in list(vars(module).values()):  # strings its regular expressions match come first
        if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
            for text in _regex_examples(value, until=until):
                add(text)
    for name, value in list(vars(module).items()):
        if name.startswith("__") or inspect.ismodule(value) or callable(value) or isinstance(value, re.Pattern):
            continue
        if isinstance(value, str | int | bytes | float) and not isinstance(value, bool):
            add(value)
        elif isinstance(value, set | frozenset | list | tuple):
            for item in list(value)[:10]:
                if isinstance(item, str | int | bytes | float) and not isinstance(item, bool):
                    add(item)
        elif isinstance(value, dict):
            for key, item in list(value.items())[:6]:
                for part in (key, item):
                    if isinstance(part, str | int | bytes | float) and not isinstance(part, bool):
                        add(part)
    return found


def _expr(code: str, namespace: dict | None = None) -> Expr:
    """An :class:`Expr` for ``code``, built by evaluating it (in ``namespace``: the modules it names)."""
    return Expr(code, functools.partial(eval, code, dict(namespace or {})))


# Strings that trip up text handling: a lone surrogate, a surrogate pair, an astral character, NUL, a line
# separator, a title-case letter, a combining accent, a right-to-left character.
_ODD_STRINGS = ["\ud800", "\ud83d\ude00", "\U0001f600", "a\x00b", "\u2028", "\u01c5", "e\u0301", "\u05d0"]
# containers deeper, longer and wider than a line (pretty printers, recursive walkers, width checks); the
# self-referencing ones are built by a call, since they have no literal
_NESTED: list = [
    [[1, [2, [3, [4, [5]]]]], "tail"],
    {"b": [1, 2, {"c": (3, 4), "d": [5, 6]}], "a": "x" * 30, "c": {"e": {"f": {}}}},
    list(range(40)),
    ("alpha beta gamma " * 3, ("delta epsilon",)),
    [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": []}],
    (3 + 4j),
    _expr("frozenset({1, 2, 3})"),
    _expr("bytearray(b'abc\\x00')"),
    _expr("(lambda x: x.append(x) or x)([1, 2])"),
    _expr("(lambda d: d.update(me=d) or d)({'a': 1})"),
]
# values of the standard library's own types, offered when the module uses that library (imports it, or
# classes from it): `pprint` gets OrderedDict/deque/SimpleNamespace/dataclass instances, a date module dates
_TYPED_VALUES = {
    "datetime": ["datetime.date(2020, 1, 31)", "datetime.datetime(2021, 2, 28, 13, 45, 30)",
                 "datetime.timedelta(days=3, hours=4)", "datetime.time(12, 30, 15)",
                 "datetime.datetime(2024, 2, 29, 23, 59, 59, 999999)", "datetime.date(1999, 12, 31)",
                 "datetime.timedelta(seconds=-90)"],
    "decimal": ["decimal.Decimal('1.5')", "decimal.Decimal('-0.125')", "decimal.Decimal('NaN')"],
    "fractions": ["fractions.Fraction(1, 3)", "fractions.Fraction(-7, 2)"],
    "collections": ["collections.OrderedDict([('b', 1), ('a', [1, 2])])", "collections.OrderedDict()",
                    "collections.defaultdict(list, {'a': [1, 2]})", "collections.defaultdict(int)",
                    "collections.Counter('abracadabra')", "collections.Counter()", "collections.deque([1, 2, 3])",
                    "collections.deque()", "collections.deque([1, 2], maxlen=5)",
                    "collections.ChainMap({'a': 1}, {'b': 2})", "collections.ChainMap()",
                    "collections.UserDict({'a': 1})", "collections.UserList([1, 2])",
                    "collections.UserString('abc')", "collections.namedtuple('Point', 'x y')(1, 2)"],
    "types": ["types.SimpleNamespace(a=1, b=[1, 2])", "types.SimpleNamespace()",
              "types.MappingProxyType({'a': 1})"],
    "dataclasses": ["dataclasses.make_dataclass('Point', ['x', 'y'])(1, [2, 3])",
                    "dataclasses.make_dataclass('Empty', [])()"],
    "pathlib": ["pathlib.PurePosixPath('a/b.txt')", "pathlib.PureWindowsPath('c:/x/y')"],
    "enum": ["enum.Enum('Color', 'RED GREEN').RED"],
    "uuid": ["uuid.UUID('12345678-1234-5678-1234-567812345678')"],
}


def typed_values(module) -> list[Expr]:
    """Values of the standard library types the module uses (see ``_TYPED_VALUES``)."""
    used: set[str] = set()
    for value in list(vars(module).values()):
        home = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(home, str):
            root = home.lstrip("_").partition(".")[0]
            if root in _TYPED_VALUES and root != module.__name__:
                used.add(root)
    found = []
    for root in sorted(used):
        namespace = {root: importlib.import_module(root)}
        found += [_expr(code, namespace) for code in _TYPED_VALUES[root]]
    return found


# ("setattr", attribute name, [(name, parameter, pool of values)], lines): a step that sets a public attribute
AttributeStep = tuple[str, str, list[tuple[str, inspect.Parameter, list]], set[int]]


class Explorer:
    """Coverage-guided search over calls and call sequences (runs only inside the sandbox)."""

    def __init__(self, module, cfg: dict, baseline: list):
        options = cfg.get("explore", {})
        self.module = module
        self.modname = module.__name__
        self.file = cfg["target"]["file"]
        self.rng = random.Random(options.get("seed", 0) * 7919 + options.get("round", 0))
        self.round = int(options.get("round", 0))
        self.seen = {tuple(a) for a in baseline} | {tuple(a) for a in options.get("covered_arcs", [])}
        self.uncovered = set(options.get("uncovered_lines", []))
        self.call_limit = float(options.get("call_timeout", 1.0))
        self.deadline = time.monotonic() + float(options.get("seconds", 10))
        with open(self.file, encoding="utf-8") as handle:
            source = handle.read()
        self.consts = module_constants(source)
        short, self.long_strings, self.doc_seeds = mine_docs(module, source)
        # mining may take at most a fifth of the round (Hypothesis draws from large regexes slowly)
        until = time.monotonic() + min(3.0, 0.2 * float(options.get("seconds", 10)))
        mined = runtime_constants(module, until)
        for pattern in source_regexes(source):
            mined[str] = [*_regex_examples(pattern, 3, until), *mined[str]]
        for kind in (str, int, bytes, float):
            self.consts[kind] = list(dict.fromkeys(self.consts[kind] + mined.get(kind, [])))
        self.consts[str] = list(dict.fromkeys(mined[str][:20] + self.consts[str] + short))[:120]
        self.pieces = [s for s in self.consts[str] if 0 < len(s) <= 20 and "\n" not in s] or ["a", ":"]
        self.chars = sorted({c for piece in self.pieces for c in piece} | set("0123456789xX#;&:-_ ")) 
        self.instances: dict[type, list[Expr]] = {}
        self.attribute_cache: dict[type, list[AttributeStep]] = {}  # attribute_steps, per class
        self.corpus: dict[str, list[tuple[list, dict]]] = {}
        self.emitted = 0
        self.errors = 0
        self.hints: dict[int, object] = {}
        self.objects: dict[type, list[Expr]] = {}
        self.typed_values = typed_values(module)
        self.built: dict[type, list[tuple[list, dict]]] = {}
        # lines where a mutant survived the kept tests: runs there with new outcomes are recorded too
        self.mutant_lines = set(options.get("mutant_lines", []))
        self.outcomes: dict[str, set[str]] = {}
        # surviving mutants ([index, line]): an input is recorded when it tells one apart (strong mutation)
        self.source = source
        self.by_line: dict[int, list[int]] = {}
        for index, *lines in options.get("survivors", []):
            for line in set(lines):  # its own line and the first line of its statement (a tracer may see either)
                self.by_line.setdefault(int(line), []).append(int(index))
        self.switch: MutantSwitch | None = None
        self.tries: dict[int, int] = {}
        self.killed: set[int] = set()
        self.last_arcs: set = set()
        self.last_output: tuple[str, str] = ("", "")
        self.print_lines = print_lines(source)  # a run through these gets its output checked
        self.module_objects()

    # ------------------------------------------------------------ pools

    def pool(self, param: inspect.Parameter, hint: object) -> list:
        if hint is object:  # `value: object` says nothing: every kind of value, None included
            hint = None
        pool = pool_for_param(param, hint, self.consts)
        if hint is not None and hint is not inspect.Parameter.empty:
            own = [h for h in (typing.get_args(hint) or (hint,))
                   if isinstance(h, type) and getattr(h, "__module__", None) == self.modname]
            if own:  # `Version` or `str | Version`: instances of the module's own classes too
                for cls in own:
                    pool = self.instances_of(cls) + pool
            elif not pool_for_hint(hint, self.consts):
                pool = _from_type(hint) + pool
        if any(isinstance(v, str) for v in pool):
            pool = pool + self.consts[str][:40] + self.long_strings[:10] + _ODD_STRINGS
        if any(isinstance(v, bytes) for v in pool):
            pool = pool + self.consts[bytes][:20] + [s.encode() for s in self.consts[str][:10] if s.isascii()]
        if _ARGV_NAMES.match(param.name) and hint in (None, inspect.Parameter.empty, list, typing.Sequence):
            pool = self.argv() + pool
        if _FILE_NAMES.match(param.name):
            pool = self.files() + pool
        elif hint is None or hint is inspect.Parameter.empty:
            # no hint: besides what the name suggests, other types (a wrong guess must not block a function)
            text = any(isinstance(v, str) for v in pool)
            pool = [*pool, b"abc", b"a=b \t\n", *self.consts[bytes][:6], 0, 2, "abc", [1, 2], (1, "a"), None,
                    True, 1.5, {"a": 1}]
            default = param.default
            if default is inspect.Parameter.empty or default is None or not literal_ok(default):
                # nothing tells the type (a literal default would): the module's strings (`feed(data)` of a
                # parser), deep and self-referencing containers, values of the stdlib types the module uses
                pool += [*(() if text else self.consts[str][:20]), *_NESTED, *self.typed_values,
                         *_ODD_STRINGS[:3]]
        if not pool or param.name in ("data", "graph", "mapping", "d", "deps", "dependencies"):
            pool = [*pool, {1: {2}, 2: {3}, 3: set()}, {"a": ["b"], "b": []}, {1: {2}, 2: {1}}, {"a": 1, "b": 2}]
        unique: list = []
        for value in pool:
            if _usable(value) and not any(type(value) is type(u) and repr(value) == repr(u) for u in unique):
                unique.append(value)
        return unique

    def argv(self) -> list[list[str]]:
        """Command lines for a ``main(args)``: the module's own option strings, alone, with a value, combined."""
        options = [c for c in self.consts[str] if re.fullmatch(r"--?[A-Za-z][-\w]*", c)][:12]
        words = [*[c for c in self.consts[str] if c and c.isalnum()][:3], "1", "x"]
        lines = [[], ["-h"], ["--bogus-option"], *[[o] for o in options]]
        lines += [[o, words[i % len(words)]] for i, o in enumerate(options)]
        if len(options) > 1:
            lines.append(options[:3])
        # some take sys.argv whole, the program's name first
        return lines + [["prog", *line] for line in lines[:8]] + [["prog", "2024"], ["prog", "1", "x", "y"]]

    def files(self) -> list[Expr]:
        """File-like arguments: in-memory text and binary streams holding strings of the module."""
        import io

        texts = [t for t in self.consts[str][:6] if t] + ["line one\nline two\n"]
        found = [Expr(f"io.StringIO({t!r})", functools.partial(io.StringIO, t)) for t in texts[:3]]
        blobs = [*self.consts[bytes][:3], b"line one\nline two=\n", b"a=3D b\tc\n"]
        found += [Expr(f"io.BytesIO({b!r})", functools.partial(io.BytesIO, b)) for b in blobs[:4]]
        return found

    def signature(self, func, skip_self: bool):
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return None
        try:
            hints = typing.get_type_hints(func)
        except Exception:
            hints = {}
        params = []
        for index, param in enumerate(signature.parameters.values()):
            if skip_self and index == 0 and param.name in ("self", "cls"):
                continue
            if param.kind == param.VAR_KEYWORD:
                continue
            self.hints[id(param)] = hints.get(param.name)
            params.append((param.name, param, self.pool(param, hints.get(param.name))))
        return params

    def objects_for(self, param: inspect.Parameter) -> list[Expr]:
        """Objects earlier calls returned (as the call that builds them) that fit this parameter."""
        hint = self.hints.get(id(param))
        if isinstance(hint, type) and hint not in (str, int, float, bytes, bool, list, dict, tuple, set):
            return [e for kind, exprs in self.objects.items() if issubclass(kind, hint) for e in exprs]
        if hint is None or hint is inspect.Parameter.empty:
            found = [e for exprs in self.objects.values() for e in exprs]
            # lists of two or three objects of one kind (`collapse_addresses([net_a, net_b])`)
            for exprs in self.objects.values():
                if len(exprs) >= 2:
                    group = self.rng.sample(exprs, min(len(exprs), self.rng.choice([2, 2, 3])))
                    found.append(Expr("[" + ", ".join(e.code for e in group) + "]",
                                      functools.partial(_make_all, group)))
            return found
        return []

    def module_objects(self) -> None:
        """The module's own non-literal globals (``MO = weekday(0)``, ``IPV4_NETWORK = IPv4Network(...)``) as
        objects to pass where an argument of their type fits."""
        for name, value in sorted(vars(self.module).items()):
            if name.startswith("_") or inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
                continue
            kind = type(value)
            home = getattr(kind, "__module__", "") or ""
            if home.startswith(self.modname.partition(".")[0]) and not literal_ok(value):
                code = f"{self.modname}.{name}"
                exprs = self.objects.setdefault(kind, [])
                if len(exprs) < 8:
                    exprs.append(Expr(code, functools.partial(getattr, self.module, name)))

    def remember(self, value, code: str, make) -> None:
        kind = type(value)
        home = getattr(kind, "__module__", "") or ""
        if literal_ok(value) or not home.startswith(self.modname.partition(".")[0]) or len(code) > 300:
            return
        exprs = self.objects.setdefault(kind, [])
        if len(exprs) < 8 and all(e.code != code for e in exprs):
            exprs.append(Expr(code, make))

    def note_built(self, cls: type, args: list, kwargs: dict) -> None:
        """Remember constructor arguments that built an instance (sequences start from them half the time)."""
        good = self.built.setdefault(cls, [])
        text = _arg_text(args, kwargs)
        if len(good) < 24 and all(_arg_text(*g) != text for g in good):
            good.append((list(args), dict(kwargs)))

    def instances_of(self, cls: type) -> list[Expr]:
        if cls in self.instances:
            return self.instances[cls]
        self.instances[cls] = []
        params = self.signature(cls, skip_self=False)
        found: list[Expr] = []
        if params is not None:
            for attempt in range(6):
                chosen = self.choose(params, attempt, [])
                if chosen is None:
                    break
                args, kwargs = chosen
                code = f"{self.modname}.{cls.__qualname__}({_arg_text(args, kwargs)})"
                try:
                    with time_limit(self.call_limit), _quiet():
                        cls(*[_copy(a) for a in args], **{k: _copy(v) for k, v in kwargs.items()})
                except BaseException:
                    continue
                self.note_built(cls, args, kwargs)
                if all(e.code != code for e in found):
                    found.append(Expr(code, functools.partial(_build, cls, args, kwargs)))
                if len(found) >= 3:
                    break
        self.instances[cls] = found
        return found

    def synth(self) -> str:
        """A string built from the module's own words and punctuation: what a parser of this module may expect."""
        rng = self.rng
        lines = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            tokens = [rng.choice(self.pieces) for _ in range(rng.randint(1, 5))]
            text = rng.choice(["", "", ":", "  ", "- ", "@", "."])
            for token in tokens:
                text += token + rng.choice(["", " ", " ", ":", ": ", "=", ",", "(", ")", "."])
            lines.append(text)
        if rng.random() < 0.35:  # a header and an indented block of `name (kind): text` items
            header = rng.choice(self.pieces) + rng.choice([":", ":", "", "\n---"])
            items = [f"    {rng.choice(self.pieces)}{rng.choice(['', ' (' + rng.choice(self.pieces) + ')'])}"
                     f"{rng.choice([':', ': ', ' -- ', ''])} {rng.choice(self.pieces)}"
                     for _ in range(rng.randint(1, 3))]
            return "\n".join([rng.choice(self.pieces), "", header, *items])
        joiner = rng.choice(["\n", "\n    ", "\n\n", " "])
        return joiner.join(lines)

    def mutate(self, value, pool: list):
        rng = self.rng
        if isinstance(value, Expr) or rng.random() < 0.3:
            return rng.choice(pool) if pool else value
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return rng.choice([value + 1, value - 1, -value, value * 2, value // 2, 0, len(self.pieces)])
        if isinstance(value, float):
            # tails too: numeric code branches on tiny and huge magnitudes (`if r <= 5.0`, `if x < 1e-300`)
            return rng.choice([value * 2, -value, value + 0.5, value / 3, 0.0, 1.0, value * 1e-12, 1.0 - value,
                               value * 1e12])
        if isinstance(value, str):
            if rng.random() < 0.25:
                return self.synth() if rng.random() < 0.5 else value + rng.choice(["\n", "\n    ", " "]) + self.synth()
            if rng.random() < 0.25:  # character edits: insert, replace or delete one character
                k = rng.randint(0, len(value))
                char = rng.choice(self.chars)
                return rng.choice([value[:k] + char + value[k:], value[:k] + char + value[k + 1:],
                                   value[:k] + value[k + 1:]])
            piece = rng.choice(self.pieces)
            sep = rng.choice(["", " ", ":", "\n", "\n    ", ": ", ",", "-", "="])
            k = rng.randint(0, len(value)) if value else 0
            return rng.choice([value + sep + piece, piece + sep + value, value[:k] + piece + value[k:],
                               value[:k], value[k:], value.upper(), value * 2, sep.join(rng.sample(
                                   self.pieces, min(len(self.pieces), rng.randint(2, 4))))])
        if isinstance(value, list | tuple):
            items = list(value)
            choice = rng.random()
            if items and choice < 0.3:
                items.pop(rng.randrange(len(items)))
            elif choice < 0.7:
                items.insert(rng.randint(0, len(items)), self.mutate(items[0], pool) if items else rng.choice(
                    [1, "a", 0.5]))
            else:
                items.reverse()
            return type(value)(items) if isinstance(value, tuple) else items
        if isinstance(value, dict):
            entries = dict(value)
            if entries and rng.random() < 0.4:
                entries.pop(rng.choice(list(entries)))
            else:
                key = rng.choice([*list(entries), len(entries) + 1, "k"]) if entries else "k"
                entries[key] = self.mutate(entries.get(key, 1), pool) if not isinstance(entries.get(key), set) else (
                    set(entries[key]) | {rng.choice(list(entries) or [0])})
            return entries
        if isinstance(value, set | frozenset):
            members = set(value)
            if members and rng.random() < 0.5:
                members.discard(rng.choice(sorted(members, key=repr)))
            else:
                members.add(rng.choice([0, 1, 2, 3, "a"]))
            return type(value)(members)
        return rng.choice(pool) if pool else value

    def choose(self, params, attempt: int, extra: list, corpus: list | None = None) -> tuple[list, dict] | None:
        rng = self.rng
        if corpus and attempt > 0 and rng.random() < 0.5:
            base_args, base_kwargs = rng.choice(corpus)
            args, kwargs = list(base_args), dict(base_kwargs)
            positions = [("a", i) for i in range(len(args))] + [("k", k) for k in kwargs]
            named = {name: pool for name, _, pool in params}
            for _ in range(rng.randint(1, 2)):
                if not positions:
                    break
                kind, key = rng.choice(positions)
                if kind == "a":
                    pool = params[key][2] if key < len(params) else []
                    args[key] = self.mutate(args[key], pool + extra)
                else:
                    kwargs[key] = self.mutate(kwargs[key], named.get(key, []) + extra)
            if all(_usable(v) for v in [*args, *kwargs.values()]):
                return args, kwargs
        args = []
        kwargs = {}
        for name, param, pool in params:
            if param.kind == param.VAR_POSITIONAL:
                if attempt > 0:
                    source = (extra or pool or [1, "a"])
                    args += [rng.choice(source) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
                continue
            optional = param.default is not inspect.Parameter.empty
            if optional and (attempt == 0 or rng.random() < 0.6):
                continue
            choices = pool + extra if extra and rng.random() < 0.4 else pool
            if self.objects and rng.random() < 0.3:
                choices = self.objects_for(param) or choices
            if not choices:
                return None
            value = choices[0] if attempt == 0 else rng.choice(choices)
            if attempt > 1 and isinstance(value, str) and rng.random() < 0.2:
                value = self.synth()
            if attempt > 2 and rng.random() < 0.25:
                value = self.mutate(value, choices)
            if param.kind == param.KEYWORD_ONLY or (optional and kwargs) or param.kind == param.VAR_POSITIONAL:
                kwargs[name] = value
            else:
                args.append(value)
        return args, kwargs

    # ------------------------------------------------------------ running things

    def traced(self, action):
        """Run ``action`` under the arc tracer: (outcome, value, new arcs) or None when it must be discarded."""
        tracer = ArcTracer(self.file)
        printed = _Printed()
        try:
            with time_limit(self.call_limit), _quiet() as printed, tracer:
                result = action()
                if inspect.isgenerator(result):
                    result = ("generator", list(result))
            outcome = ("return", result)
        except (TestTimeout, SandboxViolation, RecursionError, MemoryError):
            return None
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt | GeneratorExit):
                return None
            outcome = ("raise", error)
        self.last_arcs = tracer.arcs
        self.last_output = printed.texts()
        return outcome[0], outcome[1], tracer.arcs - self.seen

    def diverse(self, label: str, arcs: set, outcome: str) -> bool:
        """A run that added no arcs but executed a line where a mutant survived, with an outcome not seen yet for
        ``label``: worth a test (a regression oracle there may tell the mutant apart)."""
        if not self.mutant_lines or not {line for arc in arcs for line in arc if line > 0} & self.mutant_lines:
            return False
        seen = self.outcomes.setdefault(label, set())
        if outcome in seen or len(seen) >= 8:
            return False
        seen.add(outcome)
        return True

    # ------------------------------------------------------------ strong mutation

    def _value_key(self, value, with_state: bool) -> tuple:
        """What a generated test asserts about a returned value (the record's compare/returns/type, and the public
        state of an object of the module), as a comparable key."""
        described = _describe_value(value)
        key: tuple = (_approx_key(described),)
        if with_state and described.get("compare") in ("type", "repr") and type(value).__module__ == self.modname:
            key += tuple((*_approx_key(s), s["kind"], s["name"])
                         for s in _state_checks(value, self.modname, limited=False) if s["kind"] != "repr")
        return key

    def outcome_key(self, action, seconds: float) -> tuple | None:
        """Run ``action`` (a call, or a replayed call sequence returning its own key) and describe its outcome as
        a test would see it: ("return", ...), ("raise", type, message), ("timeout",), ("crash",); None when it
        cannot be told (a sandbox violation)."""
        try:
            with time_limit(seconds), _quiet() as printed:
                try:
                    value = action()
                    if inspect.isgenerator(value):
                        value = list(value)
                except (TestTimeout, SandboxViolation):
                    raise
                except (RecursionError, MemoryError):
                    return ("crash",)
                except BaseException as error:
                    if isinstance(error, KeyboardInterrupt | GeneratorExit):
                        return None
                    return ("raise", self.raises_name(error), _match_key(error), _output_key(*printed.texts()))
                if isinstance(value, _Replayed):
                    return ("return", value.key, _output_key(*printed.texts()))
                return ("return", *self._value_key(value, True), _output_key(*printed.texts()))
        except TestTimeout:
            return ("timeout",)
        except SandboxViolation:
            return None
        except BaseException:
            return ("error",)

    def kills(self, lines: set[int], action) -> list[int]:
        """The surviving mutants on ``lines`` (those the run executed) whose outcome under ``action`` differs from
        the original's: a test of this run kills them."""
        wanted = sorted({m for line in lines for m in self.by_line.get(line, ()) if m not in self.killed
                         and self.tries.get(m, 0) < MAX_TRIES}, key=lambda m: self.tries.get(m, 0))[:8]
        if not wanted:
            return []
        if self.switch is None:
            try:
                self.switch = MutantSwitch(self.module, self.file, self.source)
            except Exception:
                self.by_line = {}
                return []
        original = self.outcome_key(action, self.call_limit)
        if original is None or original[0] in ("timeout", "crash", "error"):
            return []
        found = []
        for index in wanted:
            if time.monotonic() > self.deadline:
                break
            pairs = self.switch.swaps(index)
            if pairs is None:
                self.tries[index] = 1000
                continue
            self.tries[index] = self.tries.get(index, 0) + 1
            with self.switch.on(pairs):  # the same limit as a test's in a mutation pass (at least a second)
                outcome = self.outcome_key(action, self.call_limit)
            if outcome is not None and not _same_outcome(original, outcome):
                found.append(index)
        self.killed.update(found)
        for line in lines & self.by_line.keys():  # a line whose mutants are all told apart (or given up on)
            if all(m in self.killed or self.tries.get(m, 0) >= MAX_TRIES for m in self.by_line[line]):
                self.uncovered.discard(line)
        return found

    def call_key(self, func, args: list, kwargs: dict) -> _Replayed:
        """A call run again (for a mutant): the key of its returned value, of its arguments' state after it and
        of the warning it issued."""
        real_args = [_copy(a) for a in args]
        real_kwargs = {k: _copy(v) for k, v in kwargs.items()}
        value, warned = _call_warned(func, real_args, real_kwargs)
        if inspect.isgenerator(value):
            value = list(value)
        after = _argument_state(args, kwargs, real_args, real_kwargs)
        identity = _identity_checks(args, kwargs, real_args, real_kwargs, value)
        return _Replayed((*self._value_key(value, True),
                          tuple((*_approx_key(a), a["arg"], a["kind"]) for a in after), self.warning_key(warned),
                          tuple((a["arg"], a["kind"], a.get("key"), a["same"]) for a in identity)))

    def warning_key(self, warned) -> tuple:
        """What a generated ``pytest.warns(Category, match=...)`` checks of a warning (None, None without one)."""
        warning = self.warning(warned)
        return warning.get("warns"), _match_text(warning.get("warn_message"))

    def warning(self, warned) -> dict:
        """The record fields of a warning a call issued (``pytest.warns``): its category, when a test can name
        it, and its message; {} when there was none."""
        if warned is None:
            return {}
        name = self.raises_name(warned.category)
        if name is None:
            return {}
        return {"warns": name, "warn_message": _message(warned.message)}

    def replay(self, cls, ctor_args: list, ctor_kwargs: dict, plan: list, state: bool) -> _Replayed:
        """A call sequence run again (for a mutant): the key of every step's checked outcome and the final state."""
        instance, warned = _call_warned(cls, [_copy(a) for a in ctor_args], {k: _copy(v) for k, v in
                                                                              ctor_kwargs.items()})
        keys: list = [self.warning_key(warned)]
        for kind, name, args, kwargs in plan:
            try:
                value, warned = _call_warned(_do_step, [instance, kind, name, args, kwargs], {})
                keys.append(self.warning_key(warned))
                if inspect.isgenerator(value):
                    value = list(value)
            except (TestTimeout, SandboxViolation, RecursionError, MemoryError):
                raise
            except BaseException as error:
                keys.append(("raise", self.raises_name(error), _match_key(error)))
                return _Replayed(tuple(keys))
            if kind == "inplace":
                instance, value = value, None
            keys.append(None if value is None else ("same",) if value is instance else
                        (*self._value_key(value, True), _identity(value, instance)))
        if state:
            keys += [(*_approx_key(s), s["kind"], s["name"])
                     for s in _state_checks(instance, self.modname, limited=False)]
        return _Replayed(tuple(keys))

    def raises_name(self, error: BaseException | type) -> str | None:
        """How a test names the type of ``error`` (or the class ``error``): a builtin or the module's own."""
        for kind in (error if isinstance(error, type) else type(error)).__mro__:
            if kind is BaseException or kind is Exception:
                return None
            if getattr(builtins, kind.__name__, None) is kind:
                return kind.__name__
            if getattr(self.module, kind.__name__, None) is kind:
                return f"{self.modname}.{kind.__name__}"
        return None

    def accept(self, arcs: set) -> None:
        self.seen |= arcs
        for a, b in arcs:
            self.uncovered.discard(a)
            self.uncovered.discard(b)

    def call(self, label: str, func, params, seeds: list) -> bool:
        """One call of a function (or class, or static method); True when it executed new arcs."""
        corpus = self.corpus.setdefault(label, [])
        attempt = self.attempts.get(label, 0)
        self.attempts[label] = attempt + 1
        if seeds and attempt < len(seeds):
            args, kwargs = seeds[attempt]
        else:
            chosen = self.choose(params, attempt, [], corpus)
            if chosen is None:
                return False
            args, kwargs = chosen
        passed: dict[str, typing.Any] = {}  # the arguments the call got (a stream it wrote to, a list it changed)

        def action():
            passed["args"] = [_copy(a) for a in args]
            passed["kwargs"] = {k: _copy(v) for k, v in kwargs.items()}
            value, passed["warned"] = _call_warned(func, passed["args"], passed["kwargs"])
            return value

        result = self.traced(action)
        if result is None or (not result[2] and not self.mutant_lines and not self.by_line):
            return False
        kind, value, new = result
        arcs = self.last_arcs
        lines = {line for arc in arcs for line in arc if line > 0}
        record: dict[str, typing.Any] = {"event": "call", "callee": label, "args": [repr(a) for a in args],
                                         "kwargs": {k: repr(v) for k, v in kwargs.items()},
                                         **_printed_fields(*self.last_output, always=bool(lines & self.print_lines))}
        if inspect.isgeneratorfunction(func):
            record["generator"] = True
        if kind == "raise":
            name = self.raises_name(value)
            if name is None:
                return False
            record["raises"] = name
            record["message"] = _message(value)
        else:
            if isinstance(value, tuple) and len(value) == 2 and value[0] == "generator":
                value = value[1]
                record["generator"] = True
            record.update(_describe_value(value))
            record.update(self.warning(passed.get("warned")))
            state = _returned_state(value, self.modname, record)
            if state:  # an object of the module: its public state tells a mutant apart, its type does not
                record["state"] = state
            after = _argument_state(args, kwargs, passed.get("args", []), passed.get("kwargs", {}))
            # the result is an argument itself, or an equal copy of it (sharing its mutable items or not)
            after += _identity_checks(args, kwargs, passed.get("args", []), passed.get("kwargs", {}), value)
            if after:  # what the call wrote to a stream argument or changed in a list/dict/set argument
                record["after"] = after[:8]
        killed: list[int] = []
        if lines & self.by_line.keys():  # a surviving mutant's line ran: does this input tell it apart?
            killed = self.kills(lines, functools.partial(self.call_key, func, args, kwargs))
        if not new and not killed and (self.by_line or not self.diverse(
                label, arcs, repr((record.get("raises"), record.get("returns"), record.get("type"))))):
            return False
        corpus.append((args, kwargs))
        if kind == "return" and not record.get("generator"):
            self.remember(value, f"{self.modname}.{label}({_arg_text(args, kwargs)})",
                          functools.partial(_build, func, args, kwargs))
        self.accept(new)
        if killed:
            record["kills"] = killed
        emit(record)
        self.emitted += 1
        return True

    def sequence(self, cls, label: str, ctor_params, steps_available: list, private: list | None = None) -> bool:
        """Construct an instance, then call 1-5 of its methods (mutators and queries); keep it if it adds arcs."""
        rng = self.rng
        attempt = self.attempts.get(label, 0)
        self.attempts[label] = attempt + 1
        good = self.built.get(cls, [])
        chosen: tuple[list, dict] | None
        if good and attempt > 0 and rng.random() < 0.5:  # a constructor call known to work: search the protocol
            chosen = rng.choice(good)
        else:
            chosen = self.choose(ctor_params, attempt, [], self.corpus.get(label))
        if chosen is None:
            return False
        ctor_args, ctor_kwargs = chosen
        warned: dict = {}

        def build():
            value, warned["first"] = _call_warned(cls, [_copy(a) for a in ctor_args],
                                                  {k: _copy(v) for k, v in ctor_kwargs.items()})
            return value

        built = self.traced(build)
        if built is None or built[0] == "raise":
            return False
        outputs = [self.last_output]  # what the constructor, then each step, printed
        self.note_built(cls, ctor_args, ctor_kwargs)
        instance = built[1]
        new_total = set(built[2])
        touched = set(self.last_arcs)
        extra: list = [v for v in [*ctor_args, *ctor_kwargs.values()] if literal_ok(v)]
        for value in list(extra):
            if isinstance(value, list | tuple | set | frozenset):
                extra += [v for v in value if literal_ok(v)][:5]
            elif isinstance(value, dict):
                extra += [k for k in value if literal_ok(k)][:5]
        steps: list[dict] = []
        plan: list[tuple] = []  # the steps as run (for a replay with a mutant switched on)
        keep = 0
        steps_available = steps_available + self.attribute_steps(cls, instance)
        extra += self.instances_of(cls)[:2]
        focus = [s for s in steps_available if s[3] & self.uncovered]
        for _ in range(rng.randint(1, 6)):
            if private and rng.random() < 0.15:  # a private helper (`_reset(load)`, `_check()`) now and then
                kind, name, params, _lines = rng.choice(private)
            else:
                kind, name, params, _lines = rng.choice(focus if focus and rng.random() < 0.6 else steps_available)
            chosen = self.choose(params, attempt + 1, extra) if params is not None else ([], {})
            if chosen is None:
                break
            args, kwargs = chosen
            text = _step_text(kind, name, *_texts(args, kwargs))
            generator = kind == "method" and inspect.isgeneratorfunction(getattr(cls, name, None))
            if generator:
                text = f"list({text})"
            box: dict = {}
            result = self.traced(functools.partial(_warned_into, box, _do_step, instance, kind, name, args, kwargs))
            if result is None:
                break
            outcome, value, new = result
            new -= new_total
            touched |= self.last_arcs
            outputs.append(self.last_output)
            arg_texts, kwarg_texts = _texts(args, kwargs)
            step = {"kind": kind, "name": name, "args": arg_texts, "kwargs": kwarg_texts, "generator": generator}
            if kind == "inplace" and outcome == "return":  # a statement: `obj += x` rebinds obj, asserts nothing
                instance = value
                value = None
            if outcome == "raise":
                raised = self.raises_name(value)
                if raised is None:
                    break
                step["raises"] = raised
                step["message"] = _message(value)
            else:
                if isinstance(value, tuple) and len(value) == 2 and value[0] == "generator":
                    value = value[1]
                    step["generator"] = True
                step.update(self.warning(box.get("first")))
                same = None if value is None else _identity(value, instance)
                if same is not None:  # `obj.fluent() is obj`, `copy.copy(obj) is not obj`
                    step["same"] = same
                if value is not None and value is not instance:
                    step.update(_describe_value(value))
                    returned = _returned_state(value, self.modname, step)
                    if returned:  # an object of the module a step returned (`obj.normalized()`): its attributes
                        step["value_state"] = returned
                    if not steps and kind in ("method", "attr") and not text.startswith("list("):
                        # what the first query on a fresh instance returned can feed other calls
                        ctor = f"{self.modname}.{label}({_arg_text(ctor_args, ctor_kwargs)})"
                        self.remember(value, ctor + text.removeprefix("obj"), functools.partial(
                            _first_step, cls, ctor_args, ctor_kwargs, kind, name, args, kwargs))
                    if literal_ok(value):
                        extra.append(value)
                        if isinstance(value, list | tuple | set | frozenset):
                            extra += [v for v in value if literal_ok(v)][:5]
            steps.append(step)
            plan.append((kind, name, args, kwargs))
            if new:
                new_total |= new
                keep = len(steps)
            if outcome == "raise":
                break
        killed: list[int] = []
        lines = {line for arc in touched for line in arc if line > 0}
        if steps and lines & self.by_line.keys():  # a surviving mutant's line ran: does this sequence tell it apart?
            killed = self.kills(lines, functools.partial(self.replay, cls, ctor_args, ctor_kwargs, plan,
                                                         "raises" not in steps[-1]))
        if killed:
            keep = len(steps)
        elif not new_total:
            last = steps[-1] if steps else {}
            if not steps or self.by_line or not self.diverse(
                    label, touched, repr((len(steps), last.get("raises"), last.get("returns"), last.get("type")))):
                return False
            keep = len(steps)
        self.corpus.setdefault(label, []).append((ctor_args, ctor_kwargs))
        self.accept(new_total)
        kept_steps = steps[:keep]
        if steps and "raises" not in steps[-1]:
            state = self.state_checks(instance)
            if state:  # the object's state after all the calls: what a mutant of any of them changes
                kept_steps = steps + state
        ran = outputs[:1 + len([s for s in kept_steps if not s.get("state")])]
        printed = _printed_fields("".join(o for o, _ in ran), "".join(e for _, e in ran),
                                  always=bool({line for arc in touched for line in arc} & self.print_lines))
        emit({"event": "sequence", "callee": label, "ctor_args": [repr(a) for a in ctor_args],
              "ctor_kwargs": {k: repr(v) for k, v in ctor_kwargs.items()}, "steps": kept_steps,
              **self.warning(warned.get("first")), **({"kills": killed} if killed else {}), **printed})
        self.emitted += 1
        return True

    def state_checks(self, instance) -> list[dict]:
        return _state_checks(instance, self.modname)

    def attribute_steps(self, cls, instance) -> list:
        """``obj.attr = value`` steps for the public attributes an instance has after construction."""
        if cls not in self.attribute_cache:
            steps: list[AttributeStep] = []
            for name, current in list(getattr(instance, "__dict__", {}).items())[:20]:
                if name.startswith("_") or callable(current):
                    continue
                param = inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                kind = type(current)
                pool = [v for v in BASE_POOLS.get(kind, [])[:6] + self.consts.get(kind, [])[:10]
                        if literal_ok(v)] if kind in BASE_POOLS else []
                pool = pool or [0, 1, 2, True, "a", None]
                steps.append(("setattr", name, [(name, param, pool)], set()))
            self.attribute_cache[cls] = steps
        return list(self.attribute_cache[cls])

    # ------------------------------------------------------------ the search

    def tasks(self) -> list[dict]:
        found = []
        for name, obj in sorted(vars(self.module).items()):
            if name.startswith("__") or getattr(obj, "__module__", None) != self.modname:
                continue
            if inspect.isfunction(obj):
                # private helpers too (after the public API, at a lower weight): a parser's branches live there
                params = self.signature(obj, skip_self=False)
                if params is not None:
                    found.append({"kind": "call", "label": name, "func": obj, "params": params,
                                  "lines": _lines_of(obj), "seeds": self.doc_seeds.get(name, []),
                                  "weight": 0.4 if name.startswith("_") else 1.0})
                continue
            if name.startswith("_"):
                continue
            elif inspect.isclass(obj):
                ctor = self.signature(obj, skip_self=False)
                if issubclass(obj, BaseException) or ctor is None:
                    continue
                found.append({"kind": "call", "label": name, "func": obj, "params": ctor,
                              "lines": _lines_of(vars(obj).get("__init__")),
                              "seeds": self.doc_seeds.get(name, [])})
                steps: list[tuple] = []
                private: list[tuple] = []
                for mname, member, owner in self.members(obj):
                    if isinstance(member, staticmethod | classmethod) and not mname.startswith("_"):
                        if owner is not obj and not owner.__name__.startswith("_"):
                            continue  # a public base's own task calls it
                        func = getattr(obj, mname)
                        params = self.signature(func, skip_self=False)
                        if params is not None:
                            found.append({"kind": "call", "label": f"{name}.{mname}", "func": func,
                                          "params": params, "lines": _lines_of(member.__func__),
                                          "seeds": self.doc_seeds.get(mname, [])})
                        continue
                    if isinstance(member, property):
                        if not mname.startswith("_") and member.fget is not None:
                            steps.append(("attr", mname, None, _lines_of(member.fget)))
                        continue
                    if not inspect.isfunction(member):
                        continue
                    if mname in _DUNDER_STEPS:
                        params = self.dunder_params(mname, self.signature(member, skip_self=True))
                        steps.append((_DUNDER_STEPS[mname], mname, params, _lines_of(member)))
                    elif not mname.startswith("__"):
                        params = self.signature(member, skip_self=True)
                        if params is not None:
                            (private if mname.startswith("_") else steps).append(
                                ("method", mname, params, _lines_of(member)))
                if steps and not inspect.isabstract(obj):
                    lines = set().union(*(s[3] for s in steps + private))
                    found.append({"kind": "sequence", "label": name, "cls": obj, "params": ctor,
                                  "steps": steps, "private": private, "lines": lines, "seeds": []})
        return found

    def dunder_params(self, mname: str, params):
        """Indexes and slices for item access, format specs for ``__format__`` (first in their pools)."""
        if not params:
            return params
        if mname in ("__getitem__", "__setitem__", "__delitem__"):
            extra = [0, -1, 1, 3, *[Expr(code, functools.partial(eval, code)) for code in _SLICES]]
        elif mname == "__format__":
            extra = list(_FORMAT_SPECS)
        else:
            return params
        name, param, pool = params[0]
        return [(name, param, [*extra, *pool]), *params[1:]]

    def members(self, cls) -> list[tuple[str, object, type]]:
        """(name, member, defining class) of ``cls`` and of its bases defined in the same module (private
        ones included: ``ipaddress.IPv4Network`` gets ``subnets`` from ``_BaseNetwork``); the first definition
        along the MRO wins."""
        found: dict[str, tuple[str, object, type]] = {}
        for owner in cls.__mro__:
            if owner is object or getattr(owner, "__module__", None) != self.modname:
                continue
            for mname, member in sorted(vars(owner).items()):
                found.setdefault(mname, (mname, member, owner))
        return sorted(found.values(), key=lambda m: m[0])

    def run(self) -> None:
        self.attempts: dict[str, int] = {}
        tasks = self.tasks()
        self.task_count = len(tasks)
        self.started_search = self.deadline - time.monotonic()
        if not tasks:
            return
        idle = {t["label"] + t["kind"]: 0 for t in tasks}
        # first pass: every task once (doctest seeds and defaults first), then weighted by what is uncovered
        for task in sorted(tasks, key=lambda t: -t.get("weight", 1.0)):
            if time.monotonic() > self.deadline:
                return
            for _ in range(1 + len(task["seeds"])):
                self.step(task)
        while time.monotonic() < self.deadline:
            weights = []
            for task in tasks:
                todo = len(task["lines"] & self.uncovered)
                weights.append(task.get("weight", 1.0) * (1 + 4 * todo) / (1 + idle[task["label"] + task["kind"]] / 25))
            task = self.rng.choices(tasks, weights)[0]
            key = task["label"] + task["kind"]
            if self.step(task):
                idle[key] = 0
            else:
                idle[key] += 1
            if all(v > 400 for v in idle.values()):
                return

    def step(self, task: dict) -> bool:
        try:
            if task["kind"] == "call":
                return self.call(task["label"], task["func"], task["params"], task["seeds"])
            return self.sequence(task["cls"], task["label"], task["params"], task["steps"], task.get("private"))
        except (TestTimeout, SandboxViolation, RecursionError):
            return False
        except Exception as error:  # a value the explorer cannot handle: skip this attempt, keep searching
            self.errors += 1
            if self.errors <= 3:
                emit({"event": "explorer_error", "message": _short(error)})
            return False


_ARGV_NAMES = re.compile(r"^(args|argv|arguments|arglist|cmdline|command_line|cli_args)$")
_FILE_NAMES = re.compile(r"^(input|output|infile|outfile|fp|fd|file|f|stream|fileobj|buf|source|sink|in_file|"
                         r"out_file|inp|out|reader|writer|ifp|ofp)$")

_BINARY = {"__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/", "__floordiv__": "//",
           "__mod__": "%", "__pow__": "**", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">=",
           "__and__": "&", "__or__": "|", "__xor__": "^", "__lshift__": "<<", "__rshift__": ">>",
           "__matmul__": "@", "__ne__": "!="}
_UNARY = {"__neg__": "-obj", "__pos__": "+obj", "__abs__": "abs(obj)", "__invert__": "~obj",
          "__hash__": "hash(obj)", "__int__": "int(obj)", "__float__": "float(obj)", "__round__": "round(obj)",
          "__trunc__": "math.trunc(obj)", "__floor__": "math.floor(obj)", "__ceil__": "math.ceil(obj)",
          "__reversed__": "list(reversed(obj))", "__copy__": "copy.copy(obj)",
          "__deepcopy__": "copy.deepcopy(obj)", "__reduce__": "pickle.loads(pickle.dumps(obj))",
          "__reduce_ex__": "pickle.loads(pickle.dumps(obj))", "__getstate__": "pickle.loads(pickle.dumps(obj))",
          "__setstate__": "pickle.loads(pickle.dumps(obj))", "__complex__": "complex(obj)",
          "__bytes__": "bytes(obj)", "__index__": "operator.index(obj)", "__length_hint__": "len(list(obj))"}
# reflected operators: `other + obj` reaches obj.__radd__ when other does not know obj's type
_REFLECTED = {"__radd__": "+", "__rsub__": "-", "__rmul__": "*", "__rtruediv__": "/", "__rfloordiv__": "//",
              "__rmod__": "%", "__rpow__": "**", "__rand__": "&", "__ror__": "|", "__rxor__": "^",
              "__rlshift__": "<<", "__rrshift__": ">>", "__rmatmul__": "@"}
# in-place operators: `obj += other` (obj becomes what __iadd__ returns)
_INPLACE = {"__iadd__": "+=", "__isub__": "-=", "__imul__": "*=", "__itruediv__": "/=", "__ifloordiv__": "//=",
            "__imod__": "%=", "__ipow__": "**=", "__iand__": "&=", "__ior__": "|=", "__ixor__": "^=",
            "__ilshift__": "<<=", "__irshift__": ">>=", "__imatmul__": "@="}
_DUNDER_STEPS = {**{name: "binary" for name in _BINARY}, **{name: "unary" for name in _UNARY},
                 **{name: "rbinary" for name in _REFLECTED}, **{name: "inplace" for name in _INPLACE},
                 "__len__": "len", "__iter__": "iter", "__contains__": "contains", "__getitem__": "getitem",
                 "__call__": "call", "__str__": "str", "__repr__": "repr", "__bool__": "bool", "__eq__": "eq",
                 "__setitem__": "setitem", "__delitem__": "delitem", "__format__": "format"}
_SLICES = ["slice(1, 3)", "slice(None, None, -1)", "slice(-2, None)", "slice(0, 10, 2)", "slice(5, 1)"]
# format specs a __format__ may parse: empty, a type, alternate form, grouping, alignment, width, precision
_FORMAT_SPECS = ["", "s", "d", "x", "X", "b", "n", "o", "#x", "#b", "_x", "_b", ",", ">20", "<8", "^9", "08",
                 ".2f", "e", "%", "#", "z", "!r"]


def _message(error: BaseException) -> str | None:
    """The start of an exception's message, when it reads as plain text (for ``pytest.raises(match=...)``)."""
    try:
        text = str(error)
    except Exception:
        return None
    text = text.split("\n")[0][:80]
    if not text.strip() or " at 0x" in text or not text.isprintable():
        return None
    return text


STATE_ATTRIBUTES = 16  # public attributes a state check reads (round 4 read 4, repr included: most survived)


def _state_checks(instance, modname: str = "", limit: int = STATE_ATTRIBUTES, limited: bool = True) -> list[dict]:
    """Steps that read an object's public state after a call sequence: ``repr(obj)`` when the module defines its
    repr and it reads as a value, its public attributes (up to ``limit``, in definition order) whose values can
    be compared (literals, approximate numbers, an object by a short stable repr), and ``len(obj)`` when it
    has a length. Every public attribute is read, not only the first few: a mutant that changes only
    ``obj.seconds`` is seen only by a check of ``obj.seconds``."""
    checks: list[dict] = []
    owner = next((k for k in type(instance).__mro__ if "__repr__" in vars(k)), object)
    if modname and getattr(owner, "__module__", None) == modname:
        try:
            with time_limit(0.5) if limited else contextlib.nullcontext(), _quiet():
                text = repr(instance)
            if " at 0x" not in text and len(text) <= 200 and "\n" not in text:
                checks.append({"kind": "repr", "name": "__repr__", "args": [], "kwargs": {}, "generator": False,
                               "returns": repr(text), "compare": "eq", "state": True})
        except BaseException:
            pass
    read = 0
    for name, value in _public_state(instance, modname, limited):
        if read >= limit:
            break
        if name.startswith("_") or callable(value) or not name.isidentifier():
            continue
        described = _describe_value(value)
        if (described.get("compare") in ("eq", "approx") and len(described.get("returns") or "") <= 200) or (
                described.get("compare") == "repr" and len(described.get("returns") or "") <= 80):
            read += 1
            checks.append({"kind": "attr", "name": name, "args": [], "kwargs": {}, "generator": False, "state": True,
                           **described})
    if hasattr(type(instance), "__len__"):
        try:
            with time_limit(0.5) if limited else contextlib.nullcontext(), _quiet():
                size = len(instance)
            checks.append({"kind": "len", "name": "__len__", "args": [], "kwargs": {}, "generator": False,
                           "state": True, **_describe_value(size)})
        except BaseException:
            pass
    return checks


_UNREAD = object()


def _public_state(instance, modname: str, limited: bool):
    """(name, value) of an object's public state, in order: its ``__dict__``, then its public ``__slots__``, then
    the public properties its classes of the module define (issue 28, round 6: ``packaging.version.Version``
    keeps its parts in private slots and shows them through ``release``, ``pre``, ``is_prerelease``...; its
    ``repr`` was all a test read). A slot or property that is unset, raises, warns or prints is skipped."""
    try:
        yield from list(vars(instance).items())
    except TypeError:
        pass
    seen: set[str] = set(getattr(instance, "__dict__", ()))
    readers: list[str] = []
    for owner in type(instance).__mro__:
        slots = vars(owner).get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots if isinstance(slots, tuple | list) else ():
            if isinstance(name, str) and not name.startswith("_") and name not in seen:
                seen.add(name)
                readers.append(name)
    if modname:
        for owner in type(instance).__mro__:
            if getattr(owner, "__module__", None) != modname:
                continue
            for name, member in vars(owner).items():
                if isinstance(member, property) and member.fget is not None and not name.startswith("_") \
                        and name not in seen:
                    seen.add(name)
                    readers.append(name)
    for name in readers:
        value = _read_attribute(instance, name, limited)
        if value is not _UNREAD:
            yield name, value


def _read_attribute(instance, name: str, limited: bool):
    """``getattr(instance, name)`` when it returns without raising, warning or printing (else ``_UNREAD``)."""
    import warnings

    try:
        with time_limit(0.5) if limited else contextlib.nullcontext(), _quiet() as printed, \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = getattr(instance, name)
    except (TestTimeout, SandboxViolation):
        if limited:
            return _UNREAD
        raise
    except BaseException:
        return _UNREAD
    if caught or any(printed.texts()):
        return _UNREAD
    return value


def _returned_state(value, modname: str, described: dict) -> list[dict]:
    """The public state of an object of the module that a call or a call-sequence step returned (issue 28,
    round 6), where the value itself is compared by its type or ``repr`` only: the attributes of what
    ``obj.normalized()`` or ``obj + other`` built are where a mutant of the code that built it shows
    (``relativedelta``'s ``{:+g}`` repr prints ``0`` and ``0.0`` alike). [] for anything else."""
    if not modname or described.get("compare") not in ("type", "repr") or type(value).__module__ != modname:
        return []
    return [s for s in _state_checks(value, modname) if s["kind"] != "repr"]


def _lines_of(func) -> set[int]:
    code = getattr(func, "__code__", None)
    if code is None:
        return set()
    lines: set[int] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        lines.update(line for _, _, line in current.co_lines() if line)
        stack += [c for c in current.co_consts if inspect.iscode(c)]
    return lines


def _first_step(cls, ctor_args, ctor_kwargs, kind, name, args, kwargs):
    return _do_step(_build(cls, ctor_args, ctor_kwargs), kind, name, args, kwargs)


def _make_all(exprs: list) -> list:
    return [e.make() for e in exprs]


def _arg_text(args: list, kwargs: dict) -> str:
    return ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])


def _build(cls, args, kwargs):
    return cls(*[_copy(a) for a in args], **{k: _copy(v) for k, v in kwargs.items()})


def _step_text(kind: str, name: str, args: list[str], kwargs: dict[str, str]) -> str:
    """The source of one call-sequence step on ``obj``, from its kind, member name and argument *texts*.

    The host calls this too, with argument texts it rendered itself (``render.Renderer.step``): a step is never
    pasted from what the jail recorded.
    """
    first = args[0] if args else "None"
    call = ", ".join([*args, *(f"{k}={v}" for k, v in kwargs.items())])
    return {"method": f"obj.{name}({call})", "attr": f"obj.{name}", "len": "len(obj)",
            "iter": "list(obj)", "contains": f"({first} in obj)", "getitem": f"obj[{first}]",
            "call": f"obj({call})", "str": "str(obj)", "repr": "repr(obj)",
            "bool": "bool(obj)", "eq": f"(obj == {first})",
            "setitem": f"obj[{first}] = {args[1] if len(args) > 1 else 'None'}",
            "delitem": f"del obj[{first}]", "setattr": f"obj.{name} = {first}",
            "binary": f"(obj {_BINARY.get(name, '+')} {first})", "unary": _UNARY.get(name, "obj"),
            "rbinary": f"({first} {_REFLECTED.get(name, '+')} obj)", "format": f"format(obj, {first})",
            "inplace": f"obj {_INPLACE.get(name, '+=')} {first}"}[kind]


def _texts(args: list, kwargs: dict) -> tuple[list[str], dict[str, str]]:
    return [repr(a) for a in args], {k: repr(v) for k, v in kwargs.items()}


def _do_step(obj, kind: str, name: str, args: list, kwargs: dict):
    args = [_copy(a) for a in args]
    kwargs = {k: _copy(v) for k, v in kwargs.items()}
    first = args[0] if args else None
    if kind == "method":
        return getattr(obj, name)(*args, **kwargs)
    if kind == "attr":
        return getattr(obj, name)
    if kind == "len":
        return len(obj)
    if kind == "iter":
        return list(obj)
    if kind == "contains":
        return first in obj
    if kind == "getitem":
        return obj[first]
    if kind == "call":
        return obj(*args, **kwargs)
    if kind == "str":
        return str(obj)
    if kind == "repr":
        return repr(obj)
    if kind == "bool":
        return bool(obj)
    if kind == "eq":
        return obj == first
    if kind == "setattr":
        setattr(obj, name, first)
        return None
    if kind == "format":
        if not isinstance(first, str):  # what format() raises
            raise TypeError(f"format() argument 2 must be str, not {type(first).__name__}")
        return format(obj, first)
    if kind == "inplace":
        import operator

        return getattr(operator, name.strip("_"))(obj, first)  # operator.iadd, operator.isub, ...
    if kind in ("binary", "unary", "rbinary"):
        import copy
        import math
        import operator
        import pickle

        if kind in ("binary", "rbinary"):
            symbol = _BINARY[name] if kind == "binary" else _REFLECTED[name]
            function = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
                        "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<": operator.lt,
                        "<=": operator.le, ">": operator.gt, ">=": operator.ge, "&": operator.and_,
                        "|": operator.or_, "^": operator.xor, "<<": operator.lshift, ">>": operator.rshift,
                        "@": operator.matmul, "!=": operator.ne}[symbol]
            return function(obj, first) if kind == "binary" else function(first, obj)
        return eval(_UNARY[name], {"obj": obj, "math": math, "copy": copy, "pickle": pickle, "operator": operator})
    return getattr(obj, name)(*args, **kwargs)


def _warned_into(box: dict, func, *args):
    """``func(*args)``; the first warning it issued goes to ``box["first"]``."""
    value, box["first"] = _call_warned(func, list(args), {})
    return value


def _call_warned(func, args: list, kwargs: dict) -> tuple:
    """``func(*args, **kwargs)`` and the first warning it issued, or None (every warning is seen, not only the
    first at each place: the same call issues it again in a test)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = func(*args, **kwargs)
    return value, (caught[0] if caught else None)


class _Printed:
    """What ran under :func:`_quiet` wrote to stdout and stderr."""

    def __init__(self):
        import io

        self.out, self.err = io.StringIO(), io.StringIO()

    def texts(self) -> tuple[str, str]:
        return self.out.getvalue(), self.err.getvalue()


@contextlib.contextmanager
def _quiet():
    printed = _Printed()
    with contextlib.redirect_stdout(printed.out), contextlib.redirect_stderr(printed.err):
        yield printed


MAX_PRINTED = 1000  # characters of output a test asserts (``capsys.readouterr().out == ...``)


def _output_key(out: str, err: str) -> tuple:
    """What a generated ``capsys`` check compares of a run's output (addresses blanked: they differ per run)."""
    return _ADDRESS.sub("0x", out[:MAX_PRINTED + 1]), _ADDRESS.sub("0x", err[:MAX_PRINTED + 1])


def _printed_fields(out: str, err: str, always: bool) -> dict:
    """The record fields of what a call or a sequence printed (``prints``/``prints_err`` as reprs): stdout when
    it printed something or when ``always`` (it ran a function that can print: that it printed nothing is then
    behaviour too), stderr when it wrote something; nothing when the output holds an address or is too long."""
    fields: dict = {}
    for key, text, wanted in (("prints", out, always or bool(out)), ("prints_err", err, bool(err))):
        if not wanted:
            continue
        if len(text) > MAX_PRINTED or _ADDRESS.search(text) or " at 0x" in text:
            return {}
        fields[key] = repr(text)
    return fields


def print_lines(source: str) -> set[int]:
    """Lines of the functions that print (a ``print(...)`` call or a write to ``sys.stdout``/``sys.stderr``):
    a run through them gets its output checked even when it printed nothing."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call) and (
                    (isinstance(inner.func, ast.Name) and inner.func.id == "print")
                    or (isinstance(inner.func, ast.Attribute) and inner.func.attr == "write"
                        and isinstance(inner.func.value, ast.Attribute) and inner.func.value.attr in ("stdout",
                                                                                                  "stderr"))):
                lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
                break
    return lines


# scalars whose identity is an implementation detail (small ints and short strings are shared): never asserted
_NO_IDENTITY = (int, float, complex, str, bytes, bool, type(None), range)


def _identity(value, ref) -> bool | None:
    """True when ``value`` is ``ref`` itself, False when it is an equal copy of the same type (``copy.copy(obj)``,
    ``obj.__replace__()``), None when identity says nothing a test should pin (scalars, unequal values)."""
    if isinstance(ref, _NO_IDENTITY) or ref is None:
        return None
    if value is ref:
        return True
    try:
        if type(value) is type(ref) and bool(value == ref):
            return False
    except Exception:
        return None
    return None


def _mutable_part(value) -> bool:
    return not isinstance(value, (*_NO_IDENTITY, tuple, frozenset)) and value is not None


def _identity_checks(args: list, kwargs: dict, passed: list, passed_kwargs: dict, value) -> list[dict]:
    """Checks of what a call returned against its arguments (issue 28, round 5): ``result is arg0`` /
    ``result is not arg0`` for an argument returned as is or as an equal copy, and for a list, tuple or dict
    copy whether its first mutable item is shared with the argument's (``result[1] is arg0[1]``: a shallow
    copy shares it, a deep one does not)."""
    found: list[dict] = []
    pairs = [(i, args[i], arg) for i, arg in enumerate(passed[:len(args)])]
    pairs += [(k, kwargs[k], arg) for k, arg in passed_kwargs.items() if k in kwargs]
    for where, _given, arg in pairs:
        same = _identity(value, arg)
        if same is None:
            continue
        found.append({"arg": where, "kind": "is", "same": same})
        if same or len(found) >= 4:
            continue
        try:
            if isinstance(arg, list | tuple):
                keys = [k for k in range(min(len(arg), len(value), 8)) if _mutable_part(arg[k])]
            elif isinstance(arg, dict):
                keys = [k for k in list(arg)[:8] if _mutable_part(arg[k]) and literal_ok(k)
                        and not isinstance(k, float) and k in value]
            else:
                keys = []
            if keys:
                k = keys[0]
                found.append({"arg": where, "kind": "item", "key": repr(k), "same": value[k] is arg[k]})
        except Exception:
            continue
    return found[:4]


def doctest_seeds(module) -> None:
    """Each object whose doctest passes in the sandbox becomes a candidate (existing examples as seeds)."""
    import doctest

    try:
        tests = doctest.DocTestFinder(exclude_empty=True).find(module)
    except Exception:
        return
    for test in tests:
        if not test.examples:
            continue
        qualified = test.name[len(module.__name__) + 1:] if test.name != module.__name__ else ""
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        test.globs = dict(vars(module))
        try:
            with time_limit(5.0), _quiet():
                result = runner.run(test, out=lambda _text: None)
        except BaseException:
            continue
        if result.failed == 0 and result.attempted:
            emit({"event": "doctest", "object": qualified, "examples": result.attempted})


def explore(cfg: dict, module, cov, baseline: list) -> None:
    options = cfg.get("explore", {})
    if options.get("observed", True):
        if options.get("round", 0) == 0 and options.get("doctests", True):
            doctest_seeds(module)
        explorer = Explorer(module, cfg, baseline)
        try:
            explorer.run()
        finally:
            emit({"event": "explorer_stats", "attempts": getattr(explorer, "attempts", {}),
                  "mutants_told_apart": len(explorer.killed),
                  "emitted": explorer.emitted, "errors": explorer.errors,
                  "tasks": getattr(explorer, "task_count", None),
                  "search_seconds": round(getattr(explorer, "started_search", 0.0), 2)})
    if options.get("ghostwriter", True) and options.get("round", 0) == 0:
        emit({"event": "ghostwriter", "text": _ghostwrite(module, float(options.get("ghost_seconds", 20)))})


# memory addresses and object ids inside a value (`<X object at 0x7f..>`, `id=140357702434512`): they change
# from run to run, so such a value is compared by its type only
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}|\bid=\d{6,}|\b\d{12,}\b")


def _describe_value(value) -> dict:
    if literal_ok(value):
        if _ADDRESS.search(repr(value)):
            return {"returns": None, "compare": "type", "type": type(value).__name__}
        if _has_float(value) and _flat_numbers(value):
            return {"returns": repr(value), "compare": "approx"}
        return {"returns": repr(value), "compare": "eq"}  # nested floats exactly: the two runs check it holds
    try:
        text = repr(value)
    except Exception:
        return {"returns": None, "compare": "none"}
    if " at 0x" in text or _ADDRESS.search(text) or len(text) > 300 or "\n" in text:
        return {"returns": None, "compare": "type", "type": type(value).__name__}
    if _rebuilds(value, text):  # `== datetime.date(2020, 2, 1)` reads better than comparing reprs
        return {"returns": text, "compare": "eq"}
    return {"returns": repr(text), "compare": "repr"}


_STDLIB_CALL = re.compile(r"^(datetime|decimal|fractions)\.[A-Za-z]+\([-\w ,.'+:=]*\)$")


def _rebuilds(value, text: str) -> bool:
    """True when ``text`` is a call of a stdlib value type (datetime, decimal, fractions) that builds an equal
    value of the same type, so a test can compare with it directly."""
    match = _STDLIB_CALL.match(text)
    if not match or type(value).__module__ != match.group(1):
        return False
    try:
        rebuilt = eval(text, {"__builtins__": {}, match.group(1): importlib.import_module(match.group(1))})
        return type(rebuilt) is type(value) and bool(rebuilt == value)
    except Exception:
        return False


def _ghostwrite(module, seconds: float) -> str:
    try:
        from hypothesis.extra import ghostwriter

        with time_limit(seconds):
            return ghostwriter.magic(module)
    except (Exception, TestTimeout) as error:
        return f"# ghostwriter failed: {_short(error)}\n"


# ---------------------------------------------------------------- main


def main() -> None:
    global RECORD
    with open(sys.argv[1], encoding="utf-8") as handle:
        cfg = json.load(handle)
    sys.dont_write_bytecode = True
    os.chdir(cfg["sandbox"])
    RECORD = open(os.path.join(cfg["sandbox"], cfg.get("record", "record.jsonl")), "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import coverage
    import hypothesis
    import pytest  # noqa: F401  (imported before the guard: its imports need no writes)
    from hypothesis.extra import ghostwriter  # noqa: F401

    hypothesis.settings.register_profile(
        "sandbox", deadline=None, database=None, derandomize=True, max_examples=50,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.reuse, hypothesis.Phase.generate])
    hypothesis.settings.load_profile("sandbox")
    import warnings

    warnings.filterwarnings("ignore", category=coverage.exceptions.CoverageWarning)
    cov = coverage.Coverage(data_file=None, branch=True, include=[cfg["target"]["file"]], config_file=False)
    install_guard(cfg["sandbox"])
    try:
        module, baseline = import_target(cfg["target"], cov)
    except BaseException as error:
        emit({"event": "import_error", "message": _short(error)})
        return
    emit({"event": "baseline", "arcs": baseline})
    if cfg["mode"] == "run":
        run_tests(cfg, cov)
    elif cfg["mode"] == "mutate":
        run_mutants(cfg, module)
    else:
        explore(cfg, module, cov, baseline)
        emit({"event": "done"})


if __name__ == "__main__":
    main()
