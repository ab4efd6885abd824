"""The AST allow-list that every kept test passes: ways to run code from a test file other than calling the target.

Each refused snippet below is a test that could pass in the jail and do something else on the user's machine;
each allowed snippet is a shape the strategies write. The end-to-end attack (a target forging the explorer's
records, its tests then run by pytest on the host) is tests/test_forged_events.py.
"""

from __future__ import annotations

import textwrap

import pytest
from verticals_testgen.allowlist import TargetNames, check_test_code
from verticals_testgen.render import Renderer, clean_events

TARGET_SOURCE = '''
import os
from os import system
from .errors import ParseError

class Parser:
    LIMIT = 3

    def __init__(self, text=""):
        self.text = text

    def parse(self):
        return self.text.split()

    @staticmethod
    def of(text):
        return Parser(text)

def parse(text):
    return Parser(text).parse()

def _helper(x):
    return x
'''
NAMES = TargetNames("pkg.target", TARGET_SOURCE)

REFUSED = {
    "dunder import": "def test_x():\n    __import__('os').system('id')",
    "eval": "def test_x():\n    eval('1')",
    "getattr": "def test_x():\n    getattr(pkg.target, 'os').system('id')",
    "open": "def test_x():\n    open('/etc/passwd').read()",
    "vars": "def test_x():\n    vars(pkg.target)['os'].system('id')",
    "os import": "import os\ndef test_x():\n    os.system('id')",
    "subprocess from": "from subprocess import run\ndef test_x():\n    run(['id'])",
    "target's imported module": "import pkg.target\ndef test_x():\n    pkg.target.os.system('id')",
    "target's imported function": "import pkg.target\ndef test_x():\n    pkg.target.system('id')",
    "sibling module": "import pkg.target\ndef test_x():\n    pkg.other.run()",
    "subclasses": "def test_x():\n    ().__class__.__base__.__subclasses__()",
    "globals of a function": "def test_x():\n    pkg.target.parse.__globals__['os']",
    "frame of a raises": ("import pytest\ndef test_x():\n    with pytest.raises(ValueError) as info:\n"
                          "        pkg.target.parse(None)\n    info.traceback[-1].frame.eval('1')"),
    "traceback of a raises": ("import pytest\ndef test_x():\n    with pytest.raises(ValueError) as info:\n"
                              "        pkg.target.parse(None)\n    info.tb"),
    "str.format reads attributes": "def test_x():\n    '{0.__init__}'.format(pkg.target.Parser())",
    "skipif evaluates its string": "import pytest\n@pytest.mark.skipif(\"__import__('os')\", reason='x')\n"
                                   "def test_x():\n    pass",
    "string annotation": "from hypothesis import given, strategies as st\ndef build(x: \"__import__('os')\"):\n"
                         "    return x\n@given(st.builds(build))\ndef test_x(v):\n    pass",
    "forward reference": "import typing\nfrom hypothesis import given, strategies as st\n"
                         "@given(st.from_type(typing.List[\"__import__('os')\"]))\ndef test_x(v):\n    pass",
    "pickle of bytes": "import pickle\ndef test_x():\n    pickle.loads(b'cos\\nsystem\\n(S\"id\"\\ntR.')",
    "doctest of a crafted docstring": ("import doctest\ndef helper():\n    '''\n    >>> 1\n    1\n    '''\n"
                                       "def test_x():\n    finder = doctest.DocTestFinder(recurse=False)\n"
                                       "    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | "
                                       "doctest.NORMALIZE_WHITESPACE)\n"
                                       "    for test in finder.find(helper, 'helper', module=pkg.target):\n"
                                       "        runner.run(test, out=lambda text: None)\n"
                                       "    assert runner.failures == 0\n    assert runner.tries == 1"),
    "a module the stdlib one imports": "import datetime\ndef test_x():\n    datetime.sys.modules['os']",
    "fixture injection": "def test_x(tmp_path):\n    (tmp_path.parent.parent / 'x').write_text('y')",
    "request fixture": "def test_x(request):\n    request.config.pluginmanager",
    "indirect parametrization": ("import pytest\n@pytest.mark.parametrize('tmp_path', [1], indirect=True)\n"
                                 "def test_x(tmp_path):\n    pass"),
    "module-level code": "import pkg.target\npkg.target.parse('x')\ndef test_x():\n    pass",
    "global": "def test_x():\n    global X\n    X = 1",
    "star import": "from pkg.target import *\ndef test_x():\n    system('id')",
    "pathlib.Path": "import pathlib\ndef test_x():\n    pathlib.Path('/tmp/x').write_text('y')",
    "dunder key": "def test_x():\n    pkg.target.__dict__['__builtins__']",
    "metaclass": "class T(metaclass=type):\n    pass\ndef test_x():\n    pass",
}

ALLOWED = {
    "observed call": "import pkg.target\ndef test_x():\n    assert pkg.target.parse('a b') == ['a', 'b']",
    "sequence": ("import pkg.target\ndef test_x():\n    obj = pkg.target.Parser('a')\n    obj.text = 'b c'\n"
                 "    assert obj.parse() == ['b', 'c']\n    assert type(obj).__name__ == 'Parser'"),
    "raises with match": ("import pytest\nimport pkg.target\ndef test_x():\n"
                          "    with pytest.raises(AttributeError, match='split') as info:\n"
                          "        pkg.target.parse(None)\n    assert 'split' in str(info.value)"),
    "approx and values": ("import datetime\nimport io\nimport pytest\nimport pkg.target\ndef test_x():\n"
                          "    assert pkg.target._helper(0.1 + 0.2) == pytest.approx(0.3)\n"
                          "    assert pkg.target._helper(io.StringIO('x')).read() == 'x'\n"
                          "    assert pkg.target._helper(datetime.date(2020, 1, 2)).year == 2020"),
    "ghostwriter": ("from hypothesis import given, settings, Phase, strategies as st\nimport pkg.target\n"
                    "@settings(max_examples=5, database=None, phases=[Phase.explicit, Phase.generate])\n"
                    "@given(text=st.text())\ndef test_fuzz_parse(text: str) -> None:\n    pkg.target.parse(text=text)"),
    "parametrize": ("import pytest\nfrom pkg.target import parse\n@pytest.mark.parametrize('text, n', [('a', 1)])\n"
                    "def test_x(text, n):\n    assert len(parse(text)) == n"),
    "pickling round trip": ("import pickle\nimport pkg.target\ndef test_x():\n"
                            "    obj = pkg.target.Parser('a')\n    assert pickle.loads(pickle.dumps(obj)).text == 'a'"),
    "exception imported by the target": ("import pytest\nimport pkg.target\ndef test_x():\n"
                                         "    with pytest.raises(pkg.target.ParseError):\n"
                                         "        pkg.target.parse(1)"),
    "capsys": "import pkg.target\ndef test_x(capsys):\n    pkg.target.parse('x')\n    capsys.readouterr()",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name):
    problems = check_test_code(textwrap.dedent(REFUSED[name]), NAMES)
    assert problems, name


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_allowed(name):
    assert check_test_code(ALLOWED[name], NAMES) == [], name


def test_doctest_only_in_the_template_shape():
    from verticals_testgen.allowlist import doctest_test

    code = "import doctest\nimport pkg.target\n\n" + doctest_test("test_parse_doctest", "pkg.target.parse", "parse",
                                                                   "pkg.target", False, 2)
    assert check_test_code(code, NAMES) == []
    assert check_test_code(code.replace("runner.failures == 0", "runner.failures == 0 or runner.run(test)"), NAMES)


def test_renderer_rebuilds_values_from_their_parsed_form():
    renderer = Renderer("pkg.target", TARGET_SOURCE)
    assert renderer.value("'a' 'b'") == "'ab'"  # the real value, re-rendered
    assert renderer.value("(1, -2.5, {'k': [b'x']})") == "(1, -2.5, {'k': [b'x']})"
    assert renderer.value("pkg.target.Parser('x')") == "pkg.target.Parser('x')"
    assert renderer.value("pkg.target.Parser.of('x').text") == "pkg.target.Parser.of('x').text"
    assert renderer.value("io.StringIO('x')") == "io.StringIO('x')"
    objects = "[pkg.target.Parser(), pkg.target.Parser(1)]"
    assert renderer.value(objects) == objects
    assert renderer.value("pkg.target.Parser(1, text={'a': (2,)})") == "pkg.target.Parser(1, text={'a': (2,)})"
    for partly in ("pkg.target.Parser(text=open('x'))", "pkg.target.Parser(**{'text': 1})", "{1, (2, open('x'))}",
                   "{'k': open('x')}", "[1, pkg.target.system('id')]"):
        assert renderer.value(partly) is None, partly  # one part that cannot be rendered rejects the whole
    for hostile in ("__import__('os').system('id')", "pkg.target.os.system('id')", "pkg.target.system('id')",
                    "io.open('/etc/passwd')", "pkg.target.Parser(open('x'))", "(lambda: 1)()", "x := 1",
                    "pkg.target.Parser('x').__class__", "1) or (2", "pkg.target.parse(*[1])", "f'{1}'"):
        assert renderer.value(hostile) is None, hostile
    assert renderer.callee("Parser.parse") == "pkg.target.Parser.parse"
    assert renderer.callee("system") is None and renderer.callee("parse(1) or parse") is None
    assert renderer.raises("ValueError") == "ValueError" and renderer.raises("pkg.target.ParseError")
    assert renderer.raises("ValueError if 1 else KeyError") is None and renderer.raises("print") is None


def test_records_with_unexpected_shapes_are_dropped():
    good = {"event": "call", "callee": "parse", "args": ["'x'"], "kwargs": {}, "returns": "['x']", "compare": "eq"}
    junk = [["x"], "x", None, 3, {"event": "call"}, {"event": "call", "callee": 1, "args": []},
            {"event": "baseline", "arcs": [[1, "2"]]}, {"event": "result", "nodeid": "a", "outcome": "hacked"},
            {**good, "compare": "exec"}, {**good, "kwargs": {"a": 1}}, {"event": "unknown"}]
    assert clean_events([*junk, good]) == [good]


def test_bare_asserts_of_a_generated_file_become_one_test():
    from verticals_testgen.candidates import split_tests

    code = "import pkg.target\nassert pkg.target.parse('1') == 1\nassert pkg.target.parse('2') == 2\n"
    [candidate] = split_tests(code, "llm", "pkg.target", TARGET_SOURCE, "llm")
    assert candidate.name == "test_llm_0" and candidate.body.count("assert ") == 2
    assert candidate.body.startswith("def test_llm_0():")
