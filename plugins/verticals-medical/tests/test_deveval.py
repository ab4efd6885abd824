"""Scoring rules of the real-data evaluation (cases written for these tests)."""

from __future__ import annotations

from deveval import concept_span, is_phi, score_deid


def span(text, value, label):
    start = text.index(value)
    return {"start": start, "end": start + len(value), "label": label, "text": value}


def test_safe_harbor_mapping():
    assert not is_phi({"label": "DateYear", "text": "1987"})
    assert not is_phi({"label": "Age", "text": "67"})
    assert is_phi({"label": "Age", "text": "91"})
    assert is_phi({"label": "HCPName", "text": "okafor"})


def test_overlap_rule_half_masked_name_is_a_miss():
    text = "Seen by Dr Ada Okafor in 1987, age 67, on 4/2."
    note = {"id": "a", "text": text, "spans": [span(text, "Ada Okafor", "HCPName"), span(text, "1987", "DateYear"),
                                             span(text, "67", "Age"), span(text, "4/2", "Date")]}
    okafor = text.index("Okafor")
    preds = [(okafor, okafor + 6, "NAME"), (text.index("1987"), text.index("1987") + 4, "DATE"),
             (text.index("4/2"), text.index("4/2") + 3, "DATE")]
    result = score_deid([note], [preds])
    labels = result["labels"]
    assert labels["HCPName"]["recall"] == 0.0 and labels["HCPName"]["touched"] == 1.0
    assert labels["Date"]["recall"] == 1.0
    assert labels["ALL Safe Harbor"]["gold"] == 2  # the year and the age under 90 are not PHI
    assert result["categories"]["DATE"]["precision"] == 0.5
    assert result["categories"]["DATE"]["non_phi_gold"] == 1
    precision, recall, _ = result["chars"]
    assert precision == (6 + 3) / (6 + 4 + 3)
    assert recall == (6 + 3) / (9 + 3)


def test_concept_is_found_despite_spacing():
    item = {"concept": "left lower lobe", "text": "No LEFT  LOWER LOBE infiltrate; left lower lobe clear."}
    assert concept_span(item) == (3, 19)


def test_errors_of_held_out_rows_are_refused_whatever_the_file_is_called(tmp_path):
    import json

    import pytest
    from deid_eval import held_out_rows, main
    from splits import deid_part

    val_patient = next(p for p in range(1000) if deid_part(p) == "val")
    train_patient = next(p for p in range(1000) if deid_part(p) != "val")
    rows = [{"id": "holdout-23-0001", "text": "x", "spans": []}, {"id": "measure-7-0002", "text": "x", "spans": []},
            {"id": "n1", "patient": val_patient, "text": "x", "spans": []},
            {"id": "n2", "patient": train_patient, "fold": 1, "text": "x", "spans": []},
            {"id": "tune-1-0003", "text": "x", "spans": []}]
    assert held_out_rows(rows) == 3
    copy = tmp_path / "renamed.jsonl"
    copy.write_text("".join(json.dumps(r) + "\n" for r in rows[:1]), encoding="utf-8")
    with pytest.raises(SystemExit, match="held-out rows"):
        main([str(copy), "--errors", "5"])
