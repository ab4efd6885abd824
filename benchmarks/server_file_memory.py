"""What a tenant's server-path parameter costs the API server: peak memory of one POST /v1/jobs and its job.

    HF_HUB_OFFLINE=1 python benchmarks/server_file_memory.py

Each case runs in a fresh subprocess: the API app (TestClient, real SQLite store, tutor.mastery) takes one
job creation whose ``params_file`` names the case's path, and the job runs (background thread); the figure
is the growth of the process's peak resident set (``VmHWM``) over that request and that job. Cases, with
``VERTICALS_DATA_ROOTS=/`` (the worst an operator can configure: every path is inside a root) and the
default cap (``VERTICALS_DATA_MAX_FILE_MB``, 16 MiB): ``/dev/zero`` (before issue 22: 0.7 GB -> 10 GB, then
MemoryError), a 1 GiB sparse regular file, a FIFO, and a JSON file just under the cap made of millions of
tiny objects (read, parsed, then refused as no BKT table: the worst a file under the cap costs). The
baseline is a job without the parameter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def peak_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(path: str | None) -> dict:
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.core.store import open_store
    from verticals.registry import get_registry
    from verticals.tenancy.tenants import Tenants

    home = tempfile.mkdtemp()
    store = open_store(f"sqlite:///{home}/b.db")
    client = TestClient(create_app(store, get_registry(), auth=True, background=True))
    key = {"Authorization": f"Bearer {Tenants(store).create_key('acme', 'k').token}"}
    params = {} if path is None else {"params_file": path}
    body = {"task": "tutor.mastery", "items": [{"student": "s", "skill": "a", "correct": 1}], "params": params}
    def run(job_body: dict) -> tuple[int, str]:
        response = client.post("/v1/jobs", json=job_body, headers=key)
        if response.status_code != 202:
            return response.status_code, "refused"
        job = response.json()["id"]
        while (status := client.get(f"/v1/jobs/{job}", headers=key).json()["status"]) in ("queued", "running"):
            time.sleep(0.05)
        return response.status_code, status

    with client:
        run({**body, "params": {}})  # warm: imports, the first request and job
        before = peak_mb()
        code, status = run(body)
        after = peak_mb()
    return {"status": code, "job": status, "peak_growth_mb": round(after - before, 1), "peak_mb": round(after, 1)}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(None if sys.argv[2] == "-" else sys.argv[2])))
        return
    work = tempfile.mkdtemp()
    sparse = os.path.join(work, "big.json")
    with open(sparse, "wb") as handle:
        handle.truncate(1 << 30)
    fifo = os.path.join(work, "fifo")
    os.mkfifo(fifo)
    under = os.path.join(work, "under.json")
    with open(under, "w") as handle:
        handle.write('{"skills": {' + ", ".join(f'"s{i}": {{}}' for i in range(1_000_000)) + "}}")
    env = {**os.environ, "VERTICALS_DATA_ROOTS": "/", "HF_HUB_OFFLINE": "1"}
    cases = [("no server file (baseline)", "-"), ("/dev/zero", "/dev/zero"), ("1 GiB sparse file", sparse),
             ("FIFO", fifo), (f"{os.path.getsize(under) >> 20} MiB JSON (under the cap)", under)]
    print(f"{'params_file':<32} {'HTTP':>4} {'job':>9} {'peak growth MB':>15} {'peak MB':>8}")
    for label, path in cases:
        done = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True, text=True,
                              env=env, timeout=600)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{label:<32} {result['status']:>4} {result['job']:>9} {result['peak_growth_mb']:>15} "
              f"{result['peak_mb']:>8}")


if __name__ == "__main__":
    main()
