"""Generated tests are code the user runs later: a target that forges the explorer's records cannot put code
into them (issue 22, item 6).

The target below writes its own records into the jailed harness' record file at import: calls, call sequences,
a doctest and a ghostwriter answer whose every text field carries a payload, guarded so that it fires only
outside the jail (it writes a marker into a host folder the jail does not show). On a version that pasted those
texts into the tests, the tests passed twice in the jail, were kept, and ``pytest`` on the host ran the payloads.
Here the generated file is run with plain pytest on the host, as a user would, and no payload may fire; the file
may do nothing but call the target.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from verticals_testgen.pipeline import Options, generate_tests
from verticals_testgen.target import from_source

# Each function returns a distinctive value only for an argument the explorer cannot guess (it is computed, not
# written in the source): forged records that pass it are the only ones that cover the function's last line.
FORGING_TARGET = '''
import sys

HOSTDIR = "__HOSTDIR__"


def _key(n):
    return int("79" + "19") + n


def f1(x):
    if x == _key(1):
        return "hit1"
    return None


def f2(x=0, y=0):
    if y == _key(2):
        return "hit2"
    return None


def f3(x):
    if x == _key(3):
        return "hit3"
    return None


class Box:
    def __init__(self, v=0):
        self.v = v

    def get(self, x=0):
        if self.v == _key(4):
            return "hit4"
        if x == _key(5):
            return "hit5"
        return None


def f6(x):
    if x == _key(6):
        return "hit6"
    return None


def f7(x):
    if x == _key(7):
        raise ValueError("hit7")
    return None


def f8(x):
    if x == _key(8):
        return "hit8"
    return None


def f9(x):
    if x == _key(9):
        return "hit9"
    return None


def _payload(tag, value):
    # in the jail the host folder is hidden, so this is just `value`; on the host it also writes a marker
    return (f"(__import__('pathlib').Path({HOSTDIR!r} + '/{tag}').write_text('pwned') and 0) + {value} "
            f"if __import__('os').path.isdir({HOSTDIR!r}) else {value}")


def _fires(tag):
    return (f"(__import__('os').path.isdir({HOSTDIR!r}) and "
            f"__import__('pathlib').Path({HOSTDIR!r} + '/{tag}').write_text('pwned'))")


def _forge():
    main = sys.modules.get("__main__")
    emit = getattr(main, "emit", None)
    if emit is None or getattr(main, "RECORD", None) is None or getattr(main, "FORGED", False):
        return  # imported by the user's own pytest on the host: forge nothing, do nothing
    main.FORGED = True  # once per jailed process (the explorer calls private functions too)
    emit({"event": "call", "callee": "f1", "args": [_payload("args", 7920)], "kwargs": {},
          "returns": "'hit1'", "compare": "eq"})
    emit({"event": "call", "callee": "f2", "args": [], "kwargs": {"y=" + _payload("kwarg_key", 7921) + ", x": "0"},
          "returns": "'hit2'", "compare": "eq"})
    emit({"event": "call", "callee": "f3", "args": ["7922"], "kwargs": {},
          "returns": "'hit3' if not " + _fires("returns") + " else 0", "compare": "eq"})
    emit({"event": "sequence", "callee": "Box", "ctor_args": [_payload("ctor", 7923)], "ctor_kwargs": {},
          "steps": [{"expr": "obj.get()", "name": "get", "returns": "'hit4'", "compare": "eq"}]})
    emit({"event": "sequence", "callee": "Box", "ctor_args": [], "ctor_kwargs": {},
          "steps": [{"expr": "obj.get(" + _payload("step", 7924) + ")", "name": "get", "kind": "method",
                     "args": ["7924"], "kwargs": {}, "returns": "'hit5'", "compare": "eq"}]})
    emit({"event": "call", "callee": "f6", "args": ["7925"], "kwargs": {}, "returns": "'hit6'",
          "compare": "type", "type": "str') if not " + _fires("type") + " else ('"})
    emit({"event": "call", "callee": "f7", "args": ["7926"], "kwargs": {},
          "raises": "ValueError if not " + _fires("raises") + " else KeyError"})
    emit({"event": "call", "callee": "f8(" + _payload("callee", 7927) + ") or f8", "args": ["1"], "kwargs": {},
          "returns": "'hit8'", "compare": "eq"})
    emit({"event": "doctest", "object": "f6, module=forging_target) if " + _fires("doctest")
          + " or True else finder.find(forging_target.f6", "examples": 0})
    ghost = ("import forging_target\\n"
             "MARK = __import__('pathlib').Path(" + repr(HOSTDIR) + " + '/ghost_preamble')\\n\\n"
             "def test_ghost():\\n"
             "    " + _fires("ghost") + "\\n"
             "    assert forging_target.f9(7928) == 'hit9'\\n")
    emit({"event": "ghostwriter", "text": ghost})


_forge()
'''

JUNK_TARGET = '''
import sys


def double(x):
    return 2 * x


def _forge():
    main = sys.modules.get("__main__")
    emit = getattr(main, "emit", None)
    if emit is None or getattr(main, "RECORD", None) is None or getattr(main, "FORGED", False):
        return
    main.FORGED = True
    for junk in (["not", "a", "dict"], "text", 7, None, {"event": "call"}, {"event": "call", "callee": 5},
                 {"event": "call", "callee": "double", "args": "1"}, {"event": "baseline", "arcs": "nonsense"},
                 {"event": "baseline", "arcs": [[1, "x"]]}, {"event": "sequence", "callee": "double", "steps": 3},
                 {"event": "result", "nodeid": 5, "outcome": "passed"}, {"event": "doctest", "object": None},
                 {"event": "ghostwriter", "text": ["x"]}):
        emit(junk)


_forge()
'''

@pytest.fixture(scope="module")
def forged(tmp_path_factory):
    hostdir = tmp_path_factory.mktemp("host-only")
    source = FORGING_TARGET.replace("__HOSTDIR__", str(hostdir))
    target = from_source(source, "forging_target")
    options = Options(strategies=("observed", "ghostwriter"), time_budget=40, explore_seconds=4, test_timeout=3)
    result = generate_tests([target], options)[0]
    return result, hostdir, source


def _calls(code: str) -> list[str]:
    return [ast.unparse(node.func) for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)]


def test_generated_file_run_on_the_host_fires_no_payload(forged, tmp_path):
    result, hostdir, source = forged
    assert result["test_code"], result["notes"]
    (tmp_path / "forging_target.py").write_text(source)
    (tmp_path / result["test_file"]).write_text(result["test_code"])
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", result["test_file"]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    fired = sorted(p.name for p in hostdir.iterdir())
    assert fired == [], (fired, result["test_code"])
    assert done.returncode == 0, done.stdout[-3000:]


def test_generated_file_does_nothing_but_call_the_target(forged):
    result, _, _ = forged
    code = result["test_code"]
    allowed_helpers = {"pytest.raises", "pytest.approx", "len", "list", "repr", "type", "str", "bool", "format",
                       "doctest.DocTestFinder", "doctest.DocTestRunner", "finder.find", "runner.run", "settings",
                       "given", "example"}
    for call in _calls(code):
        assert call.startswith("forging_target.") or call.startswith("st.") or call in allowed_helpers \
            or call.startswith("obj."), (call, code)
    tree = ast.parse(code)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"__import__", "eval", "exec", "getattr", "compile", "__builtins__", "open"}, code
    assert not [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("__")]


def test_malformed_records_are_dropped_not_fatal():
    target = from_source(JUNK_TARGET, "junk_target")
    options = Options(strategies=("observed", "ghostwriter"), time_budget=20, explore_seconds=2, test_timeout=3)
    result = generate_tests([target], options)[0]
    json.dumps(result)
    assert result["kept"] >= 1, result["notes"]
    assert "junk_target.double(" in result["test_code"]
