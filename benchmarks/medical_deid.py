"""Whole ``medical.deidentify`` jobs through the job service: rules only (spaCy NER) vs the learned tagger, same run.

    VERTICALS_HOME=$(mktemp -d) HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/medical_deid.py            # synthetic
    ... benchmarks/medical_deid.py --data ../shared/data/medical/physionet_deid_dev.jsonl --limit 300

Each variant first runs a 4-note job (loads its models: not timed), then the timed job (store, validation,
detection, redaction, results). Prints notes/s of wall time and notes per CPU-second of this process (all its
threads): on a shared machine the CPU figure is the one that does not depend on what else runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="JSONL with a text field (default: 200 synthetic notes of the plugin)")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.data:
        rows = [{"text": json.loads(line)["text"]} for line in Path(args.data).read_text().splitlines()
                if line.strip()][:args.limit]
    else:
        from verticals_medical.synth import generate_notes

        rows = [{"text": n["text"]} for n in generate_notes(args.limit, 5)]
    from verticals.cli.common import _registry, _store
    from verticals.workers import job_service

    service = job_service(_store(), _registry())
    variants = {"rules + spaCy NER (tagger off, as before)": {"tagger": False},
                "tagger on (default)": {"tagger": True}}
    print(f"{len(rows)} notes, {sum(len(r['text']) for r in rows) / len(rows):.0f} characters on average")
    for _ in range(args.rounds):
        for name, params in variants.items():
            service.execute(service.submit("medical.deidentify", rows[:4], params=params))
            wall, cpu = time.perf_counter(), cpu_seconds()
            status = service.execute(service.submit("medical.deidentify", rows, params=params))
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            print(f"{name}: {status}, {len(rows) / wall:.1f} notes/s wall, {len(rows) / cpu:.1f} notes per "
                  f"CPU-second")


if __name__ == "__main__":
    main()
