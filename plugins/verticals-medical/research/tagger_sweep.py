"""Choose the tagger's threshold on the training folds: the ensemble's recall and character precision per threshold.

    python plugins/verticals-medical/research/tagger_sweep.py /tmp/medsplits/deid_train.jsonl --folds 0,2
    python plugins/verticals-medical/research/tagger_sweep.py /tmp/pii_tune.jsonl

The tagger runs once (token probabilities); each threshold's spans go through the task's own filters
(``deidentify.tagger_spans``) and are merged with the rules' spans (spaCy off, as with the tagger on).
Refused on held-out files (validation split, measuring PII set), like deid_eval.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deid_eval import PROTECTED


class _Fixed:
    """The tagger with its probabilities computed once (``tag`` re-cuts them at any threshold)."""

    def __init__(self, tagger, texts):
        self.tagger = tagger
        self.cache = dict(zip(texts, tagger.token_probabilities(texts), strict=True))

    def tag(self, texts, min_score=0.5):
        return [self.tagger._spans(t, *self.cache[t], min_score) for t in texts]


def main() -> None:
    from verticals_medical.deidentify import tagger_spans
    from verticals_medical.phi import detect
    from verticals_medical.scoring import score_notes

    from verticals.core.models.host import ModelHost
    from verticals.registry import build_registry

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--folds")
    parser.add_argument("--model", help="a tagger folder (default: the registered medical.phi-tagger)")
    parser.add_argument("--thresholds", default="0.5,0.9,0.98,0.995,0.999,0.9995")
    args = parser.parse_args()
    path = Path(args.data)
    if path.name.startswith(PROTECTED):
        raise SystemExit(f"error: {path.name} is held out: tune on the training folds")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.folds:
        rows = [r for r in rows if r.get("fold") in {int(f) for f in args.folds.split(",")}]
    texts = [r["text"] for r in rows]
    registry = build_registry()
    host = ModelHost(registry.models, overrides={"medical.phi-tagger": args.model} if args.model else None)
    model = _Fixed(host.get("medical.phi-tagger"), texts)
    golds = [[(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in rows]
    rules = [detect(t, spacy_ner=False) for t in texts]
    base = score_notes(texts, golds, [[(s.start, s.end, s.category) for s in sp] for sp in rules])["metrics"]
    print(f"rules alone (spaCy off): recall {base['recall']:.3f}, char precision {base['char_precision']:.3f}")
    for threshold, filtered in [(float(x), f) for x in args.thresholds.split(",") for f in (True, False)]:
        extra = tagger_spans(model, texts, threshold, filtered)
        spans = [detect(t, spacy_ner=False, extra=e) for t, e in zip(texts, extra, strict=True)]
        m = score_notes(texts, golds, [[(s.start, s.end, s.category) for s in sp] for sp in spans])
        labels = ", ".join(f"{k} {v['recall']:.3f}" for k, v in m["labels"].items())
        kind = "filtered" if filtered else "unfiltered"
        print(f"threshold {threshold} {kind}: recall {m['metrics']['recall']:.3f}, char precision "
              f"{m['metrics']['char_precision']:.3f}, span precision {m['metrics']['span_precision']:.3f} ({labels})")


if __name__ == "__main__":
    main()
