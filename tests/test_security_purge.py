"""Purged means gone: after a ``purge_inputs`` job finishes, no file of the SQLite database holds an input,
even when the server is killed with SIGKILL right after; and the database files are readable by their owner only.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURE_PLUGINS, REPO
from tests.test_api_e2e import start_server

# PHI-like values. fixtures.echo outputs the text upper-cased, so an exact (case-sensitive) match of these
# can only come from a stored input, never from an output.
PHI = [f"Patient Jane Roe-Alvarez{n}, ssn 078-05-{1000 + n}, mrn qx{n:04d}zz, born 1961-03-0{n % 9 + 1}"
       for n in range(120)]
LONG_NOTE = "History of present illness: " + " ".join(f"seen by dr. okonkwo-{n} at st. mary clinic" for n in range(150))
POISON = "POISON for patient walter whitfield-ng, ssn 219-09-9999"  # fails in the task: its input is purged too


def database_files(path: Path) -> list[Path]:
    return [file for file in (Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal"))
            if file.exists()]


def leaks(files: list[Path], values: list[str]) -> list[tuple[str, str]]:
    found = []
    for file in files:
        content = file.read_bytes()
        found += [(file.name, value[:40]) for value in values if value.encode() in content]
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_killed_server_leaves_no_purged_input_in_any_database_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    database = home / "verticals.db"
    env = {key: value for key, value in os.environ.items()
           if key not in {"VERTICALS_BROKER_URL", "VERTICALS_STRICT_PLUGINS", "VERTICALS_MODELS"}}
    env.update(VERTICALS_HOME=str(home), VERTICALS_DATABASE_URL=f"sqlite:///{database}",
               VERTICALS_LOAD_PLUGINS="fixtures", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(FIXTURE_PLUGINS / "good"), str(REPO)]))
    old_umask = os.umask(0o022)  # a usual umask: files would be 0644 unless verticals restricts them
    try:
        process, url = start_server(env, tmp_path / "server.log")
    finally:
        os.umask(old_umask)
    try:
        created = subprocess.run([sys.executable, "-m", "verticals.cli", "keys", "create", "--tenant", "clinic",
                                  "--name", "t", "--json"], env=env, capture_output=True, text=True, cwd=REPO)
        assert created.returncode == 0, created.stderr
        headers = {"Authorization": f"Bearer {json.loads(created.stdout)['key']}"}
        items = [{"text": value} for value in [*PHI, LONG_NOTE, POISON]]
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            # a control job without purge first: it proves the scan finds values that are stored
            control = client.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "control value kept"}]})
            assert control.status_code == 202, control.text
            response = client.post("/v1/jobs", json={"task": "fixtures.echo", "items": items, "purge_inputs": True,
                                                     "chunk_size": 10})
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            deadline = time.monotonic() + 120
            while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job["counts"] == {"succeeded": len(PHI) + 1, "failed": 1}, job
            results = client.get(f"/v1/jobs/{job_id}/results", params={"include_inputs": True, "limit": 1000})
            assert all(row["input"] is None for row in results.json()["items"])
            assert results.json()["items"][0]["output"]["upper"] == PHI[0].upper()  # outputs stay
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    files = database_files(database)
    assert database in files
    assert leaks(files, ["control value kept"]), "the scan must find an input that was not purged"
    assert leaks(files, [*PHI, LONG_NOTE, POISON]) == []
    assert {file.name: oct(mode(file)) for file in files} == {file.name: "0o600" for file in files}


def test_new_and_existing_database_files_are_made_private(tmp_path):
    from verticals.core.store import open_store
    from verticals.core.store.db import make_engine

    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.db"
        store = open_store(f"sqlite:///{fresh}")
        with store.engine.connect() as connection:
            connection.exec_driver_sql("select count(*) from jobs").one()
            files = database_files(fresh)
            assert {f.name for f in files} >= {"fresh.db", "fresh.db-wal", "fresh.db-shm"}
            assert all(mode(f) == 0o600 for f in files), {f.name: oct(mode(f)) for f in files}

        legacy = tmp_path / "legacy.db"
        for file in (legacy, Path(f"{legacy}-wal")):
            file.touch()
            file.chmod(0o644)
        make_engine(f"sqlite:///{legacy}")
        assert mode(legacy) == 0o600 and mode(Path(f"{legacy}-wal")) == 0o600
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize("scrub", [True, False])
def test_purge_truncates_the_wal_and_without_it_the_value_stays(tmp_path, scrub):
    """The mechanism alone: the same update without the checkpoint leaves the purged values in *-wal."""
    from sqlalchemy import text

    from verticals.core.store import open_store

    path = tmp_path / "scrub.db"
    store = open_store(f"sqlite:///{path}")
    job_id = store.create_job("fixtures.echo", {}, {"purge_inputs": True}, 10)
    store.add_items(job_id, [(n, {"text": f"secret-value-{n:03d}"}, "pending", None) for n in range(50)])
    if scrub:
        assert store.purge_inputs(job_id) == 50
        assert Path(f"{path}-wal").stat().st_size == 0
        assert leaks(database_files(path), ["secret-value-"]) == []
    else:
        with store.session() as session, session.begin():
            session.execute(text("update items set input = null"))
        assert leaks(database_files(path), ["secret-value-"]), "without the checkpoint the values stay in the WAL"
