"""medical.deidentify explanations: each span's detectors and context words as evidence, never its PHI."""

from __future__ import annotations

import pytest
from verticals_medical.deidentify import DeidentifyTask

from verticals import RunContext
from verticals.contract import check_explanation

NOTE = "Patient: John A. Smith   MRN: 00123456   DOB: 03/14/1950\nSeen by Dr. Alice Wong. Denies chest pain.\n"
PHI = ["John A. Smith", "00123456", "03/14/1950", "Alice Wong"]


@pytest.mark.slow
def test_evidence_points_at_each_span_and_its_cue_words_without_quoting_phi():
    task = DeidentifyTask()
    item = task.Input(text=NOTE)
    ctx = RunContext(job_id="j", params=task.Params(tagger=False), explain=True)
    output = task.run([item], {}, ctx)[0]
    explanation = task.explain([item], [output], {}, ctx)[0]
    assert check_explanation(explanation, item, "text") == explanation  # every quoted cue is the note's own text
    spans = [e for e in explanation.evidence if e.kind == "span"]
    assert [(e.start, e.end) for e in spans] == [(s.start, s.end) for s in output.spans]
    assert all(e.text is None and e.source for e in spans)  # pointed at, never quoted
    assert {NOTE[e.start:e.end] for e in spans} >= {"00123456", "03/14/1950"}
    cues = [e for e in explanation.evidence if e.kind == "cue"]
    assert len(cues) == sum(len(span.context) for span in output.spans)  # every context word the detectors read
    assert any(e.text == "MRN" and "(MRN)" in (e.detail or "") for e in cues)
    quoted = " ".join([explanation.summary, *(e.text or "" for e in explanation.evidence),
                       *(e.detail or "" for e in explanation.evidence)])
    for value in PHI:
        assert value not in quoted, value
    assert explanation.summary.startswith(f"{len(output.spans)} PHI span(s): ")


@pytest.mark.slow
def test_a_note_without_phi_says_so():
    task = DeidentifyTask()
    item = task.Input(text="Denies chest pain. Lungs clear.")
    ctx = RunContext(job_id="j", params=task.Params(tagger=False), explain=True)
    output = task.run([item], {}, ctx)[0]
    explanation = task.explain([item], [output], {}, ctx)[0]
    assert explanation.evidence == [] and explanation.summary.startswith("no PHI found")


def test_jobs_stored_with_the_old_parameter_name_still_run():
    from verticals_medical.deidentify import DeidParams

    assert DeidParams.model_validate({"explain": "full"}).explain_detail == "full"  # a job stored before the rename
    assert DeidParams().explain_detail == "basic"


@pytest.mark.slow
def test_entities_explanation_names_the_cue_and_scope_of_each_assertion():
    from verticals_medical.entities import EntitiesTask

    text = "Patient  denies chest pain. History of diabetes. Father had colon cancer. Takes metformin."
    task = EntitiesTask()
    item = task.Input(text=text)
    ctx = RunContext(job_id="j", params=task.Params(), explain=True)
    output = task.run([item], {}, ctx)[0]
    explanation = task.explain([item], [output], {}, ctx)[0]
    assert check_explanation(explanation, item, "text") == explanation
    by_entity = {text[e.start:e.end]: e for e in output.entities}
    assert by_entity["chest pain"].assertion == "absent" and by_entity["diabetes"].assertion == "historical"
    cues = {e.text: e for e in explanation.evidence if e.kind == "cue"}
    assert cues["denies"].source == "context:NEGATED_EXISTENCE"  # offsets in the text as given (two spaces)
    assert text[cues["denies"].start:cues["denies"].end] == "denies"
    assert cues["History"].source == "context:HISTORICAL" and "Father" in cues
    scope = next(e for e in explanation.evidence if e.kind == "scope" and "NEGATED" in (e.source or ""))
    assert scope.start <= text.index("chest pain") < scope.end  # the entity lies in the cue's scope
    spans = [e for e in explanation.evidence if e.kind == "span"]
    assert len(spans) == len(output.entities) and all(e.text is None for e in spans)
    metformin = next(e for e in spans if text[e.start:e.end] == "metformin")
    assert "present" in metformin.detail and "no ConText cue" in metformin.detail
    assert '(cue "denies")' in explanation.summary and "chest pain" not in explanation.summary
    assert ctx.extra["medical.entities:cues"] == {}  # what run kept for explain is gone after it
    plain = RunContext(job_id="j", params=task.Params())
    task.run([item], {}, plain)
    assert "medical.entities:cues" not in plain.extra  # nothing kept without explain
