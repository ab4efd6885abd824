"""What comes out of the jail is hostile bytes: records are checked field by field, values are rendered, never
pasted (issue 22, item 6).

The jailed harness writes one JSON record per line, but the target runs in the same process and can write
records of its own. So on the host:

- :func:`clean_events` keeps only records of a known kind whose fields have the expected types and sizes
  (anything else is dropped, never fatal);
- :class:`Renderer` turns a record into test source only through parsing: every value text is parsed as a Python
  expression, a literal becomes the ``repr`` of the real value it denotes (``ast.literal_eval``), and a value that
  is not a literal is kept only when it is built from allowed parts (calls of the target's own functions and
  classes, a fixed list of standard-library value constructors such as ``io.StringIO`` and
  ``datetime.date``, and the harness' own fixed expressions) — anything else drops the whole record. Names
  (callees, methods, exception types, doctest objects) must be identifiers the target's source defines; the
  statement around them comes from a template on the host.

The composed tests then also pass the AST allow-list (:mod:`verticals_testgen.allowlist`) before they are kept.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import re
from typing import Any

from verticals_testgen import harness
from verticals_testgen.allowlist import TargetNames, identifier

MAX_TEXT = 4000  # characters of one value text
MAX_CODE = 200_000  # characters of a ghostwriter answer
MAX_ARCS = 200_000
MAX_LIST = 64  # arguments, steps
STATE_LIMIT = harness.STATE_ATTRIBUTES + 2  # checks of a returned object's state: attributes, repr, len
OUTCOMES = {"passed", "failed", "skipped", "error"}
STEP_KINDS = frozenset({"method", "attr", "len", "iter", "contains", "getitem", "call", "str", "repr", "bool",
                        "eq", "setitem", "delitem", "setattr", "binary", "unary", "rbinary", "format", "inplace"})
COMPARES = frozenset({"eq", "approx", "repr", "type", "none"})
# standard-library value constructors a value may call (with values as arguments)
CONSTRUCTORS = frozenset({
    "io.StringIO", "io.BytesIO", "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "collections.OrderedDict",
    "collections.defaultdict", "collections.Counter", "collections.deque", "collections.ChainMap",
    "collections.UserDict", "collections.UserList", "collections.UserString", "types.SimpleNamespace",
    "types.MappingProxyType", "pathlib.PurePosixPath", "pathlib.PureWindowsPath", "uuid.UUID", "frozenset",
    "bytearray", "slice", "set", "complex",
})
CONSTANTS = frozenset({"datetime.timezone.utc"})
_REGEX_SPECIAL = re.compile(r"[.^$*+?{}\[\]\\|()]")  # what a pattern must escape (re.escape also escapes spaces)
TYPE_NAMES = frozenset({"list", "int", "str", "dict", "set", "tuple", "float", "bytes", "bool", "frozenset"})


_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")  # a name or an attribute read: read twice, not called


def _match(message: object) -> str:
    """``, match=...`` for ``pytest.raises``/``pytest.warns`` when the message reads as plain text: anchored, so
    that a changed message does not match; only the start of a long one."""
    if not (isinstance(message, str) and message.strip() and message.isascii() and message.isprintable()):
        return ""
    pattern = "^" + _REGEX_SPECIAL.sub(r"\\\g<0>", message[:60]) + ("$" if len(message) <= 60 else "")
    return f", match={pattern!r}"


# ---------------------------------------------------------------- records


def _text(value: object, limit: int = MAX_TEXT) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _texts(value: object) -> bool:
    return isinstance(value, list) and len(value) <= MAX_LIST and all(_text(v) for v in value)


def _text_map(value: object) -> bool:
    return (isinstance(value, dict) and len(value) <= MAX_LIST
            and all(_text(k, 200) and _text(v) for k, v in value.items()))


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _arcs(value: object) -> bool:
    return isinstance(value, list) and len(value) <= MAX_ARCS and all(
        isinstance(a, list) and len(a) == 2 and _int(a[0]) and _int(a[1]) for a in value)


def _described(record: dict) -> bool:
    """The optional outcome fields of a call or a step."""
    return ((record.get("returns") is None or _text(record["returns"]))
            and record.get("compare", "none") in COMPARES
            and (record.get("type") is None or _text(record["type"], 200))
            and (record.get("raises") is None or _text(record["raises"], 200))
            and (record.get("message") is None or _text(record["message"], 200))
            and _warning(record) and isinstance(record.get("generator", False), bool)
            and record.get("same") in (None, True, False))


def _warning(record: dict) -> bool:
    """The optional warning fields of a call or a constructor (``pytest.warns``)."""
    return ((record.get("warns") is None or _text(record["warns"], 200))
            and (record.get("warn_message") is None or _text(record["warn_message"], 200)))


def _printed(record: dict) -> bool:
    """The optional output fields of a call or a sequence (``capsys``): the reprs of what it printed."""
    return all(record.get(key) is None or _text(record[key], 4 * harness.MAX_PRINTED + 2)
               for key in ("prints", "prints_err"))


def _kills(record: dict) -> bool:
    """The optional hint of a targeted round: the mutant indexes an input told apart (only used to order runs)."""
    kills = record.get("kills", [])
    return isinstance(kills, list) and len(kills) <= MAX_LIST and all(_int(k) and k >= 0 for k in kills)


def _after(record: dict) -> bool:
    """The optional argument checks of a call: ``{arg: position or keyword, kind: getvalue | value | is | item,
    ...}`` (``is``/``item``: whether the result, or its item ``key``, is the argument's own object: ``same``)."""
    after = record.get("after", [])
    return isinstance(after, list) and len(after) <= 8 and all(
        isinstance(a, dict) and a.get("kind") in ("getvalue", "value", "is", "item") and _described(a)
        and (a.get("key") is None or _text(a["key"], 200))
        and (a.get("kind") not in ("is", "item") or isinstance(a.get("same"), bool))
        and ((_int(a.get("arg")) and 0 <= a["arg"] < MAX_LIST) or (isinstance(a.get("arg"), str)
                                                                   and identifier(a["arg"])))
        for a in after)


def _step(step: object, nested: bool = False) -> bool:
    """A call-sequence step; ``value_state``: the attribute and ``len`` reads of the object it returned (no
    deeper)."""
    if not (isinstance(step, dict) and step.get("kind") in STEP_KINDS and _text(step.get("name", ""), 200)
            and _texts(step.get("args", [])) and _text_map(step.get("kwargs", {})) and _described(step)):
        return False
    state = step.get("value_state")
    if state is None:
        return True
    return (not nested and isinstance(state, list) and len(state) <= STATE_LIMIT
            and all(_step(s, nested=True) and s.get("kind") in ("attr", "len") for s in state))


_SCHEMAS = {
    "baseline": lambda e: _arcs(e.get("arcs")),
    "import_error": lambda e: _text(e.get("message")),
    "start": lambda e: _text(e.get("nodeid"), 500),
    "result": lambda e: (_text(e.get("nodeid"), 500) and e.get("outcome") in OUTCOMES
                         and _text(e.get("message", "")) and _arcs(e.get("arcs", [])) and _number(e.get("seconds", 0))),
    "collect_error": lambda e: _text(e.get("nodeid"), 500) and _text(e.get("message", "")),
    "done": lambda e: _int(e.get("exit_code", 0)),
    "call": lambda e: (_text(e.get("callee"), 200) and _texts(e.get("args")) and _text_map(e.get("kwargs", {}))
                       and _described(e) and isinstance(e.get("state", []), list)
                       and len(e.get("state", [])) <= STATE_LIMIT
                       and all(_step(s) for s in e.get("state", [])) and _kills(e) and _after(e) and _printed(e)),
    "sequence": lambda e: (_text(e.get("callee"), 200) and _texts(e.get("ctor_args"))
                           and _text_map(e.get("ctor_kwargs", {})) and isinstance(e.get("steps"), list)
                           and len(e["steps"]) <= MAX_LIST and all(_step(s) for s in e["steps"]) and _kills(e)
                           and _warning(e) and _printed(e)),
    "doctest": lambda e: _text(e.get("object"), 200) and _int(e.get("examples")) and 0 <= e["examples"] <= 10_000,
    "ghostwriter": lambda e: _text(e.get("text"), MAX_CODE),
    "explorer_error": lambda e: _text(e.get("message")),
    "explorer_stats": lambda e: True,
    "mutant": lambda e: (_int(e.get("id")) and e.get("outcome") in {"killed", "survived", "timeout", "error",
                                                                     "no_tests"}
                         and (e.get("by") is None or _text(e.get("by"), 500)) and _number(e.get("seconds", 0))),
    "mutation_start": lambda e: _int(e.get("mutants")),
}


def clean_events(events: list[Any]) -> list[dict[str, Any]]:
    """The records of a jailed run that have a known kind and well-typed fields; the rest is dropped."""
    kept = []
    for event in events:
        if not isinstance(event, dict):
            continue
        check = _SCHEMAS.get(event.get("event"))  # type: ignore[arg-type]
        try:
            if check is not None and check(event):
                kept.append(event)
        except (TypeError, ValueError, AttributeError):
            continue
    return kept


# ---------------------------------------------------------------- values


@functools.cache
def _fixed_expressions() -> frozenset[str]:
    """The harness' own non-literal values that the grammar below does not describe (self-referencing
    containers, dataclass/namedtuple/enum instances), by AST: allowed exactly as the harness writes them."""
    codes = [e.code for e in harness._NESTED if isinstance(e, harness.Expr)]
    codes += [code for values in harness._TYPED_VALUES.values() for code in values]
    codes += list(harness._SLICES)
    return frozenset(ast.dump(ast.parse(code, mode="eval").body) for code in codes)


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *parts])


def _present(nodes: list[ast.expr | None]) -> list[ast.expr] | None:
    """The nodes, or None when one of them could not be rendered."""
    kept = [node for node in nodes if node is not None]
    return kept if len(kept) == len(nodes) else None


class Renderer:
    """Test source for one target's records, built only from parsed, checked parts."""

    def __init__(self, name: str, source: str):
        self.module = name
        self.names = TargetNames(name, source)

    # ------------------------------------------------------------ references

    def reference(self, dotted: str) -> bool:
        """``target.A`` or ``target.A.b...``: A defined at the target's top level, the rest defined in its classes."""
        if not dotted.startswith(self.module + "."):
            return False
        parts = dotted[len(self.module) + 1:].split(".")
        return (all(identifier(p) for p in parts) and parts[0] in self.names.top
                and all(p in self.names.members for p in parts[1:]))

    def callee(self, label: str) -> str | None:
        """A function, class or ``Class.method`` the target defines, as ``target.label``."""
        dotted = f"{self.module}.{label}"
        return dotted if self.reference(dotted) else None

    def raises(self, text: str) -> str | None:
        if identifier(text) and isinstance(getattr(builtins, text, None), type) and issubclass(
                getattr(builtins, text), BaseException):
            return text
        return text if self.reference(text) and text.count(".") == self.module.count(".") + 1 else None

    # ------------------------------------------------------------ values

    def value(self, text: str) -> str | None:
        """The source of the value ``text`` denotes, rebuilt from its parsed form; None when it is not allowed."""
        if not _text(text):
            return None
        try:
            node = ast.parse(text, mode="eval").body
            rebuilt = self._value(node, 0)
            return None if rebuilt is None else ast.unparse(rebuilt)
        except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError):
            return None

    def literal(self, text: str) -> tuple[str, object] | None:
        """(repr, value) of a literal text; None when it is not one."""
        if not _text(text):
            return None
        try:
            value = ast.literal_eval(text)
            rendered = repr(value)
        except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
            return None
        return (rendered, value) if len(rendered) <= MAX_TEXT else None

    def _value(self, node: ast.expr, depth: int) -> ast.expr | None:
        if depth > 12:
            return None
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        else:
            rendered = repr(value)
            return ast.parse(rendered, mode="eval").body if len(rendered) <= MAX_TEXT else None
        if ast.dump(node) in _fixed_expressions():
            return node
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            elts = _present([self._value(e, depth + 1) for e in node.elts])
            if elts is None:
                return None
            if isinstance(node, ast.Set):
                return ast.Set(elts=elts)
            return type(node)(elts=elts, ctx=ast.Load())
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                return None
            keys = _present([self._value(k, depth + 1) for k in node.keys if k is not None])
            values = _present([self._value(v, depth + 1) for v in node.values])
            if keys is None or values is None:
                return None
            return ast.Dict(keys=[*keys], values=values)
        if isinstance(node, ast.Name):
            return node if node.id in TYPE_NAMES else None
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted is not None and (dotted in CONSTANTS or self.reference(dotted)):
                return ast.parse(dotted, mode="eval").body
            if isinstance(node.value, ast.Call) and identifier(node.attr) and node.attr in self.names.members:
                inner = self._value(node.value, depth + 1)
                return None if inner is None else ast.Attribute(value=inner, attr=node.attr, ctx=ast.Load())
            return None
        if isinstance(node, ast.Call):
            func: ast.expr | None
            dotted = _dotted(node.func)
            if dotted is not None and (dotted in CONSTRUCTORS or self.reference(dotted)):
                func = ast.parse(dotted, mode="eval").body
            elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Call) and identifier(
                    node.func.attr) and node.func.attr in self.names.members:
                inner = self._value(node.func.value, depth + 1)
                func = None if inner is None else ast.Attribute(value=inner, attr=node.func.attr, ctx=ast.Load())
            else:
                func = None
            if func is None or any(isinstance(a, ast.Starred) for a in node.args):
                return None
            args = _present([self._value(a, depth + 1) for a in node.args])
            keyword_values = _present([self._value(k.value, depth + 1) for k in node.keywords])
            if args is None or keyword_values is None or not all(identifier(k.arg) for k in node.keywords):
                return None
            return ast.Call(func=func, args=args, keywords=[
                ast.keyword(arg=k.arg, value=v) for k, v in zip(node.keywords, keyword_values, strict=True)])
        return None

    def arguments(self, args: list[str], kwargs: dict[str, str]) -> tuple[list[str], dict[str, str]] | None:
        rendered = [self.value(a) for a in args]
        named = {k: self.value(v) for k, v in kwargs.items()}
        if any(v is None for v in rendered) or any(not identifier(k) or v is None for k, v in named.items()):
            return None
        return rendered, named  # type: ignore[return-value]

    # ------------------------------------------------------------ checks and steps

    def check(self, expr: str, record: dict[str, Any]) -> list[str] | None:
        """The lines that check one observed outcome of ``expr`` (itself built here)."""
        if record.get("raises") is not None:
            raised = self.raises(record["raises"])
            if raised is None:
                return None
            return [f"with pytest.raises({raised}{_match(record.get('message'))}):", f"    {expr}"]
        compare = record.get("compare", "none")
        returns = record.get("returns")
        if compare == "eq" and returns is not None:
            value = self.value(returns)
            if value is None:
                return None
            if value in ("True", "False", "None"):
                return [f"assert {expr} is {value}"]
            if harness.pins_int(value) and not expr.startswith("len("):
                # `5 == 5.0`: the type tells apart a result that became a float (`*` -> `/`) or a bool
                if not _DOTTED.match(expr):  # a call is made once: its result is named first
                    name = "value" if self.module.partition(".")[0] != "value" else "value_"
                    return [f"{name} = {expr}", f"assert {name} == {value}", f"assert type({name}) is int"]
                return [f"assert {expr} == {value}", f"assert type({expr}) is int"]
            return [f"assert {expr} == {value}"]
        if compare == "approx" and returns is not None:
            literal = self.literal(returns)
            if literal is None or not harness._flat_numbers(literal[1]):
                return None
            return [f"assert {expr} == pytest.approx({literal[0]})"]
        if compare == "repr" and returns is not None:
            literal = self.literal(returns)
            if literal is None or not isinstance(literal[1], str):
                return None
            return [f"assert repr({expr}) == {literal[0]}"]
        if compare == "type":
            kind = record.get("type")
            if not (isinstance(kind, str) and kind.isidentifier()):
                return None
            return [f"assert type({expr}).__name__ == {kind!r}"]
        return [expr]

    def printed(self, record: dict[str, Any]) -> list[str] | None:
        """The ``capsys`` checks of what a call or a sequence printed ([] when nothing is recorded)."""
        texts = {}
        for key, stream in (("prints", "out"), ("prints_err", "err")):
            if record.get(key) is None:
                continue
            literal = self.literal(record[key])
            if literal is None or not isinstance(literal[1], str):
                return None
            texts[stream] = literal[0]
        if len(texts) == 1:
            stream, text = next(iter(texts.items()))
            return [f"assert capsys.readouterr().{stream} == {text}"]
        return (["captured = capsys.readouterr()"] + [f"assert captured.{stream} == {text}"
                                                      for stream, text in texts.items()]) if texts else []

    def identity(self, text: str, step: dict[str, Any]) -> list[str] | None:
        """A call-sequence step whose value is ``obj`` itself (``assert obj.fluent() is obj``) or an equal copy of
        it (named, its checks, then ``assert value is not obj``); None for a step without ``same``."""
        same = step.get("same")
        if same is True:
            return [f"assert {text} is obj"]
        if same is False:
            return self.returned(text, step)
        return None

    def returned(self, text: str, step: dict[str, Any]) -> list[str] | None:
        """A call-sequence step whose value is checked more than once: named (``value = obj.normalized()``),
        its checks, ``assert value is not obj`` for an equal copy of ``obj``, then the public state of the object
        it returned (``value_state``: ``assert value.microseconds == 0``)."""
        name = "value" if self.module.partition(".")[0] != "value" else "value_"
        checked = self.check(name, step)
        if checked is None:
            return None
        lines = [f"{name} = {text}", *(c for c in checked if c != name)]
        if step.get("same") is False:
            lines.append(f"assert {name} is not obj")
        for read in step.get("value_state") or []:
            source = self.step(read)
            more = None if source is None else self.check(source.replace("obj", name, 1), read)
            if more is None:
                return None
            lines += more
        return lines

    def warns(self, record: dict[str, Any], lines: list[str]) -> list[str] | None:
        """``lines`` (a call and the checks of its result) inside ``pytest.warns`` when the call warned."""
        category = record.get("warns")
        if category is None:
            return lines
        kind = self.raises(category)
        if kind is None:
            return None
        return [f"with pytest.warns({kind}{_match(record.get('warn_message'))}):", *("    " + line for line in lines)]

    def step(self, step: dict[str, Any]) -> str | None:
        """One call-sequence step as source, from its kind, name and rendered arguments."""
        kind, name = step["kind"], step.get("name", "")
        arguments = self.arguments(step.get("args", []), step.get("kwargs", {}))
        if arguments is None:
            return None
        if kind in ("method", "attr", "setattr"):
            if not (identifier(name) and name in self.names.members):
                return None
        elif kind in ("binary", "unary", "rbinary", "inplace"):
            table = {"binary": harness._BINARY, "unary": harness._UNARY, "rbinary": harness._REFLECTED,
                     "inplace": harness._INPLACE}[kind]
            if name not in table:
                return None
        text = harness._step_text(kind, name, *arguments)
        if step.get("generator") and not text.startswith("list("):
            text = f"list({text})"
        return text

    def doctest_object(self, obj: str) -> str | None:
        if obj == "":
            return self.module
        dotted = f"{self.module}.{obj}"
        return dotted if self.reference(dotted) else None
