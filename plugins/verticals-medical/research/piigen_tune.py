"""Generic PII sentences to TUNE the recognizers on (issue 23): letters, forms, e-mails, chat, tables, prose.

Its twin ``piigen_measure.py`` has other templates and other people and is only ever scored in aggregate;
this one may be read, error by error, while writing rules. Gold labels are the task's categories (NAME,
ADDRESS, LOCATION, ZIP, PHONE, LICENSE, DATE, EMAIL, SSN, ID, AGE); a whole inline address ("12 Oak St,
Dover, DE 19901") is one ADDRESS span (street, city, state and ZIP together).

    python plugins/verticals-medical/research/piigen_tune.py --n 400 --seed 1 --out /tmp/pii_tune.jsonl
"""

from __future__ import annotations

import random
import string
from typing import Any

from piigen_common import check, fill, generate_main

LOCALES = ["en_US", "en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "en_IN", "pl_PL", "ga_IE"]


class Values:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in set(LOCALES)}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 100 + i)
        self.us = self.fakers["en_US"]

    def faker(self):
        return self.fakers[self.rng.choice(LOCALES)]

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.12 else text.upper() if r < 0.18 else text

    def name(self) -> str:
        f = self.faker()
        r = self.rng.random()
        if r < 0.5:
            value = f"{f.first_name()} {f.last_name()}"
        elif r < 0.65:
            value = f"{f.first_name()} {self.rng.choice(string.ascii_uppercase)}. {f.last_name()}"
        elif r < 0.75:
            value = f"{f.first_name()[0]}. {f.last_name()}"
        elif r < 0.85:
            value = f.first_name()
        else:
            value = f.last_name()
        return self.case(value)

    def full_name(self) -> str:
        f = self.faker()
        return self.case(f"{f.first_name()} {f.last_name()}")

    def street(self) -> str:
        value = self.us.street_address()
        if self.rng.random() < 0.25:
            value += self.rng.choice([", Apt ", " Apt. ", ", Suite ", " #", ", Unit "]) + str(self.rng.randint(1, 999))
        return value

    def city(self) -> str:
        return self.faker().city() if self.rng.random() < 0.3 else self.us.city()

    def zip(self) -> str:
        return self.us.zipcode() if self.rng.random() < 0.8 else self.us.zipcode_plus4()

    def address_inline(self) -> str:
        return f"{self.street()}, {self.us.city()}, {self.us.state_abbr()} {self.zip()}"

    def address_foreign(self) -> str:
        f = self.fakers[self.rng.choice(["en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL"])]
        return f.address().replace("\n", ", ")

    def phone(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return self.us.phone_number()
        if r < 0.8:
            return self.faker().phone_number()
        a, b, c = self.rng.randint(200, 989), self.rng.randint(200, 999), self.rng.randint(0, 9999)
        return self.rng.choice([f"{a}.{b}.{c:04d}", f"({a}) {b}-{c:04d}", f"+1 {a} {b} {c:04d}", f"{a}{b}{c:04d}"])

    def licence(self) -> str:
        L, d = self.rng.choice, self.rng.randint
        return self.rng.choice([
            f"{L(string.ascii_uppercase)}{d(1000000, 9999999)}",                      # CA
            f"{d(100, 999)} {d(100, 999)} {d(100, 999)}",                             # NY
            f"{L(string.ascii_uppercase)}{d(100, 999)}-{d(100, 999)}-{d(10, 99)}-{d(100, 999)}-{d(0, 9)}",  # FL
            f"{L(string.ascii_uppercase)}{L(string.ascii_uppercase)}{d(100000, 999999)}",
            f"{d(10000000, 99999999)}",                                               # TX
        ])

    def date(self) -> str:
        d = self.us.date_between("-80y", "today")
        return self.rng.choice([d.strftime("%m/%d/%Y"), d.strftime("%B %d, %Y"), d.strftime("%d %b %Y"),
                                d.strftime("%Y-%m-%d"), d.strftime("%-m/%-d/%y")])

    def email(self) -> str:
        return self.faker().email()

    def ssn(self) -> str:
        return self.us.ssn()

    def passport(self) -> str:
        return f"{self.rng.choice(string.ascii_uppercase)}{self.rng.randint(10000000, 99999999)}"

    def age(self) -> str:
        return str(self.rng.randint(90, 104))


TEMPLATES = [
    # letters
    "Dear {name},\n\nThank you for your letter of {date}. We will send the forms to {address} by the end of the "
    "month.\n\nKind regards,\n{name2}",
    "To whom it may concern,\n\nI, {full}, residing at {street} in {city}, authorise {name2} to collect my records.\n"
    "Signed on {date}.",
    # forms
    "Name: {full}\nAddress: {street}\nCity: {city}\nState: {state}\nZIP: {zip}\nPhone: {phone}\nDOB: {date}",
    "Applicant: {full} | DL#: {licence} | Phone {phone} | Email {email}",
    "First name: {first}   Last name: {last}\nDriver's license number: {licence}\nSSN: {ssn}",
    # e-mails
    "From: {email}\nTo: {email2}\nSubject: visit\n\nHi {first},\nI'll be at {address} on {date}. Call me at {phone}.\n"
    "{name2}",
    "hey {first}, can you forward this to {name2}? my new address is {address} and my cell is {phone}",
    # chat
    "[10:42] {first}: my license is {licence}, issued in {city}\n[10:43] agent: thanks {first}, confirmed",
    "user: i moved to {city} last week, new zip {zip}\nbot: Noted, {name}.",
    # tables
    "id,name,phone,city\n{idn},{full},{phone},{city}",
    "| Name | Street | ZIP |\n|---|---|---|\n| {full} | {street} | {zip} |",
    # prose
    "{full} was born on {date} and grew up in {city} before moving to {address}.",
    "Yesterday {name} met {name2} outside the library in {city}.",
    "The parcel for {full} should be delivered to {address_foreign}.",
    "Please contact {name} at {phone} or {email} regarding passport {passport}.",
    "My name is {full} and I am {age} years old; I live on {street}, {city}.",
    "{name} and her brother {name2} drove from {city} to {city2} on {date}.",
    "Send the refund to {full}, {address}. Reference SSN {ssn}.",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        first, last = v.faker().first_name(), v.faker().last_name()
        slots = {
            "name": ("NAME", v.name), "name2": ("NAME", v.name), "full": ("NAME", v.full_name),
            "first": ("NAME", lambda first=first: v.case(first)), "last": ("NAME", lambda last=last: v.case(last)),
            "street": ("ADDRESS", v.street), "city": ("LOCATION", v.city), "city2": ("LOCATION", v.city),
            "state": (None, v.us.state_abbr), "zip": ("ZIP", v.zip), "address": ("ADDRESS", v.address_inline),
            "address_foreign": ("ADDRESS", v.address_foreign), "phone": ("PHONE", v.phone),
            "licence": ("LICENSE", v.licence), "date": ("DATE", v.date), "email": ("EMAIL", v.email),
            "email2": ("EMAIL", v.email), "ssn": ("SSN", v.ssn), "passport": ("ID", v.passport),
            "age": ("AGE", v.age), "idn": (None, lambda: str(v.rng.randint(1, 999))),
        }
        row = fill(template, slots)
        out.append({"id": f"tune-{seed}-{i:04d}", **row})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=400, seed=1)


if __name__ == "__main__":
    main()
