"""medical.entities on the real medspaCy pipeline (no mocks)."""

from __future__ import annotations

import pytest
from verticals_medical.entities import EntitiesTask

from verticals import RunContext
from verticals.contract import OPERATOR


def run(items, **params):
    task = EntitiesTask()
    batch = [task.Input(**item) if isinstance(item, dict) else task.Input(text=item) for item in items]
    params = task.Params.model_validate(params, context=OPERATOR.context())  # the CLI's access: any regular file
    return task.run(batch, {}, RunContext(job_id="job-1", params=params))


def by_text(output):
    return {e.text.lower(): e for e in output.entities}


@pytest.mark.slow
def test_assertion_status():
    note = ("HISTORY OF PRESENT ILLNESS: The patient denies chest pain. Possible pneumonia on the chest x-ray.\n\n"
            "PAST MEDICAL HISTORY: History of myocardial infarction in 2010.\n\n"
            "FAMILY HISTORY: Mother had breast cancer.\n\n"
            "PLAN: Return if fever develops. Continue metformin.")
    ents = by_text(run([note])[0])
    assert ents["chest pain"].assertion == "absent" and ents["chest pain"].negated
    assert ents["pneumonia"].assertion == "possible"
    assert ents["chest x-ray"].category == "TEST"
    assert ents["myocardial infarction"].historical
    assert ents["breast cancer"].family and ents["breast cancer"].assertion == "family"
    assert ents["fever"].hypothetical
    assert ents["metformin"].category == "MEDICATION" and ents["metformin"].assertion == "present"
    assert ents["chest pain"].section == "history_of_present_illness"


@pytest.mark.slow
def test_item_targets_and_terms_file(tmp_path):
    terms = tmp_path / "terms.tsv"
    terms.write_text("# my terms\nfrobnication syndrome\tPROBLEM\n")
    out = run([{"text": "No evidence of frobnication syndrome or zorbitis.", "targets": ["zorbitis"]}],
              terms=str(terms))[0]
    ents = by_text(out)
    assert ents["frobnication syndrome"].category == "PROBLEM" and ents["frobnication syndrome"].negated
    assert ents["zorbitis"].category == "FINDING" and ents["zorbitis"].negated
    assert out.counts == {"FINDING:absent": 1, "PROBLEM:absent": 1}


def test_targets_accept_a_delimited_string():
    assert EntitiesTask.Input(text="x", targets="a | b;c").targets == ["a", "b", "c"]
    with pytest.raises(ValueError, match="does not exist"):
        EntitiesTask.Params.model_validate({"terms": "/does/not/exist.tsv"}, context=OPERATOR.context())
    with pytest.raises(ValueError, match="VERTICALS_DATA_ROOTS"):  # without the core's context: no server file
        EntitiesTask.Params(terms="/does/not/exist.tsv")


@pytest.mark.slow
def test_summary():
    task = EntitiesTask()
    outs = run(["Denies nausea.", "Nausea and cough."])
    summary = task.summarize(outs, RunContext(job_id="j", params=task.Params()))
    assert summary["documents"] == 2
    assert summary["by_category"]["PROBLEM"]["absent"] >= 1 and summary["by_category"]["PROBLEM"]["present"] >= 1


@pytest.mark.slow
def test_assertion_cue_classes():
    # cases written for this test: padded report columns, a heading then "No", a duration, instructions
    out = run([
        {"text": "Venous duplex of the legs negative      for thrombosis.", "targets": ["thrombosis"]},
        {"text": "Abdomen: No tenderness, guarding or distension.", "targets": ["tenderness"]},
        "She reports a three-day history of nausea.",
        "Call also for any chest pain or fever above 101.",
        "History of pneumonia in childhood.",
        {"text": "Given his known cardiomyopathy, fluids were limited.", "targets": ["cardiomyopathy"]},
        {"text": "Echo consistent with the patient's know atrial septal defect.", "targets": ["atrial septal defect"]},
    ])
    thrombosis = by_text(out[0])["thrombosis"]
    padded = "Venous duplex of the legs negative      for thrombosis."
    assert thrombosis.negated and thrombosis.start == padded.index("thrombosis")  # original offsets
    assert by_text(out[1])["tenderness"].negated
    assert not by_text(out[2])["nausea"].historical
    assert by_text(out[3])["chest pain"].hypothetical and by_text(out[3])["fever"].hypothetical
    assert by_text(out[4])["pneumonia"].historical
    assert by_text(out[5])["cardiomyopathy"].historical  # "known X": a pre-existing condition
    assert by_text(out[6])["atrial septal defect"].historical  # and its common typo "patient's know X"


def test_collapse_spaces_maps_offsets_back():
    from verticals_medical.entities import collapse_spaces

    text, positions = collapse_spaces("a  b\t\t c\nd")
    assert text == "a b c\nd"
    assert [positions[i] for i in range(len(text))] == [0, 1, 3, 4, 7, 8, 9]
