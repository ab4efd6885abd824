"""Explanations (issue 29): the contract (``Explanation``/``Evidence``, ``Task.explain``), the job option
``explain`` through the service, the store (migration 0009), exports, the CLI, the REST API and the SDK; on the
model-free fixture task ``fixtures.keyword``, whose explanation is the keyword that decided its label. The
domain plugins' explanations are tested for content in their own tests (finance, medical, tutor)."""

from __future__ import annotations

import csv
import json
import time

import pytest
from pydantic import BaseModel, ValidationError

from verticals.contract import Evidence, Explanation, ExplanationError, check_explanation
from verticals.core.jobs.service import JobError

TEXTS = ["Shares up today", "down we go", "flat quarter", "BADSPAN up", "EXPLODE up"]


class Item(BaseModel):
    text: str
    note: int = 0


# -- the contract -------------------------------------------------------------------------------------------------

def test_evidence_and_explanation_validate_their_own_rules():
    with pytest.raises(ValidationError, match="both start and end"):
        Evidence(kind="word", weight=1.0, start=3)
    with pytest.raises(ValidationError, match="not after its start"):
        Evidence(kind="word", weight=1.0, start=3, end=3)
    with pytest.raises(ValidationError, match="finite"):
        Evidence(kind="word", weight=float("nan"))
    with pytest.raises(ValidationError, match="one line"):
        Explanation(summary="two\nlines", method="m")
    with pytest.raises(ValidationError, match="extra"):
        Explanation.model_validate({"summary": "s", "method": "m", "why": "not a field"})


def test_check_explanation_holds_spans_to_the_input_and_never_quotes_it():
    item = Item(text="Profit fell sharply")
    good = Explanation(summary="negative", method="m",
                       evidence=[Evidence(kind="word", weight=0.4, text="fell", start=7, end=11),
                                 Evidence(kind="factor", field="ability", weight=-0.2)])
    assert check_explanation(good, item, "text") == good
    assert check_explanation(good.model_dump(), item, "text") == good  # a dict is validated too
    wrong_text = Explanation(summary="s", method="m", evidence=[Evidence(kind="word", weight=1, text="rose", start=7,
                                                                         end=11)])
    with pytest.raises(ExplanationError) as caught:
        check_explanation(wrong_text, item, "text")
    assert "not the input's characters 7-11" in str(caught.value) and "fell" not in str(caught.value)
    too_long = Explanation(summary="s", method="m", evidence=[Evidence(kind="span", weight=1, start=7, end=99)])
    with pytest.raises(ExplanationError, match="ends after the 19 characters"):
        check_explanation(too_long, item, "text")
    not_text = Explanation(summary="s", method="m", evidence=[Evidence(kind="span", weight=1, start=0, end=1,
                                                                       field="note")])
    with pytest.raises(ExplanationError, match="not a text field"):
        check_explanation(not_text, item, "text")
    with pytest.raises(ExplanationError, match="needs a field"):
        check_explanation(Explanation(summary="s", method="m", evidence=[Evidence(kind="span", weight=1, start=0,
                                                                                  end=1)]), item, None)


def test_a_task_explains_when_it_overrides_explain(fixtures_only_registry):
    assert fixtures_only_registry.task("fixtures.keyword").explains()
    assert not fixtures_only_registry.task("fixtures.echo").explains()
    assert fixtures_only_registry.task("fixtures.keyword").info()["explains"] is True


# -- jobs -------------------------------------------------------------------------------------------------------------

@pytest.fixture
def service(fixtures_only_registry, store):
    from verticals.workers import job_service

    svc = job_service(store, fixtures_only_registry)
    yield svc
    svc.close()


def test_explained_job_stores_validated_explanations_and_fails_only_the_bad_ones(service, tmp_path):
    job_id = service.submit("fixtures.keyword", [{"text": t} for t in TEXTS], explain=True)
    assert service.store.job(job_id).options["explain"] is True
    assert service.execute(job_id) == "partial"
    rows = list(service.results(job_id))
    up, down, flat, badspan, explode = rows
    assert up["status"] == "succeeded" and up["explanation"]["summary"] == 'positive: the word "up"'
    assert up["explanation"]["evidence"] == [{"kind": "word", "weight": 1.0, "text": "up", "start": 7, "end": 9,
                                              "source": "keyword rule"}]
    assert down["explanation"]["evidence"][0]["start"] == 0 and flat["explanation"]["evidence"] == []
    assert badspan["status"] == "failed" and badspan["error"].startswith("invalid explanation: evidence.0: text is")
    assert badspan["output"] is None and "explanation" not in badspan
    # the explanation of one item raised: the batch was bisected, only that item failed
    assert explode["status"] == "failed" and explode["error"] == \
        "explanation failed: ValueError: explanation exploded"
    # exports: JSONL rows carry the explanation (null for failed items); CSV has its flat columns
    service.export(job_id, tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0]["explanation"]["method"] == "keyword" and lines[3]["explanation"] is None
    service.export(job_id, tmp_path / "out.csv")
    table = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert list(table[0]) == ["seq", "text", "label", "explanation.summary", "explanation.method",
                              "explanation.target", "explanation.evidence", "status", "error"]
    assert table[0]["explanation.summary"] == 'positive: the word "up"'
    assert json.loads(table[0]["explanation.evidence"])[0]["text"] == "up"
    assert table[4]["explanation.summary"] == "" and table[4]["status"] == "failed"


def test_purged_inputs_take_the_words_their_explanations_quote_with_them(service):
    """--purge-inputs deletes the input: an explanation keeps its spans and weights, never a copy of the words."""
    secret = "shares of Zorblax Holdings going up"
    job_id = service.submit("fixtures.keyword", [{"text": secret}], explain=True, options={"purge_inputs": True})
    assert service.execute(job_id) == "succeeded"
    row = next(iter(service.results(job_id)))
    stored = json.dumps(row["explanation"])
    assert row["explanation"]["evidence"][0] == {"kind": "word", "weight": 1.0, "text": None, "start": 33,
                                                 "end": 35, "source": "keyword rule"}
    assert '"up"' not in row["explanation"]["summary"] and "Zorblax" not in stored
    with service.store.engine.connect() as connection:  # nothing of it in the table either
        from sqlalchemy import text

        assert "going up" not in json.dumps([list(r) for r in connection.execute(text("SELECT * FROM items"))],
                                            default=str)


def test_without_explain_nothing_is_asked_or_stored(service, tmp_path, monkeypatch):
    task_cls = service.registry.task("fixtures.keyword")
    monkeypatch.setattr(task_cls, "explain", lambda *a, **k: pytest.fail("explain called for a job without it"))
    job_id = service.submit("fixtures.keyword", [{"text": t} for t in TEXTS])
    service.execute(job_id)
    assert all("explanation" not in row for row in service.results(job_id))
    assert all(item.explanation is None for item in service.store.iter_items(job_id))
    service.export(job_id, tmp_path / "plain.csv")
    assert "explanation.summary" not in (tmp_path / "plain.csv").read_text(encoding="utf-8")


def test_explain_is_refused_for_a_task_that_gives_none(service):
    with pytest.raises(JobError, match=r"fixtures.echo does not explain its results.*tasks that do: fixtures.keyword"):
        service.submit("fixtures.echo", [{"text": "a"}], explain=True)
    assert service.store.list_jobs() == []


def test_a_retried_item_loses_its_old_explanation(service):
    job_id = service.submit("fixtures.keyword", [{"text": "up"}], explain=True)
    service.execute(job_id)
    from sqlalchemy import update

    from verticals.core.store.tables import Item as ItemRow

    with service.store.session() as session, session.begin():  # as if it had failed after its explanation
        session.execute(update(ItemRow).values(status="failed", error="boom"))
    service.store.reset_failed(job_id)
    assert next(service.store.iter_items(job_id)).explanation is None


# -- the fronts ----------------------------------------------------------------------------------------------------

def test_cli_run_explain_writes_and_previews_explanations(use_plugins, tmp_path):
    from tests.conftest import run_cli

    pythonpath = use_plugins("good")
    source = tmp_path / "in.csv"
    source.write_text("headline\nShares up today\ndown we go\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    env = {"PYTHONPATH": pythonpath, "VERTICALS_LOAD_PLUGINS": "fixtures", "COLUMNS": "80"}
    done = run_cli("run", "fixtures.keyword", str(source), "--text-column", "headline", "--explain", "-o", str(out),
                   env=env)
    assert done.returncode == 0, done.stderr
    assert 'why #0: positive: the word "up"' in done.stderr
    assert "    Shares [[up]] today" in done.stderr.splitlines()  # a pipe: the evidence marked in plain text
    assert "    [[down]] we go" in done.stderr.splitlines()
    from tests.test_cli_width import assert_fits

    assert_fits(done.stderr, 80, commands=True)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[1]["explanation"]["evidence"][0]["text"] == "down"
    job = done.stderr.split("job ")[1].split(":")[0].strip()
    shown = run_cli("jobs", "results", job[:12], env=env)
    assert json.loads(shown.stdout.splitlines()[0])["explanation"]["target"] == "positive"
    # an evaluation with --explain: `eval show` says why each wrong item was predicted as it was
    evaluated = run_cli("eval", "fixtures.keyword", "--explain", "--json", env=env)
    assert evaluated.returncode == 0, evaluated.stderr
    shown = run_cli("eval", "show", json.loads(evaluated.stdout)["id"][:8], env=env)
    assert 'why #3: negative: the word "down"' in shown.stdout  # "costs down" is gold positive
    assert "[[down]]" in shown.stdout  # its text, the evidence marked
    assert "why #0" not in shown.stdout  # right items are not listed


def test_api_and_sdk_return_explanations(fixtures_only_registry, isolated_home):
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    with TestClient(create_app(store, fixtures_only_registry, auth=False)) as api:
        created = api.post("/v1/jobs", json={"task": "fixtures.keyword", "explain": True,
                                             "items": [{"text": "prices up"}, {"text": "nothing"}]})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        items = api.get(f"/v1/jobs/{job_id}/results").json()["items"]
        assert items[0]["explanation"]["evidence"][0] == {"kind": "word", "weight": 1.0, "text": "up", "start": 7,
                                                          "end": 9, "source": "keyword rule"}
        plain = api.post("/v1/jobs", json={"task": "fixtures.keyword", "items": [{"text": "up"}]}).json()["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/v1/jobs/{plain}").json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "explanation" not in api.get(f"/v1/jobs/{plain}/results").json()["items"][0]
        refused = api.post("/v1/jobs", json={"task": "fixtures.echo", "explain": True, "items": [{"text": "a"}]})
        assert refused.status_code == 422 and "does not explain" in refused.json()["detail"]
        predicted = api.post("/v1/predict", json={"task": "fixtures.keyword", "explain": True,
                                                  "items": [{"text": "down"}]}).json()["results"][0]
        assert predicted["explanation"]["summary"] == 'negative: the word "down"'
        assert api.get("/v1/tasks").json()  # the tasks list says which explain
        tasks = {task["name"]: task for task in api.get("/v1/tasks").json()}
        assert tasks["fixtures.keyword"]["explains"] and not tasks["fixtures.echo"]["explains"]

    import verticals

    with verticals.Client() as client:
        job = client.submit("fixtures.keyword", items=[{"text": "going up"}], explain=True)
        job.wait()
        result = next(job.results())
        assert result.explanation_as() == Explanation(
            summary='positive: the word "up"', method="keyword", target="positive",
            evidence=[Evidence(kind="word", weight=1.0, text="up", start=6, end=8, source="keyword rule")])
        assert client.predict("fixtures.keyword", [{"text": "up"}], explain=True)[0].explanation is not None
        assert client.predict("fixtures.keyword", [{"text": "up"}])[0].explanation is None


def test_dashboard_marks_the_strongest_evidence_in_the_text():
    """The dashboard's evidenceSegments (the JavaScript the page runs), in node: the 5 strongest positive spans,
    overlaps dropped, in text order; spans of another field, outside the text or not positive are left out."""
    import shutil
    import subprocess

    from verticals.api.dashboard import SCRIPT

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the dashboard's script")
    function = SCRIPT.split("// <segments>")[1].split("\n", 1)[1].split("// </segments>")[0]
    text = "Profit fell sharply and the dividend was cut."
    evidence = [{"kind": "word", "weight": 0.5, "start": 7, "end": 11},        # fell
                {"kind": "word", "weight": 0.2, "start": 41, "end": 44},       # cut
                {"kind": "span", "weight": 0.1, "start": 7, "end": 19},        # overlaps "fell": dropped
                {"kind": "word", "weight": -0.3, "start": 0, "end": 6},        # against the label: not marked
                {"kind": "word", "weight": 0.9, "start": 0, "end": 6, "field": "title"},  # another field
                {"kind": "factor", "weight": 2.0}]                              # no span
    program = (function + f"\nconsole.log(JSON.stringify(evidenceSegments({json.dumps(text)}, "
               f"{json.dumps(evidence)}, 'text')));")
    done = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["Profit ", None], ["fell", 0.5], [" sharply and the dividend was ", None],
                                       ["cut", 0.2], [".", None]]
    many = [{"weight": w, "start": i, "end": i + 1} for i, w in enumerate([1, 2, 3, 4, 5, 6, 7])]
    program = function + "\nconsole.log(JSON.stringify(evidenceSegments('abcdefg', " + json.dumps(many) + ", 'x')));"
    marked = [w for _, w in json.loads(subprocess.run([node, "-e", program], capture_output=True, text=True,
                                                      timeout=60).stdout) if w is not None]
    assert marked == [3, 4, 5, 6, 7]  # the 5 strongest, in text order
    checked = subprocess.run([node, "--check"], input=SCRIPT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr  # the whole page script parses


# -- the CLI's highlighting ---------------------------------------------------------------------------------------

class _Row:
    def __init__(self, seq, text, evidence, summary="negative: the words"):
        self.seq, self.input = seq, {"text": text}
        self.explanation = {"summary": summary, "method": "m", "evidence": evidence}


class _Keyword:
    text_field, sensitive = "text", False


class _Sensitive(_Keyword):
    sensitive = True


def _rendered(lines, width, terminal=False):
    import io

    from verticals.cli.console import _Console

    buffer = io.StringIO()
    console = _Console(width=width, file=buffer, force_terminal=terminal, color_system="standard" if terminal
                       else None)
    console.print(lines)
    return buffer.getvalue()


LONG = ("The company said on Tuesday that its quarterly profit fell sharply after a year of strong growth, "
        "citing weaker demand in Europe, higher costs for raw materials and a stronger dollar, and it warned "
        "that the dividend would be cut unless trading improved before the end of the financial year, "
        "which analysts had expected for some time given the state of the market.")


def test_cli_marks_the_strongest_evidence_in_the_text_at_80_and_40_columns():
    """The preview's (and ``eval show``'s) evidence lines: the dashboard's rule (the 5 strongest positive spans of
    the text field, overlaps dropped), ``[[...]]`` in a pipe, a style in a terminal; a long text shows the marks
    in context; every line fits the width; never the text of a sensitive task."""
    from tests.test_cli_width import assert_fits
    from verticals.cli.render import evidence_spans, explanation_lines

    fell, cut = LONG.index("fell"), LONG.index("cut")
    evidence = [{"kind": "word", "weight": 0.5, "start": fell, "end": fell + 4},
                {"kind": "word", "weight": 0.2, "start": cut, "end": cut + 3},
                {"kind": "span", "weight": 0.1, "start": fell, "end": fell + 12},   # overlaps "fell": dropped
                {"kind": "word", "weight": -0.3, "start": 0, "end": 3},             # against the label
                {"kind": "word", "weight": 0.9, "start": 0, "end": 3, "field": "title"},  # another field
                {"kind": "factor", "weight": 2.0}]                                   # no span
    assert evidence_spans(LONG, evidence, "text") == [(fell, fell + 4), (cut, cut + 3)]
    assert evidence_spans("abcdefg", [{"weight": w, "start": i, "end": i + 1} for i, w in enumerate(range(1, 8))],
                          "text") == [(2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]  # the 5 strongest, in text order
    rows = [_Row(0, LONG, evidence), _Row(1, "Shares\n  up today", [{"kind": "word", "weight": 1.0, "start": 9,
                                                                     "end": 11}], summary="positive")]
    for width in (80, 40):
        text = _rendered(explanation_lines(rows, width, _Keyword, plain=True), width)
        assert_fits(text, width)
        flat = " ".join(text.split())
        assert "[[fell]]" in flat and "[[cut]]" in flat and "[[The]]" not in flat and "[[fell sharply" not in flat
        assert flat.count("…") == 3 and "state of the market" not in flat  # in context: before, between, after
        assert "    Shares [[up]] today" in text.splitlines()  # a short text whole, on one line
        assert text.splitlines()[0].startswith("why #0: negative")
        quoted = [line for line in text.splitlines() if "[[" in line or "…" in line]
        assert quoted and all(line.startswith("    ") for line in quoted)
        assert len([line for line in text.splitlines() if line.startswith("    ")]) <= 3 + 1 + 1  # about 3 lines
    styled = _rendered(explanation_lines(rows, 80, _Keyword, plain=False), 80, terminal=True)
    assert "[[" not in styled and "\x1b[1;7mfell\x1b[0m" in styled  # bold reverse, no brackets
    sensitive = _rendered(explanation_lines(rows, 80, _Sensitive, plain=True), 80)
    assert "why #0: negative" in sensitive and "fell" not in sensitive and "Shares" not in sensitive
    unknown = _rendered(explanation_lines(rows, 80, None, plain=True), 80)
    assert "Shares" not in unknown  # no task class: nothing quoted


def test_cli_marks_plainly_in_a_pipe_without_colour_or_on_a_dumb_terminal():
    import io

    from rich.console import Console

    from verticals.cli.render import plain_marks

    assert plain_marks(Console(file=io.StringIO()))  # a pipe
    assert not plain_marks(Console(file=io.StringIO(), force_terminal=True, color_system="standard"))
    assert plain_marks(Console(file=io.StringIO(), force_terminal=True, color_system="standard", no_color=True))
    assert plain_marks(Console(file=io.StringIO(), force_terminal=True, color_system=None))
