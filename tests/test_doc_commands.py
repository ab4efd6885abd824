"""Every command block of the README, docs/*.md and the plugins' READMEs, pasted into a real shell, works.

Each document gets its own folder (the repository's top-level entries linked into it, so its paths work as from
the repository root), its own ``VERTICALS_HOME``, ``HF_HUB_OFFLINE=1``, and one ``bash`` that runs its ``bash``
blocks in order, command by command, as a reader pasting them would (an ``export`` carries over to the next
block). A command passes when it exits 0 (3 for a quality gate, ``--min`` / ``--require``, that is allowed to
fail on small data), prints no traceback, and, for ``curl``, gets no problem+json error back.

What is not run as printed is listed below with its reason:

- ``INPUTS``: the files a document names as the reader's own (``mine.csv``, ``labels.csv``, ``notes.csv``...)
  are made small, from data the repository ships (training rows never from a golden set);
- ``PLACEHOLDERS``: words in capitals are the reader's values (the convention the README states): ``JOB`` is
  the newest job, ``RUN`` / ``RUN_A`` / ``RUN_B`` the newest evaluation runs, ``MODEL_DIR`` a model folder;
- ``LIGHTER``: long runs in a shorter form (training for one epoch, testgen for a few seconds a module), the API
  server on a free port instead of 8000; a command that starts the server (``verticals serve``) runs in the
  background until the document is done, and a document that calls the API without starting a server gets one;
- the plugin template's ``pip install -e`` is done into the document's own folder instead (``pip install
  --target``, on its ``PYTHONPATH``), so that its next commands find the plugin;
- ``EXEMPT``: commands that install into the environment the suite runs in, start workers on shared services,
  run benchmarks or hours-long research runs, or are this suite itself.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("plugins/*/README.md")),
             REPO / "examples" / "plugin-template" / "README.md"]
LINKED = ("examples", "plugins", "scripts", "benchmarks", "verticals", "Makefile", "pyproject.toml", ".venv")

EXEMPT: dict[str, str] = {  # a regular expression on the command -> why it is not run here
    r"^make test\b": "this test suite itself",
    r"^(\.venv/bin/)?pip install\b|^verticals plugins (install|uninstall)\b|^python -m verticals_medical.install":
        "installs into (or removes from) the environment the suite runs in; `make setup` runs the same installs",
    r"^scripts/ensure-services.sh|^verticals worker\b|^verticals db upgrade\b|VERTICALS_BROKER_URL|"
    r"VERTICALS_DATABASE_URL=postgresql":
        "starts Redis, PostgreSQL and Celery workers on shared services (tests/test_celery.py and "
        "tests/test_postgres_store.py run this setup on databases and queues of their own)",
    r"benchmarks/": "a benchmark: minutes, figures in the docs",
    r"research/train.py|build/finance/": "the finance model's full training run (hours; tests/test_training.py "
                                         "trains through the same `verticals train` on 90 rows)",
    r"^verticals models optimize\b": "exports, quantizes and gates an ONNX variant (minutes; the slow tests of "
                                     "tests/test_runtimes.py run the same gate)",
    r"research/splits.py|tagger_notes.jsonl|splits/deid_val.jsonl":
        "the PhysioNet-trained tagger: the licensed notes (../shared/data/medical) are not in a clone; the same "
        "`verticals train` runs on generated text just above it",
}
LIGHTER: list[tuple[str, str, str]] = [  # (pattern, replacement, why)
    (r"^make demo\b", "make -o .venv/.setup-done demo", "the setup is done (`make -o` skips re-running it)"),
    (r"^(verticals train .*)$", r"\1 --epochs 1 --max-length 32 --batch-size 16", "one short epoch"),
    (r"^(python \S+/research/tagger_data.py .*)--generated \d+", r"\1--generated 200",
     "200 generated rows instead of thousands"),
    (r"^(verticals run testgen\.generate .*?)( --time-budget \d+)?$", r"\1 --time-budget 5",
     "5 s per module (the least it takes) instead of 60-150"),
]
PLACEHOLDERS = ("JOB", "RUN", "RUN_A", "RUN_B", "RUN_BEFORE", "RUN_AFTER", "EVAL_ID", "MODEL_DIR")


# -- reading the documents -----------------------------------------------------------------------------------------

@dataclass
class Command:
    text: str
    line: int
    exempt: str | None = None
    lighter: list[str] = field(default_factory=list)


def commands(path: Path) -> list[Command]:
    """The commands of ``path``'s bash blocks, continuation lines joined, comment lines left out."""
    found: list[Command] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    inside, pending, start = False, "", 0
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            inside = not inside and line.strip() in ("```bash", "```sh", "```shell", "```console")
            continue
        if not inside:
            continue
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        found.append(_classify(Command(" ".join(pending.split()) if "'" not in pending else pending.strip(), start)))
        pending = ""
    return found


def _classify(command: Command) -> Command:
    for pattern, why in EXEMPT.items():
        if re.search(pattern, command.text):
            command.exempt = why
            return command
    for pattern, replacement, why in LIGHTER:
        changed = re.sub(pattern, replacement, command.text)
        if changed != command.text:
            command.text = changed
            command.lighter.append(why)
    return command


# -- the folder and the inputs a document names ------------------------------------------------------------------

def _finance_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    from verticals_finance.data import load_rows, split

    train, held_out = split(load_rows())
    pick = []
    for label in ("positive", "negative", "neutral"):
        pick += [row for row in train if row["label"] == label][:20]
    return pick, held_out[:24]


def _write(path: Path, rows: list[dict[str, str]], columns: dict[str, str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        for row in rows:
            writer.writerow([row[key] for key in columns.values()])


def prepare(folder: Path, document: Path) -> dict[str, str]:
    """The document's inputs in ``folder``; returns the environment its commands need besides the suite's."""
    for name in LINKED:
        (folder / name).symlink_to(REPO / name)
    train, held_out = _finance_rows()
    samples = REPO / "plugins" / "verticals-medical" / "verticals_medical" / "samples" / "notes.jsonl"
    name = document.relative_to(REPO).as_posix()
    if name == "README.md":
        _write(folder / "mine.csv", train, {"headline": "text", "label": "label"})
    elif name == "docs/evaluation.md":
        _write(folder / "labels.csv", held_out, {"headline": "text", "label": "label"})
    elif name == "docs/finetune.md":
        _write(folder / "labels.csv", held_out, {"headline": "text", "sentiment": "label"})
        _write(folder / "train.csv", train, {"headline": "text", "sentiment": "label"})
        _write(folder / "test.csv", held_out, {"headline": "text", "sentiment": "label"})
        _write(folder / "news.csv", held_out[:5], {"headline": "text"})
    elif name == "plugins/verticals-medical/README.md":
        notes = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
        (folder / "notes.jsonl").write_text(samples.read_text(encoding="utf-8"), encoding="utf-8")
        _write(folder / "notes.csv", [{"note": n["text"]} for n in notes[:3]], {"note": "note"})
        (folder / "my_terms.tsv").write_text("shortness of breath\tPROBLEM\nmetformin\tMEDICATION\n",
                                             encoding="utf-8")
    elif name == "plugins/verticals-tutor/README.md":
        attempts = REPO / "plugins" / "verticals-tutor" / "verticals_tutor" / "samples" / "attempts.csv"
        (folder / "my_log.csv").write_text(attempts.read_text(encoding="utf-8"), encoding="utf-8")
    elif name == "examples/plugin-template/README.md":  # its `pip install -e`, into this folder only
        site = folder / "site-packages"
        copy = folder / "my-plugin"
        shutil.copytree(REPO / "examples" / "plugin-template", copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                                    "--no-index", "--target", str(site), str(copy)], capture_output=True, text=True,
                                   timeout=600)
        assert installed.returncode == 0, installed.stderr
        return {"PYTHONPATH": str(site)}
    return {}


# -- running a document ------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


REFRESH = """refresh_ids() {
  JOB=$(verticals jobs list --json | python -c 'import json,sys; j=json.load(sys.stdin); print(j and j[0]["id"])')
  EVAL_ID=$JOB
  eval "$(verticals eval list --json | python -c '
import json, sys
runs = [r["id"] for r in json.load(sys.stdin)]
runs += [""] * 2
print(f"RUN={runs[0]} RUN_B={runs[0]} RUN_AFTER={runs[0]} RUN_A={runs[1]} RUN_BEFORE={runs[1]}")')"
}
wait_for_server() {
  for _ in $(seq 1 600); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    sleep 0.5
  done
  return 1
}
"""


def script(commands_: list[Command], folder: Path, port: int, needs_server: bool) -> str:
    model_dir = REPO / "plugins" / "verticals-finance" / "verticals_finance" / "heads" / "sentiment-minilm-lora"
    lines = ["set +e", f"cd {shlex.quote(str(folder))}", f"PORT={port}", f"MODEL_DIR={shlex.quote(str(model_dir))}",
             REFRESH]
    if needs_server:  # a document that calls the API without starting a server: one as docs/api.md starts it
        lines += ["export VERTICALS_API_KEY=$(verticals keys create --tenant docs --name docs)",
                  "verticals serve --host 127.0.0.1 --port $PORT > server.log 2>&1 &", "wait_for_server"]
    for number, command in enumerate(commands_):
        if command.exempt:
            continue
        text = command.text.replace("127.0.0.1:8000", "127.0.0.1:$PORT").replace("--port 8000", "--port $PORT")
        if re.search(r"\b(" + "|".join(PLACEHOLDERS) + r")\b", text):
            text = re.sub(r"\$?\b(" + "|".join(PLACEHOLDERS) + r")\b", r'"$\1"', text)
            lines.append("refresh_ids")
        if re.match(r"^(\S+=\S+ )*verticals serve\b", text):
            text = re.sub(r"\s*&\s*$", "", text)
            lines += [f"echo '@@start {number}'", f"{text} > server.log 2>&1 &", "wait_for_server",
                      f"printf '\\n@@end {number} %s\\n' $?"]
            continue
        # the marker on a line of its own: an output without a final newline (curl's JSON) must not hide it
        lines += [f"echo '@@start {number}'", f"{text}", f"printf '\\n@@end {number} %s\\n' $?"]
    lines.append('kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; true')
    return "\n".join(lines) + "\n"


def run_document(document: Path, tmp_path: Path) -> tuple[list[Command], str]:
    found = commands(document)
    folder = tmp_path / "work"
    folder.mkdir()
    extra = prepare(folder, document)
    text = " ".join(c.text for c in found if not c.exempt)
    needs_server = "/v1/" in text and "verticals serve" not in text
    env = {**os.environ, "VERTICALS_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "TERM": "dumb"}
    for name in ("VERTICALS_DATABASE_URL", "COLUMNS", "VERTICALS_WEBHOOK_ALLOW_PRIVATE", "PYTHONPATH",
                 "VERTICALS_LOAD_PLUGINS"):
        env.pop(name, None)
    env.update(extra)
    result = subprocess.run(["bash"], input=script(found, folder, _free_port(), needs_server), text=True,
                            capture_output=True, env=env, cwd=folder, timeout=1500)
    return found, result.stdout + "\n" + result.stderr


def failures(found: list[Command], output: str) -> list[str]:
    problems = []
    sections = re.split(r"^@@start (\d+)\n", output, flags=re.M)
    ran: dict[int, str] = {int(sections[i]): sections[i + 1] for i in range(1, len(sections) - 1, 2)}
    for number, command in enumerate(found):
        if command.exempt:
            continue
        where = f"line {command.line}: {command.text[:120]}"
        section = ran.get(number)
        if section is None:
            problems.append(f"{where}: never ran")
            continue
        match = re.search(r"^@@end \d+ (\d+)$", section, flags=re.M)
        code = int(match.group(1)) if match else -1
        allowed = (0, 3) if re.search(r"--min\b|--require\b", command.text) else (0,)
        body = section[: match.start()] if match else section
        if code not in allowed:
            problems.append(f"{where}: exit {code}\n{body[-1500:]}")
        if "Traceback (most recent call last)" in body:
            problems.append(f"{where}: a traceback\n{body[-1500:]}")
        if command.text.startswith("curl") and re.search(r'"status":\s*[45]\d\d', body) and '"title"' in body:
            problems.append(f"{where}: the API answered an error\n{body[-800:]}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_command_of_the_docs_runs_as_printed(document, tmp_path):
    found, output = run_document(document, tmp_path)
    problems = failures(found, output)
    assert not problems, f"{document.relative_to(REPO)}: {len(problems)} command(s) failed:\n\n" + "\n\n".join(problems)


def test_every_exemption_names_a_command_that_exists():
    """An exemption or a lighter form that no longer matches any command is stale: it would hide nothing, or hide
    a new command by accident. Every command block is found (a block no reader can paste, e.g. a pseudo-syntax
    `jobs list | status JOB`, is not a command: written so, it fails the run above)."""
    every = [command.text for document in DOCUMENTS for command in commands(document)]
    assert every, "no command found"
    for pattern in EXEMPT:
        assert any(re.search(pattern, text) for text in every), f"stale exemption {pattern!r}"
    for pattern, _replacement, _why in LIGHTER:
        assert any(re.search(pattern, text) for text in every) or any(
            "--epochs 1" in text or "--time-budget 5" in text or "make -o" in text or "--generated 200" in text
            for text in every), pattern


def _redirections(text: str) -> list[str]:
    """The unquoted ``>``/``<`` a shell would read in ``text`` right before ``=...`` (``--require macro_f1>=0.85``
    writes a file named ``=0.85``): what a gate argument becomes when it is not quoted."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    return [f"{tokens[i - 1]}{token}{tokens[i + 1]}" for i, token in enumerate(tokens[:-1])
            if i and token in (">", "<", ">>") and tokens[i + 1].startswith("=")]


def test_printed_commands_and_gates_are_paste_safe():
    """Commands the CLI prints for the user to run (`next:` lines, hints) and every documented command survive a
    shell as printed: a gate such as `macro_f1>=0.85` is quoted, so that the shell does not redirect."""
    sources = [line for path in sorted((REPO / "verticals" / "cli").glob("*.py"))
               for line in path.read_text(encoding="utf-8").splitlines() if "--require" in line or "--min " in line]
    printed = [line for line in sources if re.search(r"--require '?[a-z_0-9]+[<>]", line)]
    assert printed, "no printed gate command found in the CLI"
    for line in printed:
        assert not _redirections(line.split('"')[1] if '"' in line else line), line
    for document in DOCUMENTS:
        for command in commands(document):
            assert not _redirections(command.text), f"{document.name}:{command.line}: {command.text}"
    assert _redirections("verticals models promote finance.sentiment v1 --require macro_f1>=0.85")
    assert not _redirections("verticals models promote finance.sentiment v1 --require 'macro_f1>=0.85'")
