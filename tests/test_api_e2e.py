"""End to end against a real `verticals serve` (uvicorn) process on a loopback port.

Covers the documented curl flow, API keys from the CLI, signed webhooks received by a
server running in this test (with a retry), the SDK over REST, a large CSV upload that
must not grow the server's memory, and the dashboard in headless Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURE_PLUGINS, REPO, run_cli

pytestmark = pytest.mark.integration  # a real `verticals serve` process (and headless Chromium)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], log_path: Path, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """A real `verticals serve` on a free loopback port, returned once /readyz answers 200.

    Fails the test with the server's log if it exits or is not ready in time.
    """
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen([sys.executable, "-m", "verticals.cli", "serve", "--port", str(port),
                                "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    log.close()  # the child keeps its own handle
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("server did not start:\n" + log_path.read_text())
        time.sleep(0.2)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    process: subprocess.Popen
    home: Path
    database_url: str

    def key(self, tenant: str, name: str = "test") -> str:
        from verticals.core.store import open_store
        from verticals.tenancy.tenants import Tenants

        return Tenants(open_store(self.database_url)).create_key(tenant, name).token

    def peak_rss_kb(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("server")
    database_url = f"sqlite:///{home / 'verticals.db'}"
    env = {key: value for key, value in os.environ.items()
           if key not in {"VERTICALS_BROKER_URL", "VERTICALS_STRICT_PLUGINS", "VERTICALS_MODELS"}}
    env.update(VERTICALS_HOME=str(home), VERTICALS_DATABASE_URL=database_url, VERTICALS_LOAD_PLUGINS="fixtures",
               PYTHONPATH=os.pathsep.join([str(FIXTURE_PLUGINS / "good"), str(REPO)]), HF_HUB_OFFLINE="1",
               VERTICALS_WEBHOOK_BACKOFF_S="0.2", VERTICALS_WEBHOOK_POLL_S="0.1",
               VERTICALS_WEBHOOK_ALLOW_PRIVATE="1")  # the test receivers listen on loopback
    process, url = start_server(env, home / "server.log")
    yield Server(url, env, process, home, database_url)
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_done(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job did not finish: {job}")


def test_keys_cli_and_the_curl_flow(server, tmp_path):
    created = run_cli("keys", "create", "--tenant", "acme", "--name", "etl", "--json", env=server.env)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    listed = run_cli("keys", "list", "--json", env=server.env)
    assert [k["name"] for k in json.loads(listed.stdout) if k["tenant"] == "acme"] == ["etl"]
    assert key not in listed.stdout and key.split("_", 2)[2] not in (server.home / "verticals.db").read_bytes().decode(
        "latin-1")  # only the hash is stored
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=auth) as client:
        response = client.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "hello"}, {"text": "x"}]})
        assert response.status_code == 202
        job = wait_done(client, response.json()["id"])
        assert job["status"] == "succeeded" and job["tenant"] == "acme"
        lines = client.get(f"/v1/jobs/{job['id']}/results.ndjson").text.splitlines()
        assert [json.loads(line)["output"]["upper"] for line in lines] == ["HELLO", "X"]
    if shutil.which("curl"):  # the documented commands, literally
        data = tmp_path / "in.csv"
        data.write_text("text\nfirst\nsecond\n")
        made = subprocess.run(["curl", "-sf", "-H", f"Authorization: Bearer {key}", "-F", "task=fixtures.echo",
                               "-F", f"file=@{data}", f"{server.url}/v1/jobs/upload"], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        job_id = json.loads(made.stdout)["id"]
        with httpx.Client(base_url=server.url, headers=auth) as client:
            wait_done(client, job_id)
        got = subprocess.run(["curl", "-sf", "-H", f"Authorization: Bearer {key}",
                              f"{server.url}/v1/jobs/{job_id}/results.ndjson"], capture_output=True, text=True)
        assert [json.loads(line)["output"]["upper"] for line in got.stdout.splitlines()] == ["FIRST", "SECOND"]
    revoked = run_cli("keys", "revoke", key.split("_", 2)[1], env=server.env)
    assert revoked.returncode == 0
    assert httpx.get(f"{server.url}/v1/jobs", headers=auth).status_code == 401


class Receiver:
    """A webhook receiver: answers 500 to the first request on each path, then 200."""

    def __init__(self):
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                first = not any(path == self.path for path, _, _ in receiver.requests)
                receiver.requests.append((self.path, dict(self.headers), body))
                self.send_response(500 if first else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def on(self, path):
        return [(headers, body) for p, headers, body in self.requests if p == path]


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """A Standard Webhooks verifier written from the spec (https://www.standardwebhooks.com), independently of
    verticals: key = base64-decoded part after ``whsec_``; signature = ``v1,`` + base64 HMAC-SHA256 of
    ``{webhook-id}.{webhook-timestamp}.{body}``; one of the space-separated signatures must match."""
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id, timestamp = lower["webhook-id"], lower["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    signatures = [part.split(",", 1) for part in lower["webhook-signature"].split()]
    return abs(time.time() - int(timestamp)) <= tolerance_s and any(
        version == "v1" and hmac.compare_digest(expected, value.encode()) for version, value in signatures)


def verify_legacy(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The deprecated X-Verticals-Signature (still sent, so receivers written for it keep working)."""
    timestamp = headers["X-Verticals-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Verticals-Signature"])


def test_webhooks_are_signed_retried_logged_and_tenant_scoped(server):
    receiver = Receiver()
    try:
        acme = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key('acme')}"})
        globex = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key('globex')}"})
        hook = acme.post("/v1/webhooks", json={"url": f"{receiver.url}/acme"}).json()
        globex.post("/v1/webhooks", json={"url": f"{receiver.url}/globex"})
        job_id = acme.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "POISON"}]}).json()["id"]
        assert wait_done(acme, job_id)["status"] == "failed"
        deadline = time.monotonic() + 30
        while len(receiver.on("/acme")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        calls = receiver.on("/acme")
        assert len(calls) == 2, "expected the 500 to be retried once"
        for headers, body in calls:
            assert verify(hook["secret"], headers, body)
            assert not verify(hook["secret"], headers, body.replace(b"failed", b"succeeded"))  # tampering shows
            assert not verify("whsec_d3Jvbmcgc2VjcmV0", headers, body)
            assert verify_legacy(hook["secret"], headers, body)
        event = json.loads(calls[-1][1])
        assert event["event"] == "job.failed" and event["job"]["id"] == job_id and event["job"]["tenant"] == "acme"
        assert calls[0][0]["X-Verticals-Delivery"] == calls[1][0]["X-Verticals-Delivery"] == event["id"]
        assert calls[0][0]["webhook-id"] == calls[1][0]["webhook-id"] == event["id"]  # the same on a retry
        time.sleep(0.5)
        assert receiver.on("/globex") == []  # the other tenant's webhook heard nothing
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = acme.get("/v1/webhook-deliveries", params={"job_id": job_id}).json()
            if log and log[0]["status"] == "delivered":
                break
            time.sleep(0.1)
        assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("delivered", 2, 200)]
        assert globex.get("/v1/webhook-deliveries").json() == []
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'verticals_webhook_deliveries{status="delivered"}' in metrics
    finally:
        receiver.http.shutdown()


def test_sdk_over_rest(server, tmp_path, use_plugins):
    use_plugins("good")
    from verticals_fixtures.plugin import EchoOutput

    import verticals
    from verticals.client import VerticalsError

    key = server.key("sdk")
    with verticals.Client(server.url, api_key=key) as client:
        assert "fixtures.echo" in {t["name"] for t in client.tasks()}
        job = client.submit("fixtures.echo", items=[{"text": "a"}, {"text": "POISON"}, {"text": "ccc"}])
        final = job.wait(progress=True, timeout=60)
        assert final.status == "partial" and final.counts == {"succeeded": 2, "failed": 1}
        results = list(job.results())
        assert [r.ok for r in results] == [True, False, True]
        assert results[2].output_as(EchoOutput) == EchoOutput(upper="CCC", length=3)
        assert "poisoned" in results[1].error
        assert [r.seq for r in job.results(status="failed")] == [1]
        predicted = client.predict("fixtures.echo", [{"text": "now"}])
        assert predicted[0].output == {"upper": "NOW", "length": 3}
        data = tmp_path / "in.csv"
        data.write_text("id,body\n1,from a file\n")
        from_file = client.submit("fixtures.echo", path=data, text_column="body")
        early = [(r.seq, r.status, r.output) for r in from_file.results()]  # read at once: it may still run
        assert early in ([(0, "pending", None)], [(0, "succeeded", {"upper": "FROM A FILE", "length": 11})])
        from_file.wait(timeout=60)
        assert [r.output["upper"] for r in from_file.results()] == ["FROM A FILE"]
        exported = from_file.export(tmp_path / "out.csv")
        assert exported.read_text().splitlines()[0].split(",")[:2] == ["seq", "id"]  # columns from the input file
        assert "body" in exported.read_text().splitlines()[0] and "FROM A FILE" in exported.read_text()
        folder = job.export(tmp_path / "out", include_inputs=False)
        assert len((folder / "results.jsonl").read_text().splitlines()) == 3
        assert '"input"' not in (folder / "results.jsonl").read_text()
        with pytest.raises(VerticalsError, match="xlsx"):
            job.export(tmp_path / "out.xlsx")
        slow = client.submit("fixtures.echo", items=[{"text": f"t{i}"} for i in range(40)], params={"sleep": 0.2})
        assert slow.cancel().raw["cancel_requested"]
        assert slow.wait(timeout=60).status == "cancelled"
        again = client.submit("fixtures.echo", items=[{"text": "a"}], idempotency_key="sdk-1")
        assert client.submit("fixtures.echo", items=[{"text": "a"}], idempotency_key="sdk-1").id == again.id
        with pytest.raises(VerticalsError) as refused:
            client.submit("fixtures.echo", items=[{"text": "b"}], idempotency_key="sdk-1")
        assert refused.value.status_code == 409
    with verticals.Client(server.url, api_key=server.key("other")) as other, pytest.raises(VerticalsError) as missing:
        other.job(job.id)
    assert missing.value.status_code == 404
    with verticals.Client(server.url, api_key="vk_bad_key") as bad, pytest.raises(VerticalsError) as denied:
        bad.jobs()
    assert denied.value.status_code == 401 and "verticals keys create" in str(denied.value)


def test_large_csv_upload_streams_without_growing_server_memory(server, tmp_path):
    rows, text = int(os.environ.get("VERTICALS_TEST_UPLOAD_ROWS", "40000")), "x" * 1500  # ~57 MiB
    data = tmp_path / "big.csv"
    with data.open("w") as handle:
        handle.write("id,text\n")
        for number in range(rows):
            handle.write(f"{number},{text}{number}\n")
    size_kb = data.stat().st_size // 1024
    key = server.key("bulk")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        before = server.peak_rss_kb()
        with data.open("rb") as handle:
            response = client.post("/v1/jobs/upload", data={"task": "fixtures.echo", "params": '{"sleep": 0.5}'},
                                   files={"file": ("big.csv", handle, "text/csv")})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["total"] == rows
        client.post(f"/v1/jobs/{job['id']}/cancel")
        grown = server.peak_rss_kb() - before
        last = client.get(f"/v1/jobs/{job['id']}/results", params={"offset": rows - 1, "include_inputs": True})
        assert last.json()["items"][0]["input"]["text"] == f"{text}{rows - 1}"
    print(f"upload of {rows} rows ({size_kb} KiB): server peak memory grew {grown} KiB")
    # holding the file would cost at least its size (as rows: several times it)
    assert grown < size_kb // 2, f"server peak memory grew {grown} KiB for a {size_kb} KiB upload"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="needs a chromium on PATH: `make test-browser` installs it")
def test_dashboard_in_headless_chromium_shows_job_progress(server, tmp_path):
    key = server.key("dash")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as client:
        done = client.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "ok"}, {"text": "POISON"}]})
        wait_done(client, done.json()["id"])
        running = client.post("/v1/jobs", json={"task": "fixtures.echo", "params": {"sleep": 0.3},
                                                "items": [{"text": f"t{i}"} for i in range(60)]}).json()
        other = httpx.post(f"{server.url}/v1/jobs", headers={"Authorization": f"Bearer {server.key('spy')}"},
                           json={"task": "fixtures.echo", "items": [{"text": "not yours"}]}).json()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2500", "--window-size=1280,900"]

    def browse(url: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([chromium(), *flags, *extra, url], capture_output=True, text=True, timeout=120)

    listing = browse(f"{server.url}/dashboard#key={key}", "--dump-dom")
    assert f'data-job="{running["id"]}"' in listing.stdout
    assert done.json()["id"][:12] in listing.stdout and running["id"][:12] in listing.stdout
    assert other["id"][:12] not in listing.stdout  # another tenant's job is not listed
    assert "partial" in listing.stdout and "%" in listing.stdout
    detail = browse(f"{server.url}/dashboard?job={done.json()['id']}#key={key}", "--dump-dom")
    assert "poisoned item" in detail.stdout and "OK" in detail.stdout and "2 of 2 items done" in detail.stdout
    shot = tmp_path / "dashboard.png"
    progress = browse(f"{server.url}/dashboard?job={running['id']}#key={key}", f"--screenshot={shot}")
    assert shot.exists(), progress.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000  # a rendered page, not a blank one
    target = os.environ.get("VERTICALS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "dashboard-job.png")


def test_no_auth_is_loud_and_only_on_loopback(server):
    refused = run_cli("serve", "--no-auth", "--host", "0.0.0.0", env=server.env)
    assert refused.returncode == 2 and "only for local use" in refused.stderr
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "verticals.cli", "serve", "--no-auth", "--port", str(port)],
                               env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                me = httpx.get(f"http://127.0.0.1:{port}/v1/me", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert me.json()["tenant"] == "local" and me.json()["auth"] is False
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
    assert "AUTHENTICATION IS DISABLED" in output
