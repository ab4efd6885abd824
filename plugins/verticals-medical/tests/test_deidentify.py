"""medical.deidentify on the real Presidio + spaCy pipeline (no mocks)."""

from __future__ import annotations

import re

import pytest
from verticals_medical.deidentify import DeidentifyTask
from verticals_medical.surrogates import Surrogates, derive_key, shift_date

from verticals import RunContext

NOTE = (
    "DISCHARGE SUMMARY\n"
    "Patient: John A. Smith   MRN: 00123456   DOB: 03/14/1950\n"
    "Admitted: 2021-04-02. Seen by Dr. Alice Wong, MD. Phone (617) 555-1234, Fax: 617-555-9876.\n"
    "Address: 12 Main St, Boston, MA 02118. Email john.smith@gmail.com. SSN 123-45-6789.\n"
    "The 92 year old patient's wife Mary Smith visited on April 5, 2021. Mr. Smith denies chest pain.\n"
)
PHI = ["John A. Smith", "00123456", "03/14/1950", "2021-04-02", "Alice Wong", "(617) 555-1234", "617-555-9876",
       "12 Main St", "Boston", "02118", "john.smith@gmail.com", "123-45-6789", "92", "Mary Smith", "April 5, 2021"]


def run(texts, job_id="job-1", **params):
    task = DeidentifyTask()
    items = [task.Input(text=t, id=str(i)) for i, t in enumerate(texts)]
    params.setdefault("tagger", False)  # the rules alone (the learned tagger has its own, slow, tests)
    return task.run(items, {}, RunContext(job_id=job_id, params=task.Params(**params)))


@pytest.mark.slow
def test_mask_removes_every_phi_value_and_keeps_clinical_text():
    out = run([NOTE])[0]
    for value in PHI:
        assert value not in out.text, value
    assert "denies chest pain" in out.text
    assert "[NAME]" in out.text and "[MRN]" in out.text and "[ADDRESS]" in out.text
    # "12 Main St, Boston, MA 02118" is one whole address (street, city, state and ZIP together)
    address = next(s for s in out.spans if s.category == "ADDRESS")
    assert NOTE[address.start:address.end] == "12 Main St, Boston, MA 02118"
    assert {"rule:street-address", "rule:city-state-zip"} <= {src.detector for src in address.sources}
    categories = {s.category for s in out.spans}
    assert {"NAME", "MRN", "DATE", "PHONE", "FAX", "ADDRESS", "EMAIL", "SSN", "AGE"} <= categories
    assert out.counts["NAME"] == sum(1 for s in out.spans if s.category == "NAME")
    for span in out.spans:  # offsets point into the original text
        assert 0 <= span.start < span.end <= len(NOTE)


@pytest.mark.slow
def test_surrogates_are_consistent_within_a_job_and_differ_across_jobs():
    other = "Follow-up: Mr. Smith returns on April 19, 2021. Call Dr. Alice Wong."
    first, second = run([NOTE, other], job_id="job-A", mode="surrogate")
    for value in PHI:
        assert len(value) < 4 or value not in first.text  # a 2-digit value may recur by chance
    assert "90+ year old" in first.text
    name_of = {NOTE[s.start:s.end]: s.replacement for s in first.spans}
    name_of2 = {other[s.start:s.end]: s.replacement for s in second.spans}
    assert name_of["Alice Wong"] == name_of2["Alice Wong"]  # same provider, same surrogate, across documents
    assert name_of["Smith"] == name_of2["Smith"]
    assert name_of["John A. Smith"].endswith(name_of["Smith"])  # surname maps token by token
    again = run([NOTE, other], job_id="job-A", mode="surrogate")[1]
    assert again.text == second.text  # deterministic: another chunk/worker gives the same result
    elsewhere = run([NOTE, other], job_id="job-B", mode="surrogate")[1]
    assert elsewhere.text != second.text
    keyed = run([other], job_id="job-C", mode="surrogate", surrogate_key="s3cret")[0]
    assert keyed.text == run([other], job_id="job-D", mode="surrogate", surrogate_key="s3cret")[0].text


def test_date_shift_keeps_format_and_intervals():
    s = Surrogates(derive_key("job", None))
    offset = s.date_offset("patient-1")
    assert offset != 0 and abs(offset) <= 365
    assert shift_date("03/14/2021", 10) == "03/24/2021"
    assert shift_date("2021-12-25", 10) == "2022-01-04"
    assert shift_date("April 5, 2021", -5) == "March 31, 2021"
    assert shift_date("5 Apr 2021", 1) == "6 Apr 2021"
    assert shift_date("March 2021", 31) == "April 2021"
    assert shift_date("3/4/21", 1) == "3/5/21"
    assert shift_date("not a date", 3) is None


@pytest.mark.slow
def test_date_intervals_survive_in_surrogate_mode():
    text = "Admitted 03/01/2021, discharged 03/11/2021."
    out = run([text], mode="surrogate")[0]
    import datetime as dt

    found = re.findall(r"(\d{2})/(\d{2})/(\d{4})", out.text)
    assert len(found) == 2
    a, b = (dt.date(int(y), int(m), int(d)) for m, d, y in found)
    assert (b - a).days == 10
    assert "03/01/2021" not in out.text


@pytest.mark.slow
def test_hash_mode_and_category_filter():
    out = run([NOTE], mode="hash", categories="NAME,DATE")[0]
    assert re.search(r"\[NAME:[0-9a-f]{10}\]", out.text)
    assert {s.category for s in out.spans} <= {"NAME", "DATE"}
    assert "00123456" in out.text  # MRN not requested


@pytest.mark.slow
def test_summary_counts_per_category():
    task = DeidentifyTask()
    outs = run([NOTE, "Nothing identifying here: denies fever."])
    summary = task.summarize(outs, RunContext(job_id="j", params=task.Params()))
    assert summary["documents"] == 2 and summary["documents_with_phi"] == 1
    assert summary["by_category"]["NAME"] == outs[0].counts["NAME"]
    assert summary["phi_spans"] == len(outs[0].spans)


def test_unknown_category_is_rejected():
    with pytest.raises(ValueError):
        DeidentifyTask.Params(categories="NAME,BOGUS")
