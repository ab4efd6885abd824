"""Generic PII texts to READ errors on in the third round of issue 23 (a tuning set, like ``piigen_tune.py``).

Written by the helper of that round after ``piigen_holdout.py`` (held out) was committed, to find general
failures without reading the held-out sets: other templates (forum posts, complaint letters, order
confirmations, alumni notes, tenancy notices, dispatch logs, guest books, lost-and-found notices, newsletters),
names from Faker locales and a list written here that the held-out generator does not use, towns of the
``en_US``/``en_GB``/``de_DE``/``fr_FR``/``es_ES``/``it_IT`` Faker providers and a list of real towns written here
(not those of the held-out list), phones in the national shapes of those locales.

    python plugins/verticals-medical/research/piigen_dev.py --n 300 --seed 5 --out /tmp/pii_dev.jsonl
"""

from __future__ import annotations

import random
import string
from typing import Any

from piigen_common import check, fill, generate_main

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "pt_PT", "el_GR", "en_IN"]
FIRST = ["Abimbola", "Chukwuemeka", "Yaw", "Efua", "Nomvula", "Baraka", "Xin", "Ming", "Linh", "Quang", "Min-jun",
         "Ha-eun", "Kenji", "Aiko", "Vikram", "Lakshmi", "Farhan", "Ayesha", "Hamza", "Noor", "Dariush", "Leila",
         "Cem", "Zeynep", "Piotr", "Halina", "Taras", "Olena", "Rafael", "Bruna", "Inti", "Valentina", "Sione",
         "Malia", "Kalani", "Ahanu", "Wiremu", "Niamh", "Oisín", "Rhiannon", "Sven", "Sigrid", "Maarten",
         "Tamika", "Jamal", "Trevor", "Destiny"]
LAST = ["Adebayo-Cole", "Okafor", "Appiah", "Dube", "Mwangi", "Lin", "Guo", "Ngo", "Bui", "Shin", "Lim", "Sato",
        "Ishikawa", "Krishnan", "Nair", "Banerjee", "Chaudhry", "Rahman", "Khalil", "Sadeghi", "Ozturk", "Arslan",
        "Nowak", "Zielinski", "Melnyk", "Tkachenko", "Barbosa", "Ribeiro", "Condori", "Taufa", "Akana", "Whitehorse",
        "Parata", "Ní Bhriain", "Ó Briain", "Morgan-Jones", "Lindqvist", "Janssen", "Okoro", "Dlamini-Smith"]
TOWNS = ["Cedar Rapids", "Battle Creek", "Muncie", "Grand Forks", "Eau Claire", "Bangor", "Gainesville",
         "Roanoke", "Provo", "Fargo", "Red Deer", "Sherbrooke", "Nanaimo", "Limerick", "Sligo", "Inverness",
         "Swansea", "Carlisle", "Ipswich", "Bendigo", "Ballarat", "Napier", "Bergen", "Odense", "Oulu", "Linköping",
         "Leuven", "Groningen", "Heidelberg", "Linz", "Olomouc", "Poznań", "Timișoara", "Varna", "Coimbra",
         "Salamanca", "Verona", "Grenoble", "Monterrey", "Rosario", "Cusco", "Davao", "Yogyakarta", "Kisumu",
         "Tamale", "Pietermaritzburg"]


class Values:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 577 + 13 * i)

    def _faker(self) -> Any:
        return self.fakers[self.rng.choice(LOCALES)]

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.1 else text.upper() if r < 0.15 else text

    def first(self) -> str:
        return self.rng.choice(FIRST) if self.rng.random() < 0.5 else self._faker().first_name()

    def last(self) -> str:
        return self.rng.choice(LAST) if self.rng.random() < 0.5 else self._faker().last_name()

    def person(self) -> str:
        r = self.rng.random()
        if r < 0.55:
            return self.case(f"{self.first()} {self.last()}")
        if r < 0.7:
            return self.case(f"{self.first()} {self.rng.choice(string.ascii_uppercase)}. {self.last()}")
        if r < 0.85:
            return self.case(self.last())
        return self.case(self.first())

    def town(self) -> str:
        return self.rng.choice(TOWNS) if self.rng.random() < 0.5 else self._faker().city()

    def state(self) -> str:
        return self.fakers["en_US"].state_abbr() if self.rng.random() < 0.6 else self.fakers["en_US"].state()

    def zip(self) -> str:
        return self.fakers["en_US"].zipcode()

    def street(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return self.fakers["en_US"].street_address()
        if r < 0.75:
            return self.fakers["en_GB"].street_address()
        if r < 0.85:
            return f"{self.rng.randint(100, 99999)} Old {self.rng.choice(['Post', 'Mill', 'Farm'])} Rd"
        return f"PO Box {self.rng.randint(1, 9999)}"

    def address(self) -> str:
        return f"{self.street()}, {self.town()}, {self.state()} {self.zip()}"

    def phone(self) -> str:
        return self._faker().phone_number()

    def email(self) -> str:
        return self._faker().email()

    def date(self) -> str:
        d = self._faker().date_between("-50y", "today")
        return self.rng.choice([d.strftime("%d.%m.%Y"), d.strftime("%B %Y"), d.strftime("%-d/%-m/%Y"),
                                d.strftime("%a %d %b"), d.strftime("%Y/%m/%d")])

    def ident(self) -> str:
        return f"{self.rng.randint(10, 99)}{self.rng.choice(string.ascii_uppercase)}{self.rng.randint(10000, 99999)}"


TEMPLATES = [
    "Posted by {person} from {town}: has anyone else had trouble with the bins on {street}?",
    "Dear Sir or Madam, I am writing to complain about my order {ident}. I live at {address} and nothing arrived."
    "\nYours faithfully, {person}",
    "Order confirmation for {person}. Ships to {street}, {town} {zip}. Questions? {phone}",
    "Alumni news: {person} ('09) now teaches in {town}; {person2} married {person3} last spring.",
    "NOTICE TO TENANT {person}: the landlord will inspect the unit at {street} on {date}.",
    "Dispatch log {date}: caller {person} ({phone}) reports smoke near {town} junction.",
    "Guest book: lovely stay! - {person} & {person2}, {town}",
    "Found: a brown wallet belonging to {person}, near {street}. Call {phone}.",
    "In this month's newsletter, {person} from our {town} branch shares her recipe.",
    "{person} ({email}) wrote from {town} to say the parcel never left {town2}.",
    "We welcome new members {person} and {person2}, both of {town}.",
    "Residence: {town}, {state} {zip}. Contact: {person}, tel. {phone}.",
    "my cousin {first} lives in {town} now, near the {zip} area",
    "Witnesses: {person}, {person2}. Location of incident: {address}.",
    "Re: {person}. The family moved from {town} to {town2} on {date}; new postcode {zip}.",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[v.rng.randrange(len(TEMPLATES))]
        slots = {
            "person": ("NAME", v.person), "person2": ("NAME", v.person), "person3": ("NAME", v.person),
            "first": ("NAME", lambda: v.case(v.first())), "street": ("ADDRESS", v.street),
            "address": ("ADDRESS", v.address), "town": ("LOCATION", v.town), "town2": ("LOCATION", v.town),
            "state": (None, v.state), "zip": ("ZIP", v.zip), "phone": ("PHONE", v.phone), "email": ("EMAIL", v.email),
            "date": ("DATE", v.date), "ident": ("ID", v.ident),
        }
        out.append({"id": f"dev-{seed}-{i:04d}", **fill(template, slots)})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=300, seed=5)


if __name__ == "__main__":
    main()
