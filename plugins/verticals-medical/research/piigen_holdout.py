"""Generic PII texts HELD OUT from tuning (issue 23, third round): never tune on these, never print their errors.

Written (templates, name, street and town lists below) and committed **before** the third round of generic-PII
rules was tuned, by the helper of that round, with templates in styles neither ``piigen_tune.py`` nor
``piigen_measure.py`` uses (voicemail transcripts, police and incident reports, rental applications, obituaries,
school forms, real-estate listings, itineraries, CVs, meeting minutes, reviews, court dockets, delivery notes,
invitations, donor lists, classified ads) and other people: names from lists written here (many origins, most of
them absent from Faker, whose names the rules list) and Faker locales neither other generator uses; towns from a
list of real places written here and those locales' cities; streets built from word lists written here (US,
British, Irish, Australian and Canadian shapes, rural routes, county roads, PO boxes).

Only aggregate figures of this set are read (``deid_eval.py`` refuses ``--errors`` on ``pii_holdout*`` files).
Gold labels are the task's categories; a whole inline address ("12 Oak St, Dover, DE 19901") is one ADDRESS span,
a state or a country alone is not PHI (no span), a ZIP code alone is a ZIP span.

    python plugins/verticals-medical/research/piigen_holdout.py --n 500 --seed 23 --out /tmp/pii_holdout.jsonl
"""

from __future__ import annotations

import random
import string
from typing import Any

from piigen_common import check, fill, generate_main

LOCALES = ["es_MX", "de_AT", "hu_HU", "hr_HR", "sk_SK", "lt_LT", "no_NO", "en_IE", "fr_CA", "id_ID", "en_PH"]
# written here: given names and surnames of many origins (romanised), chosen to be unlike the other generators'
OWN_FIRST = ["Nkechi", "Obinna", "Ifeoma", "Kofi", "Ama", "Zanele", "Lwazi", "Tendai", "Wanjiru", "Otieno",
             "Jia", "Hao", "Yifan", "Qiang", "Lan", "Duc", "Thuy", "Anh", "Bao", "Sung-min", "Eun-ji", "Daisuke",
             "Sakura", "Ren", "Arjun", "Kavya", "Rohan", "Deepika", "Ishaan", "Meera", "Bilal", "Zainab", "Karim",
             "Samira", "Reza", "Shirin", "Emre", "Elif", "Aylin", "Tomasz", "Agnieszka", "Bogdan", "Oksana",
             "Yaroslav", "Svetlana", "Mateus", "Thiago", "Luana", "Ximena", "Joaquín", "Guadalupe", "Tevita",
             "Losa", "Mahina", "Keoni", "Nizhoni", "Takoda", "Aroha", "Tane", "Saoirse", "Cormac", "Eilidh",
             "Dafydd", "Bronwen", "Ingrid", "Leif", "Astrid", "Grete", "Joost", "Femke", "Brendan", "Molly",
             "Dwayne", "Latoya", "Tyrone", "Shanice", "Cody", "Brittany", "Hunter", "Kayla"]
OWN_LAST = ["Nwachukwu", "Eze", "Asante", "Owusu", "Ndlovu", "Mahlangu", "Kamau", "Odhiambo", "Chen", "Wu",
            "Zhou", "Xu", "Le", "Vu", "Dang", "Hoang", "Seo", "Jung", "Kang", "Yamamoto", "Kobayashi", "Watanabe",
            "Iyer", "Menon", "Chatterjee", "Reddy", "Bhattacharya", "Qureshi", "Siddiqui", "Farouk", "Mansour",
            "Tehrani", "Hosseini", "Yilmaz", "Demir", "Kaya", "Wiśniewski", "Kaczmarek", "Shevchenko", "Bondarenko",
            "Kuznetsova", "Carvalho", "Figueiredo", "Quispe", "Mamani", "Villanueva", "Fifita", "Tuilagi",
            "Kahananui", "Tsosie", "Benally", "Te Rangi", "Ngata", "Ó Súilleabháin", "MacNeil", "Gallagher",
            "Llewellyn", "Pritchard", "Solberg", "Haugen", "Bakker", "Visser", "De Vries", "Washington", "Jefferson",
            "Brooks", "Hendricks", "Whitaker", "Pruitt", "Driscoll", "Kowalczyk-Reyes", "St. Clair", "D'Souza"]
# written here: real towns and cities of several countries
OWN_TOWNS = ["Dubuque", "Kalamazoo", "Tuscaloosa", "Walla Walla", "Bozeman", "Flagstaff", "Chattanooga", "Duluth",
             "Paducah", "Sheboygan", "Poughkeepsie", "Muskogee", "Yakima", "Bakersfield", "Sarasota", "Scranton",
             "Lubbock", "Ithaca", "Missoula", "Pocatello", "Saskatoon", "Moncton", "Kamloops", "Lethbridge",
             "Thunder Bay", "Ballymena", "Galway", "Kilkenny", "Dundee", "Aberystwyth", "Harrogate", "Grimsby",
             "Toowoomba", "Wagga Wagga", "Rotorua", "Invercargill", "Tromsø", "Aalborg", "Tampere", "Uppsala",
             "Ghent", "Utrecht", "Freiburg", "Graz", "Brno", "Kraków", "Cluj-Napoca", "Plovdiv", "Porto",
             "Valladolid", "Bologna", "Lyon", "Guadalajara", "Mendoza", "Arequipa", "Cebu City", "Bandung",
             "Mombasa", "Kumasi", "Durban"]
STREET_WORDS = ["Maple", "Juniper", "Quarry", "Tamarack", "Birchwood", "Old Mill", "Heron", "Cobblestone",
                "Foxglove", "Riverbend", "Sycamore", "Lighthouse", "Saddle Creek", "Magnolia", "Chestnut",
                "Kingfisher", "Orchard Hill", "Bluebonnet", "Wexford", "Ashgrove", "Pinecrest", "Sandpiper",
                "Larch", "Thornbury", "Wildrose", "Harvest Moon", "Cedar Hollow", "Marigold", "Dunmore",
                "Stonebridge", "Willow Bend", "Prospect", "Fairview", "Hawthorn", "Tanglewood", "Beacon"]
US_SUFFIX = ["Street", "St.", "Avenue", "Ave", "Road", "Rd.", "Lane", "Drive", "Dr", "Court", "Boulevard", "Way",
             "Place", "Terrace", "Circle", "Trail", "Parkway", "Loop", "Pike", "Crossing"]
UK_SUFFIX = ["Road", "Street", "Close", "Crescent", "Gardens", "Grove", "Mews", "Terrace", "Lane", "Row", "Walk"]
STATES = [("Iowa", "IA"), ("Michigan", "MI"), ("Alabama", "AL"), ("Washington", "WA"), ("Montana", "MT"),
          ("Tennessee", "TN"), ("Kentucky", "KY"), ("Wisconsin", "WI"), ("Oklahoma", "OK"), ("California", "CA"),
          ("Florida", "FL"), ("Pennsylvania", "PA"), ("New Mexico", "NM"), ("Maine", "ME"), ("Utah", "UT")]


class Values:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 311 + 29 * i)

    def _faker(self) -> Any:
        return self.fakers[self.rng.choice(LOCALES)]

    def _from_locale(self, method: str) -> str:
        """A value from a random locale that has the provider (not every locale has phones or cities)."""
        while True:
            f = self._faker()
            try:
                return str(getattr(f, method)())
            except AttributeError:
                continue

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.12 else text.upper() if r < 0.17 else text

    def first(self) -> str:
        return self.rng.choice(OWN_FIRST) if self.rng.random() < 0.5 else self._from_locale("first_name")

    def last(self) -> str:
        return self.rng.choice(OWN_LAST) if self.rng.random() < 0.5 else self._from_locale("last_name")

    def person(self) -> str:
        r = self.rng.random()
        first, last = self.first(), self.last()
        if r < 0.5:
            value = f"{first} {last}"
        elif r < 0.6:
            value = f"{first} {self.rng.choice(string.ascii_uppercase)}. {last}"
        elif r < 0.7:
            value = f"{last}, {first}"
        elif r < 0.8:
            value = f"{first[0]}. {last}"
        elif r < 0.9:
            value = last
        else:
            value = first
        return self.case(value)

    def full(self) -> str:
        return self.case(f"{self.first()} {self.last()}")

    def town(self) -> str:
        return self.rng.choice(OWN_TOWNS) if self.rng.random() < 0.6 else self._from_locale("city")

    def state(self) -> str:
        full, code = self.rng.choice(STATES)
        return full if self.rng.random() < 0.35 else code

    def zip(self) -> str:
        return f"{self.rng.randint(1001, 99929):05d}" + (f"-{self.rng.randint(1, 9999):04d}"
                                                        if self.rng.random() < 0.15 else "")

    def street(self) -> str:
        r = self.rng.random()
        n = self.rng.randint(1, 29999)
        word = self.rng.choice(STREET_WORDS)
        if r < 0.55:
            direction = self.rng.choice(["", "", "", "N. ", "South ", "W ", "NE "])
            unit = self.rng.choice(["", "", "", " Apt. 2B", " Unit 310", " #7", ", Apt 14", " Suite 220", " Lot 31"])
            return f"{n} {direction}{word} {self.rng.choice(US_SUFFIX)}{unit}"
        if r < 0.65:
            return f"{n} County Road {self.rng.randint(1, 999)}"
        if r < 0.72:
            return f"Rural Route {self.rng.randint(1, 9)}, Box {self.rng.randint(1, 400)}"
        if r < 0.8:
            return f"P.O. Box {self.rng.randint(10, 99999)}"
        if r < 0.9:
            return f"{self.rng.choice(['Flat 3, ', 'Unit 5/', '', ''])}{self.rng.randint(1, 240)} {word} " \
                   f"{self.rng.choice(UK_SUFFIX)}"
        return f"{n} Highway {self.rng.randint(1, 99)}"

    def us_address(self) -> str:
        sep = self.rng.choice([", ", ", ", " "])
        return f"{self.street()}{sep}{self.town()}, {self.state()} {self.zip()}"

    def intl_address(self) -> str:
        f = self.fakers[self.rng.choice(["de_AT", "hu_HU", "no_NO", "en_IE", "fr_CA", "es_MX", "en_PH"])]
        return f.address().replace("\n", ", ")

    def phone(self) -> str:
        a, b, c = self.rng.randint(205, 985), self.rng.randint(201, 998), self.rng.randint(0, 9999)
        if self.rng.random() < 0.6:
            return self.rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a} {b} {c:04d}", f"{a}.{b}.{c:04d}",
                                    f"+1-{a}-{b}-{c:04d}", f"({a}){b}-{c:04d}", f"{a}/{b}-{c:04d}"])
        return self._from_locale("phone_number")

    def email(self) -> str:
        return self._from_locale("email")

    def date(self) -> str:
        d = self._faker().date_between("-60y", "+1y")
        return self.rng.choice([d.strftime("%B %-d, %Y"), d.strftime("%-d %B %Y"), d.strftime("%m/%d/%Y"),
                                d.strftime("%b %-d"), d.strftime("%-m/%-d/%y"), d.strftime("%A, %b. %-d")])

    def licence(self) -> str:
        d, L = self.rng.randint, self.rng.choice
        return self.rng.choice([f"{L('ABCDEFGHJKLMNPRSTWY')}{d(1000000, 9999999)}",
                                f"{L('ABCDEFGHJKLMNPRSTWY')}{d(100, 999)}-{d(100, 999)}-{d(100, 999)}",
                                f"{d(10, 99)} {d(100, 999)} {d(1000, 9999)}", f"{d(100000000, 999999999)}",
                                f"{L('ABCDEFGHJ')}{L('ABCDEFGHJ')}-{d(100000, 999999)}"])

    def ssn(self) -> str:
        return f"{self.rng.randint(100, 665)}-{self.rng.randint(10, 99)}-{self.rng.randint(1000, 9999)}"

    def idn(self) -> str:
        return f"{self.rng.choice(string.ascii_uppercase)}{self.rng.choice(string.ascii_uppercase)}" \
               f"{self.rng.randint(100000, 9999999)}"


TEMPLATES = [
    # voicemail transcript
    "Voicemail (transcribed): hi it's {person}, calling about the apartment on {street}. you can reach me at "
    "{phone}, thanks.",
    # police / incident report
    "INCIDENT REPORT {date}. Reporting party {person} stated that a gray sedan struck a fence at {us_address}. "
    "The driver, identified as {person2} (DL {licence}), was cited.",
    # rental application
    "Rental application\nApplicant name {full}\nCurrent address {us_address}\nPrevious city {town}\n"
    "Phone {phone}\nSSN {ssn}",
    # obituary
    "{full}, 84, of {town}, passed away peacefully on {date}. She is survived by her son {person2} of {town2} "
    "and her sister {person3}.",
    # school form
    "Student: {full}   Grade: 4\nParent/guardian: {person2}\nHome address: {street}, {town} {zip}\n"
    "Emergency phone: {phone}",
    # real-estate listing
    "Just listed! Charming 3-bed bungalow at {us_address}. Open house {date}, hosted by agent {person} "
    "({phone}).",
    # itinerary
    "Itinerary for {full}: depart {town} {date}, arrive {town2} the same evening; hotel confirmation {idn}.",
    # CV
    "CURRICULUM VITAE\n{full}\n{street}\n{town}, {state} {zip}\n{email} | {phone}\nEducation: BSc, University "
    "of {town2}",
    # meeting minutes
    "Minutes: present were {person}, {person2} and {person3}. {person} will send the revised budget to the "
    "board before {date}.",
    # review
    "Five stars for the plumber! {person} showed up at our place in {town} within an hour and fixed everything.",
    # court docket
    "Case {case}: {full} v. {person2}. Plaintiff resides at {us_address}. Hearing set for {date}.",
    # delivery note
    "Delivery attempted {date}. Left with neighbour {person} at {house_street}. Driver contact "
    "{phone}.",
    # invitation
    "You are warmly invited to the wedding of {person} and {person2} on {date} at St. Brigid's, {town}. "
    "RSVP to {email}.",
    # donor list
    "With thanks to our donors: {person}, {person2}, the {last} family, and {person3} of {town}.",
    # classified ad
    "FOR SALE: oak dining table, barely used. Pick up in {town} ({zip}). Ask for {first}, {phone}.",
    # prose: places and zip alone
    "After twenty years in {town}, {full} moved her bakery to {town2}, where the {zip} zip code has few shops.",
    # prose: names without cue
    "{full} and {person2} spent the summer restoring the old barn outside {town}.",
    # letter with foreign address
    "Please forward all correspondence for {full} to {intl_address}. Her new number is {phone}.",
    # bank / account
    "Wire instructions: beneficiary {full}, beneficiary address {us_address}, contact e-mail {email}.",
    # sports news
    "{person} scored twice as {town} beat {town2} 3-1 on {date}; coach {person2} praised the defence.",
    # HR email
    "Subject: onboarding\n{first}, please welcome {full}, who joins the {town} office on {date}. Badge photo "
    "and passport {idn} are on file.",
    # parcel label (lower case)
    "to: {full_lower}\n{street_lower}\n{town_lower} {state} {zip}",
    # text message
    "txt from {phone}: {first} its me, new addr {street}, {town}. pls update",
    # neighbourhood forum
    "Lost cat near {street_only} in {town}! Answers to Mittens. Message {person} on {phone} or {email}.",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[v.rng.randrange(len(TEMPLATES))]
        street_only = f"{v.rng.choice(STREET_WORDS)} {v.rng.choice(US_SUFFIX + UK_SUFFIX)}"
        slots = {
            "person": ("NAME", v.person), "person2": ("NAME", v.person), "person3": ("NAME", v.person),
            "full": ("NAME", v.full), "first": ("NAME", lambda: v.case(v.first())),
            "last": ("NAME", v.last), "full_lower": ("NAME", lambda: v.full().lower()),
            "street": ("ADDRESS", v.street), "street_lower": ("ADDRESS", lambda: v.street().lower()),
            "street_only": ("ADDRESS", lambda s=street_only: s),
            "house_street": ("ADDRESS", lambda s=street_only: f"{v.rng.randint(2, 99)} {s}"),
            "us_address": ("ADDRESS", v.us_address), "intl_address": ("ADDRESS", v.intl_address),
            "town": ("LOCATION", v.town), "town2": ("LOCATION", v.town),
            "town_lower": ("LOCATION", lambda: v.town().lower()), "state": (None, v.state), "zip": ("ZIP", v.zip),
            "phone": ("PHONE", v.phone), "email": ("EMAIL", v.email), "date": ("DATE", v.date),
            "licence": ("LICENSE", v.licence), "ssn": ("SSN", v.ssn), "idn": ("ID", v.idn),
            "case": ("ID", lambda: f"24-CV-{v.rng.randint(1000, 9999)}"),
        }
        out.append({"id": f"holdout-{seed}-{i:04d}", **fill(template, slots)})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=500, seed=23)


if __name__ == "__main__":
    main()
