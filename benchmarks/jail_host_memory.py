"""Host memory and time of ``verticals run testgen.generate`` against target modules that attack what the jail
returns (issue 22): a benign module is the baseline of the same run.

    HF_HUB_OFFLINE=1 python benchmarks/jail_host_memory.py [--cases benign stdout ...] [--budget 20]

Each case is a fresh CLI process (its own ``VERTICALS_HOME``) on one module given as source text, with the
``observed`` and ``ghostwriter`` strategies (no language model: the figures are the jail's, not the LLM's).
Printed per case: the CLI's peak resident set (``VmHWM`` of that process alone, read until it exits), its wall
time, its exit code and what the generated test file looks like. Cases:

- ``benign``: a small module (the baseline);
- ``stdout`` / ``stderr``: the module writes 2 GiB to fd 1 / fd 2 at import;
- ``record_zero``: at import the module replaces the harness' record file by a symlink to ``/dev/zero``;
- ``record_fifo``: ... by a FIFO (before issue 22 the worker thread hung forever);
- ``record_bomb``: at import the module appends 16 MiB of JSON lines that parse into millions of empty lists
  (the most Python objects per byte) to its record file;
- ``children``: at import, five children each hold 300 MB (the run's cgroup allows ``memory_mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENIGN = "def double(x):\n    return 2 * x\n"
RECORD = ("import json, os, sys\n"
          "config = json.load(open(sys.argv[1]))\n"
          "path = os.path.join(config['sandbox'], config['record'])\n")
CASES = {
    "benign": BENIGN,
    "stdout": "import os\n_b = b'x' * 2**20\nfor _ in range(2048):\n    os.write(1, _b)\n" + BENIGN,
    "stderr": "import os\n_b = b'x' * 2**20\nfor _ in range(2048):\n    os.write(2, _b)\n" + BENIGN,
    "record_zero": RECORD + "os.unlink(path)\nos.symlink('/dev/zero', path)\n" + BENIGN,
    "record_fifo": RECORD + "os.unlink(path)\nos.mkfifo(path)\n" + BENIGN,
    "record_bomb": RECORD + ("with open(path, 'a') as _f:\n"
                             "    for _ in range(64):\n"
                             "        _f.write('{\"event\": \"x\", \"v\": [' + '[],' * 87000 + '[]]}\\n')\n") + BENIGN,
    "children": ("import os, time\n"
                 "for _ in range(5):\n"
                 "    if os.fork() == 0:\n"
                 "        _b = b'x' * (300 * 2**20)\n"
                 "        time.sleep(30)\n"
                 "        os._exit(0)\n"
                 "time.sleep(3)\n" + BENIGN),
}


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_case(name: str, budget: float, cli: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="jail-bench-") as folder:
        items = Path(folder) / "items.jsonl"
        items.write_text(json.dumps({"module": f"bench_{name}", "source": CASES[name]}) + "\n")
        env = {**os.environ, "VERTICALS_HOME": str(Path(folder) / "home"), "HF_HUB_OFFLINE": "1"}
        command = [cli, "run", "testgen.generate", str(items), "-o", str(Path(folder) / "out.jsonl"), "-q",
                   "-p", "strategies=observed,ghostwriter", "-p", f"time_budget={budget}"]
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, peak_rss_mb(process.pid) or 0.0)
            time.sleep(0.1)
        seconds = time.monotonic() - started
        _, stderr = process.communicate()
        out = Path(folder) / "out.jsonl"
        row = json.loads(out.read_text().splitlines()[0]) if out.exists() and out.read_text().strip() else {}
        return {"case": name, "peak_rss_mb": round(peak), "seconds": round(seconds, 1),
                "exit": process.returncode, "kept": (row.get("output") or {}).get("kept"), "error": row.get("error"),
                "stderr_tail": stderr.decode("utf-8", "replace").strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--budget", type=float, default=20.0, help="testgen time_budget per module, seconds")
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("verticals"))
    cases = ["benign", *[c for c in args.cases if c != "benign"]]
    print(f"{'case':<12} {'peak RSS MB':>11} {'seconds':>8} {'exit':>4}  kept/error")
    for name in cases:
        result = run_case(name, args.budget, cli)
        print(f"{name:<12} {result['peak_rss_mb']:>11} {result['seconds']:>8} {result['exit']:>4}  "
              f"{result['kept'] if result['error'] is None else result['error']}", flush=True)


if __name__ == "__main__":
    main()
