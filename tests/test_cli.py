"""The CLI end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import run_cli


def test_plugins_list_shows_finance_and_quarantined_broken_plugin(use_plugins):
    use_plugins("good", "broken")
    result = run_cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["finance"]["status"] == "loaded"
    assert plugins["finance"]["tasks"] == ["finance.sentiment"]
    assert plugins["broken"]["status"] == "quarantined"


def test_run_echo_csv_to_jsonl_and_folder(use_plugins, tmp_path):
    use_plugins("good")
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,hello\n2,POISON\n3,world\n", encoding="utf-8")
    result = run_cli("run", "fixtures.echo", str(source), "--text-column", "body", "-o", str(tmp_path / "o.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "partial" in result.stderr and "1 item(s) failed" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[0]["input"] == {"id": "1", "body": "hello"} and rows[0]["output"]["upper"] == "HELLO"
    job_id = result.stderr.split("job ")[1].split(":")[0]
    folder = tmp_path / "folder"
    exported = run_cli("jobs", "export", job_id[:10], "-o", str(folder))
    assert exported.returncode == 0, exported.stderr
    assert (folder / "results.jsonl").exists() and (folder / "summary.json").exists()
    assert (folder / "5" / "HELLO.txt").read_text() == "HELLO"


def test_extra_options_become_task_params(use_plugins, tmp_path):
    use_plugins("good")
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n", encoding="utf-8")
    result = run_cli("run", "fixtures.echo", str(source), "--reject", "b", "-o", str(tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [r["error"] for r in rows] == ["", "rejected by parameter"]
    bad = run_cli("run", "fixtures.echo", str(source), "--sleep", "-3")
    assert bad.returncode == 2 and "bad parameters" in bad.stderr and "Traceback" not in bad.stderr


def test_errors_say_what_to_do(use_plugins, tmp_path):
    use_plugins("good")
    missing = run_cli("run", "fixtures.echo", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    source = tmp_path / "in.csv"
    source.write_text("a,b\n1,2\n", encoding="utf-8")
    no_column = run_cli("run", "fixtures.echo", str(source))
    assert no_column.returncode == 2 and "--text-column" in no_column.stderr
    unknown = run_cli("run", "nope.task", str(source))
    assert unknown.returncode == 2 and "fixtures.echo" in unknown.stderr
    assert "Traceback" not in missing.stderr + no_column.stderr + unknown.stderr


def test_jobs_commands(use_plugins, tmp_path):
    use_plugins("good")
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    submitted = run_cli("jobs", "submit", "fixtures.echo", str(source), "--detach")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    status = json.loads(run_cli("jobs", "status", job_id, "--json").stdout)
    assert status["status"] == "queued" and status["total"] == 2
    assert run_cli("jobs", "resume", job_id).returncode == 0
    results = [json.loads(line) for line in run_cli("jobs", "results", job_id).stdout.splitlines()]
    assert [r["output"]["upper"] for r in results] == ["ONE", "TWO"]
    assert job_id[:12] in run_cli("jobs", "list").stdout


def test_cancel_and_retry_follow_the_job_service_rules(use_plugins, tmp_path):
    """The CLI answers what the service decides: retry of an unfinished job is a conflict (exit 2, no change);
    cancel of a job not started cancels its items at once and finishes it."""
    use_plugins("good")
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\nthree\n", encoding="utf-8")
    job_id = run_cli("jobs", "submit", "fixtures.echo", str(source), "--detach").stdout.strip()
    refused = run_cli("jobs", "retry", job_id[:10])
    assert refused.returncode == 2 and "is queued" in refused.stderr and "once it has finished" in refused.stderr
    assert "Traceback" not in refused.stderr
    cancelled = run_cli("jobs", "cancel", job_id[:10])
    assert cancelled.returncode == 0 and "status cancelled" in cancelled.stderr, cancelled.stderr
    status = json.loads(run_cli("jobs", "status", job_id, "--json").stdout)
    assert status["status"] == "cancelled" and status["counts"] == {"cancelled": 3}
    for command in ("retry", "resume"):  # nothing to run again: each says why and ends 0 (not 130, not 'cancelled')
        again = run_cli("jobs", command, job_id[:10])
        assert again.returncode == 0 and "cancelling is final" in " ".join(again.stderr.split()), command
    assert run_cli("jobs", "resume", "nosuchjob").returncode == 2


def test_field_mapping_errors_come_from_the_service(use_plugins, tmp_path):
    use_plugins("good")
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,hello\n", encoding="utf-8")
    unknown = run_cli("run", "fixtures.echo", str(source), "--field", "nosuch=body")
    assert unknown.returncode == 2 and "no input field 'nosuch'" in unknown.stderr
    malformed = run_cli("jobs", "submit", "fixtures.echo", str(source), "--field", "text")
    assert malformed.returncode == 2 and "--field FIELD=COLUMN" in malformed.stderr
    assert "Traceback" not in unknown.stderr + malformed.stderr
    mapped = run_cli("run", "fixtures.echo", str(source), "--field", "text=body", "-q", "-o", str(tmp_path / "o.jsonl"))
    assert mapped.returncode == 0, mapped.stderr
    row = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert row["input"] == {"id": "1", "body": "hello"} and row["output"]["upper"] == "HELLO"


def test_the_cli_attaches_the_webhook_outbox(use_plugins):
    """A composition root: jobs run by the CLI still reach the tenants' webhooks, though no core module or
    built-in plugin imports the API."""
    use_plugins("good")
    result = run_cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["verticals.tenancy.webhooks"]["status"] == "loaded"
    assert "job_finished" in plugins["verticals.tenancy.webhooks"]["hooks"]


@pytest.mark.slow
def test_finance_sentiment_end_to_end_with_the_real_model(tmp_path):
    source = tmp_path / "headlines.csv"
    source.write_text(
        "headline\n"
        "Acme Corp raises full-year guidance after record quarterly profit\n"
        "Globex shares plunge after it slashes its dividend and warns on earnings\n"
        "Initech will publish its annual report on March 3\n", encoding="utf-8")
    out = tmp_path / "scored.csv"
    result = run_cli("run", "finance.sentiment", str(source), "--text-column", "headline", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stderr and f"wrote 3 results to {out}" in " ".join(result.stderr.split())
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == ["positive", "negative", "neutral"]
    assert "text" not in rows[0]  # the mapped column is exported once, under its own name
    assert all(abs(sum(float(r[f"probabilities.{k}"]) for k in ("positive", "negative", "neutral")) - 1) < 1e-3
               for r in rows)
