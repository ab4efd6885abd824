"""The CLI reads at 80 columns and in pipes: `make demo`, the README's examples, `tasks list`, `tasks show` and
the previews and summaries of every kind of task, captured at width 80 (COLUMNS=80 for the real CLI in a
subprocess, whose output is a pipe; Rich ``Console(width=80)`` for the renderers)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from tests.conftest import REPO, run_cli
from verticals.cli.console import _Console

WIDTH = 80
NARROW = {"COLUMNS": str(WIDTH)}


def assert_fits(text: str, width: int = WIDTH, commands: bool = False) -> None:
    """No line wider than ``width`` (``commands``: but a copyable command, which is never broken; and a lone word
    such as a file path, printed whole on a line of its own so that it can be copied), no line padded with
    spaces (a pipe gets lines that end where their text ends), no traceback."""
    too_long = [line for line in text.splitlines() if len(line) > width and " " in line.strip()
                and not (commands and line.strip().startswith("verticals ") and "  " not in line.strip())]
    assert not too_long, f"{len(too_long)} line(s) longer than {width}:\n" + "\n".join(too_long)
    padded = [repr(line) for line in text.splitlines() if line != line.rstrip()]
    assert not padded, f"{len(padded)} line(s) end with spaces:\n" + "\n".join(padded)
    assert "Traceback" not in text


def header_cells(text: str, first: str) -> list[str]:
    """The header row of the table whose first column is ``first``, split into its cells."""
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no table headed {first!r} in:\n{text}")


def render(*renderables, width: int = WIDTH) -> str:
    buffer = io.StringIO()
    console = _Console(width=width, file=buffer, force_terminal=False, color_system=None)  # the CLI's
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


# -- the real CLI, as a pipe at COLUMNS=80 ----------------------------------------------------------------------

def test_make_demo_reads_at_80_columns(tmp_path):
    """`make demo`'s command: the preview keeps #, the text, label, score and status; the summary is a table."""
    output = tmp_path / "scored.csv"
    result = run_cli("run", "finance.sentiment", str(REPO / "examples" / "headlines.csv"), "--text-column",
                     "headline", "-o", str(output), env=NARROW)
    assert result.returncode == 0, result.stderr
    assert_fits(result.stderr)
    assert header_cells(result.stderr, "#") == ["#", "text", "label", "score", "status"]
    rows = [line.split() for line in result.stderr.splitlines() if line.split()[:1] == ["0"]]
    assert rows and rows[0][-1] == "succeeded" and rows[0][-3] in ("positive", "negative", "neutral")
    assert header_cells(result.stderr, "labels") == ["labels", "share"]  # labels and shares side by side
    assert "{" not in result.stderr.split("summary", 1)[1]  # a table, not JSON
    assert output.exists()


def test_readme_eval_example_reads_at_80_columns():
    result = run_cli("eval", "finance.sentiment", env=NARROW)
    assert result.returncode == 0, result.stderr
    assert_fits(result.stderr + result.stdout)
    assert "macro_f1" in result.stderr + result.stdout and "confusion" in result.stderr + result.stdout


def test_medical_examples_preview_entities_and_counts_at_80_columns(tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(
        json.dumps({"id": "n1", "text": "Patient John Smith seen on 03/04/2021. Denies chest pain. History of "
                                        "diabetes mellitus, on metformin 500 mg."}) + "\n"
        + json.dumps({"id": "n2", "text": "Mother had breast cancer. Started lisinopril for hypertension."}) + "\n",
        encoding="utf-8")
    entities = run_cli("run", "medical.entities", str(notes), env=NARROW)
    assert entities.returncode == 0, entities.stderr
    assert_fits(entities.stderr)
    assert header_cells(entities.stderr, "#") == ["#", "id", "entities", "status"]
    assert "[PROBLEM" in entities.stderr  # the preview shows the entities themselves
    assert "chest pain [PROBLEM, absent]" in entities.stderr
    assert "John Smith" not in entities.stderr  # a sensitive task: its input text is never previewed
    clean = tmp_path / "clean.jsonl"
    deid = run_cli("run", "medical.deidentify", str(notes), "--mode", "surrogate", "-o", str(clean), env=NARROW)
    assert deid.returncode == 0, deid.stderr
    assert_fits(deid.stderr)
    assert header_cells(deid.stderr, "#") == ["#", "counts", "text", "status"]
    assert "NAME=1" in deid.stderr and "John Smith" not in deid.stderr
    assert "documents_with_phi" in deid.stderr and "{" not in deid.stderr.split("summary", 1)[1]


def test_tasks_list_and_show_read_at_80_columns_in_a_pipe():
    listed = run_cli("tasks", "list", env=NARROW)
    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)
    names = [line.split()[0] for line in listed.stdout.splitlines()[2:] if line.strip() and line[0] != " "]
    assert {"finance.sentiment", "medical.deidentify", "medical.entities", "testgen.generate", "tutor.grade",
            "tutor.hint", "tutor.mastery"} <= set(names)  # whole names, none cut with an ellipsis
    assert not any("…" in name for name in names)
    shown = run_cli("tasks", "show", "medical.deidentify", env=NARROW)
    assert shown.returncode == 0, shown.stderr
    assert_fits(shown.stdout)
    assert header_cells(shown.stdout, "option") == ["option", "type", "default", "description"]
    assert "--min-score" in shown.stdout and "0.35" in shown.stdout and "mask | surrogate | hash" in shown.stdout
    assert "PhiSpan (in output)" in shown.stdout  # nested models get their own table
    raw = run_cli("tasks", "show", "medical.deidentify", "--json")
    assert json.loads(raw.stdout)["params_schema"]["properties"]["min_score"]["default"] == 0.35
    typo = run_cli("tasks", "show", "medical.deidentfy", env=NARROW)
    assert typo.returncode == 2 and "did you mean medical.deidentify?" in typo.stderr


def test_tasks_list_shows_the_plugin_column_when_there_is_room():
    wide = run_cli("tasks", "list", env={"COLUMNS": "120"})
    assert header_cells(wide.stdout, "task")[:3] == ["task", "plugin", "device"]
    assert_fits(wide.stdout, 120)
    assert "plugin" not in header_cells(run_cli("tasks", "list", env=NARROW).stdout, "task")


def test_no_columns_set_a_pipe_is_80_wide():
    import os

    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    listed = run_cli("tasks", "list", env={**env, "COLUMNS": ""})
    assert listed.returncode == 0, listed.stderr
    assert_fits(listed.stdout)


# -- every task's `tasks show`, previews and summaries through the renderers at width 80 ------------------------

@pytest.fixture(scope="module")
def domain_registry():
    from verticals.registry import build_registry

    return build_registry()


@pytest.mark.parametrize("width", [WIDTH, 40])
def test_tasks_show_fits_80_and_40_columns_for_every_installed_task(domain_registry, monkeypatch, width):
    """Every task's fields at 80 and 40 columns: no line too wide, and no word folded across lines (a type
    ``requ`` / ``ired``, an environment variable cut in two, as a Rich table column narrower than a word does)."""
    from tests.test_cli_every_command import _folded, _words
    from verticals.cli import tasks as tasks_cli

    def shown(task_cls, columns):
        buffer = io.StringIO()
        monkeypatch.setattr(tasks_cli, "out", _Console(width=columns, file=buffer, color_system=None))
        tasks_cli._show(domain_registry, task_cls)
        return buffer.getvalue()

    for name, task_cls in sorted(domain_registry.tasks.items()):
        text = shown(task_cls, width)
        assert_fits(text, width)
        assert not _folded(text, _words(shown(task_cls, 200))), (name, _folded(text, _words(shown(task_cls, 200))))
        assert name in text and "parameters" in text and "output (one result)" in text
        for field in task_cls.Params.model_fields:
            assert "--" + field.replace("_", "-") in text


def item(seq, input, output, status="succeeded", error=None):
    return SimpleNamespace(seq=seq, input=input, output=output, status=status, error=error)


def test_testgen_preview_shows_counts_never_the_test_file(domain_registry):
    from verticals.cli.render import preview_table, summary_renderables

    code = "import pytest\n\n" + "\n".join(f"def test_case_{i}():\n    assert {i} == {i}\n" for i in range(30))

    def coverage(percent):
        return {"lines_covered": 5, "lines_total": 10, "line_percent": percent, "branches_covered": 1,
                "branches_total": 2, "branch_percent": 50.0, "percent": percent}

    rows = [item(i, {"module": f"pkg.mod{i}"},
                 {"module": f"pkg.mod{i}", "file": f"/src/pkg/mod{i}.py", "test_file": f"test_mod{i}.py",
                  "test_code": code, "coverage_before": coverage(12.5), "coverage_after": coverage(87.25),
                  "kept": 7, "generated": 31, "tests": [], "seconds": 512.3}) for i in range(3)]
    rows.append(item(3, {"module": "pkg.broken"}, None, "failed", "TargetError: cannot import pkg.broken"))
    text = render(preview_table(domain_registry.task("testgen.generate"), rows, "testgen.generate", WIDTH))
    assert_fits(text)
    assert "def test_case" not in text and "import pytest" not in text
    assert header_cells(text, "#")[:4] == ["#", "module", "kept", "generated"] and "status" in text
    assert "87.250" in text and "pkg.broken" in text and "failed" in text  # a failed item shows its input
    modules = [{"module": f"pkg.mod{i}", "line_before": 12.5, "line_after": 87.25, "branch_before": 0.0,
                "branch_after": 50.0, "kept": 7, "generated": 31, "seconds": 512.3} for i in range(3)]
    table = "module    line %\n" + "-" * 90 + "\npkg.mod0  12.5 -> 87.2"
    summary = render(*summary_renderables({"modules": modules, "table": table, "kept": 21, "generated": 93}))
    assert_fits(summary)
    assert "\\n" not in summary and "{" not in summary and "-----" not in summary  # no JSON, no pre-rendered copy
    assert "pkg.mod2" in summary and "512.3" in summary and header_cells(summary, "module")[0] == "module"


@pytest.mark.parametrize("task", ["finance.sentiment", "tutor.grade", "tutor.hint", "tutor.mastery",
                                  "medical.entities", "medical.deidentify"])
def test_every_preview_keeps_its_number_and_status_columns_at_80(domain_registry, task):
    from verticals.cli.render import preview_table

    long = "a rather long sentence that would never fit a narrow terminal column " * 3
    outputs = {
        "finance.sentiment": {"label": "neutral", "score": 0.5, "probabilities": {"neutral": 0.5}},
        "tutor.grade": {"label_2way": "correct", "label_3way": "contradictory", "score": 0.81234,
                        "missing_concepts": ["chlorophyll", "glucose", "light"], "feedback": long},
        "tutor.hint": {"hint": long, "path": "llm-regenerated", "level": 2, "generations": 2},
        "tutor.mastery": {"student": "student-000001", "mean_mastery": 0.41, "at_risk": True,
                          "recommended_skill": "Equation Solving Two or Fewer Steps", "recommendation": long},
        "medical.entities": {"id": "n1", "entities": [
            {"text": "chest pain", "category": "PROBLEM", "assertion": "absent"},
            {"text": "metformin", "category": "MEDICATION", "assertion": "present"}], "counts": {}},
        "medical.deidentify": {"text": "[NAME] was seen " + long, "mode": "mask", "spans": [],
                               "counts": {"NAME": 1, "DATE": 2}},
    }
    rows = [item(seq, {"text": long, "answer": long, "question": long, "student": "s"}, outputs[task])
            for seq in range(998, 1001)]
    rows.append(item(1001, {"text": long, "answer": long}, None, "failed", "ValueError: " + long))
    text = render(preview_table(domain_registry.task(task), rows, f"{task}: first 4 of 1002 results", WIDTH))
    assert_fits(text)
    header = header_cells(text, "#")
    assert header[-1] == "status" and len(header) >= 3
    numbered = [line.split()[0] for line in text.splitlines() if line.split()[:1] and line.split()[0].isdigit()]
    assert numbered == ["998", "999", "1000", "1001"]  # whole sequence numbers
    assert text.count("succeeded") == 3 and "failed" in text
    if task == "medical.entities":
        assert "2: chest pain [PROBLEM, absent]; met" in text  # the count first, then each entity
    if getattr(domain_registry.task(task), "sensitive", False):
        assert "rather long sentence" not in text.split("[NAME]")[0]  # inputs never shown


def test_cells_and_summaries_are_one_line_and_tables():
    from verticals.cli.render import cell, summary_renderables

    assert cell("first line\nsecond\nthird") == "first line … (3 lines)"
    assert cell([{"text": "fever", "category": "PROBLEM", "assertion": "absent"}]) == "1: fever [PROBLEM, absent]"
    assert cell({"NAME": 2, "DATE": 1}) == "NAME=2, DATE=1"
    assert cell(0.5) == "0.500" and cell(True) == "yes" and cell(None) == ""
    text = render(*summary_renderables({
        "students": 3, "skills_below_threshold": [{"skill": "Fractions", "students": 3, "mean_mastery": 0.41}],
        "students_at_risk": ["s1", "s2"], "by_category": {"PROBLEM": {"present": 3, "absent": 1}},
        "deeper": {"a": {"b": {"c": 1}}}}))
    assert_fits(text)
    assert header_cells(text, "skill") == ["skill", "students", "mean", "mastery"] or "mean mastery" in text
    assert "students_at_risk  s1, s2" in text and "PROBLEM" in text and '"c": 1' in text


# -- narrow terminals and pipes -----------------------------------------------------------------------------------

@pytest.fixture
def fixture_env(use_plugins, monkeypatch):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")


@pytest.mark.parametrize("width", [40, 60])
def test_run_and_jobs_status_read_in_narrow_terminals(width, fixture_env, tmp_path):
    """40 to 60 columns: every line fits (a copyable command excepted: it is never broken), a message breaks
    between its parts, the job id stays whole, the bar is one line, `jobs status` keeps its values whole."""
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\nPOISON\n", encoding="utf-8")
    env = {"COLUMNS": str(width)}
    result = run_cli("run", "fixtures.echo", str(data), env=env)
    assert result.returncode == 0, result.stderr
    assert_fits(result.stderr, width, commands=True)
    lines = result.stderr.splitlines()
    job_id = lines[0].split()[1].rstrip(":")
    assert len(job_id) == 32  # whole on the first line
    assert sum("items stored" in line for line in lines) == 1
    assert len([line for line in lines if line.startswith("fixtures.echo ") and "2/2" in line]) == 1  # the bar
    assert any(line.startswith(f"job {job_id}:") for line in lines[1:])  # the summary's first line
    assert f"verticals jobs export {job_id[:12]} -o results.csv" in lines  # a command on one line, whole
    assert f"  verticals jobs results {job_id[:12]} --status failed" in lines
    assert "their errors:" in result.stderr and "1 item(s) failed;" in result.stderr

    status = run_cli("jobs", "status", job_id, env=env)
    assert status.returncode == 0, status.stderr
    assert_fits(status.stdout, width)
    assert "…" not in status.stdout  # nothing cut
    id_line = next(line for line in status.stdout.splitlines() if job_id in line)
    assert id_line.split() == (["id:", job_id] if width < 60 else ["id", job_id])


def test_a_pipe_gets_no_padded_lines(fixture_env, tmp_path):
    """Tables, titles and the bar are padded to the width by Rich; in a pipe those spaces are dropped."""
    data = tmp_path / "in.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    ran = run_cli("run", "fixtures.echo", str(data), env=NARROW)
    assert ran.returncode == 0, ran.stderr
    assert_fits(ran.stderr)
    for command in (("jobs", "list"), ("tasks", "list"), ("tasks", "show", "fixtures.echo")):
        result = run_cli(*command, env=NARROW)
        assert result.returncode == 0, result.stderr
        assert_fits(result.stdout)


def test_the_cli_console_trims_only_what_is_not_a_terminal():
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_row("1", "a much longer cell")
    grid.add_row("22", "x")
    piped = _Console(file=io.StringIO(), width=60)
    piped.print(grid)
    assert piped.file.getvalue() == "1   a much longer cell\n22  x\n"
    terminal = _Console(file=io.StringIO(), width=60, force_terminal=True, color_system=None)
    terminal.print(grid)
    assert terminal.file.getvalue().splitlines()[1] == "22  x" + " " * 17  # a terminal: as Rich renders it


def test_a_narrow_preview_gives_way_in_its_text_first(domain_registry):
    """At 40 columns the text column narrows first, so that labels and scores stay whole."""
    from verticals.cli.render import preview_table

    output = {"label": "positive", "score": 0.98765, "probabilities": {"positive": 0.98765}}
    rows = [item(seq, {"text": "Shares of a company jumped after record results " * 2}, output) for seq in range(3)]
    text = render(preview_table(domain_registry.task("finance.sentiment"), rows, "first 3 of 30 results", 40),
                  width=40)
    assert_fits(text, 40)
    assert header_cells(text, "#") == ["#", "text", "label", "score", "status"]
    assert text.count("positive") == 3 and text.count("0.988") == 3 and text.count("succeeded") == 3


def test_models_runtimes_keeps_every_figure_whole(tmp_path):
    """`models runtimes` at 80 columns: one block of `name: value` lines per record (a table would cut every
    cell); wide enough, a table. Records written as `models optimize` writes them."""
    from verticals.core.models.runtimes import machine, save_record

    record = {"variant": "onnx-int8", "fingerprint": "4f16a895b27d0ee93162", "decision": "kept", "speedup": 1.394,
              "metric": "macro_f1", "before": 0.8006, "after": 0.7994, "parity": {"agreement": 0.979},
              "machine": machine(), "at": "2026-11-28T00:44:00Z"}
    save_record("finance.sentiment", record, tmp_path)
    env = {"VERTICALS_MODEL_STORE": str(tmp_path)}
    narrow = run_cli("models", "runtimes", env={**env, **NARROW})
    assert narrow.returncode == 0, narrow.stderr
    assert_fits(narrow.stdout)
    for line in ("model: finance.sentiment", "variant: onnx-int8", "decision: kept", "speed-up: 1.39x",
                 "metric: macro_f1 0.8006 -> 0.7994", "agreement: 97.9%", "this machine: yes"):
        assert line in narrow.stdout.splitlines()
    wide = run_cli("models", "runtimes", "finance.sentiment", env={**env, "COLUMNS": "170"})
    assert_fits(wide.stdout, width=170)
    assert header_cells(wide.stdout, "┃")[1:4] == ["model", "┃", "variant"]
    assert "macro_f1 0.8006 -> 0.7994" in wide.stdout and "…" not in wide.stdout


def test_a_slow_jobs_rate_reads_as_time_per_item_in_the_bar_and_the_summary():
    """3 hints in 414 s printed '(0.0 items/s)' in the summary while the bar said '2.3 min/item': one rule."""
    from rich.progress import Progress

    from verticals.cli.common import RateColumn
    from verticals.cli.render import rate_text

    assert rate_text(3000) == "3,000.0 items/s" and rate_text(10.7) == "10.7 items/s"
    assert rate_text(3 / 414) == "2.3 min/item" and rate_text(1 / 40) == "40 s/item"
    progress = Progress()
    task = progress.add_task("tutor.hint", total=3)
    progress.update(task, completed=3)
    state = progress.tasks[0]
    state.start_time, state.stop_time = 0.0, 414.0
    assert RateColumn().render(state).plain == "2.3 min/item"
