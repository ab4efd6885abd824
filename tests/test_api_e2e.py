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
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser
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


def start_server(env: dict[str, str], log_path: Path, timeout: float = 90,
                 launcher: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """A real `verticals serve` on a free loopback port (run under ``launcher``, a command such as
    opentelemetry-instrument, if given), returned once /readyz answers 200.

    Fails the test with the server's log if it exits or is not ready in time.
    """
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen([*(launcher or []), sys.executable, "-m", "verticals.cli", "serve", "--port", str(port),
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


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


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


def server_env(home: Path, plugins: str = "fixtures") -> dict[str, str]:
    """The environment of a test server: its own home and SQLite database, the plugins ``plugins`` only."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"VERTICALS_BROKER_URL", "VERTICALS_STRICT_PLUGINS", "VERTICALS_MODELS"}}
    env.update(VERTICALS_HOME=str(home), VERTICALS_DATABASE_URL=f"sqlite:///{home / 'verticals.db'}",
               VERTICALS_LOAD_PLUGINS=plugins,
               PYTHONPATH=os.pathsep.join([str(FIXTURE_PLUGINS / "good"), str(REPO)]), HF_HUB_OFFLINE="1",
               VERTICALS_WEBHOOK_BACKOFF_S="0.2", VERTICALS_WEBHOOK_POLL_S="0.1",
               VERTICALS_WEBHOOK_ALLOW_PRIVATE="1")  # the test receivers listen on loopback
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("server")
    env = server_env(home)
    database_url = env["VERTICALS_DATABASE_URL"]
    process, url = start_server(env, home / "server.log")
    yield Server(url, env, process, home, database_url)
    stop_server(process)


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


def browse(url: str, profile: Path, *extra: str, budget_ms: int = 2500) -> subprocess.CompletedProcess:
    """Headless Chromium on ``url`` (``extra``: --dump-dom, --screenshot=...), its scripts given ``budget_ms`` of
    virtual time."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--window-size=1280,900"]
    return subprocess.run([chromium(), *flags, *extra, url], capture_output=True, text=True, timeout=120)


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
    profile = tmp_path / "profile"
    listing = browse(f"{server.url}/dashboard#key={key}", profile, "--dump-dom")
    assert f'data-job="{running["id"]}"' in listing.stdout
    assert done.json()["id"][:12] in listing.stdout and running["id"][:12] in listing.stdout
    assert other["id"][:12] not in listing.stdout  # another tenant's job is not listed
    assert "partial" in listing.stdout and "%" in listing.stdout
    detail = browse(f"{server.url}/dashboard?job={done.json()['id']}#key={key}", profile, "--dump-dom")
    assert "poisoned item" in detail.stdout and "OK" in detail.stdout and "2 of 2 items done" in detail.stdout
    shot = tmp_path / "dashboard.png"
    progress = browse(f"{server.url}/dashboard?job={running['id']}#key={key}", profile, f"--screenshot={shot}")
    assert shot.exists(), progress.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000  # a rendered page, not a blank one
    target = os.environ.get("VERTICALS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "dashboard-job.png")


class WhyCells(HTMLParser):
    """The "why" cells of the dashboard's results preview in a DOM that Chromium dumped: per cell its summary
    (the first div), the quoted text (the ``p.quote``, None when the cell has none), the marked pieces, and
    each mark's weight (its title) and colour's alpha (its style; rgb() without one: 1)."""

    def __init__(self, html: str):
        super().__init__()
        self.cells: list[dict] = []
        self.depth = 0  # elements open inside the current why cell (0: outside one)
        self.into: list[str] = []  # where text goes: "summary", "quote", "mark"
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.depth == 0:
            if tag == "td" and attributes.get("class") == "why":
                self.cells.append({"summary": "", "quote": None, "marks": [], "weights": [], "alphas": [],
                                   "text": ""})
                self.depth = 1
            return
        self.depth += 1
        cell = self.cells[-1]
        if tag == "div" and not self.into:
            self.into.append("summary")
        elif tag == "p" and attributes.get("class") == "quote":
            cell["quote"] = ""
            self.into.append("quote")
        elif tag == "mark":
            cell["marks"].append("")
            cell["weights"].append(float(attributes.get("title", "weight nan").removeprefix("weight ")))
            colour = re.search(r"rgba?\(([^)]*)\)", attributes.get("style") or "")
            parts = colour.group(1).split(",") if colour else []
            cell["alphas"].append(float(parts[3]) if len(parts) == 4 else 1.0 if parts else None)
            self.into.append("mark")
        else:
            self.into.append(self.into[-1] if self.into else "")

    def handle_endtag(self, tag):
        if self.depth == 0:
            return
        self.depth -= 1
        if self.depth and self.into:
            self.into.pop()

    def handle_data(self, data):
        if self.depth == 0:
            return
        cell = self.cells[-1]
        cell["text"] += data
        where = self.into[-1] if self.into else ""
        if where == "summary":
            cell["summary"] += data
        if where in ("quote", "mark"):
            cell["quote"] += data
        if where == "mark":
            cell["marks"][-1] += data


def test_why_cells_parser_reads_the_cells_the_dashboard_builds():
    cells = WhyCells('<table><tr><td>0</td><td class="why"><div>negative: &quot;plunge&quot;</div>'
                     '<p class="quote">Shares <mark title="weight 0.5" style="background-color: rgb(255, 196, 0);">'
                     'plunge</mark> &amp; <mark title="weight 0.1" style="background-color: rgba(255, 196, 0, 0.36);'
                     '">fall</mark></p></td></tr><tr><td class="why"><div>2 PHI span(s)</div></td></tr></table>').cells
    assert cells == [{"summary": 'negative: "plunge"', "quote": "Shares plunge & fall", "marks": ["plunge", "fall"],
                      "weights": [0.5, 0.1], "alphas": [1.0, 0.36], "text": 'negative: "plunge"Shares plunge & fall'},
                     {"summary": "2 PHI span(s)", "quote": None, "marks": [], "weights": [], "alphas": [],
                      "text": "2 PHI span(s)"}]


@pytest.mark.slow  # the packaged finance model and the medical detectors, in a real server
@pytest.mark.skipif(chromium() is None, reason="needs a chromium on PATH: `make test-browser` installs it")
def test_dashboard_in_headless_chromium_shows_why_with_marked_evidence_never_a_sensitive_text(tmp_path):
    """The "why" column in a real browser: for finance.sentiment with `explain`, each row's cell holds the
    summary and the input text with its 5 strongest evidence words in <mark> (the stronger, the deeper the
    colour), for items sent as JSON and as a file column; for medical.deidentify (sensitive) the summary only:
    the note is not quoted, and no PHI the detectors found is anywhere on the page."""
    home = tmp_path / "domains"
    home.mkdir()
    env = server_env(home, plugins="finance,medical")
    process, url = start_server(env, home / "server.log", timeout=300)
    try:
        from verticals.core.store import open_store
        from verticals.tenancy.tenants import Tenants

        key = Tenants(open_store(env["VERTICALS_DATABASE_URL"])).create_key("why", "test").token
        headlines = ["Globex shares plunge after it slashes its dividend and warns on earnings",
                     "Acme Corp raises full-year guidance after record quarterly profit"]
        note = "Patient John Smithers, MRN 4471923, was seen by Dr. Alice Wong on 03/14/2024 at 555-201-7788."
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            finance = client.post("/v1/jobs", json={"task": "finance.sentiment", "explain": True,
                                                    "items": [{"text": t} for t in headlines]})
            assert finance.status_code == 202, finance.text
            medical = client.post("/v1/jobs", json={"task": "medical.deidentify", "explain": True,
                                                    "items": [{"text": note}]})
            assert medical.status_code == 202, medical.text
            # a file whose text is in another column (text_column): the why column quotes that column
            upload = client.post("/v1/jobs/upload", data={"task": "finance.sentiment", "text_column": "headline",
                                                          "explain": "true"},
                                 files={"file": ("h.csv", "id,headline\nh1," + headlines[0] + "\n", "text/csv")})
            assert upload.status_code == 202, upload.text
            for job in (finance.json(), medical.json(), upload.json()):
                assert wait_done(client, job["id"], timeout=300)["status"] == "succeeded", job
            stored = client.get(f"/v1/jobs/{finance.json()['id']}/results").json()["items"]
            phi = client.get(f"/v1/jobs/{medical.json()['id']}/results").json()["items"][0]

        def job_page(job_id: str, *extra: str) -> str:
            return browse(f"{url}/dashboard?job={job_id}#key={key}", tmp_path / "profile", *extra,
                          budget_ms=5000).stdout

        page = job_page(finance.json()["id"], "--dump-dom")
        assert "why (explanation)" in page
        cells = WhyCells(page).cells
        assert len(cells) == len(headlines), page[-3000:]
        for cell, headline, item in zip(cells, headlines, stored, strict=True):
            assert cell["summary"] == item["explanation"]["summary"] != ""
            assert cell["quote"] == headline  # the whole input text, quoted once
            assert 1 <= len(cell["marks"]) <= 5
            assert all(mark.strip() and mark in headline for mark in cell["marks"])
            strongest = max((e for e in item["explanation"]["evidence"] if e.get("start") is not None),
                            key=lambda e: e["weight"])
            assert headline[strongest["start"]:strongest["end"]] in cell["marks"]  # the top evidence is marked
            ranked = sorted(zip(cell["weights"], cell["alphas"], strict=True), reverse=True)
            assert ranked[0][1] == 1.0 and [a for _, a in ranked] == sorted(cell["alphas"], reverse=True)
        assert any(word in stored[0]["explanation"]["summary"] for word in cells[0]["marks"])  # top words named
        cells = WhyCells(job_page(upload.json()["id"], "--dump-dom")).cells
        assert [cell["quote"] for cell in cells] == [headlines[0]] and cells[0]["marks"]
        page = job_page(medical.json()["id"], "--dump-dom")
        cells = WhyCells(page).cells
        assert len(cells) == 1, page[-3000:]
        assert cells[0]["summary"] == phi["explanation"]["summary"] and "PHI span" in cells[0]["summary"]
        assert cells[0]["quote"] is None and cells[0]["marks"] == [] and "<mark" not in page
        assert cells[0]["text"] == cells[0]["summary"] and note not in page  # the cell quotes nothing
        found = [note[span["start"]:span["end"]] for span in phi["output"]["spans"]]
        assert {"John Smithers", "4471923"} <= set(found), found  # the PHI the detectors found ...
        assert not any(secret in page for secret in found)  # ... is nowhere on the page
        shot = tmp_path / "why.png"
        job_page(finance.json()["id"], f"--screenshot={shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        target = os.environ.get("VERTICALS_SCREENSHOT_DIR")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(target) / "dashboard-why.png")
    finally:
        stop_server(process)


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
