"""The AST allow-list every generated test passes before it is kept (issue 22, item 6).

Generated tests are code the user runs later, outside the jail. Whatever built them — the jailed explorer's
records, Hypothesis' ghostwriter run in the jail, a language model, Pynguin — is treated as hostile, so a test
file is kept only if everything it does is on this list:

- **imports**: the target module (and the packages on its dotted path), pytest, hypothesis and a few
  standard-library modules of plain values (``io``, ``datetime``, ``decimal``, ``collections``, ``math``...),
  each with the attributes it may use (``io.StringIO``, never ``io.open``; ``pathlib.PurePosixPath``, never
  ``pathlib.Path``); no ``os``, ``sys``, ``subprocess``, ``socket``, ``shutil``, ``importlib``...;
- **names**: no builtin outside a list of pure ones (no ``__import__``, ``eval``, ``exec``, ``compile``,
  ``open``, ``getattr``, ``vars``, ``globals``...), no dunder name;
- **attributes**: no dunder attribute except ``__name__``/``__qualname__``, no frame/traceback/generator
  internals (``f_globals``, ``tb_frame``, ``gi_frame``...), no format string that reads attributes, on the target
  module only what the target defines (``target.os`` is refused), on a ``pytest.raises(...) as info`` only
  ``value``/``type``/``match``;
- **strings that other code evaluates**: no string in an annotation or a typing subscript (type-hint resolution
  evaluates them), ``pytest.mark`` only ``parametrize`` (skipif/xfail evaluate string conditions),
  ``pickle.loads`` only of ``pickle.dumps(...)``, ``doctest`` only in the exact shape the observed strategy
  writes (the target's own docstrings, found from a target object);
- **fixtures**: a test's parameters come from ``@given``/``@pytest.mark.parametrize``/fixtures defined in the
  file, or ``capsys``; never ``request``, ``tmp_path``, ``monkeypatch``, ``pytestconfig``...;
- no ``global``/``nonlocal``, ``async``, ``yield``, ``match``, class keywords (metaclasses), star imports.

What a test reaches through the target's own namespace (``target.f(...)``, methods of its objects) is the
target's own API: it runs when the tests import the module anyway. Everything else is refused. The check is
static and conservative: a refused test is dropped (status ``rejected_code``), never repaired.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import re

# builtins a test may use: pure functions and value types (and every builtin exception class)
SAFE_BUILTINS = frozenset({
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "id", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord", "pow", "print",
    "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "type", "zip",
    "True", "False", "None", "NotImplemented", "Ellipsis", "staticmethod", "classmethod", "property",
}) | frozenset(name for name, value in vars(builtins).items()
               if isinstance(value, type) and issubclass(value, BaseException))

# module -> attributes a test may use ("*": every public attribute that is not a module, minus DENIED_ATTRS)
MODULES: dict[str, frozenset[str] | str] = {
    "pytest": frozenset({"raises", "approx", "mark", "warns", "param", "fail", "skip", "fixture",
                         "deprecated_call"}),
    "hypothesis": frozenset({"given", "settings", "strategies", "Phase", "HealthCheck", "example", "assume",
                             "note", "reject", "event", "target", "Verbosity"}),
    "hypothesis.strategies": "*",
    "math": "*", "cmath": "*", "itertools": "*", "datetime": "*", "decimal": "*", "collections.abc": "*",
    "copy": frozenset({"copy", "deepcopy"}),
    "pickle": frozenset({"dumps", "loads"}),  # loads only of pickle.dumps(...), below
    "operator": frozenset({"abs", "add", "and_", "concat", "contains", "eq", "floordiv", "ge", "gt", "iadd",
                           "iand", "iconcat", "ifloordiv", "ilshift", "imatmul", "imod", "imul", "index", "inv",
                           "invert", "ior", "ipow", "irshift", "isub", "itruediv", "ixor", "le", "lshift", "lt",
                           "matmul", "mod", "mul", "ne", "neg", "not_", "or_", "pos", "pow", "rshift", "sub",
                           "truediv", "truth", "xor", "itemgetter", "length_hint"}),
    "io": frozenset({"StringIO", "BytesIO"}),
    "fractions": frozenset({"Fraction"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "Counter", "deque", "ChainMap", "UserDict",
                              "UserList", "UserString", "namedtuple"}),
    "types": frozenset({"SimpleNamespace", "MappingProxyType"}),
    "pathlib": frozenset({"PurePath", "PurePosixPath", "PureWindowsPath"}),
    "enum": frozenset({"Enum", "IntEnum", "Flag", "IntFlag", "auto"}),
    "uuid": frozenset({"UUID"}),
    "dataclasses": frozenset({"make_dataclass"}),
    "doctest": frozenset({"DocTestFinder", "DocTestRunner", "ELLIPSIS", "NORMALIZE_WHITESPACE"}),
    "typing": frozenset({"Any", "Optional", "Union", "List", "Dict", "Set", "FrozenSet", "Tuple", "Callable",
                         "Iterable", "Iterator", "Sequence", "Mapping", "MutableMapping", "MutableSequence",
                         "Type", "Literal", "Generator", "Hashable", "Sized", "AbstractSet"}),
    "re": frozenset({"compile", "escape", "fullmatch", "match", "search", "findall", "finditer", "split", "sub",
                     "subn", "IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII", "I", "M", "S", "X", "A",
                     "Pattern", "Match", "error"}),
    "string": frozenset({"ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits",
                         "octdigits", "punctuation", "printable", "whitespace"}),
    "functools": frozenset({"reduce", "partial", "cmp_to_key"}),
    "json": frozenset({"dumps", "loads", "JSONDecodeError"}),
    "textwrap": frozenset({"dedent"}),
}
# attribute names never allowed on any object: frame, traceback, generator and code internals (no frame object is
# reachable, so neither are its globals nor pytest's Frame.eval), fixture and plugin machinery
DENIED_ATTRS = frozenset({
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "f_trace", "tb_frame", "tb_next", "gi_frame",
    "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "co_code", "co_consts",
    "func_globals", "func_code", "im_func", "im_self", "frame", "_excinfo", "getfixturevalue", "pluginmanager",
    "get_type_hints", "ForwardRef", "import_module",
})
# a format string that reads attributes or items of its arguments ("{0.__init__}", "{0[key]}")
_READING_FORMAT = re.compile(r"\{[^{}]*[.\[]")
ALLOWED_DUNDER_ATTRS = frozenset({"__name__", "__qualname__"})
EXCINFO_ATTRS = frozenset({"value", "type", "typename", "match", "errisinstance"})
SAFE_FIXTURES = frozenset({"capsys"})
GENERIC_NAMES = frozenset({"list", "dict", "set", "frozenset", "tuple", "type"})
# modules whose names a target may import without them becoming part of its API (`from os import system`)
_HOST_MODULES = frozenset({"os", "sys", "subprocess", "socket", "shutil", "builtins", "importlib", "ctypes", "pickle",
                           "marshal", "pty", "io", "pathlib", "signal", "multiprocessing", "threading", "code",
                           "codeop", "runpy", "webbrowser", "http", "urllib", "ftplib", "smtplib", "posix", "nt",
                           "tempfile", "glob", "asyncio", "select", "ssl", "sqlite3", "inspect", "gc", "types"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TargetNames:
    """What the target module defines, read from its source on the host (never by importing it)."""

    def __init__(self, name: str, source: str):
        self.name = name
        self.top: set[str] = set()  # module-level functions, classes, assignments, names from its own package
        self.classes: set[str] = set()
        self.members: set[str] = set()  # names defined in class bodies and attributes assigned on self/cls
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        root = name.partition(".")[0]
        node: ast.AST
        for node in _top_level(tree.body):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.top.add(node.name)
                if isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    self.top.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.ImportFrom):
                own = node.level > 0 or (node.module or "").partition(".")[0] == root
                if node.module and node.module.partition(".")[0] in _HOST_MODULES:
                    continue
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if alias.name != "*" and (own or bound[:1].isupper()):
                        self.top.add(bound)  # its own package's names; classes/constants of other libraries
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        self.members.add(item.name)
                    elif isinstance(item, ast.Assign | ast.AnnAssign):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        for target in targets:
                            self.members.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                self.members.add(node.attr)
        self.top = {n for n in self.top if not _dunder(n)}
        self.members = {n for n in self.members if not _dunder(n)}


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, also those inside top-level if/try/with blocks."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If | ast.Try | ast.With):
            inner = list(getattr(node, "body", [])) + list(getattr(node, "orelse", []))
            inner += list(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                inner += handler.body
            found += _top_level(inner)
    return found


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


@functools.cache
def _public_non_modules(module: str) -> frozenset[str]:
    """A "*" module's allowed attributes: public names whose values are not modules (``datetime.sys`` is not)."""
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        return frozenset()
    return frozenset(name for name, value in vars(loaded).items()
                     if not name.startswith("_") and not inspect.ismodule(value)) - DENIED_ATTRS


def module_attrs(module: str) -> frozenset[str]:
    allowed = MODULES[module]
    return _public_non_modules(module) if allowed == "*" else allowed  # type: ignore[return-value]


class _Checker:
    def __init__(self, target: TargetNames):
        self.target = target
        self.problems: list[str] = []
        self.modules: dict[str, str] = {}  # name -> dotted module it is bound to
        self.excinfo: set[str] = set()
        self.fixtures: set[str] = set()

    def fail(self, node: ast.AST, why: str) -> None:
        self.problems.append(f"line {getattr(node, 'lineno', '?')}: {why}")

    # ------------------------------------------------------------ modules

    def _module_ok(self, dotted: str) -> bool:
        target = self.target.name
        return (dotted in MODULES or dotted == target or target.startswith(dotted + "."))

    def import_(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not self._module_ok(alias.name):
                    self.fail(node, f"imports {alias.name}")
                    continue
                if alias.asname:
                    self.modules[alias.asname] = alias.name
                else:
                    self.modules[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
            return
        module = node.module or ""
        if node.level or not module:
            self.fail(node, "relative import")
            return
        if not self._module_ok(module) and module not in MODULES:
            self.fail(node, f"imports from {module}")
            return
        for alias in node.names:
            bound = alias.asname or alias.name
            dotted = f"{module}.{alias.name}"
            if alias.name == "*":
                self.fail(node, "star import")
            elif self._module_ok(dotted):
                self.modules[bound] = dotted
            elif module == self.target.name:
                if alias.name not in self.target.top:
                    self.fail(node, f"imports {alias.name} from the target, which does not define it")
            elif module in MODULES and alias.name in module_attrs(module):
                if bound in ("raises", "warns"):
                    self.fail(node, "import pytest and write pytest.raises")
            else:
                self.fail(node, f"imports {dotted}")

    # ------------------------------------------------------------ expressions

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted module a Name/Attribute chain denotes, or None when it is not a module."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if base is not None and self._module_ok(f"{base}.{node.attr}"):
                return f"{base}.{node.attr}"
        return None

    def attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if _dunder(attr) and attr not in ALLOWED_DUNDER_ATTRS:
            self.fail(node, f"dunder attribute {attr}")
            return
        if attr in DENIED_ATTRS:
            self.fail(node, f"attribute {attr}")
            return
        if attr in ("format", "format_map") and any(
                isinstance(n, ast.Constant) and isinstance(n.value, str) and _READING_FORMAT.search(n.value)
                for n in ast.walk(node.value)):
            self.fail(node, "a format string that reads attributes")
            return
        if isinstance(node.value, ast.Name) and node.value.id in self.excinfo and attr not in EXCINFO_ATTRS:
            self.fail(node, f"attribute {attr} of a pytest.raises result")
            return
        base = self.resolve(node.value)
        if base is None:
            return  # an attribute of an object: allowed, minus the names above
        dotted = f"{base}.{attr}"
        target = self.target.name
        if base == target:
            if attr not in self.target.top and not self._module_ok(dotted):
                self.fail(node, f"{dotted}: the target does not define {attr}")
        elif target.startswith(base + "."):
            if not (target == dotted or target.startswith(dotted + ".")):
                self.fail(node, f"{dotted} is not the target")
        elif base in MODULES:
            if attr not in module_attrs(base) and dotted not in MODULES:
                self.fail(node, f"{dotted} is not allowed")
            elif dotted == "pytest.mark" and not (isinstance(getattr(node, "parent", None), ast.Attribute)
                                                  and node.parent.attr == "parametrize"):  # type: ignore[attr-defined]
                self.fail(node, "pytest.mark other than parametrize")
        else:
            self.fail(node, f"{dotted} is not allowed")

    def name(self, node: ast.Name) -> None:
        ident = node.id
        if _dunder(ident) or ident.startswith("__"):
            self.fail(node, f"name {ident}")
        elif hasattr(builtins, ident) and ident not in SAFE_BUILTINS and ident not in self.modules:
            self.fail(node, f"builtin {ident}")

    def call(self, node: ast.Call) -> None:
        func = ast.unparse(node.func)
        resolved = self.resolve(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if resolved == "pickle" and isinstance(node.func, ast.Attribute) and node.func.attr == "loads":
            inner = node.args[0] if len(node.args) == 1 and not node.keywords else None
            if not (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
                    and inner.func.attr == "dumps" and self.resolve(inner.func.value) == "pickle"):
                self.fail(node, "pickle.loads of anything but pickle.dumps(...)")
        if resolved == "doctest" and not getattr(node, "in_doctest_template", False):
            self.fail(node, "doctest outside the observed strategy's doctest test")
        if func.endswith(".find") and getattr(node, "in_doctest_template", False):
            label = node.args[1] if len(node.args) == 2 else None
            if (self.target_reference(node.args[0]) is None
                    or not (isinstance(label, ast.Constant) and isinstance(label.value, str))
                    or [k.arg for k in node.keywords] != ["module"]
                    or self.target_reference(node.keywords[0].value) != self.target.name):
                self.fail(node, "doctest finder on something other than a target object")
        if any(k.arg == "indirect" for k in node.keywords):
            self.fail(node, "indirect parametrization (it routes values into fixtures)")

    def target_reference(self, node: ast.expr) -> str | None:
        """``target.A.B`` (a dotted path inside the target module) or None."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute) and self.resolve(node) != self.target.name:
            parts.insert(0, node.attr)
            node = node.value
        if self.resolve(node) != self.target.name or (parts and parts[0] not in self.target.top):
            return None
        return ".".join([self.target.name, *parts])

    def annotation(self, node: ast.expr | None) -> None:
        if node is None:
            return
        if any(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(node)):
            self.fail(node, "string annotation (type-hint resolution evaluates it)")

    def subscript(self, node: ast.Subscript) -> None:
        value = node.value
        generic = (isinstance(value, ast.Name) and value.id in GENERIC_NAMES) or (
            isinstance(value, ast.Attribute) and self.resolve(value.value) in ("typing", "collections.abc"))
        if generic and any(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(node.slice)):
            self.fail(node, "string inside a generic type (forward references are evaluated)")
        if any(isinstance(n, ast.Constant) and isinstance(n.value, str) and _dunder(n.value)
               for n in ast.walk(node.slice)):
            self.fail(node, "dunder key")

    # ------------------------------------------------------------ statements and functions

    def function(self, node: ast.FunctionDef, in_class: bool) -> None:
        """A test's (or fixture's) parameters: pytest injects a fixture for each one without a value source."""
        if not (node.name.startswith("test") or node.name in self.fixtures):
            self.annotations(node)
            return
        allowed: set[str] = set(self.fixtures) | SAFE_FIXTURES
        positional_given = 0
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            text = ast.unparse(call.func if call else decorator)
            if text.endswith("given") and call is not None:
                allowed.update(k.arg for k in call.keywords if k.arg)
                positional_given = len(call.args)
            elif text.endswith("parametrize") and call is not None and call.args:
                names = call.args[0]
                if isinstance(names, ast.Constant) and isinstance(names.value, str):
                    allowed.update(n.strip() for n in names.value.split(","))
                elif isinstance(names, ast.List | ast.Tuple):
                    allowed.update(e.value for e in names.elts if isinstance(e, ast.Constant)
                                   and isinstance(e.value, str))
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        if in_class and params and params[0].arg in ("self", "cls"):
            params = params[1:]
        if positional_given:
            allowed.update(p.arg for p in params[-positional_given:])
        for arg in params:
            if arg.arg not in allowed and not _has_default(node, arg):
                self.fail(node, f"parameter {arg.arg} (pytest would inject a fixture)")
        self.annotations(node)

    def annotations(self, node: ast.FunctionDef) -> None:
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                self.annotation(arg.annotation)
        self.annotation(node.returns)

    def check(self, tree: ast.Module) -> list[str]:
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node  # type: ignore[attr-defined]
        for node in ast.walk(tree):  # imports first: they bind the module names the rest is checked against
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.import_(node)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
                self.fixtures.add(node.name)
        _mark_doctest_template(tree, self.modules)
        for node in tree.body:
            if not isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef | ast.Assign
                              | ast.Expr):
                self.fail(node, f"{type(node).__name__} at module level")
            elif isinstance(node, ast.Expr) and not (isinstance(node.value, ast.Constant)
                                                     and isinstance(node.value.value, str)):
                self.fail(node, "expression at module level")
        for node in ast.walk(tree):
            if isinstance(node, ast.Global | ast.Nonlocal | ast.AsyncFunctionDef | ast.AsyncFor | ast.AsyncWith
                          | ast.Await | ast.Yield | ast.YieldFrom | ast.Match):
                self.fail(node, type(node).__name__)
            elif isinstance(node, ast.ClassDef):
                if node.keywords:
                    self.fail(node, "class keywords")
                for item in node.body:
                    if isinstance(item, ast.AnnAssign):
                        self.annotation(item.annotation)
            elif isinstance(node, ast.FunctionDef):
                self.function(node, in_class=isinstance(getattr(node, "parent", None), ast.ClassDef))
            elif isinstance(node, ast.AnnAssign):
                self.annotation(node.annotation)
            elif isinstance(node, ast.With):
                for with_item in node.items:
                    context = with_item.context_expr
                    text = ast.unparse(context.func) if isinstance(context, ast.Call) else ""
                    bound = with_item.optional_vars
                    if isinstance(bound, ast.Name) and text.rpartition(".")[2] in ("raises", "warns"):
                        self.excinfo.add(bound.id)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                self.name(node)
            elif isinstance(node, ast.Attribute):
                self.attribute(node)
            elif isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Subscript):
                self.subscript(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and isinstance(
                    getattr(node, "parent", None), ast.keyword) and node.parent.arg in (  # type: ignore[attr-defined]
                        "globs", "extraglobs"):
                self.fail(node, "doctest globals")
        return self.problems


def _has_default(func: ast.FunctionDef, arg: ast.arg) -> bool:
    positional = [*func.args.posonlyargs, *func.args.args]
    if arg in positional:
        return positional.index(arg) >= len(positional) - len(func.args.defaults)
    if arg in func.args.kwonlyargs:
        return func.args.kw_defaults[func.args.kwonlyargs.index(arg)] is not None
    return False


DOCTEST_TEMPLATE = """
def test_x():
    finder = doctest.DocTestFinder(recurse=RECURSE)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(OBJECT, LABEL, module=MODULE):
        runner.run(test, out=lambda text: None)
    assert runner.failures == 0
    assert runner.tries == TRIES
"""


def doctest_test(name: str, obj: str, label: str, module: str, recurse: bool, tries: int) -> str:
    """The one doctest test the observed strategy writes: the target's own docstring examples of ``obj``."""
    return (DOCTEST_TEMPLATE.replace("test_x", name).replace("RECURSE", repr(recurse)).replace("OBJECT", obj)
            .replace("LABEL", repr(label)).replace("MODULE", module).replace("TRIES", str(int(tries))).strip())


def _shape(func: ast.FunctionDef) -> str:
    """The function's AST with its name, the object, label, module and counts blanked out."""
    clone = ast.parse(ast.unparse(func)).body[0]
    assert isinstance(clone, ast.FunctionDef)
    clone.name = "test_x"
    for node in ast.walk(clone):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "find":
            blanks: list[ast.expr] = [ast.Name("OBJECT"), ast.Name("LABEL")]
            node.args = blanks[:len(node.args)]
            node.keywords = [ast.keyword("module", ast.Name("MODULE")) if k.arg == "module" else k
                             for k in node.keywords]
        elif isinstance(node, ast.keyword) and node.arg == "recurse":
            node.value = ast.Name("RECURSE")
        elif isinstance(node, ast.Compare) and ast.unparse(node.left) == "runner.tries":
            node.comparators = [ast.Name("TRIES")]
    return ast.dump(clone)


@functools.cache
def _template_shape() -> str:
    func = ast.parse(DOCTEST_TEMPLATE).body[0]
    assert isinstance(func, ast.FunctionDef)
    return _shape(func)


def _mark_doctest_template(tree: ast.Module, modules: dict[str, str]) -> None:
    """Mark the calls inside functions that have exactly the doctest template's shape."""
    if "doctest" not in modules.values():
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and "doctest" in ast.unparse(node) and _shape(node) == _template_shape():
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    inner.in_doctest_template = True  # type: ignore[attr-defined]


def check_test_code(code: str, target: str | TargetNames, target_source: str = "") -> list[str]:
    """Problems that keep ``code`` (a test file or one candidate test) from being kept; [] when it is allowed."""
    names = target if isinstance(target, TargetNames) else TargetNames(target, target_source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as error:
        return [f"does not parse: {type(error).__name__}"]
    return _Checker(names).check(tree)


def identifier(text: object) -> bool:
    return isinstance(text, str) and bool(_IDENT.match(text)) and not _dunder(text)
