"""Score ``medical.deidentify`` on a JSONL of notes or sentences with gold spans; print aggregate figures.

    python plugins/verticals-medical/research/deid_eval.py /tmp/medsplits/deid_val.jsonl
    python plugins/verticals-medical/research/deid_eval.py /tmp/medsplits/deid_train.jsonl --folds 0,1 --errors 40
    python plugins/verticals-medical/research/deid_eval.py /tmp/pii_tune.jsonl -p tagger=off

The scoring is :mod:`verticals_medical.scoring` (the evaluator of ``verticals eval medical.deidentify``).
``--errors`` prints missed and spurious spans with their context; it is refused on the held-out sets: the
validation split and the measuring and held-out PII sets (files named ``deid_val*``, ``negex_val*``,
``pii_measure*``, ``pii_holdout*``, the golden set ``deidentify.jsonl``, and whatever their name, rows of a
validation patient or with a ``measure-``, ``holdout-`` or ``golden-`` id): their errors are never read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

PROTECTED = ("deid_val", "negex_val", "pii_measure", "pii_holdout", "deidentify")
PROTECTED_IDS = ("measure-", "holdout-", "golden-")


def held_out_rows(rows: list[dict[str, Any]]) -> int:
    """How many rows belong to a held-out set, whatever the file is called (a copy, a concatenation)."""
    from splits import deid_part

    return sum(1 for r in rows if str(r.get("id", "")).startswith(PROTECTED_IDS)
               or ("patient" in r and deid_part(r["patient"]) == "val"))


def _coerce(value: str) -> Any:
    if value.lower() in ("true", "false", "on", "off"):
        return value.lower() in ("true", "on")
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        return value


def run(rows: list[dict[str, Any]], params: dict[str, Any]) -> tuple[list[Any], float, float]:
    from verticals_medical.deidentify import DeidentifyTask

    from verticals import RunContext
    from verticals.contract import OPERATOR

    task = DeidentifyTask()  # an operator's script: ner_model may name any model folder
    ctx = RunContext(job_id="eval", params=task.Params.model_validate(params, context=OPERATOR.context()))
    models = _models(task)
    task.run([task.Input(text="Warm-up note seen by Dr. Smith on 3/4.", id="w")], models, ctx)
    started, cpu = time.perf_counter(), time.process_time()
    outputs: list[Any] = []
    for i in range(0, len(rows), task.batch_size):
        batch = [task.Input(text=r["text"], id=str(r.get("id"))) for r in rows[i:i + task.batch_size]]
        outputs += task.run(batch, models, ctx)
    return outputs, time.perf_counter() - started, time.process_time() - cpu


def _models(task: Any) -> dict[str, Any]:
    """The task's models through a host on the plugin registry (loaded on first use, as in a job)."""
    if not task.models:
        return {}
    from verticals.core.jobs.pipeline import LazyModels
    from verticals.core.models.host import ModelHost
    from verticals.registry import get_registry

    host = ModelHost(get_registry().models)
    return LazyModels(host, dict(task.models))  # type: ignore[return-value]


def _score_notes() -> Any:
    """The plugin's scorer; with an older checkout's plugin (a "before" figure), the file next to this script's."""
    try:
        from verticals_medical.scoring import score_notes
    except ImportError:
        import importlib.util

        path = Path(__file__).resolve().parents[1] / "verticals_medical" / "scoring.py"
        spec = importlib.util.spec_from_file_location("_scoring", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        score_notes = module.score_notes
    return score_notes


def main(argv: list[str] | None = None) -> None:
    score_notes = _score_notes()

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--folds", help="only these folds of a training-folds file, e.g. 0,1")
    parser.add_argument("-p", "--param", action="append", default=[], help="task parameter NAME=VALUE")
    parser.add_argument("--errors", type=int, default=0, help="print N missed and N spurious spans")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    path = Path(args.data)
    if args.errors and path.name.startswith(PROTECTED):
        raise SystemExit(f"error: {path.name} is a held-out set: its errors are not printed (aggregates only)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.errors and held_out_rows(rows):
        raise SystemExit(f"error: {path.name} holds {held_out_rows(rows)} held-out rows: their errors are not printed")
    if args.folds:
        wanted = {int(f) for f in args.folds.split(",")}
        rows = [r for r in rows if r.get("fold") in wanted]
    params = dict(p.split("=", 1) for p in args.param)
    outputs, seconds, cpu = run(rows, {k: _coerce(v) for k, v in params.items()})
    predicted = [[(s.start, s.end, s.category) for s in out.spans] for out in outputs]
    golds = [[(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in rows]
    result = score_notes([r["text"] for r in rows], golds, predicted)
    m = result["metrics"]
    print(f"{path.name}{' folds ' + args.folds if args.folds else ''}: {len(rows)} texts, {m['gold_spans']} PHI "
          f"spans, params {params or 'default'}")
    print(f"recall {m['recall']:.3f}  touched {m['touched']:.3f}  names {m['names_recall']:.3f}  "
          f"char P {m['char_precision']:.3f} R {m['char_recall']:.3f}  span P {m['span_precision']:.3f}  "
          f"token P {m['token_precision']:.3f}")
    print("recall per gold label: " + ", ".join(f"{k} {v['recall']:.3f} ({v['gold']})"
                                                for k, v in result["labels"].items()))
    print("precision per predicted category: " + ", ".join(f"{k} {v['precision']:.3f} ({v['predicted']})"
                                                          for k, v in result["categories"].items()))
    print(f"throughput {len(rows) / seconds:.1f} texts/s wall, {len(rows) / cpu:.1f} texts per CPU-second "
          f"(in-process, after load; the CPU figure does not depend on what else the machine runs)")
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k in ("metrics", "labels",
                                                                                           "categories")},
                                              indent=1), encoding="utf-8")
    if args.errors:
        for kind in ("missed", "spurious"):
            print(f"\n## {kind} (first {args.errors} of {len(result[kind])})")
            for index, start, end, label in result[kind][:args.errors]:
                text = rows[index]["text"]
                left = text[max(0, start - 50):start].replace("\n", "⏎")
                right = text[end:end + 35].replace("\n", "⏎")
                print(f"- {label}: {left}[[{text[start:end]}]]{right}")


if __name__ == "__main__":
    main()
