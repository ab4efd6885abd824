"""medical.deidentify: find PHI spans and redact them (mask, surrogate or hash)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from verticals import (
    Evidence,
    Explanation,
    ItemError,
    ModelSpec,
    RunContext,
    ServerFolderHandle,
    ServerModel,
    Task,
)

from .phi import CATEGORIES, Span, detect, get_analyzer
from .scoring import SafeHarborEvaluator

log = logging.getLogger(__name__)

Mode = Literal["mask", "surrogate", "hash"]

# Label names of common de-id token-classification models -> our categories.
NER_LABELS = {
    "PATIENT": "NAME", "DOCTOR": "NAME", "STAFF": "NAME", "HCW": "NAME", "PERSON": "NAME", "NAME": "NAME",
    "USERNAME": "ID", "AGE": "AGE", "DATE": "DATE", "PHONE": "PHONE", "FAX": "FAX", "EMAIL": "EMAIL",
    "URL": "URL", "IP": "IP", "IPADDRESS": "IP", "ID": "ID", "IDNUM": "ID", "MEDICALRECORD": "MRN", "MRN": "MRN",
    "SSN": "SSN", "HEALTHPLAN": "HEALTH_PLAN", "ACCOUNT": "ACCOUNT", "LICENSE": "LICENSE", "VEHICLE": "VEHICLE",
    "DEVICE": "DEVICE", "STREET": "ADDRESS", "ADDRESS": "ADDRESS", "CITY": "LOCATION", "LOCATION": "LOCATION",
    "LOC": "LOCATION", "ZIP": "ZIP", "LOCATION-OTHER": "LOCATION", "BIOID": "ID",
}


class DeidInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(description="The clinical note.")
    id: str | None = Field(None, description="Document id (kept in the output).")
    patient_id: str | None = Field(
        None, description="Patient key: every date of the same patient is shifted by the same offset in "
                          "surrogate mode (default: the document id, else the document itself).")

    @field_validator("id", "patient_id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class SpanSource(BaseModel):
    """One detection merged into an output span: which recognizer, rule or model, with its own score."""

    detector: str = Field(description="presidio:<Recognizer>, rule:<name> (rule:cue:... context rules), "
                                      "model:phi-tagger or model:ner.")
    category: str
    score: float


class ContextWord(BaseModel):
    """A word next to the span that a detector read (a rule's cue, Presidio's context word, or for the tagger a
    word whose removal lowers its score by ``effect``). Offsets into the original text; never inside a span."""

    start: int
    end: int
    text: str
    effect: float | None = None


class PhiSpan(BaseModel):
    start: int
    end: int
    category: str
    score: float
    detector: str = Field(description="Every detector that found (part of) the span, joined by '+'.")
    replacement: str
    sources: list[SpanSource] = Field(default_factory=list, description="Each detection with its score.")
    context: list[ContextWord] = Field(default_factory=list, description="Words that raised the detection.")


class DeidOutput(BaseModel):
    id: str | None = None
    text: str = Field(description="The de-identified text.")
    mode: Mode
    spans: list[PhiSpan] = Field(description="PHI spans, offsets into the original text.")
    counts: dict[str, int] = Field(description="Spans per category.")


class DeidParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field("mask", description="mask: [NAME]; surrogate: realistic fake values; hash: [NAME:3f2a...]")
    surrogate_key: SecretStr | None = Field(
        None, description="Secret for surrogates and hashes. Without it the job id is the key (consistent within a "
                          "job); with it replacements are stable across jobs, and hashes cannot be recomputed "
                          "by someone who only knows the job id. Stored encrypted, shown only as a fingerprint; "
                          "CLI: --surrogate-key-file PATH or VERTICALS_SURROGATE_KEY.",
        json_schema_extra={"env": "VERTICALS_SURROGATE_KEY"})
    consistency: Literal["job", "document"] = Field(
        "job", description="job: the same value gets the same surrogate in every document of the job; "
                           "document: only within one document.")
    min_score: float = Field(0.35, ge=0.0, le=1.0, description="Drop detections scoring below this.")
    categories: list[str] | None = Field(None, description="Only redact these categories (default: all).")
    max_shift_days: int = Field(365, ge=1, le=3650, description="Dates move by up to this many days (surrogate).")
    ner_model: ServerModel | None = Field(
        None, description="Optional token-classification de-id model: a folder on the server (through the API: "
                          "inside VERTICALS_DATA_ROOTS), or from the CLI a hub id already in the cache; its spans "
                          "are merged with the rules.")
    ner_min_score: float = Field(0.5, ge=0.0, le=1.0)
    tagger: bool = Field(False, description="Also run the learned PHI tagger (model medical.phi-tagger) and merge "
                                            "its spans with the rules (spaCy's NER is then not run). Off by default: "
                                            "the shipped tagger, trained on generated text only, over-tags real "
                                            "clinical notes (EVAL.md); it adds recall on names in everyday prose.")
    threshold: float = Field(0.999, ge=0.0, le=1.0, description="Tagger: a word piece is PHI when its probability of "
                                                               "PHI reaches this (lower: more recall, less "
                                                               "precision).")
    explain_detail: Literal["basic", "full"] = Field(
        "basic", description="basic: each span's detectors, scores and the cue/context words the rules read; full: "
                             "also the words whose removal lowers the tagger's score (a few extra model calls). "
                             "(Named explain before the platform's --explain option; jobs stored with that name "
                             "still run.)")

    @model_validator(mode="before")
    @classmethod
    def _old_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and "explain" in value and "explain_detail" not in value:  # a job stored before
            value = {("explain_detail" if key == "explain" else key): item for key, item in value.items()}
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v for v in value.replace(";", ",").split(",") if v.strip()]
        if value:
            value = [v.strip().upper() for v in value]
            unknown = sorted(set(value) - set(CATEGORIES))
            if unknown:
                raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
        return value


def ner_spec(reference: ServerFolderHandle) -> ModelSpec:
    """The job's own de-identification token classifier (``ner_model``): loaded by the core's model host
    (``models_for``), a new load when the folder changed (its file count, size and time are the revision)."""
    kwargs: dict[str, Any] = ({"local_path": reference.path, "revision": ".".join(map(str, reference.version))}
                              if reference.path else {"hub_id": reference.hub_id})
    return ModelSpec(name="medical.deid-ner", kind="token-classifier", max_length=512,
                     description="user-supplied de-identification token classifier", **kwargs)


def ner_spans(model: Any, texts: list[str], min_score: float) -> list[list[Span]]:
    """Spans of a token-classification model, text cut in ~1500-character windows (model max length)."""
    out: list[list[Span]] = []
    for text in texts:
        windows = _windows(text, 1500)
        tagged = model.tag([text[a:b] for a, b in windows], min_score=min_score) if windows else []
        spans: list[Span] = []
        for (offset, _), found in zip(windows, tagged, strict=True):
            for item in found:
                label = str(item["label"]).upper().replace("B-", "").replace("I-", "")
                category = NER_LABELS.get(label)
                if category:
                    spans.append(Span(offset + int(item["start"]), offset + int(item["end"]), category,
                                      float(item["score"]), "model:ner"))
        out.append(spans)
    return out


def _windows(text: str, size: int) -> list[tuple[int, int]]:
    windows, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(". ", start, end))
            end = cut + 1 if cut > start + size // 2 else end
        windows.append((start, end))
        start = end
    return windows


TAGGER_CATEGORIES = {"NAME": "NAME", "LOCATION": "LOCATION", "ADDRESS": "ADDRESS", "ZIP": "ZIP", "DATE": "DATE",
                     "PHONE": "PHONE", "AGE": "AGE", "ID": "ID"}


def tagger_spans(model: Any, texts: list[str], threshold: float, filtered: bool = True) -> list[list[Span]]:
    """The learned tagger's spans, with the precision checks of statistical spans (``phi.keep_span``: a name
    needs a name-like word, a place place-like words, a date a date shape...) when ``filtered``."""
    from .phi import COUNTRIES, STATE_SHORT, US_STATES, _date_context_ok, keep_span

    out: list[list[Span]] = []
    for text, found in zip(texts, model.tag(texts, min_score=threshold), strict=True):
        spans = []
        for item in found:
            category = TAGGER_CATEGORIES.get(str(item["label"]).upper())
            start, end = int(item["start"]), int(item["end"])
            value = text[start:end].strip()
            if not category or not value:
                continue
            if category == "DATE" and not _date_context_ok(text, start, end):
                continue  # vent settings, pain scores, fractions
            if category == "AGE" and not any(ch.isdigit() for ch in value):
                continue
            if category == "AGE" and int("".join(ch for ch in value if ch.isdigit())[:3]) < 90:
                continue
            if filtered and not _tagger_shape_ok(category, value):
                continue  # ids, ZIP codes and streets keep_span does not check: they must have their shape
            if category == "LOCATION" and value.lower().strip(" .,") in US_STATES | COUNTRIES | STATE_SHORT:
                continue  # a state or a country alone is not Safe Harbor PHI
            if filtered and category in ("NAME", "LOCATION", "DATE", "PHONE") and not keep_span(
                    text, category, start, end, "model:phi-tagger"):
                continue
            spans.append(Span(start, end, category, float(item["score"]), "model:phi-tagger"))
        out.append(spans)
    return out


def _tagger_shape_ok(category: str, value: str) -> bool:
    """The tagger's ID, ZIP and ADDRESS spans on clinical text are mostly clinical words and values (issue 23):
    an identifier needs 4 digits, a ZIP code a US ZIP or a UK/Canadian postcode shape, a street a house number
    or a street word."""
    import re

    from .phi import STREET_SUFFIXES

    if category == "ID":
        return sum(ch.isdigit() for ch in value) >= 4
    if category == "ZIP":
        return bool(re.fullmatch(r"\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d",
                                 value.strip(" .,"), re.I))
    if category == "ADDRESS":
        return bool(re.search(r"\d", value)) and bool(re.search(rf"\b(?:{STREET_SUFFIXES}|box|route)\b\.?", value,
                                                                 re.I))
    return True


def occlusion_context(model: Any, text: str, span: Span, taken: list[tuple[int, int]], words: int = 3
                      ) -> list[ContextWord]:
    """Words near a tagger span whose removal lowers the tagger's mean PHI score over the span (one batched call)."""
    import re

    window_start = max(0, text.rfind("\n", 0, max(0, span.start - 80)) + 1, span.start - 80)
    window_end = min(len(text), span.end + 80)
    near = [(window_start + m.start(), window_start + m.end())
            for m in re.finditer(r"[A-Za-z][A-Za-z'.-]*", text[window_start:window_end])]
    before = [w for w in near if w[1] <= span.start and not any(a < w[1] and w[0] < b for a, b in taken)][-words:]
    after = [w for w in near if w[0] >= span.end and not any(a < w[1] and w[0] < b for a, b in taken)][:words]
    candidates = before + after
    if not candidates:
        return []
    variants = [text[window_start:window_end]]
    shifts = [0]
    for a, b in candidates:  # the window with one word removed
        variants.append(text[window_start:a] + text[b:window_end])
        shifts.append(b - a if a < span.start else 0)
    scores = []
    for index, (probs, pieces) in enumerate(model.token_probabilities(variants)):
        lo = span.start - window_start - shifts[index]
        hi = span.end - window_start - shifts[index]
        inside = [i for i, (a, b) in enumerate(pieces) if a < hi and lo < b]
        scores.append(float((1.0 - probs[inside, 0]).mean()) if inside else 0.0)
    out = []
    for (a, b), score in zip(candidates, scores[1:], strict=True):
        effect = scores[0] - score
        if effect > 0.02:
            out.append(ContextWord(start=a, end=b, text=text[a:b], effect=round(effect, 4)))
    return sorted(out, key=lambda w: -(w.effect or 0))


def explain_context(text: str, span: Span, taken: list[tuple[int, int]]) -> list[ContextWord]:
    """The cue and context ranges the detectors recorded, as words outside every span."""
    import re

    out: list[ContextWord] = []
    seen: set[tuple[int, int]] = set()
    for a, b in span.context:
        for m in re.finditer(r"[A-Za-z0-9][A-Za-z0-9'.#/-]*", text[a:b]):
            start, end = a + m.start(), a + m.end()
            if (start, end) in seen or any(x < end and start < y for x, y in taken):
                continue
            seen.add((start, end))
            out.append(ContextWord(start=start, end=end, text=text[start:end].rstrip(".")))
    return out


def redact(text: str, spans: list[Span], mode: Mode, surrogates: Any, patient_key: str
           ) -> tuple[str, list[PhiSpan]]:
    """Apply the replacements with Presidio's anonymizer (one operator per category)."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    def replacement(category: str, value: str) -> str:
        if mode == "mask":
            return f"[{category}]"
        if mode == "hash":
            return f"[{category}:{surrogates.hash_token(category, value)}]"
        return surrogates.replace(category, value, patient_key)

    replacements = [replacement(s.category, text[s.start:s.end]) for s in spans]
    operators = {}
    results = []
    for index, (span, value) in enumerate(zip(spans, replacements, strict=True)):
        entity = f"S{index}"  # one operator per span: the value is already computed
        operators[entity] = OperatorConfig("replace", {"new_value": value})
        results.append(RecognizerResult(entity, span.start, span.end, span.score))
    redacted = _anonymizer(AnonymizerEngine).anonymize(text=text, analyzer_results=results,
                                                       operators=operators).text if spans else text
    taken = [(s.start, s.end) for s in spans]
    return redacted, [PhiSpan(start=s.start, end=s.end, category=s.category, score=round(s.score, 4),
                              detector=s.detector, replacement=r,
                              sources=[SpanSource(detector=d, category=c, score=round(sc, 4))
                                       for d, c, sc, _, _ in _unique(s.own_sources())],
                              context=explain_context(text, s, taken))
                      for s, r in zip(spans, replacements, strict=True)]


def _unique(sources: tuple[tuple[str, str, float, int, int], ...]) -> list[tuple[str, str, float, int, int]]:
    """One entry per detector and category, its best score."""
    best: dict[tuple[str, str], tuple[str, str, float, int, int]] = {}
    for source in sources:
        key = (source[0], source[1])
        if key not in best or source[2] > best[key][2]:
            best[key] = source
    return sorted(best.values(), key=lambda s: -s[2])


_ANONYMIZER: list[Any] = []


def _anonymizer(cls: Any) -> Any:
    if not _ANONYMIZER:
        _ANONYMIZER.append(cls())
    return _ANONYMIZER[0]


class DeidentifyTask(Task[DeidInput, DeidOutput, DeidParams]):
    name = "medical.deidentify"
    description = "Find PHI (HIPAA Safe Harbor identifiers) in clinical text and mask, hash or replace it."
    Input = DeidInput
    Output = DeidOutput
    Params = DeidParams
    models = {"tagger": "medical.phi-tagger"}  # loaded only when the tagger is on
    device = "cpu"
    chunk_size = 128
    batch_size = 16
    preview = ("counts", "text")  # PHI found per category, then the de-identified text (never the input)
    text_field = "text"
    sensitive = True
    # `verticals eval medical.deidentify notes.jsonl`: Safe Harbor recall (every character covered), character and
    # span precision, recall per gold label (scoring.py); a year alone and an age under 90 are not scored as PHI
    evaluator = SafeHarborEvaluator(gold_field="spans", output_field="spans")
    golden = "golden/deidentify.jsonl"  # 40 synthetic notes generated for evaluation only (golden/README.md)

    def models_for(self, params: DeidParams) -> dict[str, str | ModelSpec]:
        wanted: dict[str, str | ModelSpec] = dict(self.models) if params.tagger else {}
        if params.ner_model:
            wanted["ner"] = ner_spec(params.ner_model)
        return wanted

    def run(self, batch: list[DeidInput], models: Mapping[str, Any],
            ctx: RunContext[DeidParams]) -> list[DeidOutput | ItemError]:
        from .surrogates import Surrogates, derive_key

        params = ctx.params
        get_analyzer(spacy_ner=not params.tagger)  # load once per process (cached)
        model_spans: list[list[Span]] = [[] for _ in batch]
        if params.ner_model:
            model = models["ner"]
            model_spans = ner_spans(model, [item.text for item in batch], params.ner_min_score)
        tagger = models["tagger"] if params.tagger else None
        if tagger is not None:
            found = tagger_spans(tagger, [item.text for item in batch], params.threshold)
            model_spans = [a + b for a, b in zip(model_spans, found, strict=True)]
        secret = params.surrogate_key.get_secret_value() if params.surrogate_key else None
        key = derive_key(ctx.job_id, secret)
        outputs: list[DeidOutput | ItemError] = []
        wanted = set(params.categories) if params.categories else None
        for item, extra in zip(batch, model_spans, strict=True):
            if not item.text.strip():
                outputs.append(DeidOutput(id=item.id, text=item.text, mode=params.mode, spans=[], counts={}))
                continue
            if len(item.text) > 1_000_000:
                outputs.append(ItemError("note longer than 1,000,000 characters: split it", code="too_long"))
                continue
            spans = detect(item.text, min_score=params.min_score, categories=wanted, extra=extra,
                           spacy_ner=not params.tagger)
            doc_key = key if params.consistency == "job" else derive_key(ctx.job_id, f"{secret}|"
                                                                         f"{item.id or hash_text(item.text)}")
            surrogates = Surrogates(doc_key, params.max_shift_days)
            patient_key = item.patient_id or item.id or hash_text(item.text)
            text, phi = redact(item.text, spans, params.mode, surrogates, patient_key)
            if tagger is not None and params.explain_detail == "full":
                taken = [(s.start, s.end) for s in spans]
                for span, out in zip(spans, phi, strict=True):
                    if any(d == "model:phi-tagger" for d, *_ in span.own_sources()):
                        out.context += occlusion_context(tagger, item.text, span, taken)
            counts = Counter(s.category for s in spans)
            outputs.append(DeidOutput(id=item.id, text=text, mode=params.mode, spans=phi, counts=dict(counts)))
        log.debug("deidentified %d notes", len(batch))
        return outputs

    def explain(self, batch: list[DeidInput], outputs: list[DeidOutput], models: Mapping[str, Any],
                ctx: RunContext[DeidParams]) -> list[Explanation | None]:
        """Each span with the detectors that found it (recognizer, rule or model, with their scores) and the
        context words that raised it, as evidence pointing into the note. The span's own text is never
        quoted (it is the PHI): evidence points at it by offsets; only the context words, which lie outside
        every span, are quoted. The summary counts categories and detectors, never words."""
        params = ctx.params
        return [deid_explanation(item.text, output, params.min_score)
                for item, output in zip(batch, outputs, strict=True)]

    def summarize(self, outputs: Iterable[DeidOutput], ctx: RunContext[DeidParams]) -> dict[str, Any] | None:
        totals: Counter[str] = Counter()
        documents = with_phi = 0
        for output in outputs:
            documents += 1
            counts = output.get("counts") if isinstance(output, dict) else getattr(output, "counts", None)
            counts = dict(counts or {})
            with_phi += bool(counts)
            totals.update(counts)
        return {"documents": documents, "documents_with_phi": with_phi, "phi_spans": sum(totals.values()),
                "by_category": dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))}


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def deid_explanation(text: str, output: DeidOutput, min_score: float) -> Explanation:
    """The evidence contract's view of a de-identified note (:meth:`DeidentifyTask.explain`)."""
    evidence: list[Evidence] = []
    detectors: Counter[str] = Counter()
    for number, span in enumerate(output.spans, 1):
        found = ", ".join(f"{source.detector} {source.score:.2f}" for source in span.sources)
        evidence.append(Evidence(kind="span", start=span.start, end=span.end, field="text", weight=span.score,
                                 source=span.detector[:200], detail=f"span {number}: {span.category}; found by "
                                                                   f"{found or span.detector}"[:500]))
        detectors.update(source.detector for source in span.sources or [SpanSource(detector=span.detector,
                                                                                    category=span.category,
                                                                                    score=span.score)])
        for word in span.context:
            measured = word.effect is not None
            evidence.append(Evidence(
                kind="cue", start=word.start, end=word.end, field="text", text=text[word.start:word.end],
                weight=word.effect if word.effect is not None else span.score,
                source=span.detector[:200],
                detail=(f"raised span {number} ({span.category}): " + (
                    "the tagger's score over the span drops by the weight without it" if measured
                    else "a word the detector read (weight: the span's score)"))[:500]))
    if not output.spans:
        summary = f"no PHI found: no detection scored {min_score} or more"
    else:
        categories = ", ".join(f"{n} {category}" for category, n in sorted(output.counts.items(),
                                                                          key=lambda kv: (-kv[1], kv[0])))
        top = ", ".join(f"{name} ({n})" for name, n in detectors.most_common(3))
        cues = sum(len(span.context) for span in output.spans)
        summary = (f"{len(output.spans)} PHI span(s): {categories}; detectors: {top}; {cues} context word(s) "
                   "raised them")[:500]
    return Explanation(summary=summary, method="detectors", target="PHI spans", evidence=evidence)
