"""Generic PII sentences to MEASURE on (issue 23): never tune on these, never print their errors.

Written before any rule for generic PII was tuned, with other templates (support tickets, claims, HR records,
news-like prose, SMS, shipping labels, JSON records, reference letters, bank transfers) and other people
(Faker locales the tuning generator does not use, plus name lists written here) than ``piigen_tune.py``.
Only aggregate figures of this set are read (``pii_eval.py --measure``). Gold labels as in the tuning set; a
whole inline address is one ADDRESS span.

    python plugins/verticals-medical/research/piigen_measure.py --n 500 --seed 7 --out /tmp/pii_measure.jsonl
"""

from __future__ import annotations

import random
import string
from typing import Any

from piigen_common import check, fill, generate_main

LOCALES = ["nl_NL", "pt_BR", "sv_SE", "en_AU", "en_CA", "fi_FI", "cs_CZ", "tr_TR", "en_NZ", "da_DK", "ro_RO"]
# names of origins the Latin-script Faker locales cover poorly (written here, romanised)
OWN_FIRST = ["Adebayo", "Chidinma", "Oluwaseun", "Wei", "Xiaoling", "Jun", "Mei", "Tuan", "Nguyet", "Minh",
             "Ji-woo", "Seo-yeon", "Hyun", "Fatima", "Youssef", "Omar", "Layla", "Aarav", "Priya", "Sanjay",
             "Kwame", "Abena", "Thandiwe", "Sipho", "Haruto", "Yuki", "Aiyana", "Tariq", "Nasrin", "Dmitri"]
OWN_LAST = ["Okonkwo", "Adeyemi", "Zhang", "Liu", "Huang", "Nguyen", "Tran", "Pham", "Kim", "Park", "Choi",
            "Haddad", "El-Amin", "Khoury", "Patel", "Ramanathan", "Mensah", "Boateng", "Dlamini", "Nakamura",
            "Tanaka", "Begay", "Yazzie", "Rahimi", "Karimov", "Volkov", "Abernathy-Osei", "O'Donnell", "McAllister"]
SUFFIXES = ["St", "Street", "Ave", "Avenue", "Blvd", "Rd", "Road", "Ln", "Lane", "Dr", "Drive", "Ct", "Way",
            "Pl", "Terrace", "Pkwy", "Circle", "Hwy"]
STATES = [("Ohio", "OH"), ("Texas", "TX"), ("Oregon", "OR"), ("Georgia", "GA"), ("Illinois", "IL"),
          ("New York", "NY"), ("Arizona", "AZ"), ("Minnesota", "MN"), ("Virginia", "VA"), ("Colorado", "CO")]


class People:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 1000 + 17 * i)
        self.us = Faker("en_US")
        self.us.seed_instance(seed * 7919)

    def first(self) -> str:
        if self.rng.random() < 0.35:
            return self.rng.choice(OWN_FIRST)
        return self.fakers[self.rng.choice(LOCALES)].first_name()

    def last(self) -> str:
        if self.rng.random() < 0.35:
            return self.rng.choice(OWN_LAST)
        return self.fakers[self.rng.choice(LOCALES)].last_name()

    def styled(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.15 else text.upper() if r < 0.22 else text

    def person(self) -> str:
        r = self.rng.random()
        first, last = self.first(), self.last()
        if r < 0.55:
            value = f"{first} {last}"
        elif r < 0.7:
            value = f"{last}, {first}"
        elif r < 0.8:
            value = f"{first} {self.rng.choice(string.ascii_uppercase)} {last}"
        else:
            value = f"{first[0]}.{self.rng.choice(string.ascii_uppercase)}. {last}" if r < 0.87 else first
        return self.styled(value)

    def us_street(self) -> str:
        number = str(self.rng.randint(1, 99999))
        direction = self.rng.choice(["", "", "", "N ", "S. ", "East ", "W "])
        unit = self.rng.choice(["", "", "", " Apt 3C", " Unit 12", " #204", ", Suite 1100", " Fl 2"])
        return f"{number} {direction}{self.us.street_name().rsplit(' ', 1)[0]} {self.rng.choice(SUFFIXES)}{unit}"

    def us_city(self) -> str:
        return self.us.city()

    def state(self) -> str:
        full, abbr = self.rng.choice(STATES)
        return full if self.rng.random() < 0.3 else abbr

    def us_zip(self) -> str:
        return f"{self.rng.randint(1001, 99950):05d}" + (f"-{self.rng.randint(0, 9999):04d}"
                                                        if self.rng.random() < 0.2 else "")

    def us_address(self) -> str:
        sep = self.rng.choice([", ", ", ", " "])
        return f"{self.us_street()}{sep}{self.us_city()}, {self.state()} {self.us_zip()}"

    def ca_address(self) -> str:
        f = self.fakers["en_CA"]
        return f"{f.street_address()}, {f.city()}, {f.province_abbr()} {f.postcode()}"

    def other_address(self) -> str:
        f = self.fakers[self.rng.choice(["nl_NL", "sv_SE", "en_AU", "da_DK", "pt_BR", "fi_FI"])]
        return f.address().replace("\n", ", ")

    def town(self) -> str:
        f = self.fakers[self.rng.choice(LOCALES)]
        return f.city()

    def phone(self) -> str:
        a, b, c = self.rng.randint(201, 989), self.rng.randint(200, 999), self.rng.randint(0, 9999)
        r = self.rng.random()
        if r < 0.55:
            return self.rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}",
                                    f"1-{a}-{b}-{c:04d}", f"+1 ({a}) {b} {c:04d}", f"{a}-{b}-{c:04d} ext. 42"])
        return self.fakers[self.rng.choice(LOCALES)].phone_number()

    def licence(self) -> str:
        d, L = self.rng.randint, self.rng.choice
        return self.rng.choice([f"{L('ABCDEFGHJKLMNPRSTW')}{d(100, 999)}-{d(1000, 9999)}-{d(1000, 9999)}",
                                f"{d(1, 9)}{d(10, 99)}-{d(10, 99)}-{d(1000, 9999)}",
                                f"{L('ABCDEFGHJKLMNPRSTW')}{d(10000000, 99999999)}",
                                f"{d(100000000, 999999999)}", f"{L('ABCDEFGH')}{L('ABCDEFGH')}{d(10000, 99999)}"])

    def date(self) -> str:
        d = self.us.date_between("-70y", "+1y")
        return self.rng.choice([d.strftime("%b. %d, %Y"), d.strftime("%d/%m/%Y"), d.strftime("%A, %B %-d"),
                                d.strftime("%-d %B %Y"), d.strftime("%m-%d-%Y")])

    def email(self) -> str:
        return self.fakers[self.rng.choice(LOCALES)].email()


TEMPLATES = [
    "Ticket #4471 — customer {person} reports the courier left the box at {us_address} instead of next door.",
    "CLAIM FORM\nInsured: {person}\nMailing address: {us_street}\n{us_city}, {state} {us_zip}\nContact no. "
    "{phone}\nDriver licence no. {licence}",
    "Employee record: {person}, hired {date}, badge pickup at the {town} office. Emergency contact: {person2} "
    "({phone}).",
    "Local resident {person} told reporters that the fire on {us_street} started shortly after midnight.",
    "sms from {phone}: running late, tell {person} to wait at {town} station",
    "SHIP TO:\n{person}\n{us_address}\nTEL {phone}",
    '{"customer": "{person}", "street": "{us_street}", "city": "{us_city}", "zip": "{us_zip}", '
    '"email": "{email}"}',
    "It is my pleasure to recommend {person}, who worked with me in {town} for three years. {person2} can "
    "confirm this.",
    "Transfer to {person}, account holder at {ca_address}; questions to {email}.",
    "I was pulled over near {town}; the officer copied my driver's license {licence} and my address, {us_address}.",
    "Our neighbour {person} moved from {town} to {town2} in {date}.",
    "Please update: new residence {other_address}, landline {phone}.",
    "{person} ({email}) booked a table for four; call back on {phone}.",
    "Witness statement of {person}, DL {licence}, given {date} at {us_address}.",
    "Congratulations to {person} and {person2}, married last Saturday in {town}!",
    "Patient intake: {person}; lives with daughter {first} in {us_city}, {state}; ZIP code {us_zip}.",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    p = People(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[p.rng.randrange(len(TEMPLATES))]
        slots = {
            "person": ("NAME", p.person), "person2": ("NAME", p.person),
            "first": ("NAME", lambda: p.styled(p.first())),
            "us_address": ("ADDRESS", p.us_address), "us_street": ("ADDRESS", p.us_street),
            "us_city": ("LOCATION", p.us_city), "state": (None, p.state), "us_zip": ("ZIP", p.us_zip),
            "ca_address": ("ADDRESS", p.ca_address), "other_address": ("ADDRESS", p.other_address),
            "town": ("LOCATION", p.town), "town2": ("LOCATION", p.town), "phone": ("PHONE", p.phone),
            "licence": ("LICENSE", p.licence), "date": ("DATE", p.date), "email": ("EMAIL", p.email),
        }
        out.append({"id": f"measure-{seed}-{i:04d}", **fill(template, slots)})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=500, seed=7)


if __name__ == "__main__":
    main()
