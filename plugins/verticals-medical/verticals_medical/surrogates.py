"""Replacement values for PHI: masks, keyed hashes and consistent surrogates.

Everything is derived from an HMAC of the normalised PHI value under a key
(the job id, or a user secret given as ``--surrogate-key``), so the same value
maps to the same replacement in every chunk and worker of a job without any
shared state. Dates are shifted by one offset per patient (derived the same
way from the patient key), so intervals between dates survive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import string
import threading
from functools import lru_cache

from faker import Faker


def derive_key(job_id: str, secret: str | None) -> bytes:
    """Key of a job: the user's secret when given (stable across jobs), else the job id."""
    material = f"secret:{secret}" if secret else f"job:{job_id}"
    return hashlib.sha256(material.encode("utf-8")).digest()


def normalise(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().lower().strip(".,;:"))


class Surrogates:
    """Replacement values under one key."""

    def __init__(self, key: bytes, max_shift_days: int = 365):
        self.key = key
        self.max_shift_days = max(1, max_shift_days)

    # --- primitives -----------------------------------------------------------------------
    def digest(self, namespace: str, value: str) -> bytes:
        return hmac.new(self.key, f"{namespace}\x00{normalise(value)}".encode(), hashlib.sha256).digest()

    def number(self, namespace: str, value: str) -> int:
        return int.from_bytes(self.digest(namespace, value)[:8], "big")

    def hash_token(self, category: str, value: str, length: int = 10) -> str:
        return self.digest(category, value).hex()[:length]

    def date_offset(self, patient_key: str) -> int:
        """Days to shift every date of one patient: in [-max, -1] or [1, max], never 0."""
        n = self.number("date-offset", patient_key) % (2 * self.max_shift_days)
        return n - self.max_shift_days if n < self.max_shift_days else n - self.max_shift_days + 1

    # --- per category ---------------------------------------------------------------------
    def replace(self, category: str, value: str, patient_key: str) -> str:
        if category == "NAME":
            return self.name(value)
        if category == "DATE":
            shifted = shift_date(value, self.date_offset(patient_key))
            return shifted if shifted is not None else self.date_like(value)
        if category == "AGE":
            return "90+"
        if category == "EMAIL":
            return f"{self.word('email', value)}.{self.hash_token('EMAIL', value, 4)}@example.org"
        if category == "URL":
            return f"https://example.org/{self.hash_token('URL', value, 8)}"
        if category == "IP":
            n = self.number("IP", value)
            return f"10.{n % 256}.{(n >> 8) % 256}.{(n >> 16) % 254 + 1}"
        if category == "ADDRESS":
            return self.faker("ADDRESS", value).street_address()
        if category == "LOCATION":
            return self.faker("LOCATION", value).city()
        return self.shape(category, value)

    def faker(self, namespace: str, value: str) -> Faker:
        fake = _faker()
        fake.seed_instance(self.number(namespace, value))
        return fake

    def word(self, namespace: str, value: str) -> str:
        return self.faker(namespace, value).user_name()

    def name(self, value: str) -> str:
        """Token by token, so 'John Smith' and 'Mr. Smith' share the surname surrogate."""
        out = []
        for token in re.split(r"(\s+|,\s*|-)", value):
            if not token or re.fullmatch(r"\s+|,\s*|-", token):
                out.append(token)
                continue
            bare = token.strip(".")
            if len(bare) <= 1:  # an initial
                letter = string.ascii_uppercase[self.number("INITIAL", bare) % 26]
                out.append(token.replace(bare, letter) if bare else token)
                continue
            fake = self.faker("NAME", bare)
            surrogate = fake.first_name() if bare.capitalize() in _first_names() else fake.last_name()
            if bare.isupper():
                surrogate = surrogate.upper()
            out.append(token.replace(bare, surrogate))
        return "".join(out)

    def date_like(self, value: str) -> str:
        """A date whose format shift_date does not know ("11th", "March of 1993", "10/03/10/04"): month
        names and numbers are replaced by keyed values of the same form, never by a mask."""
        n = self.number("DATE-FALLBACK", value)

        def month(m: re.Match[str]) -> str:
            index = _month_number(m.group())
            return _month_name((index + n % 11) % 12 + 1, m.group()) if index else m.group()

        def digits(m: re.Match[str]) -> str:
            run = m.group()
            seed = self.number("DATE-FALLBACK", f"{value}|{m.start()}")
            if len(run) <= 2:
                return f"{seed % 28 + 1:0{len(run)}d}"
            return "".join(str((seed >> (4 * i)) % 10) for i in range(len(run)))

        out = re.sub(r"[A-Za-z]{3,}\.?", month, value)
        return re.sub(r"\d+", digits, out)

    def shape(self, category: str, value: str) -> str:
        """Same shape: each digit becomes a digit, each letter a letter of the same case."""
        stream = self.digest(category, value)
        while len(stream) < len(value):
            stream += hashlib.sha256(stream).digest()
        out = []
        for ch, byte in zip(value, stream, strict=False):
            if ch.isdigit():
                out.append(str(byte % 10))
            elif ch.isalpha() and ch.isascii():
                letter = string.ascii_uppercase[byte % 26]
                out.append(letter if ch.isupper() else letter.lower())
            else:
                out.append(ch)
        return "".join(out)


_local = threading.local()


def _faker() -> Faker:
    """One Faker per thread: ``seed_instance`` then draw must not interleave across threads."""
    fake = getattr(_local, "faker", None)
    if fake is None:
        fake = _local.faker = Faker("en_US")
    return fake


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    from faker.providers.person.en_US import Provider

    names = Provider.first_names
    return frozenset(names.keys() if isinstance(names, dict) else names)


# ---------------------------------------------------------------------------------------------
# Date shifting that keeps the written format
# ---------------------------------------------------------------------------------------------

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


def _month_number(word: str) -> int | None:
    word = word.lower().strip(".")
    for i, name in enumerate(_MONTHS, 1):
        if word == name or (len(word) >= 3 and name.startswith(word)):
            return i
    return None


def _month_name(month: int, like: str) -> str:
    full = _MONTHS[month - 1].capitalize()
    bare = like.rstrip(".")
    text = full if len(bare) > 3 else full[:3]
    if len(bare) == 4 and bare.lower() == "sept":
        text = full[:3]
    if like.isupper():
        text = text.upper()
    return text + ("." if like.endswith(".") else "")


def _year(y: str) -> int:
    n = int(y)
    return n if len(y) == 4 else (2000 + n if n < 50 else 1900 + n)


def shift_date(value: str, days: int) -> str | None:
    """Shift a written date by ``days``, keeping its format; None when the format is not understood."""
    v = value.strip()
    delta = dt.timedelta(days=days)
    default_year = 2001  # a non-leap year avoids Feb 29 surprises when the year is not written
    # m/d/yyyy, m-d-yy, m/d
    m = re.fullmatch(r"(\d{1,2})([/-])(\d{1,2})(?:\2(\d{2}|\d{4}))?", v)
    if m:
        month, day, year_text = int(m.group(1)), int(m.group(3)), m.group(4)
        try:
            d = dt.date(_year(year_text) if year_text else default_year, month, day) + delta
        except ValueError:
            return None
        sep = m.group(2)
        out = f"{d.month:0{len(m.group(1))}d}{sep}{d.day:0{len(m.group(3))}d}"
        if year_text:
            out += sep + (f"{d.year}" if len(year_text) == 4 else f"{d.year % 100:02d}")
        return out
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", v)
    if m:
        try:
            d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + delta
        except ValueError:
            return None
        return d.isoformat()
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", v)
    if m:
        try:
            d = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1))) + delta
        except ValueError:
            return None
        return f"{d.day:0{len(m.group(1))}d}.{d.month:0{len(m.group(2))}d}.{d.year}"
    # Month d(th)?, yyyy
    m = re.fullmatch(r"([A-Za-z]+\.?)\s+(\d{1,2})(st|nd|rd|th)?(,?\s+)?(\d{4})?", v)
    if m and (spelled := _month_number(m.group(1))):
        try:
            d = dt.date(int(m.group(5) or default_year), spelled, int(m.group(2))) + delta
        except ValueError:
            return None
        out = f"{_month_name(d.month, m.group(1))} {d.day}{_ordinal(d.day) if m.group(3) else ''}"
        if m.group(5):
            out += (m.group(4) or " ") + str(d.year)
        return out
    # d Month yyyy / d-Mon-yyyy
    m = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?(\s+of\s+|[\s-]+)([A-Za-z]+\.?)([\s,-]+)?(\d{4})?", v)
    if m and (named := _month_number(m.group(4))):
        try:
            d = dt.date(int(m.group(6) or default_year), named, int(m.group(1))) + delta
        except ValueError:
            return None
        out = f"{d.day:0{len(m.group(1))}d}{_ordinal(d.day) if m.group(2) else ''}{m.group(3)}"
        out += _month_name(d.month, m.group(4))
        if m.group(6):
            out += (m.group(5) or " ") + str(d.year)
        return out
    # Month yyyy
    m = re.fullmatch(r"([A-Za-z]+\.?)(\s*,?\s*)(\d{4})", v)
    if m and (alone := _month_number(m.group(1))):
        d = dt.date(int(m.group(3)), alone, 15) + delta
        return f"{_month_name(d.month, m.group(1))}{m.group(2)}{d.year}"
    return None


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
