"""Synthetic clinical notes with gold PHI spans, and assertion sentences with gold labels.

Everything here is written by the verticals-medical authors: note templates of
our own, filled with fake values from Faker under a fixed seed, so the set is
reproducible (``generate_notes(n, seed)``). No real patient data is involved.

A template is a list of text pieces; ``("CATEGORY", kind)`` pieces are filled
with a fake value and recorded as a gold span.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from faker import Faker

Piece = str | tuple[str, str]


class Filler:
    """Fake values of one note (one patient), consistent within the note."""

    def __init__(self, fake: Faker, rng: random.Random):
        self.fake, self.rng = fake, rng
        self.first, self.last = fake.first_name(), fake.last_name()
        self.middle = fake.random_uppercase_letter()
        self.relative = f"{fake.first_name()} {self.last}"
        self.doctor = (fake.first_name(), fake.last_name())
        self.doctor2 = (fake.first_name(), fake.last_name())
        self.admit = fake.date_between(dt.date(2015, 1, 1), dt.date(2024, 12, 31))
        self.dob = fake.date_of_birth(minimum_age=18, maximum_age=88)
        self.age_old = rng.randint(90, 104)

    def date(self, style: str, base: dt.date | None = None, plus: int = 0) -> str:
        d = (base or self.admit) + dt.timedelta(days=plus)
        formats = {
            "us": f"{d.month:02d}/{d.day:02d}/{d.year}", "us-short": f"{d.month}/{d.day}/{d.year % 100:02d}",
            "iso": d.isoformat(), "long": d.strftime("%B ") + f"{d.day}, {d.year}",
            "abbr": d.strftime("%b ") + f"{d.day}, {d.year}", "dmy": f"{d.day} {d.strftime('%B')} {d.year}",
            "md": f"{d.month}/{d.day}", "month-year": d.strftime("%B %Y"),
        }
        return formats[style]

    def value(self, kind: str) -> str:
        f, r = self.fake, self.rng
        table: dict[str, Callable[[], str]] = {
            "patient": lambda: f"{self.first} {self.last}",
            "patient-mi": lambda: f"{self.first} {self.middle}. {self.last}",
            "patient-last": lambda: self.last,
            "patient-first": lambda: self.first,
            "patient-upper": lambda: f"{self.last.upper()}, {self.first.upper()}",
            "relative": lambda: self.relative,
            "doctor": lambda: f"{self.doctor[0]} {self.doctor[1]}",
            "doctor-last": lambda: self.doctor[1],
            "doctor2": lambda: f"{self.doctor2[0]} {self.doctor2[1]}",
            "doctor2-last": lambda: self.doctor2[1],
            "street": lambda: f.street_address(),
            "city": lambda: f.city(),
            "zip": lambda: f.zipcode(),
            "admit-us": lambda: self.date("us"),
            "admit-long": lambda: self.date("long"),
            "admit-iso": lambda: self.date("iso"),
            "discharge-us": lambda: self.date("us", plus=r.randint(2, 12)),
            "discharge-abbr": lambda: self.date("abbr", plus=r.randint(2, 12)),
            "admit-abbr": lambda: self.date("abbr"),
            "followup-md": lambda: self.date("md", plus=r.randint(14, 40)),
            "followup-dmy": lambda: self.date("dmy", plus=r.randint(14, 40)),
            "past-month-year": lambda: self.date("month-year", plus=-r.randint(200, 2000)),
            "past-us-short": lambda: self.date("us-short", plus=-r.randint(30, 900)),
            "dob": lambda: self.date("us", base=self.dob),
            "age90": lambda: str(self.age_old),
            "phone": lambda: f.numerify(r.choice(["(###) ###-####", "###-###-####", "###.###.####"])),
            "fax": lambda: f.numerify("###-###-####"),
            "email": lambda: f"{self.first.lower()}.{self.last.lower()}@{f.free_email_domain()}",
            "ssn": lambda: f.ssn(),
            "mrn": lambda: f.numerify(r.choice(["########", "MR-######", "#######"])),
            "plan": lambda: f.bothify(r.choice(["???#########", "W#########", "##########"])).upper(),
            "account": lambda: f.numerify(r.choice(["##########", "ACC-########"])),
            "license": lambda: f.bothify(r.choice(["??#######", "MD######"])).upper(),
            "dea": lambda: f.bothify("??#######").upper(),
            "vin": lambda: f.vin() if hasattr(f, "vin") else f.bothify("1HGCM82633A######").upper(),
            "plate": lambda: f.license_plate(),
            "device": lambda: f.bothify(r.choice(["SN-########", "PJN#######", "##??####"])).upper(),
            "url": lambda: f"https://{f.domain_name()}/patients/{f.numerify('####')}",
            "ip": lambda: f.ipv4_private(),
            "encounter": lambda: f.numerify("E########"),
            "hospital-city": lambda: f.city(),
        }
        return table[kind]()


# Templates: our own wording of common note types. ("CAT", kind) marks PHI.
DISCHARGE: list[Piece] = [
    "DISCHARGE SUMMARY\n\nPatient: ", ("NAME", "patient-mi"), "    MRN: ", ("MRN", "mrn"),
    "\nDOB: ", ("DATE", "dob"), "    Admission date: ", ("DATE", "admit-us"),
    "    Discharge date: ", ("DATE", "discharge-us"),
    "\nAttending: Dr. ", ("NAME", "doctor"), "\n\nHISTORY OF PRESENT ILLNESS: Mr. ", ("NAME", "patient-last"),
    " is a 67 year old man with a history of hypertension and type 2 diabetes who presented with two days of "
    "chest pain and shortness of breath. He denies fever or cough.\n\nHOSPITAL COURSE: Troponins were negative. "
    "Echocardiogram showed preserved ejection fraction. He was seen by Dr. ", ("NAME", "doctor2-last"),
    " from cardiology on ", ("DATE", "admit-long"), ".\n\nDISCHARGE MEDICATIONS: aspirin 81 mg daily, "
    "metformin 500 mg twice daily.\n\nFOLLOW-UP: with Dr. ", ("NAME", "doctor-last"), " on ", ("DATE", "followup-md"),
    ". Call ", ("PHONE", "phone"), " with questions. Fax records to ", ("FAX", "fax"), ".\n"
    "Home address: ", ("ADDRESS", "street"), ", ", ("LOCATION", "city"), ", MA ", ("ZIP", "zip"), ".\n",
]
PROGRESS: list[Piece] = [
    "PROGRESS NOTE  ", ("DATE", "admit-iso"), "\nName: ", ("NAME", "patient"), "   Acct #: ", ("ACCOUNT", "account"),
    "\n\nSUBJECTIVE: Patient reports feeling better. Her daughter ", ("NAME", "relative"),
    " is at the bedside and can be reached at ", ("PHONE", "phone"), ". Denies nausea, vomiting or diarrhea.\n\n"
    "OBJECTIVE: Afebrile. Lungs clear. Insulin pump serial number ", ("DEVICE", "device"), " checked.\n\n"
    "ASSESSMENT/PLAN: Community acquired pneumonia, improving. Continue ceftriaxone. Possible discharge "
    "tomorrow if stable. Last colonoscopy ", ("DATE", "past-month-year"), ".\n\nSigned by ",
    ("NAME", "doctor"), ", MD  ", ("DATE", "discharge-abbr"), "\n",
]
REFERRAL: list[Piece] = [
    "REFERRAL LETTER\n\n", ("DATE", "followup-dmy"), "\n\nDear Dr. ", ("NAME", "doctor2"), ",\n\n"
    "I am referring my patient ", ("NAME", "patient"), " (DOB ", ("DATE", "dob"), ", SSN ", ("SSN", "ssn"),
    ") for evaluation of atrial fibrillation. ", ("NAME", "patient-first"), " lives at ", ("ADDRESS", "street"),
    ", ", ("LOCATION", "city"), ", NY ", ("ZIP", "zip"), " and can be contacted by e-mail at ",
    ("EMAIL", "email"), ". Insurance member ID: ", ("HEALTH_PLAN", "plan"), ".\n\n"
    "Past history of stroke in 2012. No family history of sudden cardiac death. An echocardiogram on ",
    ("DATE", "past-us-short"), " was unremarkable. Records are available at ", ("URL", "url"), ".\n\n"
    "Sincerely,\n", ("NAME", "doctor"), ", MD\nMedical license ", ("LICENSE", "license"), "\n",
]
ED_NOTE: list[Piece] = [
    "EMERGENCY DEPARTMENT NOTE\nPt: ", ("NAME", "patient-upper"), "  MRN ", ("MRN", "mrn"), "  Encounter ID: ",
    ("ID", "encounter"), "\n\nCHIEF COMPLAINT: fall.\n\nHPI: ", ("AGE", "age90"), " year old woman brought in by "
    "EMS after a mechanical fall at home on ", ("DATE", "admit-long"), ". Her son ", ("NAME", "relative"),
    " reports no loss of consciousness. She denies headache and neck pain. History of osteoporosis.\n\n"
    "She drove herself last week; vehicle VIN ", ("VEHICLE", "vin"), " per the police report. "
    "Workstation IP ", ("IP", "ip"), " logged the triage.\n\nPLAN: CT head, x-ray of the hip. Discussed with "
    "Dr. ", ("NAME", "doctor"), ". DEA ", ("LICENSE", "dea"), ".\n",
]
TEMPLATES = {"discharge": DISCHARGE, "progress": PROGRESS, "referral": REFERRAL, "ed": ED_NOTE}

# Written after the first measurement and never used to tune the rules: a check on overfitting
# to the wording above (see EVAL.md).
CLINIC: list[Piece] = [
    "Clinic visit for ", ("NAME", "patient"), ", seen ", ("DATE", "admit-abbr"), ".\n"
    "Identifiers: medical record number ", ("MRN", "mrn"), "; policy number ", ("HEALTH_PLAN", "plan"),
    "; billing account ", ("ACCOUNT", "account"), ".\n"
    "The patient, a retired teacher from ", ("LOCATION", "city"), ", came with her husband ", ("NAME", "relative"),
    ". She can be reached on her cell at ", ("PHONE", "phone"), " or at ", ("EMAIL", "email"), ".\n"
    "Her mailing address is ", ("ADDRESS", "street"), ", ", ("LOCATION", "city"), ", TX ", ("ZIP", "zip"), ".\n"
    "She is followed by ", ("NAME", "doctor"), ", NP, and by Dr. ", ("NAME", "doctor2-last"),
    " for her thyroid. Next appointment ", ("DATE", "followup-dmy"), ".\n",
]
NURSING: list[Piece] = [
    "Nursing note - ", ("DATE", "admit-us"), "\nPt ", ("NAME", "patient-last"), ", ", ("NAME", "patient-first"),
    " (", ("AGE", "age90"), " y/o) resting comfortably. Spoke with patient's son, ", ("NAME", "relative"),
    ", at ", ("PHONE", "phone"), ". Pacemaker device serial ", ("DEVICE", "device"), ". Family to bring documents "
    "from the nursing home in ", ("LOCATION", "city"), " on ", ("DATE", "followup-md"), ". Patient portal: ",
    ("URL", "url"), ". SSN on file: ", ("SSN", "ssn"), ".\n",
]
FRESH_TEMPLATES = {"clinic": CLINIC, "nursing": NURSING}


def fill(template: list[Piece], filler: Filler) -> tuple[str, list[dict[str, Any]]]:
    text, spans = "", []
    for piece in template:
        if isinstance(piece, str):
            text += piece
        else:
            category, kind = piece
            value = filler.value(kind)
            spans.append({"start": len(text), "end": len(text) + len(value), "category": category})
            text += value
    return text, spans


def generate_notes(n: int = 200, seed: int = 13, fresh: bool = False) -> list[dict[str, Any]]:
    """``n`` notes cycling through the templates, each with gold PHI spans."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    templates = FRESH_TEMPLATES if fresh else TEMPLATES
    names = list(templates)
    notes = []
    for i in range(n):
        kind = names[i % len(names)]
        text, spans = fill(templates[kind], Filler(fake, rng))
        notes.append({"id": f"{kind}-{i:04d}", "type": kind, "text": text, "phi": spans})
    return notes


# ---------------------------------------------------------------------------------------------
# Assertion sentences: (template, assertion) with {c} for a concept
# ---------------------------------------------------------------------------------------------

ASSERTION_TEMPLATES: list[tuple[str, str]] = [
    ("The patient denies {c}.", "absent"), ("No {c}.", "absent"), ("Negative for {c}.", "absent"),
    ("There is no evidence of {c}.", "absent"), ("She has no {c} today.", "absent"),
    ("{C} was ruled out.", "absent"), ("Without {c}.", "absent"), ("He does not have {c}.", "absent"),
    ("No signs of {c} on exam.", "absent"), ("Free of {c}.", "absent"),
    ("Patient reports {c}.", "present"), ("She presents with {c}.", "present"), ("Positive for {c}.", "present"),
    ("Complains of {c} since yesterday.", "present"), ("Assessment: {c}.", "present"),
    ("He was admitted with {c}.", "present"), ("Exam notable for {c}.", "present"),
    ("Possible {c}.", "possible"), ("Concern for {c}.", "possible"), ("Likely {c}, will monitor.", "possible"),
    ("Cannot rule out {c}.", "possible"), ("{C} is suspected.", "possible"), ("Questionable {c}.", "possible"),
    ("Differential includes {c}.", "possible"), ("Probable {c}.", "possible"),
    ("History of {c}.", "historical"), ("She had {c} in 2015.", "historical"),
    ("Past medical history significant for {c}.", "historical"), ("Remote history of {c}.", "historical"),
    ("Prior {c}, resolved.", "historical"),
    ("Return to the ED if {c} develops.", "hypothetical"), ("Call if you experience {c}.", "hypothetical"),
    ("Watch for {c}.", "hypothetical"), ("If {c} recurs, return.", "hypothetical"),
    ("Mother had {c}.", "family"), ("Family history of {c}.", "family"), ("His father has {c}.", "family"),
    ("Her sister was diagnosed with {c}.", "family"), ("Brother with {c}.", "family"),
]
ASSERTION_CONCEPTS = ["chest pain", "pneumonia", "fever", "diabetes", "stroke", "breast cancer", "nausea",
                      "shortness of breath", "headache", "atrial fibrillation", "pulmonary embolism", "seizures",
                      "hypertension", "depression", "abdominal pain", "cough", "syncope", "deep vein thrombosis",
                      "myocardial infarction", "urinary tract infection"]


# Written after the first measurement and never used to tune the ConText rules (see EVAL.md).
FRESH_ASSERTION_TEMPLATES: list[tuple[str, str]] = [
    ("Patient states she has not had any {c}.", "absent"), ("Denies any {c} or dizziness.", "absent"),
    ("{C}: none.", "absent"), ("Review of systems negative for {c} and rash.", "absent"),
    ("No history of {c}.", "absent"), ("Never had {c}.", "absent"),
    ("Patient has had {c} for three days.", "present"), ("Ongoing {c}, worse at night.", "present"),
    ("Treated for {c} during this admission.", "present"), ("Findings consistent with {c}.", "possible"),
    ("{C} versus anxiety.", "possible"), ("Suspicious for {c}.", "possible"), ("Rule out {c}.", "possible"),
    ("May have {c}.", "possible"), ("Status post {c} in 2019.", "historical"),
    ("Diagnosed with {c} years ago.", "historical"),
    ("Should she develop {c}, she will call.", "hypothetical"), ("Seek care for any {c}.", "hypothetical"),
    ("Her mother and aunt both had {c}.", "family"), ("Grandfather died of {c}.", "family"),
]


def generate_assertions(seed: int = 13, fresh: bool = False) -> list[dict[str, Any]]:
    """Every template with concepts drawn per template (seeded): text, concept offsets, gold assertion."""
    rng = random.Random(seed)
    rows = []
    for i, (template, label) in enumerate(FRESH_ASSERTION_TEMPLATES if fresh else ASSERTION_TEMPLATES):
        for concept in rng.sample(ASSERTION_CONCEPTS, 5):
            filled_concept = concept.capitalize() if "{C}" in template else concept
            text = template.replace("{C}", filled_concept).replace("{c}", filled_concept)
            start = text.index(filled_concept)
            rows.append({"id": f"a{i:02d}-{concept}", "text": text, "start": start,
                         "end": start + len(concept), "concept": concept, "assertion": label})
    return rows
