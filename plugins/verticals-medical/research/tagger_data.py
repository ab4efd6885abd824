"""Training rows for the PHI tagger: ``{"text", "spans": [{start, end, label}], "group"}`` JSONL.

Two kinds of rows, both teaching context rather than names (every PHI value is a fresh surrogate):

- ``--generated N``: text we generate only (may ship): nursing-note snippets written here (clinician, family,
  transfer, place and date contexts in any letter case, mixed with PHI-free clinical sentences), the tuning
  PII generator's letters/forms/e-mails/chat/tables (``piigen_tune.py``, never the measuring one), and the
  plugin's own synthetic notes (``verticals_medical.synth``).
- ``--notes FILE --folds 0,1,2,3 --variants K``: each note of those training folds (``splits.py``) K times with
  every gold span re-injected as a surrogate of its type (names of every origin and form, hospitals, towns,
  streets, wards, dates, phones, ids), plus the note as it is. PhysioNet-derived: weights trained on these rows
  must NOT ship (see ../shared/data/README.md). Never pass the validation split here.

    python plugins/verticals-medical/research/tagger_data.py --generated 6000 --out /tmp/tagger_generated.jsonl
    python plugins/verticals-medical/research/tagger_data.py --generated 3000 --notes /tmp/medsplits/deid_train.jsonl \\
        --folds 0,1,2,3 --variants 3 --out /tmp/tagger_notes.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import string
from pathlib import Path
from typing import Any

from piigen_common import fill, fixed_hash_seed, write

# tagger labels: gold labels of both sources mapped onto these
LABELS = {"PTName": "NAME", "PTNameInitial": "NAME", "RelativeProxyName": "NAME", "HCPName": "NAME",
          "Location": "LOCATION", "Date": "DATE", "Phone": "PHONE", "Age": "AGE", "Other": "ID",
          "NAME": "NAME", "ADDRESS": "ADDRESS", "LOCATION": "LOCATION", "ZIP": "ZIP", "DATE": "DATE",
          "PHONE": "PHONE", "FAX": "PHONE", "EMAIL": "ID", "SSN": "ID", "MRN": "ID", "LICENSE": "ID", "ID": "ID",
          "ACCOUNT": "ID", "HEALTH_PLAN": "ID", "DEVICE": "ID", "VEHICLE": "ID", "URL": "ID", "IP": "ID",
          "AGE": "AGE"}
OWN_FIRST = ["Abdi", "Amara", "Bao", "Chiamaka", "Daoud", "Esi", "Farah", "Guadalupe", "Hiroshi", "Ifeoma", "Jae",
             "Kofi", "Lakshmi", "Malik", "Nadia", "Oksana", "Pedro", "Qiu", "Rashida", "Soo-min", "Tenzin", "Ugo",
             "Valentina", "Wanjiru", "Xiomara", "Yusuf", "Zainab", "Bich", "Deepika", "Emeka", "Rania", "Tomasz"]
OWN_LAST = ["Abiola", "Bhattacharya", "Cruz", "Dang", "Eze", "Fofana", "Gonzalez-Ruiz", "Hashemi", "Ivanova",
            "Jokinen", "Kowalczyk", "Lindqvist", "Mbeki", "Nakashima", "Okafor", "Papadopoulos", "Quispe", "Rao",
            "Sato", "Tshabalala", "Uchenna", "Vo", "Wojcik", "Xu", "Yilmaz", "Zhou", "MacLeod", "D'Souza"]
HOSPITAL_HEADS = ["Hospital", "General Hospital", "Medical Center", "Memorial", "Rehab", "Nursing Home", "Hosp",
                  "Regional", "Community Hospital", "Health Center", "Manor", "House", "Clinic"]
SAINTS = ["Agnes", "Joseph", "Mary", "Luke", "Elizabeth", "Vincent", "Francis", "Anne", "Jude", "Catherine"]


class Surrogates:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        locales = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "nl_NL", "pt_BR", "sv_SE",
                   "en_IN", "ga_IE", "cs_CZ", "tr_TR", "fi_FI", "ro_RO", "da_DK", "en_AU"]
        self.fakers = []
        for i, loc in enumerate(locales):
            f = Faker(loc)
            f.seed_instance(seed * 31 + i)
            self.fakers.append(f)
        self.us = self.fakers[0]

    def faker(self) -> Any:
        return self.rng.choice(self.fakers)

    def first(self) -> str:
        return self.rng.choice(OWN_FIRST) if self.rng.random() < 0.25 else self.faker().first_name()

    def last(self) -> str:
        return self.rng.choice(OWN_LAST) if self.rng.random() < 0.25 else self.faker().last_name()

    def name(self, form: str | None = None) -> str:
        form = form or self.rng.choice(["full", "full", "last", "last", "first", "first", "initial", "mi",
                                        "comma"])
        first, last = self.first(), self.last()
        return {"full": f"{first} {last}", "last": last, "first": first, "initial": f"{first[0]}. {last}",
                "mi": f"{first} {self.rng.choice(string.ascii_uppercase)}. {last}", "comma": f"{last}, {first}"}[form]

    def town(self) -> str:
        return self.faker().city() if self.rng.random() < 0.5 else self.us.city()

    def hospital(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return f"{self.town()} {self.rng.choice(HOSPITAL_HEADS)}"
        if r < 0.45:
            return f"St. {self.rng.choice(SAINTS)}'s" if r < 0.38 else f"Saint {self.rng.choice(SAINTS)}"
        if r < 0.6:
            return f"{self.last()} {self.rng.choice(HOSPITAL_HEADS)}"
        if r < 0.75:
            return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(self.rng.randint(2, 4)))
        if r < 0.85:
            return f"{self.last()} {self.rng.randint(1, 12)}"  # a ward
        return self.us.street_address()

    def place(self) -> str:
        return self.hospital() if self.rng.random() < 0.55 else self.town()

    def date(self) -> str:
        d = dt.date(2000, 1, 1) + dt.timedelta(days=self.rng.randint(0, 9000))
        return self.rng.choice([f"{d.month}/{d.day}", f"{d.month}/{d.day}", f"{d.month:02d}/{d.day:02d}/{d.year}",
                                f"{d.month}/{d.day}/{d.year % 100:02d}", d.strftime("%B ") + str(d.day),
                                d.strftime("%b ") + str(d.day), f"{d.day} {d.strftime('%b')}",
                                d.isoformat(), d.strftime("%B %Y"), f"{d.month}-{d.day}-{d.year}",
                                f"{d.day}{_ordinal(d.day)}", d.strftime("%A, %B ") + str(d.day)])

    def phone(self) -> str:
        a, b, c = self.rng.randint(201, 989), self.rng.randint(200, 999), self.rng.randint(0, 9999)
        return self.rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{b}-{c:04d}", f"{a}.{b}.{c:04d}",
                                f"#{self.rng.randint(1000, 99999)}", f"x{self.rng.randint(1000, 9999)}",
                                self.faker().phone_number()])

    def ident(self) -> str:
        return self.rng.choice([str(self.rng.randint(10000, 99999999)),
                                f"{self.rng.choice(string.ascii_uppercase)}{self.rng.randint(100000, 9999999)}"])

    def age(self) -> str:
        return str(self.rng.randint(90, 104))

    def for_label(self, label: str, original: str) -> str:
        value = {"NAME": self._name_like(original), "LOCATION": self.place(), "DATE": self.date(),
                 "PHONE": self.phone(), "AGE": self.age(), "ID": self.ident(), "ADDRESS": self.us.street_address(),
                 "ZIP": self.us.zipcode()}.get(label) or self.ident()
        return match_case(value, original, self.rng)

    def _name_like(self, original: str) -> str:
        words = original.split()
        if len(words) == 1:
            return self.rng.choice([self.first(), self.last(), self.last()])
        if "," in original:
            return self.name("comma")
        if re.match(r"^[A-Za-z]\.", original):
            return self.name("initial")
        return self.name("full") if self.rng.random() < 0.8 else self.name("mi")


def _ordinal(day: int) -> str:
    return "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def match_case(value: str, original: str, rng: random.Random) -> str:
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return value.lower()
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return value.upper()
    return value.lower() if rng.random() < 0.08 else value


def reinject(note: dict[str, Any], s: Surrogates) -> dict[str, Any]:
    """The note with each PHI span replaced by a surrogate of its type (offsets recomputed)."""
    text, spans = note["text"], []
    pieces, cursor = [], 0
    for span in sorted(note["spans"], key=lambda g: g["start"]):
        label = tagger_label(span, text)
        pieces.append(text[cursor:span["start"]])
        value = text[span["start"]:span["end"]]
        if label is not None:
            value = s.for_label(label, value)
        pieces.append((value, label))
        cursor = span["end"]
    pieces.append(text[cursor:])
    out, position = [], 0
    for piece in pieces:
        value, label = (piece, None) if isinstance(piece, str) else piece
        if label:
            spans.append({"start": position, "end": position + len(value), "label": label})
        out.append(value)
        position += len(value)
    return {"text": "".join(out), "spans": spans}


def tagger_label(span: dict[str, Any], text: str) -> str | None:
    value = text[span["start"]:span["end"]]
    if span["label"] == "DateYear":
        return None
    if span["label"] in ("Age", "AGE"):
        digits = re.sub(r"\D", "", value)
        if not digits or int(digits) < 90:
            return None
    return LABELS.get(span["label"])


# -- nursing-note snippets written here (no text from any corpus) ----------------------------------------------

CLINICAL = [
    "Lungs coarse bilaterally, sx for thick tan secretions.", "HR 80s NSR, no ectopy noted.",
    "Afebrile, tmax 99.1.", "Foley draining clear yellow urine, u/o 40-60 cc/hr.", "Abd soft, +BS, tol TF at goal.",
    "Pt alert and oriented x3, MAE, follows commands.", "Lasix 40 mg IV given with good diuresis.",
    "K 3.4 repleted with 40 meq KCL.", "Skin intact, turned q2h.", "Denies pain, CP or SOB.",
    "Vent settings unchanged, CPAP 5/5, FiO2 40%.", "BP 110-130/60s on neo gtt.", "Plan: cont to monitor.",
    "ABG 7.38/42/95.", "Sedated on propofol, RASS -2.", "PIV x2 patent.", "NPO for procedure in am.",
    "Tolerating clear liquids.", "Coumadin held for INR 3.2.", "CXR shows improved aeration.",
    "Resp: LS clear, RR 18, sats 97% on 2L NC.", "GI: no BM this shift.", "Neuro: PERRL, CAM neg.",
    "Social: family in to visit this evening.", "Dispo: remains in CCU.", "Pain controlled with morphine 2 mg IV.",
    "Ambulated to chair with PT.", "Blood cx sent x2.", "Insulin per sliding scale, FS 180s.",
]
SNIPPETS = [
    "Dr. {hcp} aware of {clinical_lc}", "dr {hcp} notified of low u/o.", "{hcp} MD here to see pt.",
    "Seen by {hcp}, np. {clinical}", "D/W Dr {hcp}, plan to diurese.", "paged {hcp} re: bp.",
    "{rel} (son) called for update.", "son {rel_first} called, updated on pt status.", "wife {rel} at bedside.",
    "dtr {rel_first} in to visit, very supportive.", "Pt's niece {rel} is HCP.", "Spoke with {rel_first} (daughter).",
    "{rel_first} visited this afternoon and spoke with team.", "The {pt_last} family met with Dr. {hcp}.",
    "Pt {pt} is a 67 yo man admitted {date} with CHF.", "Pt transferred to {place} on {date}.",
    "Came from {place} after fall at home.", "Plan for rehab at {place} when stable.", "To {place} for cath today.",
    "Lives in {town} with wife.", "pt lives alone in {town}.", "Admitted from {hospital} ER.",
    "Transferred from {hospital} with sepsis.", "Return to {hospital} rehab tomorrow.",
    "Daughter lives in {town}, will come {date}.", "Last seen by PCP Dr. {hcp} on {date}.",
    "Echo {date}: EF 35%.", "s/p CABG {date}.", "Follow up with {hcp} in clinic {date}.",
    "Family phone: {phone}.", "call wife at {phone} with any change.", "Pager {phone}.",
    "Pt is {age} yo, DNR/DNI.", "{age} year old female from {place}.", "MRN {id}.",
    "{hcp} RN", "{hcp}, RN\n", "-- {hcp}", "Discussed with attending {hcp}.", "{hcp} RRT in to suction.",
    "Called Dr {hcp} at {hospital}.", "will transfer to {ward} when bed available.", "Moved to {ward} at 1500.",
    "Friend {rel} brought in clothes.", "Husband {rel_first} very anxious, reassured.",
]


def snippet_rows(n: int, seed: int) -> list[dict[str, Any]]:
    s = Surrogates(seed)
    rng = s.rng
    rows = []
    for i in range(n):
        parts = []
        for _ in range(rng.randint(2, 6)):
            parts.append(rng.choice(SNIPPETS) if rng.random() < 0.55 else rng.choice(CLINICAL))
        template = rng.choice([" ", "  ", "\n", ". "]).join(parts)
        slots = {
            "hcp": ("NAME", lambda: s.name(rng.choice(["last", "last", "full", "initial", "first"]))),
            "rel": ("NAME", lambda: s.name(rng.choice(["full", "first", "full"]))),
            "rel_first": ("NAME", s.first), "pt": ("NAME", lambda: s.name("full")), "pt_last": ("NAME", s.last),
            "place": ("LOCATION", s.place), "hospital": ("LOCATION", s.hospital), "town": ("LOCATION", s.town),
            "ward": ("LOCATION", lambda: f"{s.last()} {rng.randint(1, 12)}"), "date": ("DATE", s.date),
            "phone": ("PHONE", s.phone), "age": ("AGE", s.age), "id": ("ID", s.ident),
            "clinical": (None, lambda: rng.choice(CLINICAL)),
            "clinical_lc": (None, lambda: rng.choice(CLINICAL).lower()),
        }
        row = fill(template, slots)
        style = rng.random()
        if style < 0.3:
            row["text"] = row["text"].lower()
        elif style < 0.4:
            row["text"] = row["text"].upper()
        rows.append({"text": row["text"], "spans": [{k: sp[k] for k in ("start", "end", "label")}
                                                     for sp in row["spans"]], "group": f"snip-{seed}-{i}"})
    return rows


def generated_rows(n: int, seed: int) -> list[dict[str, Any]]:
    import piigen_tune
    from verticals_medical.synth import generate_notes

    rows = snippet_rows(n // 2, seed)
    for r in piigen_tune.rows(n // 3, seed + 1):
        rows.append({"text": r["text"], "spans": [{"start": sp["start"], "end": sp["end"], "label":
                                                   LABELS[sp["label"]]} for sp in r["spans"]
                                                  if tagger_label(sp, r["text"])], "group": r["id"]})
    for note in generate_notes(n - len(rows), seed + 2) + generate_notes(max(0, n // 12), seed + 3, fresh=True):
        rows.append({"text": note["text"], "spans": [{"start": g["start"], "end": g["end"],
                                                      "label": LABELS[g["category"]]} for g in note["phi"]],
                     "group": note["id"]})
    return rows


def note_rows(path: Path, folds: set[int], variants: int, seed: int) -> list[dict[str, Any]]:
    s = Surrogates(seed + 99)
    notes = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if any("fold" not in n for n in notes):
        raise SystemExit("error: --notes must be a training-folds file from splits.py (it has a fold per note)")
    rows = []
    for note in notes:
        if note["fold"] not in folds:
            continue
        group = f"patient-{note['patient']}"
        original = {"text": note["text"], "spans": [{"start": g["start"], "end": g["end"],
                                                     "label": tagger_label(g, note["text"])} for g in note["spans"]
                                                    if tagger_label(g, note["text"])]}
        rows.append({**original, "group": group})
        if not note["spans"]:
            continue
        for _ in range(variants):
            rows.append({**reinject(note, s), "group": group})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", type=int, default=6000, help="generated rows (0: none)")
    parser.add_argument("--notes", help="training-folds file of splits.py (never the validation split)")
    parser.add_argument("--folds", default="0,1,2,3")
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if argv is None:
        fixed_hash_seed()  # the generated rows come from piigen_tune, whose texts depend on the hash seed
    rows = generated_rows(args.generated, args.seed) if args.generated else []
    if args.notes:
        if Path(args.notes).name.startswith("deid_val"):
            raise SystemExit("error: the validation split is never trained on")
        rows += note_rows(Path(args.notes), {int(f) for f in args.folds.split(",")}, args.variants, args.seed)
    random.Random(args.seed).shuffle(rows)
    write(Path(args.out), rows)
    print(f"{len(rows)} rows, {sum(len(r['spans']) for r in rows)} spans -> {args.out}")


if __name__ == "__main__":
    main()
