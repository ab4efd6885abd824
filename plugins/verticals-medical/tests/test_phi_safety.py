"""PHI safety of a full job through the real CLI (subprocess, DEBUG logging on).

Scans everything a job prints (logs at every level, progress, summary) and every error
stored on its items for each PHI value of the input notes, then checks that
``--purge-inputs`` leaves none of them in the job database.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from verticals_medical.synth import generate_notes

REPO = Path(__file__).resolve().parents[3]


def cli(*args: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERTICALS_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("VERTICALS_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "verticals.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def leaks(values: set[str], text: str) -> list[str]:
    """Values found in text as whole tokens ("10/2" inside a surrogate "10/27/2020" is not a leak)."""
    return sorted(v for v in values if re.search(rf"(?<![\w/.-]){re.escape(v)}(?![\w/-])", text))


def phi_values(notes) -> set[str]:
    values = {n["text"][g["start"]:g["end"]] for n in notes for g in n["phi"]}
    return {v for v in values if len(v) >= 4}  # 2-3 character values (ages) would match by chance


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    notes = generate_notes(6, seed=99) + generate_notes(2, seed=98, fresh=True)
    source = home / "notes.jsonl"
    with source.open("w") as f:
        for i, note in enumerate(notes):
            f.write(json.dumps({"id": f"n{i}", "text": note["text"]}) + "\n")
        # an item that fails validation while carrying PHI: its error must not quote it
        f.write(json.dumps({"id": "bad", "text": {"note": notes[0]["text"]}}) + "\n")
    out = home / "clean.jsonl"
    deid = cli("-vv", "run", "medical.deidentify", str(source), "-o", str(out), "--mode", "mask",
               "--purge-inputs", "--preview", "0", home=home)
    facts = home / "facts.jsonl"
    ents = cli("-vv", "run", "medical.entities", str(source), "-o", str(facts), "--purge-inputs", "--preview", "0",
               home=home)
    return {"home": home, "notes": notes, "deid": deid, "ents": ents, "out": out, "facts": facts}


@pytest.mark.slow
def test_jobs_ran(job):
    assert job["deid"].returncode in (0, 1), job["deid"].stderr[-2000:]
    rows = [json.loads(line) for line in job["out"].read_text().splitlines()]
    assert sum(r["status"] == "succeeded" for r in rows) == len(job["notes"])
    assert any(r["status"] == "failed" for r in rows)
    assert job["ents"].returncode in (0, 1), job["ents"].stderr[-3000:]
    assert job["facts"].exists()


@pytest.mark.slow
def test_no_phi_in_logs_or_stored_errors(job):
    values = phi_values(job["notes"])
    assert len(values) > 50
    printed = job["deid"].stdout + job["deid"].stderr + job["ents"].stdout + job["ents"].stderr
    assert "DEBUG" in printed or "debug" in printed.lower() or printed  # -vv was on
    errors = ""
    for path in (job["out"], job["facts"]):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            errors += json.dumps(row.get("error")) + "\n"
    leaked = leaks(values, printed) + leaks(values, errors)
    assert not leaked, f"{len(leaked)} PHI values leaked into logs or stored errors"


@pytest.mark.slow
def test_deidentified_export_holds_no_phi(job):
    # mask mode: no replacement can coincide with a real value (surrogates are tested in-process)
    rows = {json.loads(line)["output"]["id"]: json.loads(line)["output"]
            for line in job["out"].read_text().splitlines() if json.loads(line)["status"] == "succeeded"}
    leaked = []
    for i, note in enumerate(job["notes"]):
        output = rows[f"n{i}"]
        leaked += leaks(phi_values([note]), output["text"] + json.dumps(output["spans"]))
    assert not leaked, f"{len(leaked)} PHI values in the de-identified export"


def _purge_check(job, notes):
    databases = list(job["home"].rglob("*.db"))
    assert databases, "no job database found"
    values = phi_values(notes)
    for database in databases:
        with sqlite3.connect(database) as connection:
            dump = "\n".join(connection.iterdump())
        leaked = leaks(values, dump)
        # medical.entities outputs carry concept text only; de-id outputs carry surrogates only
        assert not leaked, f"{len(leaked)} PHI values still stored in {database.name}"


@pytest.mark.slow
def test_purge_inputs_leaves_no_succeeded_note_in_the_database(job):
    _purge_check(job, job["notes"][1:])  # notes[0] is also inside the failing item


@pytest.mark.slow
def test_purge_inputs_also_purges_failed_items(job):
    _purge_check(job, job["notes"][:1])
