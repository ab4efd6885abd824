"""Context-cue recognizers for names and places in any letter case.

Real notes write "dr healey", "DR SWACKHAMER AWARE", "son bill called", "transferred to gh",
"sacred heart hospital": capitalisation cannot be relied on, so these rules look at the cue
word and accept the following (or preceding) tokens by the word lists of :mod:`.lexicon`.
Every span is whole: an initial and a surname after a title make one span ("Dr. L. Ruuska").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .formats import LOWER, UPPER
from .lexicon import (
    UNIT_WORDS,
    first_names,
    is_clinical,
    is_listed_name,
    is_stop,
    looks_misspelt,
    name_after_cue,
    name_without_cue,
    place_after_cue,
    zipf,
)

TOKEN = re.compile(r"[A-Za-z][A-Za-z'’]*(?:-[A-Za-z][A-Za-z'’]*)*\d*")

TITLE = re.compile(
    r"(?<![A-Za-z])(?:dr|drs|dr's|doctor|np|rnp|cnp|fnp|nurse|mr|mrs|ms|miss|mx|prof|professor|md|attending|"
    r"fellow|resident|intern|pcp|cardiologist|surgeon|neurologist|oncologist)(?:\.\s*|\s+|\.(?=[A-Za-z]))",
    re.I)
CREDENTIAL = re.compile(
    r"(?:,\s*|[ \t]+)(?:md|m\.d\.|rn|r\.n\.|np|rrt|crt|licsw|licws|lcsw|msw|pa-c|lpn|crna|cnp|fnp|aprn|pharmd|rph|"
    r"phd|do)"
    r"(?![A-Za-z'’])(?!\s+(?:called|notified|aware|to|will|in|at|here|came|was|is|has|had|ordered|said|stated|if|"
    r"made|updated|paged|present|wrote|came|feels|thinks|wants|asked|cough|o2|sat|sats)\b)", re.I)
RELATIVE = re.compile(
    r"(?<![A-Za-z])(?:wife|husband|spouse|son|sons|daughter|daughters|dtr|dau|sister|sisters|brother|brothers|bro|"
    r"mother|mom|father|dad|niece|nephew|grandson|granddaughter|grandaughter|grand\s?daughter|grand\s?son|"
    r"grandchild|friend|proxy|hcp|fiance|fiancee|partner|boyfriend|girlfriend|cousin|aunt|uncle|"
    r"(?:sister|brother|daughter|son|dtr|mother|father)-in-law|step\s?daughter|step\s?son|neighbou?r|guardian|"
    r"caregiver|companion|roommate|case\s+manager|social\s+worker|chaplain|nurse\s+manager)(?:'s)?"
    r"(?:\s*[,:;(-]+\s*|\s+)(?:(?:is|named|who\s+is)\s+)?", re.I)
CONTACT = re.compile(
    r"(?<![A-Za-z0-9])(?:spoke\s+(?:with|to)|talked\s+(?:with|to)|met\s+with|discussed\s+with|per|called|paged|"
    r"notified|informed|updated|contacted|contacts|reported\s+to|seen\s+by|examined\s+by|evaluated\s+by|"
    r"pronounced\s+by|signed\s+by|accompanied\s+by|visited\s+by|cc\s*:|attn:?)\s*", re.I)
VISITOR = re.compile(r"(?P<v>(?<![A-Za-z'])[A-Za-z][a-z]+|[A-Z]{2,})(?=\s+(?:called|visited|phoned|in\s+to\s+visit|"
                     r"at\s+(?:the\s+)?bedside|was\s+updated|is\s+(?:the\s+)?(?:family|proxy|hcp|contact)|updated|"
                     r"came\s+in|here\s+to\s+visit))", re.I)
UNIVERSITY = re.compile(r"(?<![A-Za-z])(?:(?:Univ|University)\.?\s+(?:of\s+)?[A-Z][A-Za-z]+|U\.?\s+(?:of\s+)?"
                        r"(?:Maryland|Virginia|Pennsylvania|Delaware|Michigan|Minnesota|Iowa|Utah|Washington|Chicago|"
                        r"Penn|Mass|[A-Z][a-z]+\s+(?:Medical|Hospital|Health))\b)")
# a ward name in lower case needs a place word before it: "found from quartermain 5", "transfer to merriwether 3"
# (not "order to transfuse 2")
_LOWER_WARD_CUE = re.compile(r"(?:\b(?:from|in|at)|\b(?:transfer|transferred|transfered|tx|back|sent|moved|return|"
                             r"returned|go|going|went|admitted|admit)[ \t]+to)[ \t]+$", re.I)
WARD = re.compile(r"(?<![A-Za-z])(?P<v>[A-Za-z]{5,})\s?\d{1,2}(?![\d.,/])"
                  r"(?!\s*(?:mg|mcg|g|gm|u|units?|ml|cc|l|%|meq|hr|hrs|"
                  r"x|mm|cm|min|mins|days?|weeks?|hours?|am|pm|yrs?|yo|liters?|lpm)\b|\s*%)", re.I)
# capitals and small letters of Latin alphabets ("San Sebastián", "Östersund Island", "from Ñuñoa")
_CAP = rf"[{UPPER}][{LOWER}]"
PLACE_TWO = re.compile(
    r"(?<![^\W\d_])(?:(?:San|Santa|Los|Las|Fort|Ft|Port|Mount|Mt|New|Bel|El|La|Lake|Glen|Palm|Ocean|Cape|North|South|"
    rf"East|West)\s+{_CAP}+"
    rf"|{_CAP}+\s+(?:Beach|City|Springs|Falls|Heights|Shore|Island|Hills|Valley|Harbor|County|Park|Square))"
    r"(?![^\W\d_])")
PLACE_CUE = re.compile(
    r"(?<![A-Za-z])(?:transferred|transfered|transfer|trans|tx'?d|txd|admitted|adm|admit|sent|taken|brought|came|"
    r"went|arrived|arrival|medflight|med\s?flight|referred|returned|return|go|going|followed|excepted|accepted|"
    r"screened|discharged|d/c'?d|dc'?d|was|been|stay|stayed|bed|placement|evaluated|seen|presented|presents|presenting|"
    r"tx|enroute|en\s+route)"
    r"(?:\s+(?:back|over|earlier|today|yesterday|directly|emergently|via\s+\w+|in|up))?"
    r"\s+(?:to|from|at|into|by|@)\s+(?:the\s+)?", re.I)
FACILITY = re.compile(
    r"(?<![A-Za-z])(?:hospital|hosp|hospiatal|rehab|rehabilitation|medical\s+center|med\.?\s*ctr|health\s+center|"
    r"nursing\s+home|nursing\s+center|nursing\s+facility|house|manor|clinic|infirmary|hospice|institute|"
    r"health\s+system|medical\s+group)(?![A-Za-z])", re.I)
RELIGIOUS = re.compile(r"(?<![A-Za-z0-9])(?:sacred\s+heart|holy\s+(?!spirit)[A-Za-z]+|good\s+samaritan|"
                       r"st\.?\s+[A-Za-z]+(?:'s)?|saint\s+[A-Za-z]+(?:'s)?)"
                       r"(?:\s+(?:memorial|regional|medical\s+center|hospital|hosp))?(?![A-Za-z])", re.I)
INITIAL_SURNAME = re.compile(r"(?<![^\s(-])(?P<i>[A-Za-z])\.[ \t]?(?P<v>[A-Za-z][a-z'A-Z-]{2,})(?![\w])")
PLACE_OF = re.compile(rf"(?<![A-Za-z])(?:in|of|from|near)\s+(?P<v>{_CAP}{{3,}}(?:\s+{_CAP}+)?)(?![^\W\d_])")
AND_MORE = re.compile(r"(?:\s*,\s*|\s+(?:and|&)\s+|\s*,\s*(?:and|&)\s+)")
LIVES = re.compile(
    r"(?<![A-Za-z])(?:lives|living|resides|residing|resident|moved|home|born|raised|native|grew\s+up|located|"
    r"originally|relocated|stays|visiting)(?:\s+(?:nearby|alone|with\s+\w+|here))?\s+(?:in|of|to|from|at|near)"
    r"\s+(?:the\s+)?", re.I)
STATE_AFTER = re.compile(
    r",[ \t]*(?=(?:[A-Za-z]+\s?){1,2}(?:\s*\d{5}|\s*[).;:\n]|\s*$))"
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|"
    r"NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|maryland|virginia|pennsylvania|delaware|"
    r"massachusetts|new\s+york|new\s+jersey|california|florida|texas|ohio)(?![A-Za-z])")

# names as the subject of what clinicians and visitors do: "BEA TURA AWARE", "dr camarda and clifford aware",
# "LINDSEY CARDARELLI CALLED TO BEDSIDE", "(LUCY IS ON VACATION)"
SUBJECT_OF = re.compile(
    r"[ \t]+(?:(?:is|was|were|are)[ \t]+)?(?:made[ \t]+)?(?:aware|notified|informed|paged|called[ \t]+to|came[ \t]+to|"
    r"came[ \t]+in|in[ \t]+to[ \t]+(?:see|eval|evaluate|assess)|at[ \t]+(?:the[ \t]+)?bedside|remained[ \t]+at|"
    r"on[ \t]+vaca(?:tion)?|will[ \t]+(?:call|follow|see))\b", re.I)
FAMILY_OF = re.compile(r"[ \t]+(?:family|families|household)\b", re.I)
# "Hank Przybylo (son)", "Rita Hickey, daughter-in-law", "Jo - wife"
KIN_AFTER = re.compile(
    r"[ \t]*(?:\(|,|-)[ \t]*(?:the[ \t]+)?(?:pt'?s[ \t]+)?(?:son|daughter|dtr|wife|husband|spouse|sister|brother|"
    r"mother|"
    r"father|niece|nephew|grandson|granddaughter|friend|proxy|hcp|partner|fiance|fiancee|cousin|aunt|uncle|"
    r"(?:sister|brother|daughter|son|mother|father)-in-law)\b", re.I)
# the sign-off line at the end of a note: "SUSAN", "J. Smith RN", "bea tura"
SIGNATURE = re.compile(r"(?:^|\n|[.!][ \t]+)[ \t]*(?P<v>[A-Za-z][A-Za-z'’.-]*(?:[ \t]+[A-Za-z][A-Za-z'’.-]*){0,2})"
                       r"(?:,?[ \t]+(?:rn|rrt|crt|np|md|msw|licsw|lcsw|pt|ot|slp|rd))?[ \t.]*\s*$", re.I)

FACILITY_AFTER_PREP = re.compile(
    r"(?<![A-Za-z])(?:from|to|at|@)[ \t]+(?P<v>[A-Za-z][A-Za-z'’.-]+(?:[ \t]+[A-Za-z][A-Za-z'’.-]+){0,2}?)[ \t]+"
    r"(?P<f>hospital|hosp|medical[ \t]+center|med\.?[ \t]*ctr|rehab|nursing[ \t]+home|clinic|hospice|"
    r"regional|memorial|general)(?![A-Za-z])", re.I)
CODE_ER = re.compile(r"(?:(?<![A-Za-z])(?:at|to|from|@)|->)[ \t]*(?:the[ \t]+)?(?P<v>[A-Z]{2,5})[ \t]+(?:EW|ER|ED)\b")
PLACE_STATE = re.compile(
    r"(?<![A-Za-z])(?P<v>[A-Za-z][a-z]{3,}|[A-Z]{4,})[ \t]+(?:maryland|virginia|pennsylvania|delaware|"
    r"massachusetts|new[ \t]+jersey|new[ \t]+york|california|florida|texas|ohio|connecticut|georgia|carolina)"
    r"(?:['’]s)?(?![A-Za-z])", re.I)

Found = tuple[int, int, str, float, str]  # start, end, category, score, rule


def _tokens_after(text: str, pos: int, limit: int = 3) -> Iterator[re.Match[str]]:
    """Tokens right after ``pos``, separated only by spaces or one period/initial dot."""
    while limit > 0:
        gap = re.match(r"[ \t]*", text[pos:])
        start = pos + (gap.end() if gap else 0)
        m = TOKEN.match(text, start)
        if not m or (start == pos and pos > 0 and text[pos - 1].isalnum()):
            return
        yield m
        pos = m.end()
        if pos < len(text) and text[pos] == "." and (m.end() - m.start() == 1):
            pos += 1  # an initial "L."
        limit -= 1


def _take(text: str, pos: int, first_ok: Callable[[str], bool], next_ok: Callable[[str], bool],
          limit: int = 3) -> tuple[int, int] | None:
    """The span of the tokens after ``pos`` that pass: the first by ``first_ok``, the rest by ``next_ok``.
    A single letter (an initial) is taken when another name token follows it."""
    start = end = None
    pending_initial: int | None = None
    for i, m in enumerate(_tokens_after(text, pos, limit + 1)):
        word = m.group()
        if len(word) == 1 and word.isalpha():
            if pending_initial is not None:
                break
            pending_initial = m.start()
            continue
        ok = first_ok(word) if (start is None) else next_ok(word)
        if not ok:
            break
        if start is None:
            start = pending_initial if pending_initial is not None else m.start()
        end = m.end()
        pending_initial = None
        if i >= limit:
            break
    if start is None or end is None:
        return None
    return start, end


_LAST_TOKEN = re.compile(r"(?:(?<![A-Za-z])[A-Za-z][A-Za-z'’]*(?:-[A-Za-z][A-Za-z'’]*)*\d*|(?<![A-Za-z])[A-Za-z]\.)$")


def _take_back(text: str, end: int, ok: Callable[[str], bool], limit: int = 3) -> tuple[int, int] | None:
    """The span of up to ``limit`` accepted tokens right before ``end``."""
    start = None
    pos = end
    for _ in range(limit):
        before = text[:pos].rstrip(" \t")
        m = _LAST_TOKEN.search(before)
        if not m:
            break
        word = m.group().rstrip(".")
        if not (ok(word) or (len(word) == 1 and word.isupper() and start is not None)):
            break
        start = m.start()
        pos = m.start()
    if start is None:
        return None
    stop = end
    while stop > start and text[stop - 1] in " \t":
        stop -= 1
    return start, stop


_STRONG_TITLES = {"dr", "drs", "dr's", "doctor", "mr", "mrs", "ms", "miss", "mx", "prof", "professor"}


def _ambiguous_title_name(word: str) -> bool:
    """After "md", "np", "nurse", "attending"...: "MD AWARE", "NP ASSESSED", "fellow VVI", "md vebal" are not
    names: a listed name, or a rare capitalised word that is not an acronym."""
    if not name_after_cue(word):
        return False
    if is_listed_name(word):
        return True
    if word.isupper() and len(word) <= 3:
        return False
    return zipf(word) < 3.0 and (word[:1].isupper() or not looks_misspelt(word, 3.5))


def _name_after_ms(word: str) -> bool:
    return name_after_cue(word) and ((is_listed_name(word) and zipf(word) < 4.5) or zipf(word) < 2.0)


def _listed(word: str) -> bool:
    """A listed name, or a double-barrelled one whose parts are ("Forman-Lyons")."""
    parts = [p for p in word.split("-") if p]
    return is_listed_name(word) or (len(parts) > 1 and any(is_listed_name(p) for p in parts)
                                     and all(is_listed_name(p) or zipf(p) < 3.5 for p in parts))


def _relative_name(word: str) -> bool:
    if not name_after_cue(word) or word.lower().strip("'’") in _NOT_RELATIVE_NAME:
        return False
    if is_listed_name(word):
        return True
    if re.search(r"(?:ed|ing|ly)$|-", word, re.I):
        return False
    return (zipf(word) < 3.6 and not word.isupper()) or (word.isupper() and len(word) > 3 and zipf(word) < 3.0)


_NOT_RELATIVE_NAME = {"pt's", "pts", "inlaw", "in-law", "grandaughter", "granddaughter", "hcp", "poa", "dpoa",
                      "hcp's", "proxy", "rn", "md", "ok"}


def _later_name(word: str) -> bool:
    return name_after_cue(word, limit=3.5) or (is_listed_name(word) and not is_stop(word) and not is_clinical(word))


def name_spans(text: str) -> list[Found]:
    found: list[Found] = []
    for m in TITLE.finditer(text):
        written = m.group().strip().rstrip(".")
        cue = written.lower()
        if cue in ("ms", "mr", "mrs", "miss", "mx") and text[m.end() - 1:m.end()] == ":":
            continue
        first_ok: Callable[[str], bool]
        if cue == "ms" and not written.istitle():
            first_ok = _name_after_ms  # "MS clears", "ms improves": MS is also mental status
        elif cue in _STRONG_TITLES:
            first_ok = name_after_cue
        elif "." in m.group():
            continue  # "discussed with attending. Decision made": the cue ends a sentence
        elif written.islower():  # "per md Saeed": a capital in lower-case writing marks a name
            first_ok = lambda w: _ambiguous_title_name(w) or (w.istitle() and name_after_cue(w, 4.0))  # noqa: E731
        else:
            first_ok = _ambiguous_title_name
        span = _take(text, m.end(), first_ok, _later_name)
        if span:
            found.append((*span, "NAME", 0.9, "cue:title"))
            found += _more_names(text, span[1], name_after_cue if cue.startswith("dr") else _later_name, "cue:title")
    for m in CREDENTIAL.finditer(text):
        if m.start() == 0:
            continue
        span = _take_back(text, m.start(), lambda w: name_after_cue(w, limit=3.8) and (
            _listed(w) or (zipf(w) < 2.5 and not (w.islower() and len(w) <= 3))), limit=3)
        if span:
            found.append((*span, "NAME", 0.85, "cue:credential"))
    for m in RELATIVE.finditer(text):
        span = _take(text, m.end(), _relative_name, _later_name, limit=2)
        if not span:
            boxed = re.match(r"([A-Za-z]{2,})[ \t]*[,)]", text[m.end():])
            if boxed and boxed.group(1).lower() in first_names() and not is_stop(boxed.group(1)):
                span = (m.end(), m.end() + len(boxed.group(1)))
        if span:
            found.append((*span, "NAME", 0.85, "cue:relative"))
            found += _more_names(text, span[1], _later_name, "cue:relative")
    for m in CONTACT.finditer(text):
        span = _take(text, m.end(), lambda w: is_listed_name(w) and name_after_cue(w, limit=4.4), _later_name, 2)
        if span:
            found.append((*span, "NAME", 0.7, "cue:contact"))
    for m in INITIAL_SURNAME.finditer(text):
        word = m.group("v")
        spaced = m.start("v") > m.start("i") + 2
        if not is_clinical(word) and name_after_cue(word, limit=2.5 if m.group("i").isupper() else 2.0) and (
                spaced or _listed(word)):
            found.append((m.start(), m.end("v"), "NAME", 0.75, "cue:initial"))
    for m in VISITOR.finditer(text):
        word = m.group("v")
        if word.lower() in first_names() and name_after_cue(word, limit=5.5):
            found.append((m.start("v"), m.end("v"), "NAME", 0.7, "cue:visitor"))
    for m in SUBJECT_OF.finditer(text):
        found += _names_before(text, m.start(), "cue:subject")
    for m in FAMILY_OF.finditer(text):
        the = re.search(r"(?<![A-Za-z])the[ \t]+[A-Za-z'’-]+[ \t]*$", text[max(0, m.start() - 40):m.start()], re.I)

        def family_name(w: str, the: re.Match[str] | None = the) -> bool:
            return not is_clinical(w) and not is_stop(w) and (
                (_listed(w) and zipf(w) < 4.5) or (the is not None and _subject_name(w, rare=2.0)))

        span = _take_back(text, m.start(), family_name, limit=1)
        if span:
            found.append((*span, "NAME", 0.7, "cue:family-name"))
    for m in KIN_AFTER.finditer(text):
        if m.group().strip().startswith("("):
            found += _names_before(text, m.start(), "cue:relative-after")
        else:  # "notified of reintubation, daughter here": after a comma or dash, listed names only
            span = _take_back(text, m.start(), lambda w: _listed(w) and _subject_name(w), limit=2)
            if span:
                found.append((*span, "NAME", 0.7, "cue:relative-after"))
    sign = SIGNATURE.search(text[-80:]) if text.strip() else None
    if sign:
        offset = max(0, len(text) - 80)
        words = re.findall(r"[A-Za-z][A-Za-z'’-]+", sign.group("v"))
        if words and all(_listed(w) and not is_clinical(w) and not is_stop(w) for w in words):
            start, end = offset + sign.start("v"), offset + sign.end("v")
            while end > start and text[end - 1] == "." and not re.search(r"(?<![A-Za-z])[A-Za-z]\.$", text[:end]):
                end -= 1
            found.append((start, end, "NAME", 0.7, "cue:signature"))
    for m in TOKEN.finditer(text):
        # a rare listed surname right after a listed first name ("mary souza", "Rita Hickey"); a listed word
        # alone is too often a misspelt clinical word ("stoll", "afer", "DESTIN")
        if name_without_cue(m.group()):
            spaced = text[m.start() - 1:m.start()] in " \t"
            prev = _LAST_TOKEN.search(text[:m.start()].rstrip(" \t")) if spaced else None
            if prev and _first_name_word(prev.group()) and text[prev.end():m.start()].strip(" \t") == "":
                found.append((prev.start(), m.end(), "NAME", 0.6, "list:name"))
    return found


def _subject_name(word: str, rare: float = 2.5, acronym_ok: bool = False) -> bool:
    """A token before "aware", "called to bedside"...: a listed name or a rare word, never a unit, a role or
    clinical vocabulary ("MD AWARE", "TEAM AWARE", "MICU AWARE")."""
    low = word.lower().strip(".")
    if len(low) < 2 or is_stop(word) or is_clinical(word) or low in UNIT_WORDS or low in _ROLES:
        return False
    if "-" in word and any(p.lower() in _ROLES or is_stop(p) for p in word.split("-") if p):
        return False
    if _listed(word):
        return zipf(word) < 5.0
    if re.search(r"['’-]", word):
        return False  # "MD'S", "trach's", "neuro-surg"
    return zipf(word) < rare and len(low) >= 3 and (acronym_ok or not (word.isupper() and len(word) <= 3)) and not (
        len(low) >= 6 and looks_misspelt(word, 4.5))


_ROLES = {"md", "mds", "np", "rn", "pa", "ho", "dr", "drs", "doctor", "team", "resident", "residents", "fellow",
          "intern", "attending", "nurse", "nurses", "nursing", "family", "pt", "patient", "wife", "husband", "son",
          "daughter", "staff", "housestaff", "house", "service", "renal", "cardiology", "surgery", "neuro", "micu",
          "sicu", "ccu", "csru", "icu", "er", "ew", "ed", "anesthesia", "pharmacy", "rt", "rrt", "resp", "pcp",
          "cardiologist", "surgeon", "all", "everyone", "both", "they", "he", "she", "who", "covering", "on-call",
          "neurosurg", "neurosurgery", "nsurg", "ortho", "orthopedics", "orthopaedics", "urology", "uro", "ent",
          "gyn", "obgyn", "oncology", "onc", "hem", "heme", "pulm", "pulmonary", "nephrology", "gi", "id", "ep",
          "radiology", "ir", "cards", "cardiac", "vascular", "thoracic", "trauma", "psych", "psychiatry", "sw",
          "chaplain", "nutrition", "pt/ot", "ot", "slp", "dietician", "dietitian", "case", "management", "security"}


def _names_before(text: str, end: int, rule: str) -> list[Found]:
    """Up to two name tokens right before ``end``, then more joined by "and", "&" or ",", titles skipped
    ("DR CAMARDA AND CLIFFORD", "BEA TURA AND DRS JOSEPH AND ROBBINSON")."""
    out: list[Found] = []
    pos = end
    for _ in range(4):
        span = _take_back(text, pos, _subject_name, limit=2)
        if not span:  # "NP JEN AWARE": after a title, a less rare word
            span = _take_back(text, pos, lambda w: _subject_name(w, rare=4.0, acronym_ok=True)
                              and not looks_misspelt(w, 4.5), limit=1)
            if not span or not re.search(r"(?<![A-Za-z])(?:drs?|np|md|rn|nurse|dr's)\.?[ \t]+$", text[:span[0]], re.I):
                break
        out.append((*span, "NAME", 0.7, rule))
        before = text[:span[0]]
        joint = re.search(r"(?:[ \t]*(?:,|and|&)[ \t]*)(?:(?:drs?|dr's|doctors?|np|rn)\.?[ \t]+)?$", before, re.I)
        title = re.search(r"(?<![A-Za-z])(?:drs?|dr's|doctors?)\.?[ \t]+$", before, re.I)
        if joint and joint.group().strip():
            pos = joint.start()
        elif title:
            pos = title.start()
            joint2 = re.search(r"[ \t]*(?:,|and|&)[ \t]*$", text[:pos], re.I)
            if not joint2:
                break
            pos = joint2.start()
        else:
            break
    return out


def _first_name_word(word: str) -> bool:
    return (len(word) >= 2 and word.lower() in first_names() and not is_stop(word) and not is_clinical(word)
            and zipf(word) < 5.0)


def place_spans(text: str) -> list[Found]:
    found: list[Found] = []
    for m in PLACE_CUE.finditer(text):
        mixed_case = m.group()[:1].islower()  # "went to Harbor": a capitalised word in lower-case writing

        def first_place(w: str, mixed: bool = mixed_case) -> bool:
            return place_after_cue(w) or (mixed and w.istitle() and place_after_cue(w, 4.6))

        span = _take(text, m.end(), first_place,
                     lambda w: place_after_cue(w) or is_listed_name(w) or w.lower() in FACILITY_NAME_WORDS, limit=2)
        if span:
            found.append((*span, "LOCATION", 0.75, "cue:transfer"))
    for m in FACILITY_AFTER_PREP.finditer(text):  # "arrived from franklin square hosp"
        words = m.group("v").split()
        if all(not is_stop(w) and not is_clinical(w) and w.lower() not in UNIT_WORDS
               and w.lower() not in _NOT_FACILITY_NAME and (is_listed_name(w) or zipf(w) < 5.0) for w in words):
            found.append((m.start("v"), m.end("f"), "LOCATION", 0.75, "cue:facility"))
    for m in CODE_ER.finditer(text):  # "-> GH EW", "at GBMC ER": a hospital code before its emergency room
        if not is_clinical(m.group("v")) and m.group("v").lower() not in UNIT_WORDS:
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.7, "cue:hospital-code"))
    for m in PLACE_STATE.finditer(text):  # "this towson maryland facility"
        word = m.group("v")
        if place_after_cue(word, 3.0) or (word.istitle() and place_after_cue(word, 4.0)):
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.7, "cue:state"))
    for m in FACILITY.finditer(text):
        strong = m.group().lower().startswith(("hosp", "rehab", "medical", "med"))

        def facility_name(w: str, strong: bool = strong) -> bool:
            return _facility_word(w) or (strong and w.isupper() and zipf(w) < 4.5 and not is_clinical(w)
                                         and w.lower() not in _NOT_FACILITY_NAME)

        span = _take_back(text, m.start(), facility_name, limit=3)
        if span:
            span = (span[0], m.end())
            found.append((*span, "LOCATION", 0.8, "cue:facility"))
    for m in RELIGIOUS.finditer(text):
        words = m.group().split()
        if words[0].lower().startswith("st") or words[0].lower() == "saint":
            name = re.sub(r"['’]s$", "", words[1])
            initial = len(name) == 1 and name.isupper() and text[m.end():m.end() + 1] == "."
            if not (initial or (len(name) > 1 and is_listed_name(name) and not is_clinical(name))):
                continue
        found.append((m.start(), m.end(), "LOCATION", 0.8, "cue:facility"))
    for m in LIVES.finditer(text):
        dc = re.match(r"(?:washington[ \t]+)?d\.?c\.?(?![A-Za-z])", text[m.end():], re.I)
        if dc:  # Washington, DC is a city
            found.append((m.end(), m.end() + len(dc.group().rstrip(".")), "LOCATION", 0.75, "cue:lives"))
            continue
        span = _take(text, m.end(), lambda w: place_after_cue(w, limit=4.6), lambda w: place_after_cue(w, 4.0), 2)
        if span:
            found.append((*span, "LOCATION", 0.75, "cue:lives"))
    for m in UNIVERSITY.finditer(text):
        found.append((m.start(), m.end(), "LOCATION", 0.75, "cue:university"))
    for m in PLACE_TWO.finditer(text):
        if not any(is_clinical(w) for w in m.group().split()):
            found.append((m.start(), m.end(), "LOCATION", 0.7, "cue:place-name"))
    for m in WARD.finditer(text):
        word = m.group("v")
        if ((word[0].isupper() or (word.islower() and _LOWER_WARD_CUE.search(text[max(0, m.start() - 30):m.start()])))
                and zipf(word) < 2.0 and not is_clinical(word) and not is_stop(word)
                and word.lower() not in UNIT_WORDS and not word.lower().endswith(("ing", "ed", "ic", "ly", "x", "s"))):
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.6, "cue:ward"))
    for m in PLACE_OF.finditer(text):
        words = m.group("v").split()
        if all(not is_clinical(w) and not is_stop(w) and w.lower() not in UNIT_WORDS for w in words) and (
                zipf(words[0]) < 2.8 and not is_listed_name(words[0])):
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.7, "cue:place-of"))
    for m in STATE_AFTER.finditer(text):
        if re.search(r"(?<![A-Za-z])(?:nt|nd|non-?tender|soft)[ \t]*$", text[max(0, m.start() - 12):m.start()], re.I):
            continue  # "ABD SOFT, NT, ND": non-tender, non-distended
        span = _take_back(text, m.start(), lambda w: place_after_cue(w, limit=4.8) and not w.isdigit(), limit=2)
        if span:
            found.append((*span, "LOCATION", 0.7, "cue:state"))
    return found


_NOT_FACILITY_NAME = {"awaiting", "prev", "poss", "possible", "await", "regular",
                      "outside", "other", "another", "local", "previous", "prior", "osh", "transfer", "transferred",
                      "admitted", "admit", "sent", "from", "to", "at", "in", "via", "the", "a", "an", "this", "that",
                      "same", "area", "nursing", "open", "his", "her", "their", "our", "my", "your", "full",
                      "inpatient", "outpatient", "acute", "cardiac", "pulmonary", "pulm", "physical", "short",
                      "long", "term", "rehab", "hospital", "hosp", "care", "day", "group", "halfway", "private",
                      "state", "county", "city", "community", "teaching", "psych",
                      "psychiatric", "children's", "veterans", "va"}


FACILITY_NAME_WORDS = frozenset([
    "memorial", "regional", "general", "union", "mercy", "university", "county", "adventist", "baptist",
    "methodist", "presbyterian", "lutheran", "catholic", "jewish", "shore", "harbor", "harbour", "valley",
    "greater", "north", "south", "east", "west", "northern", "southern", "eastern", "western", "central", "city",
    "saint", "st", "mount", "mt", "good", "samaritan", "heart", "cross", "providence", "children's", "womens",
    "women's", "veterans"
])


def _facility_word(word: str) -> bool:
    low = word.lower()
    if is_stop(word) or low in _NOT_FACILITY_NAME:
        return low in FACILITY_NAME_WORDS and low not in ("general", "community")
    if low in FACILITY_NAME_WORDS:
        return True
    if is_clinical(word):
        return False
    return zipf(word) < 3.5 or is_listed_name(word) or (word[:1].isupper() and not word.isupper())


def _more_names(text: str, pos: int, ok: Callable[[str], bool], rule: str) -> list[Found]:
    """Names listed after a cue's first name: "Drs Ferullo and Saeed", "sons Ray, Tom and Lee"."""
    out: list[Found] = []
    for _ in range(4):
        joint = AND_MORE.match(text, pos)
        if not joint:
            break
        first_ok = ok if re.search(r"and|&", joint.group(), re.I) else (
            lambda w: is_listed_name(w) and ok(w))  # after a bare comma: a listed name only
        span = _take(text, joint.end(), first_ok, _later_name, limit=2)
        if not span:
            break
        out.append((*span, "NAME", 0.8, rule))
        pos = span[1]
    return out


def context_spans(text: str) -> list[Found]:
    """Names and places found by cues and lists, any letter case."""
    return name_spans(text) + place_spans(text)
