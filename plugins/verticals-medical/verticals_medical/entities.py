"""medical.entities: clinical concepts with assertion status (medspaCy ConText + sectionizer)."""

from __future__ import annotations

import csv
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from verticals import (
    Evidence,
    Explanation,
    ItemError,
    RunContext,
    ServerFile,
    ServerFileHandle,
    SpanEvaluator,
    Task,
)

log = logging.getLogger(__name__)

CATEGORIES = ("PROBLEM", "MEDICATION", "TEST", "PROCEDURE")
USER_CATEGORY = "FINDING"
TERMS_FILE = "clinical_terms.tsv"


# ---------------------------------------------------------------------------------------------
# Term lists
# ---------------------------------------------------------------------------------------------

def _plural(phrase: str) -> str | None:
    last = phrase.split()[-1]
    if not last.isalpha() or last.isupper() or last.endswith(("s", "x", "y", "ia", "ing")) or len(last) < 4:
        return None
    return phrase + "s"


def parse_terms(text: str, default_category: str = USER_CATEGORY) -> list[tuple[str, str]]:
    """(phrase, category) pairs from our TSV format, CSV, or one phrase per line.

    Lines starting with ``#`` are comments. A row is ``phrase[<TAB or ,>category[<TAB>syn|syn...]]``.
    """
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = line.split("\t") if "\t" in line else next(csv.reader([line]))
        cells = [c.strip() for c in cells]
        phrase = cells[0]
        category = (cells[1].upper() if len(cells) > 1 and cells[1] else default_category)
        synonyms = [s.strip() for s in cells[2].split("|")] if len(cells) > 2 and cells[2] else []
        for term in [phrase, *synonyms]:
            if term:
                pairs.append((term, category))
                plural = _plural(term)
                if plural:
                    pairs.append((plural, category))
    return pairs


def builtin_terms() -> list[tuple[str, str]]:
    text = resources.files("verticals_medical").joinpath("data", TERMS_FILE).read_text(encoding="utf-8")
    return parse_terms(text)


def load_terms_file(file: ServerFileHandle) -> tuple[list[tuple[str, str]], list[Any]]:
    """A user's terms, read through the core's reader (a validated ``ServerFile`` parameter): .json
    (medspaCy TargetRule JSON, for token patterns) or TSV/CSV/plain text. Errors never quote the file."""
    if file.suffix == ".json":
        from medspacy.ner import TargetRule

        data = file.read_json()
        rules = data.get("target_rules") if isinstance(data, dict) else None
        if not isinstance(rules, list):
            raise ValueError("a JSON terms file holds {\"target_rules\": [...]} (medspaCy TargetRule JSON)")
        out = []
        for number, rule in enumerate(rules, 1):
            try:
                out.append(TargetRule.from_dict(rule))
            except Exception:
                raise ValueError(f"target rule {number} of the terms file is not a valid medspaCy TargetRule "
                                 "(literal, category, pattern...)") from None
        return [], out
    return parse_terms(file.read_text()), []


# ---------------------------------------------------------------------------------------------
# Pipeline (one per process and terms configuration)
# ---------------------------------------------------------------------------------------------

_lock = threading.Lock()


class _DropNoisyRecords(logging.Filter):
    """PyFastNER logs rule-syntax notes on the root logger at INFO while medspaCy loads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PyFastNER" not in record.pathname and "PyRuSH" not in record.pathname


_ROOT_FILTER = _DropNoisyRecords()


def _quiet() -> None:
    root = logging.getLogger()
    if _ROOT_FILTER not in root.filters:
        root.addFilter(_ROOT_FILTER)
    try:
        from loguru import logger

        logger.disable("PyRuSH")  # PyRuSH logs each token at DEBUG to stderr through loguru
    except ImportError:
        pass


@lru_cache(maxsize=8)
def get_pipeline(terms_file: ServerFileHandle | None = None, builtin: bool = True) -> Any:
    """medspaCy: its clinical tokenizer, PyRuSH sentences, target matcher, sectionizer and ConText.

    No parsed spaCy model is needed here (PyRuSH gives clinical sentence boundaries and would
    conflict with a parser's: spaCy error E043).
    """
    _quiet()
    import medspacy
    from medspacy.ner import TargetRule

    with _lock:
        nlp = medspacy.load("default", medspacy_enable=[
            "medspacy_tokenizer", "medspacy_pyrush", "medspacy_target_matcher", "medspacy_context",
            "medspacy_sectionizer"])
        pairs = builtin_terms() if builtin else []
        extra_rules: list[Any] = []
        if terms_file:
            user_pairs, extra_rules = load_terms_file(terms_file)
            pairs += user_pairs
        seen: set[tuple[str, str]] = set()
        rules = []
        for phrase, category in pairs:
            key = (phrase.lower(), category)
            if key in seen:
                continue
            seen.add(key)
            # all-caps abbreviations match case-sensitively ("PT" the therapy, not "pt" the patient)
            if phrase.isupper() and len(phrase) <= 4:
                rules.append(TargetRule(phrase, category, pattern=[{"TEXT": phrase}]))
            else:
                rules.append(TargetRule(phrase, category))
        nlp.get_pipe("medspacy_target_matcher").add(rules + extra_rules)
        nlp.get_pipe("medspacy_sectionizer").add(_section_rules())
        _replace_context(nlp)
        return nlp


# medspaCy's default ": no" / ": none" (BACKWARD, for "Fever: no") also match the start of "Extremities: No
# clubbing" and, being longer, prune the forward "no": they only apply at the end of a clause here.
_REPLACED_DEFAULTS = {": no", ": none"}


def _replace_context(nlp: Any) -> None:
    """ConText with medspaCy's default rules (less the two above) and ours; a modifier inside a target
    does not modify it ("skin warm, without lesion" as one finding is not negated)."""
    from medspacy.context import ConTextRule
    from medspacy.context import context as context_module

    names = nlp.pipe_names
    following = names[names.index("medspacy_context") + 1:]
    nlp.remove_pipe("medspacy_context")
    config = {"rules": None, "prune_on_target_overlap": True}
    context = (nlp.add_pipe("medspacy_context", config=config, before=following[0]) if following
               else nlp.add_pipe("medspacy_context", config=config))
    default_file = Path(context_module.__file__).resolve().parents[2] / "resources" / "en" / "context_rules.json"
    defaults = [r for r in ConTextRule.from_json(str(default_file)) if r.literal not in _REPLACED_DEFAULTS]
    end_of_clause = [{"ORTH": ":"}, {"LOWER": {"IN": ["no", "none"]}}, {"IS_PUNCT": True}]
    defaults.append(ConTextRule(": no", "NEGATED_EXISTENCE", direction="BACKWARD", pattern=end_of_clause))
    context.add(defaults + _context_rules())


def collapse_spaces(text: str) -> tuple[str, list[int]]:
    """Runs of spaces and tabs as one space (multi-word cues such as "negative for" match across the
    column padding of reports); ``positions[i]`` is the original offset of character ``i``."""
    out: list[str] = []
    positions: list[int] = []
    previous_blank = False
    for i, ch in enumerate(text):
        blank = ch in " \t"
        if blank and previous_blank:
            continue
        out.append(" " if blank else ch)
        positions.append(i)
        previous_blank = blank
    positions.append(len(text))
    return "".join(out), positions


CONTEXT_FILE = "context_rules.tsv"


def _context_rules() -> list[Any]:
    from medspacy.context import ConTextRule

    text = resources.files("verticals_medical").joinpath("data", CONTEXT_FILE).read_text(encoding="utf-8")
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")]
        literal, category, direction = cells[:3]
        pattern = json.loads(cells[3]) if len(cells) > 3 and cells[3] else None
        rules.append(ConTextRule(literal, category, direction=direction, pattern=pattern))
    return rules


# Section headers medspaCy's default rules lack (short forms common in progress notes and letters).
EXTRA_SECTIONS = {
    "observation_and_plan": ["Plan:", "Assessment:", "A/P:", "Assessment and Plan:", "A&P:", "Recommendations:",
                             "Impression/Plan:"],
    "history_of_present_illness": ["HPI:", "Subjective:", "Interval History:", "History:"],
    "past_medical_history": ["PMH:", "PMHx:", "Past History:", "Medical History:", "Past Surgical History:",
                             "PSH:"],
    "family_history": ["FH:", "FHx:", "Family Hx:"],
    "social_history": ["SH:", "Social Hx:"],
    "chief_complaint": ["CC:", "Reason for Visit:"],
    "physical_exam": ["PE:", "Exam:", "Objective:", "Physical Examination:", "Vitals:"],
    "review_of_systems": ["ROS:", "Review of Systems:"],
    "medications": ["Meds:", "Current Medications:", "Discharge Medications:", "Home Medications:"],
    "diagnoses": ["Discharge Diagnosis:", "Discharge Diagnoses:", "Diagnosis:", "Diagnoses:"],
    "labs_and_studies": ["Labs:", "Results:", "Studies:", "Imaging:"],
    "patient_instructions": ["Discharge Instructions:", "Instructions:", "Follow-up:", "Follow up:"],
    "reason_for_referral": ["Reason for Referral:", "Referral Reason:", "Reason for Consultation:"],
    "hospital_course": ["Hospital Course:", "Course:"],
}


def _section_rules() -> list[Any]:
    from medspacy.section_detection import SectionRule

    return [SectionRule(literal, category) for category, literals in EXTRA_SECTIONS.items() for literal in literals]


def _filter_overlaps(spans: list[Any]) -> list[Any]:
    from spacy.util import filter_spans

    return filter_spans(spans)


def analyse(nlp: Any, text: str, targets: list[str] | None = None) -> Any:
    """Run the pipeline; per-item ``targets`` are matched after the term rules and before ConText."""
    doc = nlp.make_doc(text)
    for name, proc in nlp.pipeline:
        doc = proc(doc)
        if name == "medspacy_target_matcher" and targets:
            from spacy.matcher import PhraseMatcher

            matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
            matcher.add(USER_CATEGORY, [nlp.make_doc(t) for t in targets if t.strip()])
            found = [doc[s:e] for _, s, e in matcher(doc)]
            for span in found:
                span.label_ = USER_CATEGORY
            from spacy.tokens import Span as SpacySpan

            new = [SpacySpan(doc, s.start, s.end, label=USER_CATEGORY) for s in found]
            # an item's own targets win over overlapping term-list matches
            keep = [e for e in doc.ents if not any(e.start < n.end and n.start < e.end for n in new)]
            doc.ents = _filter_overlaps(keep + new)
    return doc


# ---------------------------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------------------------

class EntInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(description="The clinical note or sentence.")
    id: str | None = None
    targets: list[str] | None = Field(None, description="Extra phrases to find in this item (category FINDING).")

    @field_validator("id", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @field_validator("targets", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [v.strip() for v in value.replace(";", "|").split("|") if v.strip()]
        return value


class Entity(BaseModel):
    start: int
    end: int
    text: str
    category: str
    assertion: str = Field(description="present | absent | possible | hypothetical | historical | family")
    negated: bool
    uncertain: bool
    historical: bool
    hypothetical: bool
    family: bool
    section: str | None = None


class EntOutput(BaseModel):
    id: str | None = None
    entities: list[Entity]
    counts: dict[str, int] = Field(description="Entities per category:assertion.")


class EntParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terms: ServerFile | None = Field(None, description="A terms file on the server adding target phrases "
                                                       "(TSV/CSV/text: phrase[,category]; or medspaCy "
                                                       "TargetRule JSON).")
    builtin_terms: bool = Field(True, description="Use the plugin's curated term list.")
    categories: list[str] | None = Field(None, description="Only return these categories.")

    @field_validator("categories", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v for v in value.replace(";", ",").split(",") if v.strip()]
        return [v.strip().upper() for v in value] if value else value


def assertion_of(ent: Any) -> str:
    if ent._.is_family:
        return "family"
    if ent._.is_negated:
        return "absent"
    if ent._.is_hypothetical:
        return "hypothetical"
    if ent._.is_uncertain:
        return "possible"
    if ent._.is_historical:
        return "historical"
    return "present"


def entities_of(doc: Any) -> list[Entity]:
    out = []
    for ent in doc.ents:
        section = getattr(ent._, "section_category", None)
        out.append(Entity(
            start=ent.start_char, end=ent.end_char, text=ent.text, category=ent.label_,
            assertion=assertion_of(ent), negated=bool(ent._.is_negated), uncertain=bool(ent._.is_uncertain),
            historical=bool(ent._.is_historical), hypothetical=bool(ent._.is_hypothetical),
            family=bool(ent._.is_family), section=section))
    return out


CUES = "medical.entities:cues"  # RunContext.extra key: id(item) -> per entity, its ConText cues (explain only)


class Cue(BaseModel):
    category: str  # ConText's: NEGATED_EXISTENCE, HISTORICAL, FAMILY, POSSIBLE_EXISTENCE, HYPOTHETICAL...
    literal: str  # the rule's phrase ("deny", "history of")
    start: int  # the cue in the original text
    end: int
    scope_start: int  # the stretch it governs
    scope_end: int


def cues_of(doc: Any, ent: Any, positions: list[int]) -> list[Cue]:
    """The ConText modifiers of ``ent`` with their cue and scope as offsets of the original text."""
    out = []
    for modifier in getattr(ent._, "modifiers", ()) or ():
        a, b = modifier.modifier_span
        c, d = modifier.scope_span
        if b <= a or d <= c:
            continue
        cue, scope = doc[a:b], doc[c:d]
        out.append(Cue(category=str(modifier.category), literal=str(getattr(modifier.rule, "literal", ""))[:100],
                       start=positions[cue.start_char], end=positions[cue.end_char - 1] + 1,
                       scope_start=positions[scope.start_char], scope_end=positions[scope.end_char - 1] + 1))
    return out


def entities_explanation(text: str, output: EntOutput, cues: list[list[Cue]]) -> Explanation:
    evidence: list[Evidence] = []
    assertions: Counter[str] = Counter()
    words: dict[str, Counter[str]] = {}
    for number, (entity, own) in enumerate(zip(output.entities, cues, strict=True), 1):
        assertions[entity.assertion] += 1
        section = f", section {entity.section}" if entity.section else ""
        reason = "no ConText cue governs it" if not own else "set by the cue(s) below"
        evidence.append(Evidence(kind="span", start=entity.start, end=entity.end, field="text", weight=1.0,
                                 source="target rule", detail=f"entity {number}: {entity.category}, "
                                                              f"{entity.assertion}{section}; {reason}"[:500]))
        for cue in own:
            word = " ".join(text[cue.start:cue.end].split())
            words.setdefault(entity.assertion, Counter())[word.lower()] += 1
            evidence.append(Evidence(kind="cue", start=cue.start, end=cue.end, field="text",
                                     text=text[cue.start:cue.end], weight=1.0, source=f"context:{cue.category}",
                                     detail=f"entity {number} {entity.assertion}: rule '{cue.literal}' "
                                            f"({cue.category})"[:500]))
            evidence.append(Evidence(kind="scope", start=cue.scope_start, end=cue.scope_end, field="text",
                                     weight=1.0, source=f"context:{cue.category}",
                                     detail=f"the scope of that cue (entity {number})"))
    if not output.entities:
        summary = "no clinical entity found"
    else:
        parts = []
        for assertion, n in sorted(assertions.items(), key=lambda kv: (-kv[1], kv[0])):
            cue_words = ", ".join(f'"{w[:30]}"' for w, _ in words.get(assertion, Counter()).most_common(2))
            parts.append(f"{n} {assertion}" + (f" (cue {cue_words})" if cue_words else ""))
        summary = f"{len(output.entities)} entities: " + "; ".join(parts)
    return Explanation(summary=summary[:500], method="context-rules", target="assertions", evidence=evidence)


class EntitiesTask(Task[EntInput, EntOutput, EntParams]):
    name = "medical.entities"
    description = ("Clinical problems, medications, tests and procedures with assertion status "
                   "(negated, possible, historical, hypothetical, family) and note section.")
    Input = EntInput
    Output = EntOutput
    Params = EntParams
    models = {}
    device = "cpu"
    chunk_size = 256
    batch_size = 32
    preview = ("id", "entities")  # each entity as "text [CATEGORY, assertion]"
    text_field = "text"
    sensitive = True
    # an entity counts when a found one overlaps it with the same category and assertion (PROBLEM:absent...)
    evaluator = SpanEvaluator(gold_field="entities", output_field="entities", label_fields=("category", "assertion"),
                              typed=True, main_metric="f1")
    golden = "golden/entities.jsonl"  # 42 sentences written for evaluation only (golden/README.md)

    def run(self, batch: list[EntInput], models: Mapping[str, Any],
            ctx: RunContext[EntParams]) -> list[EntOutput | ItemError]:
        params = ctx.params
        nlp = get_pipeline(params.terms, params.builtin_terms)  # cached per terms file version
        wanted = set(params.categories) if params.categories else None
        outputs: list[EntOutput | ItemError] = []
        for item in batch:
            if len(item.text) > 1_000_000:
                outputs.append(ItemError("note longer than 1,000,000 characters: split it", code="too_long"))
                continue
            text, positions = collapse_spaces(item.text)
            doc = analyse(nlp, text, item.targets)
            ents = []
            cues: list[list[Cue]] = []
            for e, ent in zip(entities_of(doc), doc.ents, strict=True):
                if wanted is not None and e.category not in wanted:
                    continue
                start, end = positions[e.start], positions[e.end - 1] + 1
                ents.append(e.model_copy(update={"start": start, "end": end, "text": item.text[start:end]}))
                if ctx.explain:  # the cue and scope of each ConText modifier, for explain (nothing when off)
                    cues.append(cues_of(doc, ent, positions))
            if ctx.explain:
                ctx.extra.setdefault(CUES, {})[id(item)] = cues
            counts = Counter(f"{e.category}:{e.assertion}" for e in ents)
            outputs.append(EntOutput(id=item.id, entities=ents, counts=dict(sorted(counts.items()))))
        log.debug("analysed %d notes", len(batch))
        return outputs

    def explain(self, batch: list[EntInput], outputs: list[EntOutput], models: Mapping[str, Any],
                ctx: RunContext[EntParams]) -> list[Explanation | None]:
        """Each entity (pointed at, never quoted) with the ConText cue that set its assertion ("denies":
        absent, "history of": historical...) and the cue's scope, as evidence; the summary counts assertions and
        names their cue words (ConText's lexicon words, never the note's entities). The cues were kept by
        ``run`` (``ctx.explain``), so nothing is analysed twice."""
        stash = ctx.extra.get(CUES, {})
        out: list[Explanation | None] = []
        for item, output in zip(batch, outputs, strict=True):
            cues = stash.pop(id(item), None)
            if cues is None or len(cues) != len(output.entities):
                raise RuntimeError("the ConText cues of this item were not kept by run")
            out.append(entities_explanation(item.text, output, cues))
        return out

    def summarize(self, outputs: Iterable[EntOutput], ctx: RunContext[EntParams]) -> dict[str, Any] | None:
        totals: Counter[str] = Counter()
        documents = 0
        for output in outputs:
            documents += 1
            counts = output.get("counts") if isinstance(output, dict) else getattr(output, "counts", None)
            totals.update(dict(counts or {}))
        by_category: dict[str, dict[str, int]] = {}
        for key, n in totals.items():
            category, _, assertion = key.partition(":")
            by_category.setdefault(category, {})[assertion] = n
        return {"documents": documents, "entities": sum(totals.values()), "by_category": by_category}
