"""Secrets stay secret: a SecretStr task parameter (medical.deidentify's surrogate_key) is stored encrypted and
shown only as a fingerprint. The key value is looked for in every file the test's server wrote (database, WAL,
data dir), in the logs captured at DEBUG, in every API response and in every webhook body received; and the
de-identification must still use it (hashes change with the key).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from tests.conftest import run_cli
from tests.test_api_e2e import Receiver
from verticals.core.store.secrets import (
    SEALED,
    SecretKeyError,
    redact_params,
    redact_request_params,
    seal_params,
    secret_fields,
    unseal_params,
)
from verticals.core.store.tables import Job
from verticals.tenancy.tenants import Tenants

KEY = "sk-LEAKCHECK-7d41e0c9b2"
OTHER_KEY = "sk-LEAKCHECK-other-55aa31"
NOTE = "Patient John Smith, SSN 123-45-6789, MRN 00123456, seen on 2021-04-02 by Dr. Alice Wong."


class Params(BaseModel):
    token: SecretStr | None = None
    plain: str = "x"


def files_containing(root: Path, values: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path.relative_to(root)}: {value}" for value in values if value.encode() in content]
    return found


def test_sealed_params_round_trip_and_redaction():
    assert secret_fields(Params) == ["token"]
    stored = seal_params(Params(token="hunter2-value"))
    assert "hunter2-value" not in json.dumps(stored)
    assert set(stored["token"]) == {SEALED, "fingerprint"} and stored["plain"] == "x"
    assert Params.model_validate(unseal_params(stored)).token.get_secret_value() == "hunter2-value"
    shown = redact_params(stored)
    assert shown["token"] == f"********** (fingerprint {stored['token']['fingerprint']})"
    assert seal_params(Params(token="hunter2-value"))["token"]["fingerprint"] == stored["token"]["fingerprint"]
    assert seal_params(Params(token="other"))["token"]["fingerprint"] != stored["token"]["fingerprint"]
    assert seal_params(Params())["token"] is None
    assert "hunter2" not in json.dumps(redact_request_params(Params, {"token": "hunter2-value", "plain": "y"}))


def test_server_key_file_is_private_and_another_key_cannot_decrypt(isolated_home, monkeypatch):
    from cryptography.fernet import Fernet

    stored = seal_params(Params(token="hunter2-value"))
    key_file = isolated_home / "home" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setenv("VERTICALS_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match=r"another server key.*VERTICALS_SECRET_KEY"):
        unseal_params(stored)
    monkeypatch.setenv("VERTICALS_SECRET_KEY", key_file.read_text().strip())  # the same key, from the environment
    assert unseal_params(stored)["token"] == "hunter2-value"
    monkeypatch.setenv("VERTICALS_SECRET_KEY", "not-a-key")
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        seal_params(Params(token="x"))


@pytest.fixture
def registry(use_plugins, monkeypatch):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures,medical")
    use_plugins("good")
    from verticals.registry import get_registry

    return get_registry(refresh=True)


@pytest.mark.slow
def test_surrogate_key_is_in_no_file_log_response_or_webhook_and_is_still_used(tmp_path, registry, caplog,
                                                                               monkeypatch):
    from verticals.api.app import create_app
    from verticals.core.store import open_store

    monkeypatch.setenv("VERTICALS_WEBHOOK_POLL_S", "0.1")
    monkeypatch.setenv("VERTICALS_WEBHOOK_BACKOFF_S", "0.1")
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    headers = {"Authorization": f"Bearer {Tenants(store).create_key('clinic', 'deid').token}"}
    responses: list[str] = []

    def call(method: str, path: str, **kwargs):
        response = api.request(method, path, headers=headers, **kwargs)
        responses.append(response.text)
        return response

    def submit(key: str | None, idempotency: str) -> str:
        params = {"mode": "hash", **({"surrogate_key": key} if key else {})}
        response = api.post("/v1/jobs", headers={**headers, "Idempotency-Key": idempotency},
                            json={"task": "medical.deidentify", "items": [{"id": "1", "text": NOTE}], "params": params})
        responses.append(response.text)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    try:
        with TestClient(create_app(store, registry, auth=True)) as api:
            assert call("POST", "/v1/webhooks", json={"url": f"{receiver.url}/hook"}).status_code == 201
            jobs = {"key": submit(KEY, "a"), "same key": submit(KEY, "b"), "other key": submit(OTHER_KEY, "c"),
                    "no key": submit(None, "d")}
            replay = api.post("/v1/jobs", headers={**headers, "Idempotency-Key": "a"},
                              json={"task": "medical.deidentify", "items": [{"id": "1", "text": NOTE}],
                                    "params": {"mode": "hash", "surrogate_key": KEY}})
            responses.append(replay.text)
            assert replay.headers.get("Idempotent-Replayed") == "true"  # the fingerprint stands in for the key
            texts, shown = {}, {}
            for name, job_id in jobs.items():
                deadline = time.monotonic() + 180
                while (job := call("GET", f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                    assert time.monotonic() < deadline, job
                    time.sleep(0.1)
                assert job["status"] == "succeeded", job
                shown[name] = job["params"].get("surrogate_key")
                ndjson = call("GET", f"/v1/jobs/{job_id}/results.ndjson", params={"include_inputs": True}).text
                rows = [json.loads(line) for line in ndjson.splitlines()]
                texts[name] = rows[0]["output"]["text"]
                call("GET", f"/v1/jobs/{job_id}/summary")
            call("GET", "/v1/jobs")
            deadline = time.monotonic() + 30
            while len({json.loads(body)["job"]["id"] for _, body in receiver.on("/hook")}) < len(jobs):
                assert time.monotonic() < deadline, "webhooks not delivered"
                time.sleep(0.1)
            call("GET", "/v1/webhook-deliveries")
    finally:
        receiver.http.shutdown()

    # the key is used: the same key gives the same hashes in another job, another key (or none) other ones
    assert "[SSN:" in texts["key"] and "123-45-6789" not in texts["key"]
    assert texts["key"] == texts["same key"]
    assert texts["key"] != texts["other key"] and texts["key"] != texts["no key"]
    # shown as a mask and a fingerprint: equal for the same key
    assert shown["key"].startswith("********** (fingerprint ") and shown["key"] == shown["same key"]
    assert shown["other key"] != shown["key"] and shown["no key"] is None
    # stored encrypted (not dropped): the server key opens it
    with store.session() as session:
        stored = session.get(Job, jobs["key"]).params
    assert SEALED in stored["surrogate_key"] and unseal_params(stored)["surrogate_key"] == KEY

    secrets = [KEY, OTHER_KEY]
    assert files_containing(tmp_path, secrets) == []  # database, -wal, -shm, data dir (server key file)
    assert all(secret not in caplog.text for secret in secrets)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)  # DEBUG was captured
    assert all(secret not in text for text in responses for secret in secrets)
    bodies = [body.decode() for _, body in receiver.on("/hook")]
    assert bodies and all(secret not in body for body in bodies for secret in secrets)


@pytest.mark.slow
def test_cli_takes_the_key_from_a_file_or_the_environment_and_never_prints_it(tmp_path, use_plugins):
    use_plugins("good")
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": "1", "text": NOTE}) + "\n")
    key_file = tmp_path / "surrogate.key"
    key_file.write_text(KEY + "\n")
    env = {"VERTICALS_LOAD_PLUGINS": "medical"}
    by_file = run_cli("run", "medical.deidentify", str(notes), "--mode", "hash", "--surrogate-key-file", str(key_file),
                      "-o", str(tmp_path / "file.jsonl"), env=env)
    assert by_file.returncode == 0, by_file.stderr
    by_env = run_cli("run", "medical.deidentify", str(notes), "--mode", "hash", "-o", str(tmp_path / "env.jsonl"),
                     env={**env, "VERTICALS_SURROGATE_KEY": KEY})
    assert by_env.returncode == 0, by_env.stderr
    hashed = [json.loads((tmp_path / name).read_text())["output"]["text"] for name in ("file.jsonl", "env.jsonl")]
    assert "[SSN:" in hashed[0] and hashed[0] == hashed[1]  # same key, whichever way it came

    listed = run_cli("jobs", "list", env=env)
    status = [run_cli("jobs", "status", job_id, *flag, env=env)
              for job_id in _job_ids(listed.stdout) for flag in ((), ("--json",))]
    assert len(status) == 4 and all(s.returncode == 0 for s in status)
    assert all("fingerprint" in s.stdout for s in status)
    printed = [by_file.stdout, by_file.stderr, by_env.stdout, by_env.stderr] + [s.stdout + s.stderr for s in status]
    assert all(KEY not in text for text in printed)
    home = Path(os.environ["VERTICALS_HOME"])
    database = Path(os.environ["VERTICALS_DATABASE_URL"].removeprefix("sqlite:///"))
    assert files_containing(home, [KEY]) == []
    assert [f for f in database.parent.glob(database.name + "*") if KEY.encode() in f.read_bytes()] == []


def _job_ids(table: str) -> list[str]:
    import re

    return re.findall(r"\b([0-9a-f]{12})\b", table)
