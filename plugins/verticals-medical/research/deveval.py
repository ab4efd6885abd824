"""Scores on real development files (not shipped; see the project's data README).

De-identification (``physionet_deid_dev.jsonl``: real nursing notes, PHI replaced by surrogates):

- **Safe Harbor gold**: every typed span is PHI except ``DateYear`` (a year alone) and an ``Age``
  under 90. Clinician names (``HCPName``) are PHI. Non-PHI gold spans are not counted in recall;
  predicted spans over them count as false positives (over-redaction).
- **Overlap rule**: a gold span is *found* when every non-space character of it is covered by
  predicted spans of any category (a half-masked name is a miss); *touched* when a predicted span
  overlaps it at all. A predicted span is *correct* when it overlaps a Safe Harbor gold span.
- **Character level**: non-space characters inside gold PHI spans vs inside predicted spans.
- **Token level**: ``\\w+`` tokens; a token is gold (predicted) PHI when any of its characters is.

Assertion (``negex_context_dev.jsonl``): the concept (upper-cased in the sentence) is set as the one
entity of the sentence, then ConText runs; binary precision/recall/F1 of negated (gold ``Negated``),
historical (temporality ``Historical``), hypothetical (temporality ``Not particular``) and
experiencer (gold not ``Patient`` vs ``is_family``). The same is done with medspaCy's default
ConText rules as the baseline.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from verticals import RunContext

DEID_FILE = "physionet_deid_dev.jsonl"
NEGEX_FILE = "negex_context_dev.jsonl"
NAME_LABELS = ("PTName", "PTNameInitial", "RelativeProxyName", "HCPName")


def read_jsonl(path: Path, limit: int = 0) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def is_phi(span: dict[str, Any]) -> bool:
    """Safe Harbor: a year alone and an age under 90 are not PHI."""
    if span["label"] == "DateYear":
        return False
    if span["label"] == "Age":
        digits = re.sub(r"\D", "", span["text"])
        return bool(digits) and int(digits) >= 90
    return True


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * p * r / (p + r) if tp else 0.0
    return p, r, f


def score_deid(notes: list[dict[str, Any]], predicted: list[list[tuple[int, int, str]]]) -> dict[str, Any]:
    """Per gold label recall, per predicted category precision, character and token figures."""
    gold_n, found, touched = Counter(), Counter(), Counter()
    pred_n, pred_ok, pred_nonphi = Counter(), Counter(), Counter()
    chars = Counter()
    tokens = Counter()
    missed: list[tuple[str, int, int, str]] = []
    spurious: list[tuple[str, int, int, str]] = []
    for note, preds in zip(notes, predicted, strict=True):
        text = note["text"]
        mask = bytearray(len(text))
        for start, end, _ in preds:
            mask[start:end] = b"\x01" * (end - start)
        gold = [g for g in note["spans"] if is_phi(g)]
        other = [g for g in note["spans"] if not is_phi(g)]
        gmask = bytearray(len(text))
        for g in gold:
            gmask[g["start"]:g["end"]] = b"\x01" * (g["end"] - g["start"])
        for g in gold:
            label = g["label"]
            gold_n[label] += 1
            chars_in = [i for i in range(g["start"], g["end"]) if not text[i].isspace()]
            ok = all(mask[i] for i in chars_in)
            found[label] += ok
            touched[label] += any(mask[g["start"]:g["end"]])
            if not ok:
                missed.append((note["id"], g["start"], g["end"], label))
        for start, end, category in preds:
            pred_n[category] += 1
            hit = any(start < g["end"] and g["start"] < end for g in gold)
            pred_ok[category] += hit
            if not hit:
                pred_nonphi[category] += any(start < g["end"] and g["start"] < end for g in other)
                spurious.append((note["id"], start, end, category))
        for i, ch in enumerate(text):
            if ch.isspace():
                continue
            chars["tp"] += mask[i] and gmask[i]
            chars["fp"] += mask[i] and not gmask[i]
            chars["fn"] += gmask[i] and not mask[i]
        for m in re.finditer(r"\w+", text):
            is_gold = any(gmask[m.start():m.end()])
            is_pred = any(mask[m.start():m.end()])
            tokens["tp"] += is_gold and is_pred
            tokens["fp"] += is_pred and not is_gold
            tokens["fn"] += is_gold and not is_pred
    labels = {}
    for label in sorted(gold_n, key=lambda k: -gold_n[k]):
        labels[label] = {"gold": gold_n[label], "recall": found[label] / gold_n[label],
                         "touched": touched[label] / gold_n[label]}
    names = sum(gold_n[k] for k in NAME_LABELS)
    if names:
        labels["all names"] = {"gold": names, "recall": sum(found[k] for k in NAME_LABELS) / names,
                               "touched": sum(touched[k] for k in NAME_LABELS) / names}
    total = sum(gold_n.values())
    labels["ALL Safe Harbor"] = {"gold": total, "recall": sum(found.values()) / total if total else float("nan"),
                                 "touched": sum(touched.values()) / total if total else float("nan")}
    categories = {c: {"predicted": pred_n[c], "precision": pred_ok[c] / pred_n[c], "non_phi_gold": pred_nonphi[c]}
                  for c in sorted(pred_n, key=lambda k: -pred_n[k])}
    n_pred = sum(pred_n.values())
    categories["ALL"] = {"predicted": n_pred, "precision": sum(pred_ok.values()) / n_pred if n_pred else float("nan"),
                         "non_phi_gold": sum(pred_nonphi.values())}
    return {"labels": labels, "categories": categories,
            "chars": _f1(chars["tp"], chars["fp"], chars["fn"]),
            "tokens": _f1(tokens["tp"], tokens["fp"], tokens["fn"]),
            "missed": missed, "spurious": spurious}


def _fmt(x: float | int) -> str:
    if isinstance(x, int):
        return str(x)
    return "n/a" if x != x else f"{x:.3f}"


def run_deid(path: Path, limit: int = 0, errors: int = 0, **params: Any) -> dict[str, Any]:
    from verticals_medical.deidentify import DeidentifyTask
    from verticals_medical.phi import get_analyzer

    notes = read_jsonl(path, limit)
    task = DeidentifyTask()
    get_analyzer()  # model load is not part of the throughput figure
    task.run([task.Input(text="Warm-up note seen by Dr. Smith on 3/4.", id="w")], {},
             RunContext(job_id="eval", params=task.Params(**params)))
    started = time.perf_counter()
    predicted: list[list[tuple[int, int, str]]] = []
    for i in range(0, len(notes), task.batch_size):
        batch = [task.Input(text=n["text"], id=n["id"]) for n in notes[i:i + task.batch_size]]
        outputs = task.run(batch, {}, RunContext(job_id="eval", params=task.Params(**params)))
        predicted += [[(s.start, s.end, s.category) for s in out.spans] for out in outputs]
    seconds = time.perf_counter() - started
    result = score_deid(notes, predicted)
    n_phi = result["labels"]["ALL Safe Harbor"]["gold"]
    print(f"## De-identification, real nursing notes ({path.name}): {len(notes)} notes, "
          f"{n_phi} Safe Harbor PHI spans\n")
    print("Recall per gold label (found: every non-space character covered by predicted spans of any "
          "category; touched: any overlap):\n")
    print("| gold label | gold | recall (found) | touched |")
    print("|---|---:|---:|---:|")
    for label, row in result["labels"].items():
        print(f"| {label} | {row['gold']} | {_fmt(row['recall'])} | {_fmt(row['touched'])} |")
    print("\nPrecision per predicted category (a predicted span is correct when it overlaps Safe Harbor gold; "
          "'non-PHI gold' = spurious spans over a year alone or an age under 90):\n")
    print("| predicted category | predicted | precision | non-PHI gold |")
    print("|---|---:|---:|---:|")
    for category, row in result["categories"].items():
        print(f"| {category} | {row['predicted']} | {_fmt(row['precision'])} | {row['non_phi_gold']} |")
    cp, cr, cf = result["chars"]
    tp, tr, tf = result["tokens"]
    print(f"\nCharacter level: precision {_fmt(cp)}, recall {_fmt(cr)}, F1 {_fmt(cf)}. "
          f"Token level: precision {_fmt(tp)}, recall {_fmt(tr)}, F1 {_fmt(tf)}.\n")
    print(f"Throughput: {len(notes) / seconds:.1f} notes/s ({sum(len(n['text']) for n in notes) / seconds:,.0f} "
          f"characters/s), one process, after model load.\n")
    if errors:
        from splits import deid_part

        texts = {n["id"]: n["text"] for n in notes}
        held_out = {n["id"] for n in notes if deid_part(n["patient"]) == "val"}  # never read (issue 23)

        def show(kind: str, rows: list[tuple[str, int, int, str]]) -> None:
            rows = [r for r in rows if r[0] not in held_out]
            print(f"### {kind} (first {errors} of {len(rows)})\n")
            for note_id, start, end, label in rows[:errors]:
                text = texts[note_id]
                left = text[max(0, start - 40):start].replace("\n", "⏎")
                right = text[end:end + 30].replace("\n", "⏎")
                print(f"- {label}: {left}[[{text[start:end]}]]{right}")
            print()

        show("Missed", result["missed"])
        show("Spurious", result["spurious"])
    return result


# ---------------------------------------------------------------------------------------------
# Assertion status on NegEx/ConText items
# ---------------------------------------------------------------------------------------------

def concept_span(item: dict[str, Any]) -> tuple[int, int] | None:
    """Character span of the item's concept (upper-cased in the sentence; spacing may differ)."""
    words = item["concept"].split()
    text = item["text"]
    # the whole concept first; then (a few items span two sentences) its longest run of words found
    runs = sorted({(i, j) for i in range(len(words)) for j in range(i + 1, len(words) + 1)},
                  key=lambda ij: (-(ij[1] - ij[0]), -ij[1]))
    for i, j in runs:
        pattern = r"\s+".join(re.escape(w) for w in words[i:j])
        if j - i < len(words) and sum(len(w) for w in words[i:j]) < 4:
            break
        upper = re.search(rf"(?<!\w){pattern.upper()}(?!\w)", text)
        if upper:
            return upper.span()
        match = re.search(rf"(?<!\w){pattern}(?!\w)", text, re.I)
        if match:
            return match.span()
    return None


def context_flags(nlp: Any, text: str, start: int, end: int, collapse: bool = True) -> dict[str, bool] | None:
    """Run ``nlp`` with the given span as the only entity (set in place of the target matcher).

    ``collapse``: runs of spaces as one, as ``medical.entities`` does (the baseline sees the text as is)."""
    from bisect import bisect_left

    from verticals_medical.entities import collapse_spaces

    if collapse:
        text, positions = collapse_spaces(text)
        start, end = bisect_left(positions, start), bisect_left(positions, end)
    doc = nlp.make_doc(text)
    span = None
    for name, proc in nlp.pipeline:
        if name == "medspacy_target_matcher":
            span = doc.char_span(start, end, label="CONCEPT", alignment_mode="expand")
            if span is None:
                return None
            doc.ents = [span]
            continue
        doc = proc(doc)
    if not doc.ents:
        return None
    ent = doc.ents[0]
    return {"negated": bool(ent._.is_negated), "historical": bool(ent._.is_historical),
            "hypothetical": bool(ent._.is_hypothetical), "family": bool(ent._.is_family),
            "uncertain": bool(ent._.is_uncertain)}


GOLD = {
    "negated": lambda r: r["negation"] == "Negated",
    "historical": lambda r: r["temporality"] == "Historical",
    "hypothetical": lambda r: r["temporality"] == "Not particular",
    "family": lambda r: r["experiencer"] != "Patient",
}
SHOWN = {"negated": "negation", "historical": "historical (temporality)",
         "hypothetical": "hypothetical (temporality 'Not particular')", "family": "experiencer (not the patient)"}


def score_assertions(items: list[dict[str, Any]], nlp: Any, collapse: bool = True
                     ) -> tuple[dict[str, tuple], list[tuple], int]:
    counts = {k: Counter() for k in GOLD}
    wrong: list[tuple] = []
    unplaced = 0
    for item in items:
        span = concept_span(item)
        flags = context_flags(nlp, item["text"], *span, collapse=collapse) if span else None
        if flags is None:
            unplaced += 1
            flags = dict.fromkeys(GOLD, False)
        for key, gold_of in GOLD.items():
            gold, pred = gold_of(item), flags[key]
            counts[key]["tp" if gold and pred else "fp" if pred else "fn" if gold else "tn"] += 1
            if gold != pred:
                wrong.append((key, gold, item))
    table = {k: (*_f1(c["tp"], c["fp"], c["fn"]), c["tp"] + c["fn"]) for k, c in counts.items()}
    return table, wrong, unplaced


def baseline_pipeline() -> Any:
    """medspaCy with its default ConText rules only (no plugin rules, no sectionizer)."""
    from verticals_medical.entities import _quiet

    _quiet()
    import medspacy

    return medspacy.load("default", medspacy_enable=["medspacy_tokenizer", "medspacy_pyrush",
                                                      "medspacy_target_matcher", "medspacy_context"])


def run_negex(path: Path, baseline: bool = False, limit: int = 0, errors: int = 0) -> dict[str, Any]:
    from verticals_medical.entities import get_pipeline

    items = read_jsonl(path, limit)
    systems = [("verticals-medical (medspaCy + plugin rules)", get_pipeline())]
    if baseline:
        systems.insert(0, ("medspaCy default ConText", baseline_pipeline()))
    results = {}
    print(f"## Assertion status, NegEx/ConText items ({path.name}): {len(items)} concept mentions\n")
    print("| system | attribute | gold positives | precision | recall | F1 |")
    print("|---|---|---:|---:|---:|---:|")
    for name, nlp in systems:
        table, wrong, unplaced = score_assertions(items, nlp, collapse=name.startswith("verticals"))
        results[name] = table
        for key, (p, r, f, n) in table.items():
            print(f"| {name} | {SHOWN[key]} | {n} | {_fmt(p)} | {_fmt(r)} | {_fmt(f)} |")
        if unplaced:
            print(f"| {name} | concept not placed | {unplaced} | | | |")
        if errors and name.startswith("verticals"):
            print()
            from splits import negex_part

            wrong = [w for w in wrong if negex_part(w[2]["number"]) != "val"]  # validation items: never read
            for key, gold, item in wrong[:errors]:
                print(f"- {key} gold={gold}: {item['text'][:200]!r}")
    print()
    return results


def main(folder: str, baseline: bool = False, limit: int = 0, errors: int = 0) -> None:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SystemExit(f"--dev {folder!r} is not a folder (run from the repository root, e.g. "
                         "--dev ../shared/data/medical)")
    if (root / DEID_FILE).is_file():
        run_deid(root / DEID_FILE, limit=limit, errors=errors)
    if (root / NEGEX_FILE).is_file():
        run_negex(root / NEGEX_FILE, baseline=baseline, limit=limit, errors=errors)
