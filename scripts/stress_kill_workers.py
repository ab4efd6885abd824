#!/usr/bin/env python
"""Longer variant of the kill -9 test: many SIGKILLs of Celery workers during jobs; nothing lost or duplicated.

    .venv/bin/python scripts/stress_kill_workers.py [--kills 40] [--workers 3] [--items 3000] [--jobs 2]

Uses the same parts as tests/test_celery.py: a private redis-server, `verticals worker` processes,
a scratch PostgreSQL database (VERTICALS_TEST_POSTGRES_URL). Each kill picks a random worker; one in
four kills the whole worker (main process and pool: its chunk comes back after the visibility timeout)
and starts a replacement, the others kill a pool process (Celery replaces it; the chunk is requeued).
Exits 1 if any job ends with a missing, duplicated or non-succeeded item.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_test_helpers():
    spec = importlib.util.spec_from_file_location("celery_test_helpers", REPO / "tests" / "test_celery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40, help="SIGKILLs per job")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--admin-url", default=os.environ.get(
        "VERTICALS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    fixtures = REPO / "tests" / "fixture_plugins" / "good"
    sys.path.insert(0, str(fixtures))
    folder = Path(tempfile.mkdtemp(prefix="stress-kill-"))
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    name = f"vt_stress_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    helpers = load_test_helpers()
    redis = helpers.RedisServer(folder / "redis")
    redis.start()
    env = {"VERTICALS_DATABASE_URL": url, "VERTICALS_BROKER_URL": redis.url, "VERTICALS_LOAD_PLUGINS": "fixtures",
           "VERTICALS_VISIBILITY_TIMEOUT": "8", "VERTICALS_MAX_ATTEMPTS": "50", "HF_HUB_OFFLINE": "1",
           "VERTICALS_HOME": str(folder), "VERTICALS_FIXTURES_EVENTS": str(folder / "events.txt"),
           "PYTHONPATH": os.pathsep.join([str(fixtures), os.environ.get("PYTHONPATH", "")])}
    os.environ.update(env)
    workers = helpers.Workers(folder, env)
    failures = 0
    try:
        from verticals.core.store import open_store
        from verticals.core.store.db import make_engine, upgrade
        from verticals.registry import get_registry

        upgrade(make_engine(url))
        store, registry = open_store(url), get_registry(refresh=True)
        ctx = helpers.Env(store, registry, redis, workers, folder / "events.txt")
        alive = workers.start(args.workers)
        for job_number in range(args.jobs):
            job_id = ctx.submit([f"s{i}" for i in range(args.items)], chunk_size=25, sleep=0.02)
            thread, result = helpers.run_in_thread(ctx.executor().execute, job_id)
            kills = whole = 0
            while kills < args.kills and thread.is_alive():
                time.sleep(rng.uniform(0.1, 0.6))
                victim = rng.choice(alive)
                if rng.random() < 0.25:
                    os.killpg(victim.pid, signal.SIGKILL)
                    alive.remove(victim)
                    alive += workers.start(1)
                    whole += 1
                else:
                    children = workers.children(victim)
                    if not children:
                        continue
                    os.kill(rng.choice(children), signal.SIGKILL)
                kills += 1
            thread.join(600)
            problems = []
            if thread.is_alive():
                problems.append("did not finish in 600s")
            elif result.get("error") or result.get("value") != "succeeded":
                problems.append(f"ended {result}")
            try:
                counts = ctx.assert_exactly_one_result_per_item(job_id, args.items)
                if counts != {"succeeded": args.items}:
                    problems.append(f"counts {counts}")
            except AssertionError as error:
                problems.append(f"store check failed: {error}")
            events = ctx.finished_events(job_id)
            if events != [f"{job_id} succeeded"]:
                problems.append(f"job_finished events {events}")
            attempts = max(item.attempts for item in store.iter_items(job_id))
            print(f"job {job_number + 1}/{args.jobs}: {kills} kills ({whole} whole workers), max attempts "
                  f"{attempts}: {'OK' if not problems else 'FAILED ' + '; '.join(problems)}", flush=True)
            failures += bool(problems)
    finally:
        workers.stop()
        redis.stop()
        make_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
