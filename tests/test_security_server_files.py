"""Attacks on the server's files through task parameters and inputs (issue 22, "no server path from a tenant").

One mechanism closes the class: the contract's server-path types (``ServerFile``, ``ServerFolder``,
``ServerModel``, ``OperatorOnly``), enforced by the core with the job's :class:`ServerAccess`. These tests
attack through the REST API with a plain key, the CLI and the run-time re-check, and walk every installed
task's schemas for a path-like field of another type.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from verticals.contract import OPERATOR, ServerAccess, ServerFileHandle, ServerFolderHandle, server_fields
from verticals.tenancy.tenants import Tenants

ORDINARY_UID = 4242
SECRET = "s3cr3t-" + "c0ntent"


# ----------------------------------------------------------------------------------- every task's schemas

PATH_NAME = re.compile(r"file|path|dir|folder|model|bank|terms|module|root|location|cache|weights|checkpoint",
                       re.IGNORECASE)
TEXT_TYPES = (str, Path, os.PathLike, bytes, ServerFileHandle, ServerFolderHandle)


def _leaves(annotation: typing.Any) -> list[typing.Any]:
    """The plain types inside an annotation (Optional, list, Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is not None:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _models(model: type[BaseModel], seen: set[type]) -> list[type[BaseModel]]:
    if model in seen:
        return []
    seen.add(model)
    found = [model]
    for info in model.model_fields.values():
        for leaf in _leaves(info.annotation):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                found += _models(leaf, seen)
    return found


def test_every_path_like_field_of_every_installed_task_is_a_server_path_type():
    """A str/Path field named like a path (or any Path-typed field) in any installed task's Params or Input,
    nested models included, must be a ServerFile/ServerFolder/ServerModel or carry OperatorOnly: a plain
    one would reach the filesystem with whatever a tenant sent."""
    from verticals.registry import get_registry

    registry = get_registry(refresh=True)
    assert {"medical.entities", "medical.deidentify", "tutor.mastery", "tutor.grade", "testgen.generate",
            "finance.sentiment", "verticals.train"} <= set(registry.tasks)
    offenders, typed_fields = [], set()
    for name, task in sorted(registry.tasks.items()):
        for role, top in (("Params", task.Params), ("Input", task.Input)):
            for model in _models(top, set()):
                typed = server_fields(model)
                typed_fields |= {f"{name}.{field}" for field in typed}
                schema = model.model_json_schema()
                for field, info in model.model_fields.items():
                    leaves = [leaf for leaf in _leaves(info.annotation) if isinstance(leaf, type)]
                    by_type = any(issubclass(leaf, Path | os.PathLike) for leaf in leaves)
                    by_name = bool(PATH_NAME.search(field)) and any(
                        issubclass(leaf, TEXT_TYPES) for leaf in leaves)
                    if not (by_type or by_name):
                        continue
                    shown = json.dumps(schema.get("properties", {}).get(field, {}))
                    if field not in typed or ("server-" not in shown and "x-verticals-server" not in shown):
                        offenders.append(f"{name} {role} {model.__name__}.{field}: {info.annotation}")
    assert {"medical.entities.terms", "medical.deidentify.ner_model", "tutor.grade.answer_bank",
            "tutor.mastery.params_file", "tutor.mastery.predictor_file", "testgen.generate.module",
            "testgen.generate.path", "testgen.generate.text"} <= typed_fields
    assert not offenders, "path-like fields that are not server-path types:\n" + "\n".join(offenders)


# ------------------------------------------------------------------------------------------------- the API

@pytest.fixture
def full_registry():
    from verticals.registry import get_registry

    return get_registry(refresh=True)


@pytest.fixture
def api(isolated_home, full_registry):
    from verticals.api.app import create_app
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{isolated_home / 'api.db'}")
    client = TestClient(create_app(store, full_registry, auth=True, background=False))
    client.__enter__()
    client.store = store
    client.key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'plain').token}"}
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def targets(tmp_path):
    """What an attacker names: a root-only JSON file, a device, a FIFO, a socket, a missing path, a folder,
    and symlinks out of an allowed data folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "settings.json"
    secret.write_text(json.dumps({"skills": {}, "default": {}, "db_password": SECRET}))
    secret.chmod(0o600)
    fifo = outside / "fifo"
    os.mkfifo(fifo)
    sock_path = outside / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    data = tmp_path / "data"
    data.mkdir()
    (data / "escape.json").symlink_to(secret)
    (data / "up").symlink_to(outside)
    (data / "zero").symlink_to("/dev/zero")
    (data / "fifo").symlink_to(fifo)
    os.mkfifo(data / "inner-fifo")
    yield {"secret": secret, "fifo": fifo, "socket": sock_path, "data": data, "outside": outside,
           "named": {
               "root-only JSON": str(secret), "/etc/shadow": "/etc/shadow", "/dev/zero": "/dev/zero",
               "FIFO": str(fifo), "socket": str(sock_path), "missing": str(outside / "missing.json"),
               "a folder": str(outside), "relative ../": "../outside/settings.json",
               "symlink out": str(data / "escape.json"), "symlink folder out": str(data / "up" / "settings.json"),
               "symlink to a device": str(data / "zero"), "symlink to a FIFO": str(data / "fifo"),
               "FIFO inside the root": str(data / "inner-fifo"), "missing inside the root": str(data / "nope.json"),
               "proc environ": "/proc/self/environ"}}
    sock.close()


def _jobs(store) -> int:
    from sqlalchemy import func, select

    from verticals.core.store.tables import Job

    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


ATTACKS = [  # (task, how the path is sent)
    ("medical.entities", {"params": "terms"}),
    ("tutor.mastery", {"params": "params_file"}),
    ("tutor.mastery", {"params": "predictor_file"}),
    ("tutor.grade", {"params": "answer_bank"}),
    ("medical.deidentify", {"params": "ner_model"}),
]
ITEMS = {"medical.entities": [{"text": "no fever"}], "medical.deidentify": [{"text": "John saw Dr. Smith"}],
         "tutor.mastery": [{"student": "s1", "skill": "a", "correct": 1}],
         "tutor.grade": [{"question": "q", "reference_answers": ["a"], "answer": "a"}]}


@pytest.mark.parametrize("with_roots", [False, True], ids=["no data roots", "data roots set"])
@pytest.mark.parametrize(("task", "where"), ATTACKS, ids=[f"{t}.{w['params']}" for t, w in ATTACKS])
def test_a_tenant_names_no_server_file_in_params(api, targets, monkeypatch, task, where, with_roots):
    """Every path a tenant might name, on every endpoint that takes params: 422 before any job exists, the
    same answer whatever the path is (no existence oracle), and nothing of any file in it."""
    if with_roots:
        monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(targets["data"]))
    field = where["params"]
    answers = {}
    for label, path in targets["named"].items():
        body = {"task": task, "items": ITEMS[task], "params": {field: path}}
        for endpoint, send in (
            ("jobs", lambda body=body: api.post("/v1/jobs", json=body, headers=api.key)),
            ("predict", lambda body=body: api.post("/v1/predict", json=body, headers=api.key)),
            ("upload", lambda body=body: api.post(
                "/v1/jobs/upload", headers=api.key, files={"file": ("in.jsonl", "".join(
                    json.dumps(i) + "\n" for i in body["items"]))},
                data={"task": body["task"], "params": json.dumps(body["params"])})),
        ):
            response = send()
            assert response.status_code == 422, (label, endpoint, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            text = response.text
            assert SECRET not in text and "db_password" not in text and "root:" not in text
            assert "Traceback" not in text and "FileNotFoundError" not in text and "No such file" not in text
            answers.setdefault(endpoint, set()).add(response.json()["detail"])
    assert _jobs(api.store) == 0
    for endpoint, details in answers.items():
        assert len(details) == 1, f"{endpoint}: the answer depends on the path (an existence oracle): {details}"
        assert field in next(iter(details))


def test_a_tenant_may_use_a_regular_file_inside_an_allowed_root(api, targets, monkeypatch):
    """The rule lets the legitimate case through: with VERTICALS_DATA_ROOTS, a regular file inside it,
    named absolute or relative, is accepted and stored as its real path."""
    monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(targets["data"]))
    table = targets["data"] / "bkt.json"
    table.write_text(json.dumps({"skills": {}, "default": {"prior": 0.3, "learn": 0.1, "forget": 0.0,
                                                           "guess": 0.2, "slip": 0.1}}))
    for name in (str(table), "bkt.json"):
        response = api.post("/v1/jobs", json={"task": "tutor.mastery", "items": ITEMS["tutor.mastery"],
                                              "params": {"params_file": name}}, headers=api.key)
        assert response.status_code == 202, response.text
        assert api.store.job(response.json()["id"]).params["params_file"] == os.path.realpath(table)


def test_testgen_from_a_tenant_takes_only_the_source_it_sent(api, tmp_path, monkeypatch):
    """testgen's module, path and text name server code: a tenant is refused with any of them (even with
    data roots and the code grant), before read_items expands a folder; module + source is accepted."""
    monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(tmp_path))
    (tmp_path / "settings.py").write_text(f"TOKEN = {SECRET!r}\n")
    token = Tenants(api.store).create_key("acme", "code", allow_code_execution=True).token
    grant = {"Authorization": f"Bearer {token}"}
    for item in ({"module": "verticals.config"}, {"module": str(tmp_path / "settings.py")},
                 {"path": str(tmp_path / "settings.py")}, {"path": str(tmp_path)}, {"text": str(tmp_path)},
                 {"text": "os"}, {"path": "settings.py", "module": "settings"}):
        for endpoint in ("/v1/jobs", "/v1/predict"):
            response = api.post(endpoint, json={"task": "testgen.generate", "items": [item]}, headers=grant)
            assert response.status_code == 422, (item, response.text)
            assert SECRET not in response.text and "only an operator" in response.text
        upload = api.post("/v1/jobs/upload", headers=grant, data={"task": "testgen.generate"},
                          files={"file": ("in.jsonl", json.dumps(item) + "\n")})
        assert upload.status_code == 422, (item, upload.text)
    txt = api.post("/v1/jobs/upload", headers=grant, data={"task": "testgen.generate"},
                   files={"file": ("modules.txt", f"{tmp_path}\nos\n")})
    assert txt.status_code == 422, txt.text
    assert _jobs(api.store) == 0
    ok = api.post("/v1/jobs", json={"task": "testgen.generate", "items": [
        {"module": "tiny", "source": "def add(a, b):\n    return a + b\n"}]}, headers=grant)
    assert ok.status_code == 202, ok.text


def test_a_tenant_names_no_model_hub_id(api):
    response = api.post("/v1/jobs", json={"task": "medical.deidentify", "items": ITEMS["medical.deidentify"],
                                          "params": {"ner_model": "obi/deid_roberta_i2b2"}}, headers=api.key)
    assert response.status_code == 422 and "VERTICALS_DATA_ROOTS" in response.text
    assert _jobs(api.store) == 0


# ------------------------------------------------------------------------------------ run time and the CLI

def _tenant_job(tmp_path, monkeypatch, full_registry, table: Path):
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.jobs.service import JobService
    from verticals.core.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'run.db'}")
    service = JobService(store, full_registry, executor=LocalExecutor(store, full_registry))
    job_id = service.submit("tutor.mastery", ITEMS["tutor.mastery"], params={"params_file": str(table)},
                            tenant="acme")
    return service, job_id


def _bkt_table(path: Path) -> Path:
    path.write_text(json.dumps({"skills": {}, "default": {"prior": 0.3, "learn": 0.1, "forget": 0.0, "guess": 0.2,
                                                          "slip": 0.1}}))
    return path


def test_a_file_swapped_for_a_symlink_after_the_submit_is_not_read(tmp_path, monkeypatch, full_registry, targets):
    """Accepted at submit, then replaced by a symlink to a root-only file before the job runs: the run opens
    the path again (O_NOFOLLOW, inside the root) and the item fails with the refusal, no content."""
    monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(targets["data"]))
    table = _bkt_table(targets["data"] / "table.json")
    service, job_id = _tenant_job(tmp_path, monkeypatch, full_registry, table)
    table.unlink()
    table.symlink_to(targets["secret"])
    assert service.execute(job_id) == "failed"
    [row] = list(service.results(job_id))
    assert "no longer hold" in row["error"] and "VERTICALS_DATA_ROOTS" in row["error"]
    assert SECRET not in row["error"] and "db_password" not in row["error"]


def test_a_root_withdrawn_after_the_submit_refuses_the_run(tmp_path, monkeypatch, full_registry, targets):
    monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(targets["data"]))
    service, job_id = _tenant_job(tmp_path, monkeypatch, full_registry, _bkt_table(targets["data"] / "t.json"))
    monkeypatch.delenv("VERTICALS_DATA_ROOTS")
    assert service.execute(job_id) == "failed"
    monkeypatch.setenv("VERTICALS_DATA_ROOTS", str(targets["data"]))
    _, again = _tenant_job(tmp_path, monkeypatch, full_registry, _bkt_table(targets["data"] / "t.json"))
    assert service.execute(again) == "succeeded"  # the same file, allowed: it runs


def test_the_cli_is_an_operator_but_reads_only_capped_regular_files(tmp_path, targets, monkeypatch):
    """The CLI names any regular file (as before), but a device, a FIFO (no hang), a socket, a folder or a
    file over the cap is one error: line, exit 2, no traceback, nothing of the file."""
    attempts = tmp_path / "attempts.csv"
    attempts.write_text("student,skill,correct\ns1,a,1\n")
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(2 << 20)  # 2 MiB of zeros, sparse: over a 1 MiB cap
    from typer.testing import CliRunner

    from verticals.cli import app

    monkeypatch.setenv("VERTICALS_DATA_MAX_FILE_MB", "1")
    runner = CliRunner()
    for path in ("/dev/zero", str(targets["fifo"]), str(targets["socket"]), str(targets["outside"]), str(big),
                 str(tmp_path / "missing.json"), str(targets["data"] / "zero")):
        done = runner.invoke(app, ["run", "tutor.mastery", str(attempts), "--params-file", path,
                                   "-o", str(tmp_path / "out.csv")])
        assert done.exit_code == 2, (path, done.output)
        assert done.output.strip().startswith("error:") and "Traceback" not in done.output, done.output
        assert ("params_file" in done.output and done.exception is None) or isinstance(done.exception, SystemExit)
    done = runner.invoke(app, ["run", "tutor.mastery", str(attempts), "--params-file", str(targets["secret"]),
                               "-o", str(tmp_path / "out.csv")])
    assert SECRET not in done.output  # read (the operator may), but a table that does not parse never echoes it
    # and the real CLI, in a process of its own, on the FIFO: an error line at once, not a hang
    fifo = subprocess.run([sys.executable, "-m", "verticals.cli", "run", "tutor.mastery", str(attempts),
                           "--params-file", str(targets["fifo"]), "-o", str(tmp_path / "out.csv")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert fifo.returncode == 2 and fifo.stderr.startswith("error:"), fifo.stderr[-2000:]


def _as_ordinary_user(function):
    """Run ``function()`` in a child process with the uid/gid of an ordinary user (as root), or here (not
    root); return what it returned (JSON-able)."""
    if os.geteuid() != 0:
        return function()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(ORDINARY_UID, ORDINARY_UID, ORDINARY_UID)
            os.setresuid(ORDINARY_UID, ORDINARY_UID, ORDINARY_UID)
            payload = json.dumps({"ok": function()})
        except BaseException as error:
            payload = json.dumps({"error": repr(error)})
        os.write(write, payload.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        outcome = json.loads(handle.read() or '{"error": "no answer"}')
    os.waitpid(pid, 0)
    assert "ok" in outcome, outcome
    return outcome["ok"]


@pytest.mark.parametrize("mode", ["root", "user"] if os.geteuid() == 0 else ["user"])
def test_no_existence_oracle_as_root_or_as_an_ordinary_user(tmp_path, mode):
    """A file the server process cannot read (an ordinary user's server, a 0600 file of root), one in a
    0700 folder, a missing one, one outside the roots: the tenant gets one and the same answer."""
    data = tmp_path / "data"
    (data / "private").mkdir(parents=True)
    (data / "private" / "x.json").write_text("{}")
    (data / "private").chmod(0o700)
    (data / "root-only.json").write_text("{}")
    (data / "root-only.json").chmod(0o600)
    for path in (tmp_path, data):
        path.chmod(0o755)
    access = ServerAccess(roots=(os.path.realpath(data),))
    names = [str(data / "private" / "x.json"), str(data / "root-only.json"), str(data / "missing.json"),
             "/etc/shadow", "/etc/passwd", str(data / "private")]

    def answers() -> list[str]:
        out = []
        for name in names:
            try:
                ServerFileHandle.validate(name, access, "params_file")
                out.append("opened")
            except ValueError as error:
                out.append(str(error))
        return out

    got = _as_ordinary_user(answers) if mode == "user" else answers()
    if mode == "root":  # root reads the 0600 file and the 0700 folder: allowed inside the root, as it should
        got = [g for g, n in zip(got, names, strict=True) if "private/x" not in n and "root-only" not in n]
    assert len(set(got)) == 1 and got[0] != "opened", got


def test_reads_are_capped_and_never_follow_a_swap(tmp_path):
    """The handle reads at most the cap (a file that grew after validation is refused, not read whole) and
    gzip content is unpacked under the same cap (a small bomb is refused)."""
    import gzip

    access = ServerAccess(operator=True, max_file_bytes=1 << 20)
    path = tmp_path / "small.txt"
    path.write_text("small")
    grows = tmp_path / "grows.txt"
    grows.write_text("small")
    handle = ServerFileHandle.validate(str(grows), access)
    with grows.open("ab") as out:
        out.truncate(8 << 20)
    with pytest.raises(ValueError, match="larger than"):
        handle.read_bytes()
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\0" * (16 << 20)))
    with pytest.raises(ValueError, match="unpacks to more than"):
        ServerFileHandle.validate(str(bomb), access).read_bytes(decompress=True)
    assert ServerFileHandle.validate(str(bomb), OPERATOR).read_bytes(decompress=True) == b"\0" * (16 << 20)
    assert ServerFileHandle.validate(str(path), OPERATOR).read_bytes(decompress=True) == b"small"  # not gzip
