"""SQL statements per item and items/s of a trivial task, through the engine: submit, run, export.

    .venv/bin/python benchmarks/statements.py [--sizes 1000 10000] [--baseline-path /tmp/before]
                                              [--chunk-size N] [--batch-size N]

For each size, in a fresh subprocess with a fresh SQLite database: ``submit_job`` of N generated items,
``LocalExecutor.execute`` (every chunk through ``run_chunk``, the job finished, ``job_finished`` fired),
then the export's rows (every result read back). Every statement the engine sends is counted
(SQLAlchemy's ``before_cursor_execute``: an executemany is one statement, as it is one round trip), and
every validation of the task's input model. Printed per item, amortised over the job: statements of
submit+run, of the export, and input validations; items/s of submit+run, by the wall clock and per
second of the process's CPU time (which the machine's load changes less); the fastest of ``--repeat``
runs.

The task, ``bench.length`` (registered here through a plugin object, not installed, no model), returns
the length of a short text: what is measured is the engine and the store. It keeps ``Task``'s default
chunk (256) and batch (64) sizes unless ``--chunk-size``/``--batch-size`` say otherwise.

``--baseline-path`` runs the same sizes against another checkout first (the code before the change):

    git worktree add /tmp/before e4441b4
    .venv/bin/python benchmarks/statements.py --baseline-path /tmp/before

Measured on the shared 2-core development machine (load average ~1.2; items/s vary with the load, the
statement counts do not), 2026-11-27, before = e4441b4 (before issue 11), after = issue 11's engine:

    code     items  chunk batch  stmts/item  export stmts/item  validations/item  items/s  per CPU-s
    before    1000    256    64       0.089              0.003              2.00     8654       9256
    before   10000    256    64       0.078              0.001              2.00    11628      12025
    after     1000    256    64       0.075              0.003              2.00    14068      14068
    after    10000    256    64       0.062              0.001              2.00    17006      18756
    before    1000     10     1       4.313              0.003              2.00     1153       1374
    after     1000     10     1       3.315              0.003              2.00     1448       1578
    after     1000     10     2       1.815              0.003              2.00     1778       1965

The statements a job sends per batch are: its begin (1 UPDATE ... RETURNING, with the cancel check in it;
+1 for the job's counters on the first batch or when an item is given up) and its results (1 executemany
UPDATE per result status, +1 for the counters); per chunk: the job, its pending items, the finish check (1 UPDATE);
per job: submission (2 per 1000 items), finishing (1 UPDATE + the outbox row) and the event's delivery
(summary artifact, hook). So the default batch (64) costs ~0.06 statements per item and a batch of one
~3.3 (the <= 3 target holds from batches of 2 up: 1.8 at chunk 10, batch 2). The second validation
per item is the worker building the task's input from its stored, already validated form: pydantic's
``model_validate`` is the cheapest constructor there is (``model_construct`` measured 12 us against 6.5).
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


def child(size: int, chunk_size: int | None, batch_size: int | None) -> None:
    """One size, in this process (the ``verticals`` on PYTHONPATH): prints one JSON line."""
    from bench_task import LengthInput, LengthTask, register, result_rows
    from pydantic import model_validator
    from sqlalchemy import event

    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store import open_store
    from verticals.registry import get_registry

    validations = [0]

    class CountedInput(LengthInput):
        @model_validator(mode="before")
        @classmethod
        def _count(cls, data):
            validations[0] += 1
            return data

    class CountedTask(LengthTask):
        Input = CountedInput

    if chunk_size:
        CountedTask.chunk_size = chunk_size
    if batch_size:
        CountedTask.batch_size = batch_size
    registry = get_registry(refresh=True)
    register(registry, CountedTask)

    store = open_store()  # migrated before counting
    sent = [0]

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(*_args):
        sent[0] += 1

    rows = ({"text": f"headline number {i} of the statements benchmark"} for i in range(size))
    started, cpu = time.perf_counter(), time.process_time()
    job_id = submit_job(store, registry, CountedTask.name, rows)
    status = LocalExecutor(store, registry).execute(job_id)
    run_s, run_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    run_statements, run_validations = sent[0], validations[0]
    exported = sum(1 for _ in result_rows(store, job_id))
    export_statements = sent[0] - run_statements
    counts = store.summary(job_id)["counts"]
    if status != "succeeded" or counts.get("succeeded") != size or exported != size:
        raise SystemExit(f"job {job_id}: status {status}, counts {counts}, exported {exported} (expected {size})")
    print(json.dumps({"size": size, "run_s": run_s, "run_cpu_s": run_cpu_s, "run_statements": run_statements,
                      "export_statements": export_statements, "validations": run_validations,
                      "chunk_size": CountedTask.chunk_size, "batch_size": CountedTask.batch_size}), flush=True)


def run_size(code: Path, size: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="verticals-statements-") as folder:
        env = {**os.environ, "VERTICALS_HOME": folder, "VERTICALS_DATABASE_URL": f"sqlite:///{folder}/jobs.db",
               "VERTICALS_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])}
        command = [sys.executable, __file__, "--child", str(size)]
        for option in ("chunk_size", "batch_size"):
            if getattr(args, option):
                command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
        result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=folder)
    if result.returncode:
        raise SystemExit(f"{code}, size {size} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--baseline-path", help="also run against the verticals checkout in this folder, first")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size and code; the fastest is printed")
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk_size, args.batch_size)
        return
    codes = [("before", Path(args.baseline_path).resolve())] if args.baseline_path else []
    codes.append(("after", REPO))
    print(f"{'code':<7} {'items':>7} {'chunk':>6} {'batch':>6} {'stmts/item':>11} {'export stmts/item':>18} "
          f"{'validations/item':>17} {'items/s':>9} {'per CPU-s':>10} {'load':>5}")
    for label, code in codes:
        for size in args.sizes:
            runs = [run_size(code, size, args) for _ in range(max(1, args.repeat))]
            r = min(runs, key=lambda run: run["run_s"])
            cpu_s = min(run["run_cpu_s"] for run in runs)
            print(f"{label:<7} {size:>7} {r['chunk_size']:>6} {r['batch_size']:>6} "
                  f"{r['run_statements'] / size:>11.3f} {r['export_statements'] / size:>18.3f} "
                  f"{r['validations'] / size:>17.2f} {size / r['run_s']:>9.0f} {size / cpu_s:>10.0f} "
                  f"{os.getloadavg()[0]:>5.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
