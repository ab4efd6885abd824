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
import typing

RECORD = None


class SandboxViolation(PermissionError):
    """Raised by the audit hook when sandboxed code tries something it may not."""


class TestTimeout(BaseException):
    """A single test or call ran past its time limit."""


def emit(event: dict) -> None:
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
    found: dict[type, list] = {int: [], str: [], float: []}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in found:
            value = node.value
            if isinstance(value, str) and (len(value) > 40 or ("\n" in value and len(value) > 10)):
                continue
            if value not in found[type(value)]:
                found[type(value)].append(value)
    for key in found:
        found[key] = found[key][:25]
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


class Callee:
    def __init__(self, label: str, func, owner=None, ctor=None):
        self.label, self.func, self.owner, self.ctor = label, func, owner, ctor


def public_callables(module) -> list[Callee]:
    callees: list[Callee] = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            callees.append(Callee(name, obj))
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            ctor = obj.__init__ if "__init__" in vars(obj) else None
            callees.append(Callee(name, obj, ctor=ctor))
            for mname, member in sorted(vars(obj).items()):
                if not mname.startswith("_") and inspect.isfunction(member):
                    callees.append(Callee(f"{name}.{mname}", member, owner=obj, ctor=ctor))
    return callees


def _signature_pools(func, consts, skip_self: bool) -> list[tuple[str, inspect.Parameter, list]] | None:
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
        if skip_self and index == 0:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        params.append((param.name, param, pool_for_param(param, hints.get(param.name), consts)))
    return params


def _choose(rng: random.Random, params, attempt: int) -> tuple[list, dict] | None:
    args: list = []
    kwargs: dict = {}
    for name, param, pool in params:
        optional = param.default is not inspect.Parameter.empty
        if optional and (attempt == 0 or rng.random() < 0.5):
            continue
        if not pool:
            return None
        value = pool[0] if attempt == 0 else rng.choice(pool)
        value = _copy(value)
        if param.kind == param.KEYWORD_ONLY or (optional and kwargs):
            kwargs[name] = value
        else:
            args.append(value)
    return args, kwargs


def _copy(value):
    return ast.literal_eval(repr(value))


def explore(cfg: dict, module, cov, baseline: list) -> None:
    options = cfg.get("explore", {})
    target_file = cfg["target"]["file"]
    rng = random.Random(options.get("seed", 0))
    seen = {tuple(a) for a in baseline}
    with open(target_file, encoding="utf-8") as handle:
        consts = module_constants(handle.read())
    deadline = time.monotonic() + float(options.get("seconds", 10))
    max_calls = int(options.get("max_calls", 150))
    patience = int(options.get("patience", 60))
    call_limit = float(options.get("call_timeout", 1.0))
    if options.get("observed", True):
        callees = public_callables(module)
        for callee in callees:
            func_params = _signature_pools(callee.func, consts, skip_self=callee.owner is not None)
            ctor_params = None
            if callee.owner is not None:
                ctor_params = _signature_pools(callee.ctor, consts, skip_self=True) if callee.ctor else []
                if ctor_params is None:
                    continue
            if func_params is None:
                continue
            idle = 0
            for attempt in range(max_calls):
                if time.monotonic() > deadline or idle >= patience:
                    break
                idle += 1
                chosen = _choose(rng, func_params, attempt)
                ctor_chosen = _choose(rng, ctor_params, attempt) if ctor_params is not None else None
                if chosen is None or (ctor_params is not None and ctor_chosen is None):
                    break
                args, kwargs = chosen
                record = {"event": "call", "callee": callee.label, "args": [repr(a) for a in args],
                          "kwargs": {k: repr(v) for k, v in kwargs.items()}}
                if ctor_chosen is not None:
                    record["ctor_args"] = [repr(a) for a in ctor_chosen[0]]
                    record["ctor_kwargs"] = {k: repr(v) for k, v in ctor_chosen[1].items()}
                tracer = ArcTracer(target_file)
                try:
                    with time_limit(call_limit), tracer:
                        if ctor_chosen is not None:
                            instance = callee.owner(*ctor_chosen[0], **ctor_chosen[1])
                            result = getattr(instance, callee.label.rpartition(".")[2])(*args, **kwargs)
                        else:
                            result = callee.func(*args, **kwargs)
                        if inspect.isgenerator(result):
                            result = list(result)
                            record["generator"] = True
                    outcome = ("return", result)
                except (TestTimeout, SandboxViolation, RecursionError):
                    continue
                except Exception as error:
                    outcome = ("raise", error)
                arcs = tracer.arcs
                new = arcs - seen
                if not new:
                    continue
                kind, value = outcome
                if kind == "raise":
                    exc_type = type(value)
                    if getattr(builtins, exc_type.__name__, None) is exc_type:
                        record["raises"] = exc_type.__name__
                    elif getattr(module, exc_type.__name__, None) is exc_type:
                        record["raises"] = f"{module.__name__}.{exc_type.__name__}"
                    else:
                        continue
                else:
                    record.update(_describe_value(value))
                seen |= new
                idle = 0
                emit(record)
    if options.get("ghostwriter", True):
        emit({"event": "ghostwriter", "text": _ghostwrite(module, float(options.get("ghost_seconds", 20)))})


def _describe_value(value) -> dict:
    if literal_ok(value):
        if _has_float(value) and _flat_numbers(value):
            return {"returns": repr(value), "compare": "approx"}
        if _has_float(value):
            return {"returns": None, "compare": "none"}
        return {"returns": repr(value), "compare": "eq"}
    try:
        text = repr(value)
    except Exception:
        return {"returns": None, "compare": "none"}
    if " at 0x" in text or len(text) > 300 or "\n" in text:
        return {"returns": None, "compare": "type", "type": type(value).__name__}
    return {"returns": repr(text), "compare": "repr"}


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
    else:
        explore(cfg, module, cov, baseline)
        emit({"event": "done"})


if __name__ == "__main__":
    main()
