"""Job-store scale: a trivial task over 10k, 100k and 1M items on SQLite.

    .venv/bin/python benchmarks/scale.py [--sizes 10000 100000 1000000] [--code PATH] [--timeout S]

For each size, in a fresh subprocess (so that its peak RSS is its own) with a fresh SQLite database:
  stored      items/s of ``submit_job`` (N items read from a CSV file, streamed into the store in batches),
  processed   items/s of ``LocalExecutor.execute`` (every chunk run, every result written, job finished),
  exported    items/s of the CSV export ``verticals run -o`` writes (``export_job``: columns, then every
              result read back, paged by seq),
  whole/s     items/s end to end: read and store, run, export (what ``verticals run -o`` does after start-up),
  per CPU-s   the whole run's items per second of that process's CPU time (what a busy machine changes less),
  peak RSS    of the process (MB),
  load avg    the machine's 5-minute load average when the size ended (other work slows wall-clock rates).
The job is checked: every item must be ``succeeded``.

The task, ``bench.length`` (registered here through a plugin object, not installed), returns the
length of a short text: the time is the engine's and the store's. It uses the default ``Task``
chunk size (256) and batch size (64) unless ``--chunk-size``/``--batch-size`` say otherwise.

``--code PATH`` runs the sizes against another checkout of verticals (e.g. the code before a change:
``git archive COMMIT verticals | tar -x -C /tmp/before``), so before/after figures come from the same
script. ``--timeout`` bounds each size (seconds); a size that runs out of time prints the items
processed so far and their rate (read from its database).

(The table below predates the whole/s column: its per CPU-s is of the processing alone.)
Measured on the 2-core development machine, shared with other work (load average 7-12 on 2 cores, so
wall-clock rates are a third to a half of what the process's CPU time allows), 2026-11-27:

    code                     items  processed/s  per CPU-s  peak RSS MB  load
    before (4bce5d0)          10k          654       1677           76   7.5
    before (4bce5d0)         100k          374       1213           76   9.6
    before (4bce5d0)         200k          375          -           76   4-7
    before (4bce5d0)           1M   not run: the per-item cost grows with the job (each batch's
                                    begin_items read every pending item): ~320 per CPU-s by the
                                    10k/100k trend, i.e. about an hour of CPU; wall ~100/s
    after (migration 0004)    10k         6846      19026           76   8.7
    after                    100k         7527      21512           76   8.5
    after                      1M        11033      24304           76   7.8

(at load ~5, 10k and 100k ran at 13,252 and 13,706 items/s, 28,025 and 28,233 per CPU-s.)

The whole run (read a CSV, store, run, export to CSV), 100k items, before and after the exports read only
the columns they write (``Store.iter_rows``: no ORM objects, no provenance decoded), one after the other
with ``--code`` (a 2-core AMD EPYC, load average about 10 on 2 cores), 2026-12-07:

    code                  stored/s  processed/s  exported/s  whole/s  per CPU-s  peak RSS MB  load
    before (52d7c6d)          7361         2835        1800      958       8805           81  10.2
    after                     8649         2618        4589     1398      12507           80  10.6

Issue 26 (results written by a background writer while the next batch runs; no finishing UPDATE while the
job's counter shows pending items), 100k items, alternating before/after, load average 3.2, 2026-12-07:

    code                  stored/s  processed/s  exported/s  whole/s  per CPU-s  peak RSS MB  load
    before (e60fd8b)         91198        30761       65513    17025      20803           80   3.2
    after                    94050        34179       67590    18286      20429           82   3.2
    before (e60fd8b)        101248        42951       51328    18996      22052           81   3.2
    after                    89448        31996       59351    16868      20096           82   3.2

No change beyond the machine's noise for a task with no model time (the writer overlaps the store with
the model, and here there is none); at load 5.5-6 the same runs gave whole/s 5,600-12,800 for both.

Issue 26 (an export names its input columns from what submission recorded, ``jobs.input_columns``, instead of
reading every input once before the write), 100k items, alternating before/after, load average 8.6-8.9 on 2
cores (four other agents running: wall-clock rates are a third of a quiet machine's; compare per CPU-s):

    code                  stored/s  processed/s  exported/s  whole/s  per CPU-s  peak RSS MB  load
    before (d011043)         22989         6113       14870     3645      10010           82   8.6
    after                    20975         5952       20071     3766      10799           82   8.7
    before (d011043)         21073         6771       14651     3797      10794           82   8.8
    after                    21638         7447       18643     4271      11559           82   8.9

The export alone, timed in one process at load 7-9: 8.0 s -> 4.9-5.1 s for 100k rows (the column read was 2.6-3.0
s of it); the whole run's CPU per item 7 % lower. The 20k items/s goal is a quiet machine's wall-clock figure and
could not be measured this session.
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

REPO = Path(__file__).resolve().parents[1]


def child(size: int, chunk_size: int, batch_size: int) -> None:
    """One size, in this process: submit, run, export; prints one JSON line."""

    from bench_task import LengthTask, register, result_rows

    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store import open_store
    from verticals.registry import get_registry

    LengthTask.chunk_size = chunk_size
    LengthTask.batch_size = batch_size
    registry = get_registry(refresh=True)
    register(registry, LengthTask)

    store = open_store()
    folder = Path(os.environ["VERTICALS_HOME"])
    source = folder / "input.csv"  # what `verticals run` reads: a CSV file (written before the clock starts)
    with source.open("w", encoding="utf-8") as handle:
        handle.write("text\n")
        handle.writelines(f"headline number {i} of the scale benchmark\n" for i in range(size))
    try:
        from verticals.core.io import read_rows

        rows = read_rows(source)
    except ImportError:  # an older checkout: generated rows
        rows = ({"text": f"headline number {i} of the scale benchmark"} for i in range(size))
    started, cpu = time.perf_counter(), time.process_time()
    job_id = submit_job(store, registry, LengthTask.name, rows)
    stored_s = time.perf_counter() - started
    print(json.dumps({"job": job_id, "stored_s": stored_s}), flush=True)
    started = time.perf_counter()
    status = LocalExecutor(store, registry).execute(job_id)
    processed_s = time.perf_counter() - started
    started = time.perf_counter()
    try:  # the CSV export of `verticals run -o` (columns, then rows), where the checkout has it
        from verticals.core.jobs.export import export_job

        exported = export_job(store, registry, job_id, folder / "results.csv")
    except ImportError:
        exported = sum(1 for _ in result_rows(store, job_id))
    exported_s = time.perf_counter() - started
    whole_cpu_s = time.process_time() - cpu
    counts = store.summary(job_id)["counts"]
    if status != "succeeded" or counts.get("succeeded") != size or exported != size:
        raise SystemExit(f"job {job_id}: status {status}, counts {counts}, exported {exported} (expected {size})")
    with open("/proc/self/status") as status:  # VmHWM, not ru_maxrss (which keeps the pre-exec image's peak)
        peak_kb = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    print(json.dumps({"size": size, "stored_s": stored_s, "processed_s": processed_s, "exported_s": exported_s,
                      "whole_cpu_s": whole_cpu_s, "peak_rss_mb": peak_kb / 1024}), flush=True)


def done_so_far(db: Path, job_id: str) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute("SELECT count(*) FROM items WHERE job_id = ? AND status != 'pending'",
                                  (job_id,)).fetchone()[0]


def run_size(size: int, args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="verticals-scale-"))
    db = folder / "jobs.db"
    code = str(Path(args.code).resolve()) if args.code else str(REPO)
    env = {**os.environ, "VERTICALS_HOME": str(folder), "VERTICALS_DATABASE_URL": f"sqlite:///{db}",
           "VERTICALS_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([code, *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, __file__, "--child", str(size), "--chunk-size", str(args.chunk_size),
               "--batch-size", str(args.batch_size)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    first = json.loads(process.stdout.readline() or "{}")
    run_started = time.perf_counter()
    try:
        out, _ = process.communicate(timeout=max(1.0, args.timeout - (run_started - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        elapsed = time.perf_counter() - run_started
        done = done_so_far(db, first["job"]) if first.get("job") else 0
        return {"size": size, "stored_s": first.get("stored_s"), "timed_out": True, "done": done,
                "processed_rate": done / elapsed if elapsed else None}
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    if process.returncode:
        raise SystemExit(f"size {size} failed (exit {process.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["processed_rate"] = size / result["processed_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--code", help="run against the verticals in this folder (default: this checkout)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per size")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk_size, args.batch_size)
        return
    print(f"code: {args.code or REPO}; SQLite; chunk {args.chunk_size}, batch {args.batch_size}")
    print(f"{'items':>9} {'stored/s':>10} {'processed/s':>12} {'exported/s':>11} {'whole/s':>9} {'per CPU-s':>10} "
          f"{'peak RSS MB':>12} {'load avg':>9}")
    rates = []
    for size in args.sizes:
        r = run_size(size, args)
        stored = size / r["stored_s"] if r.get("stored_s") else float("nan")
        if r.get("timed_out"):
            print(f"{size:>9} {stored:>10.0f} {r['processed_rate']:>12.0f} {'-':>11} {'-':>9} {'-':>10} {'-':>12}"
                  f"  (timed out after {args.timeout:.0f}s: {r['done']} items processed)", flush=True)
            continue
        rates.append(r["processed_rate"])
        whole = r["stored_s"] + r["processed_s"] + r["exported_s"]
        print(f"{size:>9} {stored:>10.0f} {r['processed_rate']:>12.0f} {size / r['exported_s']:>11.0f} "
              f"{size / whole:>9.0f} {size / r['whole_cpu_s']:>10.0f} {r['peak_rss_mb']:>12.0f} "
              f"{os.getloadavg()[1]:>9.1f}", flush=True)
    if len(rates) > 1:
        print(f"processed/s, slowest size / fastest size: {min(rates) / max(rates):.2f}")


if __name__ == "__main__":
    main()
