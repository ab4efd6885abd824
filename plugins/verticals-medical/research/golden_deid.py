"""The golden set of ``medical.deidentify`` (``verticals_medical/golden/deidentify.jsonl``): 40 synthetic notes.

Written for the golden set of issue 25 and for nothing else: eight note types in our own wording (a telephone
encounter, a radiology report, a consult, a social-work note, a pharmacy message, discharge instructions, a
home-health visit, an operative note), each filled five times from value lists written here (names of many
origins, real towns, streets, clinics) and numbers drawn by a seeded ``random.Random``. No Faker (its values
change between versions; the file must regenerate byte for byte), no PhysioNet note, no value or template of the
other generators (``synth.py``, ``piigen_*``, ``tagger_data.py``). Besides the PHI, every note holds text that is
*not* PHI and must stay: a year alone (gold label ``DateYear``) and an age under 90 (gold label ``AGE``), which
the Safe Harbor scorer leaves out of recall and counts against character precision when masked, and eponyms and
clinical words that look like names or places (Parkinson disease, Foley catheter, Glasgow Coma Scale, Lyme).

Never tuned on: no rule of the plugin was written or changed while this file existed, and its errors are not
printed by anyone working on the rules (``research/deid_eval.py`` refuses ``--errors`` on ``golden-`` ids).

    cd plugins/verticals-medical && python research/golden_deid.py --out verticals_medical/golden/deidentify.jsonl
"""

from __future__ import annotations

import random
import string
from typing import Any

from piigen_common import check, fill, generate_main

FIRST = ["Marisol", "Tadeusz", "Oluwaseun", "Bryony", "Anselm", "Keiko", "Dmitri", "Saoirse", "Teodora", "Kwame",
         "Ingrid", "Rustam", "Paloma", "Henrik", "Adaeze", "Lorcan", "Yusra", "Bartholomew", "Mireille", "Thandiwe",
         "Ezekiel", "Noemi", "Arjun", "Siobhan", "Gunnar", "Beatriz", "Ravi", "Ottilie", "Cornelius", "Hana",
         "Jolene", "Desmond", "Fenna", "Ignatius", "Priyanka", "Wendell", "Zofia", "Ambrose", "Lucinda", "Tobias"]
LAST = ["Vasquez-Ortega", "Kowalewski", "Adeyemi", "Hargreaves", "Lindstrom", "Takahashi", "Petrov", "Gallagher",
        "Marinescu", "Asante", "Bergqvist", "Karimov", "Echeverria", "Thorvaldsen", "Nwachukwu", "McAuliffe",
        "Haddad", "Pennington", "Delacroix", "Mahlangu", "Whitfield", "Castellano", "Venkataraman", "O'Driscoll",
        "Halvorsen", "Figueiredo", "Subramanian", "Ashworth", "Vanderbilt", "Morikawa", "Tillman", "Okonkwo",
        "Van der Berg", "Quaresma", "Ramaswamy", "Blackwood", "Wiśniewska", "Fairbanks", "Ellery", "Strand"]
TOWNS = ["Duluth", "Kalamazoo", "Pueblo", "Lafayette", "Billings", "Asheville", "Scranton", "Yakima", "Tuscaloosa",
         "Bozeman", "Rapid City", "Waco", "Flagstaff", "Eugene", "Saginaw", "Terre Haute", "Sioux Falls",
         "Burlington", "Lewiston", "Missoula", "Cheyenne", "Pocatello", "Lubbock", "Ithaca"]
STATES = ["MN", "MI", "CO", "LA", "MT", "NC", "PA", "WA", "AL", "TX", "AZ", "OR", "IN", "SD", "VT", "ME", "WY",
          "ID", "NY"]
STREET_NAMES = ["Larkspur", "Quarry Hill", "Sycamore", "Juniper Ridge", "Bellwether", "Old Tannery", "Heron Bay",
                "Pinecrest", "Ashby", "Copper Kettle", "Wrenfield", "Marigold", "Stonebridge", "Cattail"]
STREET_TYPES = ["Road", "Lane", "Court", "Drive", "Avenue", "Street", "Way", "Terrace"]
FACILITIES = ["Riverbend Medical Center", "St. Brendan's Hospital", "Northgate Family Clinic",
              "Holloway Rehabilitation Center", "Maple Hollow Nursing Home", "Eastfield Community Hospital"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

# ({slot}: PHI; {age}: an age under 90 and {year}: a year alone, both not PHI; everything else: clinical text)
TEMPLATES = [
    # telephone encounter
    "TELEPHONE ENCOUNTER {date_us} 14:20\n"
    "Caller: {rel_full} (daughter) calling about her father {pt_full}, DOB {dob}. Call back at {phone}.\n"
    "She reports he has had worsening ankle swelling for three days and gained 4 lb. He is {age} years old with "
    "heart failure diagnosed in {year}. Advised to take an extra dose of furosemide today and to weigh daily.\n"
    "Appointment made with Dr. {doc_last} at {facility} on {date_md}. {rel_first} verbalized understanding.\n"
    "Documented by {nurse_full}, RN",
    # radiology report
    "RADIOLOGY REPORT\nPatient: {pt_upper}   MRN: {mrn}   Accession: {accession}\n"
    "Exam date: {date_iso}   Referring physician: {doc_full}, MD\n"
    "EXAM: CT head without contrast.\nHISTORY: {age}-year-old with a fall and Parkinson disease.\n"
    "FINDINGS: No acute intracranial hemorrhage. Chronic small vessel ischemic change. Compared with the prior "
    "study of {year}, no interval change.\nIMPRESSION: No acute abnormality.\n"
    "Dictated by {rad_full}, MD on {date_long}. Results phoned to the ordering clinic at {phone}.",
    # consult note
    "CARDIOLOGY CONSULT\nDate of service: {date_abbr}\nRequested by: Dr. {doc_last}\n"
    "Reason: new atrial fibrillation.\n"
    "HPI: Mr. {pt_last} is a {age90} year old retired machinist from {town} admitted to {facility} with "
    "palpitations. A Holter monitor (serial {device}) showed atrial fibrillation with rapid ventricular response. "
    "He lives with his wife {rel_full} at {street}, {town}, {state} {zip}.\n"
    "EXAM: irregularly irregular rhythm, no murmur. Glasgow Coma Scale 15.\n"
    "PLAN: start apixaban, echocardiogram. Will follow. - {doc2_full}, MD, cardiology (pager {pager})",
    # social work note
    "SOCIAL WORK NOTE  {date_us}\nMet with patient {pt_full} and her son {rel_full} at the bedside. "
    "Patient is {age} and lived alone in an apartment at {street} until this admission; she stopped driving in "
    "{year}. Son lives in {town2} and can be reached at {phone2} or {email}.\n"
    "Medicaid ID {plan} verified. Plan: short-term rehabilitation at {facility}; referral faxed to {fax}.\n"
    "{sw_full}, LICSW",
    # pharmacy message
    "Pharmacy message - {date_slash}\nRe: {pt_first} {pt_last} (acct {account}, DOB {dob})\n"
    "Prescriber {doc_full}, DEA {dea}, sent warfarin 5 mg daily. Patient also takes amiodarone: INR may rise. "
    "Please confirm the dose with the clinic at {phone} before dispensing. Lyme titers from {year} noted.\n"
    "Pharmacist on duty: {pharm_full}, PharmD",
    # discharge instructions
    "DISCHARGE INSTRUCTIONS\nName: {pt_full}\nDischarged: {date_long} from {facility}, {town}\n"
    "You were treated for pneumonia. Keep taking amoxicillin until {date_md}. Your Foley catheter was removed "
    "before you left. Follow up with {doc_full} in two weeks; the clinic will call {phone} to schedule.\n"
    "Questions after hours: {phone2}. Patient portal: {url}\n"
    "Emergency contact on file: {rel_full}, {street}, {town}, {state} {zip}.",
    # home-health visit
    "Home health visit {date_iso}\nVisit to {pt_full} ({age90} y/o) at home, {street}, {town}. "
    "Wound on the left heel measured 2 x 3 cm, clean granulation tissue, dressing changed. Blood pressure "
    "132/78, pulse 76. Granddaughter {rel_first} present and helping with meals. Medicare beneficiary ID "
    "{mbi}. Next visit {date_md}.\nNurse: {nurse_full}, RN, cell {phone}",
    # operative note
    "OPERATIVE NOTE\nPatient: {pt_last}, {pt_first}   MRN {mrn}   Date of surgery: {date_us}\n"
    "Surgeon: {doc_full}, MD   Assistant: {doc2_full}, MD\n"
    "PROCEDURE: laparoscopic cholecystectomy.\nINDICATIONS: {age}-year-old with symptomatic gallstones since "
    "{year}.\nFINDINGS: inflamed gallbladder, no bile leak. Estimated blood loss 20 mL.\n"
    "Implant: none. Specimen to pathology, label {accession}.\nCondition stable to recovery. Dictated {date_abbr} "
    "at workstation {ip}.",
]


class Values:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.year = 0  # the note's admission year (the dates of one note are near each other)
        self.month = 1

    def first(self) -> str:
        return self.rng.choice(FIRST)

    def last(self) -> str:
        return self.rng.choice(LAST)

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def day(self) -> int:
        return self.rng.randint(1, 28)

    def new_note(self) -> None:
        self.year = self.rng.randint(2016, 2025)
        self.month = self.rng.randint(1, 12)

    def date(self, style: str) -> str:
        d, m, y = self.day(), self.month, self.year
        return {"us": f"{m:02d}/{d:02d}/{y}", "iso": f"{y}-{m:02d}-{d:02d}", "long": f"{MONTHS[m - 1]} {d}, {y}",
                "abbr": f"{MONTHS[m - 1][:3]} {d}, {y}", "md": f"{m}/{d}", "slash": f"{m}/{d}/{y % 100:02d}"}[style]

    def dob(self) -> str:
        return f"{self.rng.randint(1, 12):02d}/{self.day():02d}/{self.rng.randint(1931, 1990)}"

    def phone(self) -> str:
        area, mid, end = self.rng.randint(201, 989), self.rng.randint(200, 989), self.digits(4)
        return self.rng.choice([f"({area}) {mid}-{end}", f"{area}-{mid}-{end}", f"{area}.{mid}.{end}"])

    def street(self) -> str:
        return f"{self.rng.randint(12, 9870)} {self.rng.choice(STREET_NAMES)} {self.rng.choice(STREET_TYPES)}"

    def email(self, first: str, last: str) -> str:
        last = last.lower().replace(" ", "").replace("'", "")
        return f"{first.lower()}.{last}{self.rng.randint(1, 99)}@{self.rng.choice(['mailbox.example', 'example.net'])}"


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        v.new_note()
        pt_first, pt_last, rel_first = v.first(), v.last(), v.first()
        rel_last = pt_last if v.rng.random() < 0.5 else v.last()
        slots: dict[str, tuple[str | None, Any]] = {
            "pt_full": ("NAME", lambda f=pt_first, la=pt_last: f"{f} {la}"),
            "pt_upper": ("NAME", lambda f=pt_first, la=pt_last: f"{la.upper()}, {f.upper()}"),
            "pt_first": ("NAME", lambda f=pt_first: f), "pt_last": ("NAME", lambda la=pt_last: la),
            "rel_full": ("NAME", lambda f=rel_first, la=rel_last: f"{f} {la}"),
            "rel_first": ("NAME", lambda f=rel_first: f),
            "doc_full": ("NAME", lambda: f"{v.first()} {v.last()}"), "doc_last": ("NAME", v.last),
            "doc2_full": ("NAME", lambda: f"{v.first()} {v.last()}"),
            "nurse_full": ("NAME", lambda: f"{v.first()} {v.last()}"),
            "rad_full": ("NAME", lambda: f"{v.first()} {v.rng.choice(string.ascii_uppercase)}. {v.last()}"),
            "sw_full": ("NAME", lambda: f"{v.first()} {v.last()}"),
            "pharm_full": ("NAME", lambda: f"{v.first()} {v.last()}"),
            "date_us": ("DATE", lambda: v.date("us")), "date_iso": ("DATE", lambda: v.date("iso")),
            "date_long": ("DATE", lambda: v.date("long")), "date_abbr": ("DATE", lambda: v.date("abbr")),
            "date_md": ("DATE", lambda: v.date("md")), "date_slash": ("DATE", lambda: v.date("slash")),
            "dob": ("DATE", v.dob),
            "age": ("AGE", lambda: str(v.rng.randint(34, 88))),  # not PHI (under 90): must stay
            "age90": ("AGE", lambda: str(v.rng.randint(90, 101))),
            "year": ("DateYear", lambda: str(v.rng.randint(1998, 2015))),  # not PHI: must stay
            "phone": ("PHONE", v.phone), "phone2": ("PHONE", v.phone), "pager": ("PHONE", lambda: v.digits(5)),
            "fax": ("FAX", v.phone),
            "email": ("EMAIL", lambda f=rel_first, la=rel_last: v.email(f, la)),
            "mrn": ("MRN", lambda: v.rng.choice(["", "MRN-"]) + v.digits(8)),
            "accession": ("ID", lambda: f"{v.rng.choice(['ACC', 'RD', 'SP'])}{v.digits(9)}"),
            "account": ("ACCOUNT", lambda: v.digits(10)),
            "plan": ("HEALTH_PLAN", lambda: f"{v.rng.choice(string.ascii_uppercase)}{v.digits(8)}"),
            "mbi": ("HEALTH_PLAN", lambda: f"{v.rng.randint(1, 9)}{v.rng.choice('EGJKMPRTUWY')}"
                                          f"{v.rng.choice('ACDEFGHJKMNPQRTUVWXY')}{v.digits(1)}-"
                                          f"{v.rng.choice('ACDEFGHJKMNPQRTUVWXY')}{v.digits(2)}-"
                                          f"{v.rng.choice('ACDEFGHJKMNPQRTUVWXY')}{v.digits(3)}"),
            "dea": ("LICENSE", lambda: f"{v.rng.choice('ABFM')}{v.rng.choice(string.ascii_uppercase)}{v.digits(7)}"),
            "device": ("DEVICE", lambda: f"HM{v.digits(7)}"),
            "street": ("ADDRESS", v.street), "town": ("LOCATION", lambda: v.rng.choice(TOWNS)),
            "town2": ("LOCATION", lambda: v.rng.choice(TOWNS)), "state": (None, lambda: v.rng.choice(STATES)),
            "zip": ("ZIP", lambda: v.digits(5)), "facility": ("LOCATION", lambda: v.rng.choice(FACILITIES)),
            "url": ("URL", lambda: f"https://portal.{v.rng.choice(['riverbend', 'northgate', 'eastfield'])}"
                                   f"-health.example/{v.digits(6)}"),
            "ip": ("IP", lambda: f"10.{v.rng.randint(0, 255)}.{v.rng.randint(0, 255)}.{v.rng.randint(1, 254)}"),
        }
        out.append({"id": f"golden-{i + 1:02d}", **fill(template, slots)})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=40, seed=2025)


if __name__ == "__main__":
    main()
