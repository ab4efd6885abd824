"""Generation strategies. Each turns a target (and what is still uncovered) into candidate tests.

- ``observed``: calls recorded by the sandboxed explorer (values from type hints,
  defaults, parameter names and the module's constants; only calls that
  executed new arcs are kept) become regression tests asserting the observed
  return value or exception.
- ``ghostwriter``: Hypothesis' ghostwriter property tests, with its
  ``st.nothing()`` placeholders filled from parameter names.
- ``llm``: prompts from the module's source, signatures, docstrings and the
  still-uncovered lines (CoverUp style), generated in batches by the model host.
- ``pynguin``: optional; runs Pynguin from its own virtual environment.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
from collections import Counter
from collections.abc import Set as AbstractSet
from pathlib import Path

from verticals import ModelSpec
from verticals.jail import Jail, JailLimits, private_dir, read_output, remove_private_dir
from verticals_testgen.allowlist import doctest_test
from verticals_testgen.candidates import Candidate, extract_code, split_tests
from verticals_testgen.render import Renderer
from verticals_testgen.target import Target

STRATEGIES = ("observed", "ghostwriter", "llm", "pynguin")


# ---------------------------------------------------------------- observed values


def _what(record: dict, raised: str | None = None) -> str:
    """A short description of what a test checks, for its name (from checked fields only)."""
    if raised is not None:
        return "raises_" + raised.rpartition(".")[2].lower()
    if isinstance(record.get("warns"), str):
        return "warns_" + _safe(record["warns"].rpartition(".")[2])
    returns = record.get("returns")
    compare = record.get("compare")
    if compare == "eq" and returns is not None:
        if returns in ("True", "False", "None"):
            return f"is_{returns.lower()}"
        if returns in ("''", '""', "[]", "()", "{}", "set()", "b''"):
            return "returns_empty"
        return "returns_value"
    if compare == "approx":
        return "returns_number"
    if compare in ("repr", "type"):
        return "returns_object"
    return "runs"


def _safe(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower() or "x"


def _call_lines(renderer: Renderer, event: dict) -> tuple[str, list[str]] | None:
    """(name stem, body lines) of a recorded call, or None when any part of it is not allowed."""
    callee = renderer.callee(event["callee"])
    arguments = renderer.arguments(event["args"], event.get("kwargs", {}))
    if callee is None or arguments is None:
        return None
    args, kwargs = arguments
    after = [] if event.get("raises") is not None else event.get("after") or []
    bound: list[str] = []  # `arg0 = io.StringIO()`: an argument the test reads again after the call
    reads: list[tuple[str, dict]] = []
    names: dict[object, str] = {}
    for check in after:
        where = check["arg"]
        if where in names:  # a second check of the same argument (`result is not arg0`, `result[1] is arg0[1]`)
            reads.append((names[where], check))
            continue
        if isinstance(where, int) and where < len(args):
            name = f"arg{where}"
            bound.append(f"{name} = {args[where]}")
            args[where] = name
        elif isinstance(where, str) and where in kwargs:
            name = f"arg_{where}"
            bound.append(f"{name} = {kwargs[where]}")
            kwargs[where] = name
        else:
            return None
        names[where] = name
        reads.append((f"{name}.getvalue()" if check["kind"] == "getvalue" else name, check))
    call = f"{callee}({', '.join([*args, *(f'{k}={v}' for k, v in kwargs.items())])})"
    if event.get("generator"):
        call = f"list({call})"
    state = event.get("state") or []
    identity = any(check["kind"] in ("is", "item") for check in after)
    lines: list[str] | None
    if (state or identity) and event.get("raises") is None:
        # an object of the module: its type, then its public state (what a mutant of its builder changes)
        made = renderer.warns(event, [f"result = {call}"])
        lines = None if made is None else made + (renderer.check("result", event) or [])
        for step in state:
            text = renderer.step(step)
            checked = None if text is None else renderer.check(text.replace("obj", "result", 1), step)
            if checked is None or lines is None:
                return None
            lines += checked
    else:
        lines = renderer.check(call, event)
        lines = None if lines is None else renderer.warns(event, lines)
    if lines is None:
        return None
    lines = bound + lines
    for expr, check in reads:  # the arguments after the call
        if check["kind"] == "is":  # the result is the argument itself, or an equal copy of it
            lines.append(f"assert result is {'' if check['same'] else 'not '}{expr.removesuffix('.getvalue()')}")
            continue
        if check["kind"] == "item":
            key = renderer.literal(check.get("key") or "")
            if key is None:
                return None
            base = expr.removesuffix(".getvalue()")
            lines.append(f"assert result[{key[0]}] is {'' if check['same'] else 'not '}{base}[{key[0]}]")
            continue
        checked = renderer.check(expr, check)
        if checked is None:
            return None
        lines += checked
    printed = renderer.printed(event)
    if printed is None:
        return None
    lines += printed
    raised = renderer.raises(event["raises"]) if event.get("raises") is not None else None
    return f"test_{_safe(event['callee'])}_{_what(event, raised)}", lines


def _sequence_lines(renderer: Renderer, event: dict) -> tuple[str, list[str]] | None:
    steps = event["steps"]
    cls = renderer.callee(event["callee"])
    arguments = renderer.arguments(event["ctor_args"], event.get("ctor_kwargs", {}))
    if not steps or cls is None or arguments is None:
        return None
    args, kwargs = arguments
    lines = renderer.warns(event, [f"obj = {cls}({', '.join([*args, *(f'{k}={v}' for k, v in kwargs.items())])})"])
    if lines is None:
        return None
    printed = renderer.printed(event)
    if printed is None:
        return None
    for step in steps:
        if step.get("state") and printed:  # what the calls printed, before the state reads
            lines += printed
            printed = []
        text = renderer.step(step)
        if text is not None and step.get("same") is not None and step.get("raises") is None:
            checked = renderer.identity(text, step)
        elif text is not None and step.get("value_state") and step.get("raises") is None:
            checked = renderer.returned(text, step)
        else:
            checked = None if text is None else renderer.check(text, step)
        checked = None if checked is None else renderer.warns(step, checked)
        if checked is None:
            return None
        lines += checked
    lines += printed
    last = next((s for s in reversed(steps) if not s.get("state")), steps[-1])  # the last call, not a state read
    raised = renderer.raises(last["raises"]) if last.get("raises") is not None else None
    return f"test_{_safe(event['callee'])}_{_safe(last.get('name') or last['kind'])}_{_what(last, raised)}", lines


def observed_candidates(target: Target, events: list[dict], round_index: int = 0,
                        dropped: list[dict] | None = None) -> list[Candidate]:
    """Calls, call sequences and doctests the explorer recorded, as one small readable test each.

    ``events`` come out of the jail (checked by ``render.clean_events``): every name is checked against what
    the target defines and every value is rendered from its parsed form; a record with any part that is not
    allowed is dropped whole.
    """
    renderer = Renderer(target.name, target.source)
    candidates = []
    names: Counter[str] = Counter()
    for index, event in enumerate(events):
        kind = event.get("event")
        built: tuple[str, list[str]] | None = None
        if kind == "call":
            built = _call_lines(renderer, event)
            strategy = "observed"
        elif kind == "sequence":
            built = _sequence_lines(renderer, event)
            strategy = "sequence"
        elif kind == "doctest":
            obj = renderer.doctest_object(event["object"])
            if obj is not None:
                label = event["object"] or "module"
                built = (f"test_{_safe(label)}_doctest", [])
                doctest_obj = (obj, label, not event["object"], event["examples"])
            strategy = "doctest"
        if built is None:
            if dropped is not None and kind in ("call", "sequence", "doctest"):
                dropped.append(event)
            continue
        stem, body_lines = built
        names[stem] += 1
        name = stem if names[stem] == 1 else f"{stem}_{names[stem]}"
        if round_index:
            name = f"{name}_r{round_index}"
        if kind == "doctest":
            obj, label, recurse, tries = doctest_obj
            body = doctest_test(name, obj, label, target.name, recurse, tries)
        else:
            fixture = "capsys" if any("capsys.readouterr()" in line for line in body_lines) else ""
            body = f"def {name}({fixture}):\n" + "\n".join("    " + line for line in body_lines)
        try:
            body = ast.unparse(ast.parse(body))
        except SyntaxError:
            continue
        preamble = [f"import {target.name}"]
        used = {n.id for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Name)}
        for library in ("pytest", "doctest", "io", "math", "copy", "pickle", "operator", "datetime", "decimal",
                        "fractions", "collections", "types", "dataclasses", "pathlib", "enum", "uuid"):
            if library in used and library != target.name.partition(".")[0]:
                preamble.append(f"import {library}")
        candidates.append(Candidate(id=f"{strategy}:{round_index}:{index}", strategy=strategy, name=name,
                                    preamble=preamble, body=body, aims=frozenset(event.get("kills", []))))
    return candidates


def ghostwriter_candidates(target: Target, events: list[dict]) -> list[Candidate]:
    text = next((e["text"] for e in events if e.get("event") == "ghostwriter"), "")
    return split_tests(text, "ghostwriter", target.name, target.source, "ghost", fill_nothing=True)


# ---------------------------------------------------------------- LLM (CoverUp style)

LLM_MIN_PARAMETERS = 1_000_000_000
_SIZE = re.compile(r"(?<![0-9A-Za-z.])(\d+(?:\.\d+)?)\s*([MB])(?![A-Za-z])")


def model_parameters(spec) -> float | None:
    """Parameter count a ModelSpec declares (``options["parameters"]``) or its name/hub id states ("1.5B")."""
    declared = (spec.options or {}).get("parameters")
    if declared is not None:
        return float(declared)
    for text in (spec.hub_id or "", spec.local_path or "", spec.description or ""):
        match = _SIZE.search(text)
        if match:
            return float(match.group(1)) * (1e6 if match.group(2) == "M" else 1e9)
    return None


def llm_capable(spec: ModelSpec | None) -> tuple[bool, str]:
    """Whether the LLM strategy pays off by default with the configured causal LM ``spec`` (the capability bar):
    the job's ``models.spec("llm")`` (:class:`verticals.ModelRoles`: read without loading the model).

    The bar: a ModelSpec that declares ``options={"testgen_capable": True}``, or one of at least
    ``LLM_MIN_PARAMETERS`` (1B) parameters, declared as ``options={"parameters": N}`` or read from its hub id or
    description ("Qwen2.5-Coder-1.5B-Instruct"). The packaged SmolLM2-135M is below it: in EVAL.md it wrote
    no passing test while taking minutes per module. ``--strategies ...,llm`` runs the LLM regardless.
    """
    if spec is None:
        return False, "no model spec for the llm role"
    model = spec.name
    declared = (spec.options or {}).get("testgen_capable")
    if declared is not None:
        return bool(declared), f"{model}: testgen_capable={bool(declared)} declared by its ModelSpec"
    size = model_parameters(spec)
    if size is None:
        return False, f"{model}: size unknown (declare options={{'parameters': N}} or testgen_capable)"
    if size < LLM_MIN_PARAMETERS:
        return False, f"{model}: {size / 1e6:.0f}M parameters, below the 1B bar"
    return True, f"{model}: {size / 1e9:.1f}B parameters"


SYSTEM = ("You are an expert Python developer who writes pytest unit tests. Answer with one ```python code block "
          "that imports the module under test and defines test functions with plain assert statements.")


def _functions(target: Target) -> list[tuple[str, int, int, str]]:
    """(qualified name, first line, last line, source) of each function and method."""
    try:
        tree = ast.parse(target.source)
    except SyntaxError:
        return []
    lines = target.source.splitlines()
    found = []
    for node in tree.body:
        members = [(node.name, node)] if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else []
        if isinstance(node, ast.ClassDef):
            members = [(f"{node.name}.{m.name}", m) for m in node.body
                       if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
        for name, func in members:
            start = min([d.lineno for d in func.decorator_list] + [func.lineno])
            end = func.end_lineno or func.lineno
            found.append((name, start, end, "\n".join(lines[start - 1:end])))
    return found


def llm_prompts(target: Target, missing_lines: AbstractSet[int], round_index: int,
                max_prompts: int = 12) -> list[tuple[str, str]]:
    """(function name, prompt) for each function that still has uncovered lines."""
    prompts = []
    for name, start, end, text in _functions(target):
        uncovered = sorted(line for line in missing_lines if start <= line <= end)
        if not uncovered:
            continue
        numbered = []
        for offset, line in enumerate(text.splitlines()):
            number = start + offset
            marker = "   # NOT COVERED" if number in uncovered else ""
            numbered.append(f"{line}{marker}")
        cls, _, method = name.rpartition(".")
        call_hint = (f"Create an instance with `{target.name}.{cls}(...)` and call `.{method}(...)`." if cls
                     else f"Call it as `{target.name}.{name}(...)`.")
        example = (f"```python\nimport {target.name}\n\n\ndef test_{method or name}():\n"
                   f"    assert {target.name}.{name if not cls else cls + '(...).' + method}(...) == ...\n```")
        ask = (f"Write 3 short pytest test functions for `{name}` in module `{target.name}` that execute "
               f"the lines marked `# NOT COVERED`. Use `pytest.raises` when the code raises.")
        prompt = (f"{ask} {call_hint}\n\nSource of `{name}`:\n```python\n" + "\n".join(numbered) +
                  f"\n```\n\nAnswer in this form:\n{example}")
        prompts.append((name, prompt))
    return prompts[:max_prompts]


def llm_candidates(target: Target, answers: list[tuple[str, str]], round_index: int) -> list[Candidate]:
    candidates: list[Candidate] = []
    for index, (name, answer) in enumerate(answers):
        code = extract_code(answer)
        prefix = f"llm_r{round_index}_{name.replace('.', '_').lower()}_{index}"
        candidates += split_tests(code, "llm", target.name, target.source, prefix)
    return candidates


# ---------------------------------------------------------------- Pynguin (optional)


def pynguin_executable() -> str | None:
    """``pynguin`` from its own virtual environment: $VERTICALS_PYNGUIN, else ~/.cache/verticals/pynguin-venv."""
    configured = os.environ.get("VERTICALS_PYNGUIN")
    candidates = [configured] if configured else []
    candidates.append(str(Path.home() / ".cache" / "verticals" / "pynguin-venv" / "bin" / "pynguin"))
    for path in candidates:
        if path and Path(path).exists():
            return path
    return None


def pynguin_candidates(target: Target, seconds: int = 30) -> tuple[list[Candidate], str]:
    """Run Pynguin (in its own venv, as a separate process) and split its tests into candidates.

    Pynguin executes the target itself, so it runs in the platform's jail (:mod:`verticals.jail`) with
    its own virtual environment and the target shown read-only; its tests then go through the same
    jailed filter as every other candidate.
    """
    exe = pynguin_executable()
    if exe is None:
        return [], "pynguin not installed (see README: optional Pynguin venv)"
    base = private_dir("pynguin")
    out = base / "work"
    out.mkdir()
    try:
        root = target.sys_path[0] if target.sys_path else str(Path(target.file).parent)
        venv = Path(exe).parent.parent
        interpreter = (venv / "bin" / "python").resolve()
        command = [str(venv / "bin" / "python"), str(exe), "--project-path", root, "--module-name", target.name,
                   "--output-path", str(out), "--maximum-search-time", str(seconds), "-v"]
        jail = Jail(out, read_only=[venv, interpreter.parent.parent, Path(root)],
                    limits=JailLimits(wall_seconds=seconds + 60, cpu_seconds=seconds + 60, memory_mb=4096))
        run = jail.run(command, env={"PYNGUIN_DANGER_AWARE": "1"})
        if run.killed == "timeout":
            return [], "pynguin timed out"
        candidates: list[Candidate] = []
        # files a jailed run wrote: the first 50 names, each read through the jail's bounded reader (no symlink,
        # regular files only, 1 MiB at most)
        with os.scandir(out) as entries:
            names = sorted(itertools.islice((e.name for e in entries
                                             if e.name.startswith("test_") and e.name.endswith(".py")), 50))
        for name in names:
            try:
                found = read_output(out / name, within=out, max_bytes=2**20)
            except OSError:
                continue
            candidates += split_tests(found.data.decode("utf-8", "replace"), "pynguin", target.name, target.source,
                                      f"pynguin_{len(candidates)}")
        return candidates, f"pynguin wrote {len(candidates)} tests"
    finally:
        remove_private_dir(base)
