"""Every command of the CLI reads at 80 and 40 columns and in a pipe, with nothing cut that a later command needs.

The commands are not a hand-kept list: the test walks the Typer app (``verticals`` and every group, with the
commands plugins add) and fails for a command it has no sample for, so a new command gets checked the day it is
added. Each sample runs in process (Typer's runner: stdout and stderr are pipes) against one prepared home (a
job, evaluation runs, a model-store version, a runtime record, an API key, a webhook), at widths 80 and 40 (the
consoles' width, as ``COLUMNS`` sets it) and in a pipe with no width set (80). For every output:

- no line wider than the width, but a line whose overflow is one unbreakable token (a path, an id) or a command
  to copy (``verticals ...``), which are printed whole on purpose; no line padded with spaces; no traceback;
- the names, ids and paths the sample must show appear whole on one line (a key id ``keys revoke`` needs, a model
  name, a version, a run id): never cut with an ellipsis, never wrapped, never folded letter by letter;
- no word cut with an ellipsis anywhere (``finan…``, ``versi…``), but in the preview of a run's texts;
- no word folded across lines (a table cell ``requ`` / ``ired`` or ``descriptio`` / ``n``): each sample also runs
  200 columns wide, and a word of a narrower output that is only the start or the end of a word of that wide
  output is a word cut in two;
- list and show commands write their data on stdout (``| less`` and ``> file`` get it); ``--json`` is JSON.

Every command's ``--help`` is checked the same way. Commands that start services or change the environment run
their ``--help`` only (listed in ``HELP_ONLY`` with the reason).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURE_PLUGINS

HELP_ONLY = {
    "serve": "starts the API server until stopped (tests/test_api_e2e.py runs it)",
    "worker": "starts Celery workers until stopped (tests/test_celery.py runs them)",
    "plugins install": "pip-installs into the environment the suite runs in",
    "plugins uninstall": "pip-uninstalls from the environment the suite runs in",
    "plugins post-install": "downloads and installs the plugins' extra resources (make setup runs it)",
}
WIDTHS = ((80, "COLUMNS=80"), (40, "COLUMNS=40"), (None, "a pipe, no width set"))
WIDE = 200  # each sample's reference output: its words whole
HELP_MIN = 50  # click lays out --help at no fewer than 50 columns, whatever the terminal
JSON_LINES = {"jobs results", "webhooks add"}  # data as JSON (lines) on stdout, as documented
ELLIPSIS_ALLOWED = {"run", "jobs submit"}  # the preview cuts long input texts to the room left, by design


def _samples(ids: dict[str, str]) -> dict[str, list[tuple[list[str], int, list[str]]]]:
    """Command path -> [(arguments, exit code, what must appear whole on one line)]."""
    job, run_a, run_b, key, hook = ids["job"], ids["run_a"], ids["run_b"], ids["key"], ids["hook"]
    tasks = ["finance.sentiment", "medical.deidentify", "medical.entities", "testgen.generate", "tutor.grade",
             "tutor.hint", "tutor.mastery", "fixtures.echo"]
    head = "verticals_finance/heads/sentiment-minilm-lora"
    return {
        "run": [(["fixtures.echo", ids["input"], "--reject", "two"], 0, ["fixtures.echo"])],
        "eval": [(["fixtures.keyword"], 0, ["fixtures.keyword", "macro_f1"]),
                 (["list"], 0, [run_a[:8], run_b[:8], "golden:golden.csv"]),
                 (["show", run_b[:8]], 0, ["costs down", "positive"]),
                 (["compare", run_a[:8], run_b[:8]], 0, [run_a[:8], run_b[:8]]),
                 (["list", "--json"], 0, [])],
        "train": [(["finance.sentiment", ids["bad_labels"]], 2, ["bullish"])],
        "jobs submit": [(["fixtures.echo", ids["input"], "--detach"], 0, [])],
        "jobs status": [([job], 0, [job]), ([job, "--json"], 0, [])],
        "jobs list": [([], 0, [job[:12], "fixtures.echo"]), (["--json"], 0, [])],
        "jobs delete": [(["nosuchjob"], 2, ["nosuchjob"])],
        "jobs prune": [(["--older-than", "30d", "--dry-run"], 0, [])],
        "jobs results": [([job, "--limit", "2"], 0, [])],
        "jobs export": [([job, "-o", ids["export"]], 0, [ids["export"]])],
        "jobs cancel": [([job], 0, [job])],
        "jobs resume": [([job], 0, [job])],
        "jobs retry": [([job], 0, [])],
        "plugins list": [([], 0, ["finance", "medical", "tutor", "testgen", "verticals.tenancy.webhooks",
                                  "finance.sentiment"]), (["--json"], 0, [])],
        "tasks list": [([], 0, tasks), (["--json"], 0, [])],
        "tasks show": [([name], 0, [name]) for name in ("finance.sentiment", "testgen.generate", "tutor.mastery")],
        "models warm": [(["minilm"], 0, ["minilm"])],
        "models optimize": [(["nosuch"], 2, ["finance.sentiment"])],
        "models runtimes": [([], 0, ["finance.sentiment", "onnx-int8"])],
        "models list": [([], 0, ["finance.sentiment", "minilm", "smollm2", head, "finance.sentiment@v1"]),
                        (["--json"], 0, [])],
        "models promote": [(["finance.sentiment", "v1", "--require", "macro_f1"], 2,  # the shell's leftover of an
                            ["--require 'macro_f1>=0.85'"]),                   # unquoted gate: say to quote it
                           (["finance.sentiment", "v1"], 0, ["finance.sentiment"])],
        "models rollback": [(["finance.sentiment"], 0, ["finance.sentiment"])],
        "db upgrade": [([], 0, [])],
        "db current": [([], 0, [])],
        "keys create": [(["--tenant", "acme-research-and-development", "--name", "nightly-etl"], 0, [])],
        "keys list": [([], 0, [key, "acme-research-and-development"]), (["--json"], 0, [])],
        "keys revoke": [([key], 0, [key])],
        "webhooks add": [(["--tenant", "acme-research-and-development", "--url", "http://127.0.0.1:9/hook"], 0, [])],
        "webhooks list": [([], 0, [hook, "http://127.0.0.1:9/hook"]), (["--json"], 0, [])],
        "webhooks remove": [([hook], 0, [hook])],
        "usage": [([], 0, ["total"]), (["--models", "--tenant", "-"], 0, ["total"]), (["--json"], 0, [])],
        "tenants quota set": [(["acme-research-and-development", "--active-jobs", "4", "--items-per-day", "100000",
                                "--model-seconds-per-day", "3600"], 0, ["acme-research-and-development"])],
        "tenants quota clear": [(["acme-research-and-development"], 0, ["acme-research-and-development"])],
        "tenants list": [([], 0, ["acme-research-and-development"]), (["--json"], 0, [])],
        "workers": [([], 2, ["VERTICALS_BROKER_URL"])],
    }


# -- the app, walked ---------------------------------------------------------------------------------------------

def _app():
    import typer

    import verticals.cli as cli

    cli._register_core_commands()
    registry = cli._registry()
    cli._attach_optional(registry)
    registry.hook.register_commands(cli=cli.app)
    return cli.app, typer.main.get_command(cli.app)


def _leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    children = getattr(command, "commands", None)
    if children is None:
        yield path
        return
    for name, child in sorted(children.items()):
        yield from _leaves(child, (*path, name))


# -- checks ------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\S+")


def _problems(text: str, width: int, must: list[str], ellipsis_ok: bool, json_out: bool,
              padding_ok: bool = False) -> list[str]:
    problems = []
    if "Traceback" in text:
        problems.append("a traceback")
    lines = text.splitlines()
    for line in lines:
        if line != line.rstrip() and not padding_ok:
            problems.append(f"padded with spaces: {line!r}")
        if len(line) <= width or json_out:
            continue
        stripped = line.strip()
        longest = max((len(token) for token in _TOKEN.findall(line)), default=0)
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("verticals ") or "`verticals " in line or longest > width - indent - 16:
            continue  # a command to copy, or a path/id longer than the line: whole on purpose
        if line.startswith("error: "):
            continue  # a user error is one line (the house rule): whole in a pipe, a log or grep
        problems.append(f"{len(line)} > {width} columns: {line!r}")
    for name in must:
        if not any(name in line for line in lines):
            problems.append(f"{name!r} is not whole on one line")
    if not ellipsis_ok:  # the progress bar's label gives way in a narrow terminal (the job line names it whole)
        for cut in re.findall(r"\S*…", "\n".join(line for line in lines if "━" not in line)):
            problems.append(f"cut with an ellipsis: {cut!r}")
    for index in range(len(lines) - 2):  # a word folded letter by letter: single letters down one column
        columns = [{match.start() for match in re.finditer(r"(?<!\S)[A-Za-z](?!\S)", lines[index + k])}
                   for k in range(3)]
        if columns[0] & columns[1] & columns[2]:
            problems.append(f"letters stacked in a column from line {index + 1}: {lines[index:index + 3]!r}")
    return problems


_WORD = re.compile(r"^[A-Za-z][A-Za-z_-]*[A-Za-z]$")
_PUNCTUATION = "()[]{}<>.,;:'\"`|=*!?/"


def _words(text: str) -> set[str]:
    """The words of ``text``: whitespace-separated tokens of letters (``_`` and ``-`` inside), punctuation around
    them stripped; a token cut with an ellipsis, and tokens with digits (ids, figures), left out."""
    found = set()
    for token in text.split():
        if "…" in token:
            continue
        word = token.strip(_PUNCTUATION)
        if _WORD.match(word):
            found.add(word)
    return found


def _pieces(word: str, tokens: set[str]) -> bool:
    """Whether ``word`` is two or more of ``tokens`` one after another (``CoverageFigures`` = ``Cove`` ``rage``
    ``Figu`` ``res``)."""
    ends = {0}
    for end in range(1, len(word) + 1):
        if any(start in ends and word[start:end] in tokens for start in range(end) if (start, end) != (0, len(word))):
            ends.add(end)
    return len(word) in ends


def _folded(text: str, wide: set[str]) -> list[str]:
    """Words of ``text`` that are the start or the end of a longer word of the wide output ``wide``, which the
    pieces of ``text`` spell whole, and no word of ``wide``: a word folded across the lines of a narrow table
    (``requ`` / ``ired``), which neither a reader nor a copy gets whole. (A shorter word of its own, ``cancel``
    next to ``cancelled``, is no fold: the rest is not in the text.)"""
    tokens = {token.strip(_PUNCTUATION) for token in text.split()}
    return [f"a word folded across lines: {word!r} (of {whole!r})" for word in sorted(_words(text) - wide)
            for whole in sorted(wide) if len(whole) > len(word) and (whole.startswith(word) or whole.endswith(word))
            and _pieces(whole, tokens)][:5]


# -- the prepared home -------------------------------------------------------------------------------------------

@pytest.fixture
def home(isolated_home, monkeypatch):
    """Real plugins plus the model-free fixture plugin, and state every command can show."""
    from verticals.core.models.runtimes import machine, save_record
    from verticals.core.models.versions import ModelStore

    path = str(FIXTURE_PLUGINS / "good")
    monkeypatch.syspath_prepend(path)
    monkeypatch.setenv("PYTHONPATH", path)
    import verticals.registry

    monkeypatch.setattr(verticals.registry, "_registry", None)
    store_root = ModelStore().root
    head = Path(__import__("verticals_finance").__file__).parent / "heads" / "sentiment-minilm-lora"
    version = store_root / "finance.sentiment" / "v1"
    shutil.copytree(head, version)
    (version / "version.json").write_text(json.dumps({
        "spec": "finance.sentiment", "version": "v1", "method": "lora", "created_at": "2026-11-30T10:00:00",
        "data": {"rows": 90, "dev_rows": 14}, "dev": {"accuracy": 0.9, "macro_f1": 0.89}}), encoding="utf-8")
    save_record("finance.sentiment", {
        "variant": "onnx-int8", "fingerprint": "4f16a895b27d0ee93162", "decision": "kept", "speedup": 1.394,
        "metric": "macro_f1", "before": 0.8006, "after": 0.7994, "parity": {"agreement": 0.979},
        "machine": machine(), "at": "2026-11-28T00:44:00Z"}, store_root)
    (isolated_home / "in.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (isolated_home / "bad.csv").write_text("text,label\nup,positive\ndown,bullish\n", encoding="utf-8")
    (isolated_home / "labels.csv").write_text("text,label\nshares up,positive\ncosts down,positive\n", encoding="utf-8")
    return isolated_home


_HELP_INIT: dict[str, Any] = {}


def _invoke(app: Any, args: list[str], width: int | None, monkeypatch) -> Any:
    from typer._click import formatting  # typer's own click (vendored)
    from typer.testing import CliRunner

    from verticals.cli import common

    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    original = _HELP_INIT.setdefault("init", formatting.HelpFormatter.__init__)

    def help_width(self, indent_increment=2, width=None, max_width=None):  # click's rule in a real process (the
        original(self, indent_increment, width, max_width)                # runner forces 80 columns)
        self.width = max(min(width_or_80, max_width or 80) - 2, HELP_MIN)

    width_or_80 = width or 80
    monkeypatch.setattr(formatting.HelpFormatter, "__init__", help_width)
    for console in (common.out, common.err):  # what COLUMNS sets when a CLI process starts
        monkeypatch.setattr(console, "_width", width)
    return CliRunner().invoke(app, args, prog_name="verticals")


def test_every_command_fits_80_and_40_columns_and_a_pipe(home, monkeypatch):
    from verticals.core.store import open_store

    app, root = _app()
    invoke = lambda args, width=80: _invoke(app, args, width, monkeypatch)  # noqa: E731
    first = invoke(["run", "fixtures.echo", str(home / "in.txt"), "--reject", "two"])
    assert first.exit_code == 0, first.stderr
    job = open_store().list_jobs()[0].id
    assert invoke(["eval", "fixtures.keyword"]).exit_code == 0
    assert invoke(["eval", "fixtures.keyword", str(home / "labels.csv")]).exit_code == 0
    runs = json.loads(invoke(["eval", "list", "--json"]).stdout)
    created = json.loads(invoke(["keys", "create", "--tenant", "acme-research-and-development", "--name", "etl",
                                 "--json"]).stdout)
    hook = json.loads(invoke(["webhooks", "add", "--tenant", "acme-research-and-development", "--url",
                              "http://127.0.0.1:9/hook"]).stdout)
    ids = {"job": job, "run_a": runs[1]["id"], "run_b": runs[0]["id"], "key": created["id"], "hook": hook["id"],
           "input": str(home / "in.txt"), "bad_labels": str(home / "bad.csv"),
           "export": str(home / "exports" / "fixtures-echo-results.csv")}
    (home / "exports").mkdir()
    samples = _samples(ids)
    leaves = [" ".join(path) for path in _leaves(root)]
    missing = [leaf for leaf in leaves if leaf not in samples and leaf not in HELP_ONLY]
    assert not missing, f"commands without a sample here (add one, or a reason in HELP_ONLY): {missing}"

    problems: list[str] = []
    reference: dict[tuple[str, int], set[str]] = {}
    for width, how in ((WIDE, "reference"), *WIDTHS):
        shown = width or 80
        for leaf in leaves:
            words = leaf.split()
            if width == WIDE:  # the reference: every sample's words, whole
                for number, (args, _code, _must) in enumerate(samples.get(leaf, [])):
                    result = invoke([*words, *args], WIDE)
                    reference[(leaf, number)] = _words(result.stdout + "\n" + result.stderr)
                    if leaf == "keys revoke":
                        ids["key"] = json.loads(invoke(["keys", "create", "--tenant", "acme-research-and-development",
                                                        "--name", "etl", "--json"]).stdout)["id"]
                    if leaf == "webhooks remove":
                        ids["hook"] = json.loads(invoke(["webhooks", "add", "--tenant", "acme-research-and-development",
                                                         "--url", "http://127.0.0.1:9/hook"]).stdout)["id"]
                    samples = _samples(ids)
                reference[(leaf, -1)] = _words(invoke([*words, "--help"], 80).stdout)  # click: at most 80
                continue
            help_result = invoke([*words, "--help"], width)
            where = f"`verticals {leaf} --help` at {how}"
            if help_result.exit_code != 0:
                problems.append(f"{where}: exit {help_result.exit_code}")
            problems += [f"{where}: {p}"
                         for p in _problems(help_result.stdout, max(shown, HELP_MIN), [], True, False,
                                            padding_ok=True)]  # click leaves a space after a wrapped usage
            problems += [f"{where}: {p}" for p in _folded(help_result.stdout, reference[(leaf, -1)])]
            for number, (args, code, must) in enumerate(samples.get(leaf, [])):
                result = invoke([*words, *args], width)
                where = f"`verticals {leaf} {' '.join(args)}` at {how}"
                if result.exit_code != code:
                    problems.append(f"{where}: exit {result.exit_code}, expected {code}: {result.stderr[-300:]}")
                json_out = "--json" in args or leaf in JSON_LINES
                if json_out:
                    try:
                        [json.loads(line) for line in result.stdout.splitlines() if line.strip()] if \
                            leaf in JSON_LINES else json.loads(result.stdout)
                    except ValueError:
                        problems.append(f"{where}: --json printed no JSON on stdout: {result.stdout[:200]!r}")
                    continue
                ellipsis_ok = leaf in ELLIPSIS_ALLOWED
                both = result.stdout + result.stderr
                problems += [f"{where}: {p}" for p in _problems(result.stdout, shown, [], ellipsis_ok, False)]
                problems += [f"{where}: {p}" for p in _problems(result.stderr, shown, [], ellipsis_ok, False)]
                problems += [f"{where}: {p}" for p in _problems(both, shown, must, True, False)
                             if "whole on one line" in p]
                problems += [f"{where}: {p}" for p in _folded(both, reference[(leaf, number)])]
                data = words[-1] in ("list", "show", "status", "runtimes", "current") or args[:1] in (
                    ["list"], ["show"])
                if data and code == 0 and not result.stdout.strip():
                    problems.append(f"{where}: its data is not on stdout (stderr: {result.stderr[:120]!r})")
            if leaf == "keys revoke":
                created = json.loads(invoke(["keys", "create", "--tenant", "acme-research-and-development",
                                             "--name", "etl", "--json"], width).stdout)
                samples = _samples({**ids, "key": created["id"]})
                ids["key"] = created["id"]
            if leaf == "webhooks remove":
                hook = json.loads(invoke(["webhooks", "add", "--tenant", "acme-research-and-development", "--url",
                                          "http://127.0.0.1:9/hook"], width).stdout)
                ids["hook"] = hook["id"]
                samples = _samples(ids)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
