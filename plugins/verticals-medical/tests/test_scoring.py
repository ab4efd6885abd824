"""The Safe Harbor evaluator of `verticals eval medical.deidentify` and the committed split rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from verticals_medical.scoring import SafeHarborEvaluator, score_notes

from verticals.contract.evaluators import Record

SCRIPTS = Path(__file__).resolve().parents[1] / "research"


def _splits():
    spec = importlib.util.spec_from_file_location("splits", SCRIPTS / "splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_half_masked_name_is_a_miss_and_year_or_young_age_is_not_phi():
    text = "Seen by Dr Ada Okafor in 1987, age 67, on 4/2."
    gold = [(text.index("Ada"), text.index("Ada") + 10, "HCPName"), (text.index("1987"), text.index("1987") + 4,
                                                                       "DateYear"),
            (text.index("67"), text.index("67") + 2, "Age"), (text.index("4/2"), text.index("4/2") + 3, "Date")]
    okafor = text.index("Okafor")
    predicted = [(okafor, okafor + 6, "NAME"), (text.index("1987"), text.index("1987") + 4, "DATE"),
                 (text.index("4/2"), text.index("4/2") + 3, "DATE")]
    result = score_notes([text], [gold], [predicted])
    assert result["labels"]["HCPName"]["recall"] == 0.0 and result["labels"]["HCPName"]["touched"] == 1.0
    assert result["metrics"]["gold_spans"] == 2 and result["metrics"]["recall"] == 0.5
    assert result["metrics"]["char_precision"] == (6 + 3) / (6 + 4 + 3)
    assert result["categories"]["DATE"]["precision"] == 0.5


def test_evaluator_reads_the_text_but_does_not_store_it():
    evaluator = SafeHarborEvaluator()
    text = "Call Mr Brandt at 555-0100."
    item = {"text": text, "spans": [{"start": 8, "end": 14, "label": "PTName"}]}
    gold = evaluator.gold(item, "spans")
    records = [Record("k", 0, gold, [{"start": 8, "end": 14, "category": "NAME"}])]
    scores = evaluator.score(records)
    assert scores.metrics["recall"] == 1.0 and scores.metrics["char_precision"] == 1.0
    assert scores.per_class["PTName"]["support"] == 1
    assert evaluator.compact(gold) == [[8, 14, "PTName"]]


def test_split_rule_is_fixed():
    splits = _splits()
    parts = [splits.deid_part(p) for p in range(1, 200)]
    assert 0.15 < parts.count("val") / len(parts) < 0.35
    assert parts == [splits.deid_part(p) for p in range(1, 200)]
    # the rule is committed: these must never move (a moved split would leak validation notes into tuning)
    assert [splits.deid_part(p) for p in range(1, 9)] == ["fold1", "fold3", "val", "fold2", "fold1", "fold3", "val",
                                                          "fold1"]
    assert [splits.negex_part(str(n)) for n in range(1, 6)] == ["val", "train", "train", "train", "train"]
