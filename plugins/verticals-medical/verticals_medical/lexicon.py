"""Word lists behind the context rules: person names, word frequency, clinical vocabulary.

- Person names: the first and last names of every Latin-script locale of Faker (MIT licence),
  lower-cased (about 16,000 first names and 15,000 surnames).
- Word frequency: ``wordfreq`` (Zipf scale: 7 = "the", 3 = once per million words); a token right
  after a cue ("dr", "son", "transferred to") counts as a name when it is a listed name or a rare
  word, and is rejected when it is a function word or clinical vocabulary.
- Clinical vocabulary: nursing-note words and abbreviations that collide with names or that a
  cue may precede (written for this plugin), plus the words of the plugin's clinical term list.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import lru_cache
from importlib import resources

FUNCTION_WORDS = frozenset([
    "friend", "friends", "male", "female", "family", "relative", "relatives",
    "son", "sons", "sister", "brother", "daughter", "wife", "husband", "house", "case", "post", "mother", "father",
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
    "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "also", "aware",
    "awake", "made", "make", "making", "called", "call", "calls", "calling", "spoke", "speak", "speaking", "talked",
    "talk", "met", "meet", "meeting", "notified", "informed", "updated", "update", "paged", "page", "here", "there",
    "today", "tonight", "tomorrow", "yesterday", "now", "later", "soon", "earlier", "again", "please", "thanks",
    "thank", "per", "via", "re", "regarding", "said", "says", "state", "states", "stated", "saw", "seen", "see",
    "sees", "came", "come", "comes", "went", "go", "goes", "going", "gone", "back", "home", "team", "staff",
    "service", "services", "office", "unit", "floor", "room", "bed", "bedside", "night", "day", "days", "week",
    "weeks", "month", "months", "year", "years", "hour", "hours", "am", "pm", "noc", "eve", "evening", "morning",
    "afternoon", "shift", "time", "times", "visit", "visited", "visiting", "visits", "update", "updated", "phone",
    "phoned", "pt's", "pts", "patient's"
])

MONTH_WORDS = frozenset([
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon", "tue", "tues", "wed", "thu", "thur",
    "thurs", "fri", "sat", "sun"
])

# Nursing-note words and abbreviations that name lists contain or that follow a cue word.
CLINICAL_WORDS = frozenset([
    "masked", "camode", "commode", "amiod", "nahco", "nahco3", "basline", "bedpan", "colace", "atropine", "xerofoam",
    "sips", "clusters", "arrest", "clarify", "elderly", "homeless", "raf", "bb", "av", "intern", "risbi", "rheum",
    "consult", "transplant", "tranplant", "cardic", "accelerated", "ventricular", "confused", "diurese", "await",
    "conitinue", "nutrition", "consent", "oliguria", "wedge", "hernia", "oropharynx", "peptamen", "ceftaz", "prpafol",
    "req", "nml", "weans", "svere", "micub", "uprbc", "baedp", "levoflox", "levoquin", "inotrope", "oint", "amiod",
    "aureus", "coli", "epi", "pneumoniae", "difficile",
    "aline", "quinton", "bil", "sys", "cocci", "kling", "perla", "pearla", "perrl", "perrla", "kub", "ota", "genta",
    "peri", "stas", "asp", "lue", "rue", "lle", "rle", "ica", "allegra", "sever", "redden", "tanish", "hosp", "ngt",
    "ogt", "max", "min", "ortho", "extrem", "spont", "sxn", "sxn'd", "sxnd", "misc", "freq", "heme", "dsgs", "serosang",
    "contin", "lrg", "ivab", "ambien", "diamox", "nipride", "zaroxolyn", "oxacillin", "permacath", "walker", "vt",
    "lad", "rca", "lcx", "svt", "rvad", "lvad", "ij", "sheath", "fick", "tlc", "imv", "eps", "midnoc", "amt",
    "abd", "abdomen", "abg", "abx", "ac", "acls", "afeb", "afib", "airway", "alert", "alt", "amio", "amiodarone",
    "amb", "ambulance", "angio", "ant", "anterior", "ao", "aortic", "art", "arterial", "asa", "assist", "ast",
    "atrial", "ativan", "auto", "bactrim", "bal", "bands", "bases", "bbs", "bicarb", "bilat", "bipap", "bld", "bm",
    "bp", "bpm", "brady", "breath", "bronch", "bs", "bun", "cabg", "cad", "cardiac", "cardio", "care", "carevue",
    "cath", "cbc", "ccu", "chest", "chf", "cipro", "ck", "clear", "co", "code", "coags", "cont", "con't", "contd",
    "coumadin", "cpap", "cpk", "cr", "crit", "csru", "ct", "cv", "cvp", "cxr", "cyanosis", "d/c", "dc", "dex",
    "dextrose", "dig", "dilaudid", "dobutamine", "dopa", "dopamine", "doppler", "dose", "drip", "dsg", "dvt", "dx",
    "ecg", "echo", "ed", "edema", "ef", "eg", "ekg", "ent", "ep", "epi", "er", "et", "ett", "ew", "fentanyl",
    "fever", "ffp", "fio2", "flagyl", "flowsheet", "fluid", "fluids", "foley", "fs", "gi", "gtt", "gtts", "gu",
    "hct", "hd", "hep", "heparin", "hgb", "ho", "hr", "hs", "htn", "iabp", "icu", "id", "imdur", "insulin", "io",
    "ir", "iv", "ivf", "jp", "k", "kcl", "labs", "lactate", "lasix", "levo", "levophed", "lft", "line", "lines",
    "lopressor", "lr", "ls", "lt", "lungs", "mae", "map", "mdi", "med", "meds", "mg", "micu", "milrinone", "mmhg",
    "mri", "ms", "mso4", "mvi", "na", "nad", "narcan", "nc", "neb", "neo", "neuro", "nitro", "nkda", "nmb", "npo",
    "npn", "ns", "nsg", "nsr", "ntg", "o2", "ob", "oob", "or", "osh", "pa", "pacer", "pacu", "pap", "pca", "pcwp",
    "peep", "peg", "pep", "picc", "plt", "pm", "pmh", "po", "pneumo", "ppd", "prbc", "prn", "propofol", "psv", "pt",
    "ptt", "pulm", "pvc", "q", "qd", "qid", "rbc", "resp", "rhythm", "rn", "rr", "rrt", "rsc", "rt", "rx", "sats",
    "sbp", "sc", "sicu", "simv", "sl", "sob", "sq", "ssri", "stat", "sx", "swan", "tb", "tf", "tid", "tele", "temp",
    "tpn", "trach", "tx", "uo", "uop", "us", "ua", "uti", "vanco", "vent", "vit", "vs", "wbc", "wean", "wnl",
    "zosyn", "lido", "afebrile", "alb", "albumin", "alert", "bipap", "blood", "cabbage", "ganz", "hickman", "groshong",
    "yankauer", "kerlix", "tegaderm", "ace", "ted", "jackson", "pratt", "penrose", "heimlich", "allen", 
    "romberg", "babinski", "homan", "homans", "trendelenburg", "fowler", "kussmaul", "cheyne", "stokes",
    "korotkoff", "glasgow", "braden", "morse", "richmond", "ramsay", "apgar", "whipple", "nissen", "roux",
    "hartmann", "parkinson", "alzheimer", "crohn", "addison", "cushing", "bell", "graves", "hodgkin", "wilson",
    "barrett", "kaposi", "raynaud", "wolff", "parkinson's", "alzheimer's", "tylenol", "motrin", "advil", "percocet",
    "vicodin", "haldol", "xanax", "ativan", "versed", "valium", "zofran", "reglan", "protonix", "pepcid", "zantac",
    "nexium", "lovenox", "plavix", "lipitor", "zocor", "synthroid", "prednisone", "solumedrol", "decadron",
    "albuterol", "atrovent", "combivent", "flovent", "vancomycin", "zosyn", "levaquin", "cefazolin", "ancef",
    "keflex", "augmentin", "diflucan", "nystatin", "captopril", "lisinopril", "hydralazine", "labetalol",
    "metoprolol", "diltiazem", "digoxin", "amiodarone", "nitroglycerin", "morphine", "fentanyl", "propofol",
    "precedex", "insulin", "neosynephrine", "vasopressin", "dopamine", "dobutamine", "milrinone", "epinephrine",
    "norepinephrine", "kayexalate", "sputum", "stool", "urine", "secretions", "suction", "suctioned", "suctioning",
    "sedated", "sedation", "intubated", "extubated", "vented", "neg", "pos", "wnl", "nl", "abnl", "sats", "sat",
    "tol", "tolerated", "tolerating", "trace", "mod", "moderate", "copious", "thick", "thin", "bloody", "stable",
    "unstable", "soft", "firm", "tender", "bowel", "bowels", "sounds", "skin", "intact", "wound", "drsg",
    "dressing", "site", "sites", "groin", "rad", "radial", "fem", "femoral", "pedal", "pulses", "palp",
    "dopplerable", "cool", "warm", "dry", "moist", "hypo", "hyper", "tachy", "brady", "sinus", "junctional",
    "paced", "vpaced", "apaced", "ectopy", "nursing", "progress", "note", "notes", "addendum", "admission", "admit",
    "assessment", "plan", "dispo", "social", "family", "coping", "contact"
])

UNIT_WORDS = frozenset([
    "vicu", "pcu", "nsicu", "tsicu", "pmicu", "mcicu", "cvicu", "ccicu", "baseline", "psych", "surg", "surgical",
    "ortho", "derm", "anesthesia", "plastics", "hospice", "commode", "eval", "transplant", "thoracic", "opthamology",
    "ophthalmology", "neurosurgery", "neurology", "oncology", "rehab", "snf", "nh", "ltac", "ltach", "acute",
    "floor", "icu", "micu", "sicu", "ccu", "csru", "ctu", "nicu", "picu", "pacu", "or", "ed", "er", "ew", "eu",
    "cath", "lab", "home", "rehab", "hospital", "hosp", "unit", "units", "bed", "room", "ir", "ct", "mri", "us",
    "radiology", "dialysis", "hd", "osh", "nursing", "facility", "bedside", "step", "down", "stepdown", "tele",
    "telemetry", "ward", "clinic", "office", "surgery", "or's", "ep", "echo", "endoscopy", "gi", "pulmonary",
    "cardiology", "morgue", "ambulance", "medflight", "helicopter", "outside", "another", "other", "same", "this",
    "that", "their", "his", "her", "our", "the", "a", "an"
])


_LATIN = re.compile(r"[A-Za-z'\- \u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+")


@lru_cache(maxsize=1)
def _faker_names() -> tuple[frozenset[str], frozenset[str]]:
    import faker.providers.person as person

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        try:
            provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        except Exception:
            continue
        for attribute, target in (("first_names", first), ("first_names_male", first),
                                  ("first_names_female", first), ("last_names", last)):
            values = getattr(provider, attribute, None)
            if isinstance(values, dict | list | tuple):
                for v in values:
                    if not isinstance(v, str):
                        continue
                    if v.isascii():
                        if re.fullmatch(r"[A-Za-z][A-Za-z'-]+", v):
                            target.add(v.lower())
                        continue
                    # "Gálvez", "Domżał" (Latin script with accents) are listed as "galvez", "domzal" (issue 23),
                    # unless the folded word is a frequent English word ("Löwer" -> "lower", "Rún" -> "run");
                    # names in other scripts are not transliterated ("노" would be "no")
                    folded = fold(v)
                    if (_LATIN.fullmatch(v) and re.fullmatch(r"[A-Za-z][A-Za-z'-]+", folded)
                            and zipf(folded) < 3.5):
                        target.add(folded.lower())
    return frozenset(first), frozenset(last)


def fold(word: str) -> str:
    """The word in ASCII letters ("Gálvez" -> "Galvez", "Süßebier" -> "Sussebier"): names are listed and looked up
    folded, so a name written with or without its accents is the same name."""
    if word.isascii():
        return word
    from unidecode import unidecode

    return unidecode(word)


def first_names() -> frozenset[str]:
    return _faker_names()[0]


def last_names() -> frozenset[str]:
    return _faker_names()[1]


def is_listed_name(word: str) -> bool:
    low = fold(word).lower()
    first, last = _faker_names()
    return low in first or low in last


@lru_cache(maxsize=1)
def _spacy_stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@lru_cache(maxsize=1)
def _term_words() -> frozenset[str]:
    text = resources.files("verticals_medical").joinpath("data", "clinical_terms.tsv").read_text(encoding="utf-8")
    words: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for cell in line.split("\t")[:1] + (line.split("\t")[2].split("|") if line.count("\t") >= 2 else []):
            words.update(w for w in re.findall(r"[a-z][a-z'-]+", cell.lower()) if len(w) > 2)
    return frozenset(words)


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en")


def is_stop(word: str) -> bool:
    low = word.lower().strip("'.")
    return low in FUNCTION_WORDS or low in _spacy_stop_words() or low in MONTH_WORDS


def is_clinical(word: str) -> bool:
    low = word.lower().strip("'.")
    return low in CLINICAL_WORDS or low in _term_words()


def name_after_cue(word: str, limit: float = 4.3) -> bool:
    """A token right after a cue ("dr", "son", "per np"): a name unless a function or clinical word
    or a frequent English word that is not a listed name."""
    bare = word.strip("'.-")
    if len(bare) < 2 or not re.fullmatch(r"[A-Za-z'’-]+", bare) or is_stop(bare) or is_clinical(bare):
        return False
    return is_listed_name(bare) or zipf(bare) < limit


def name_without_cue(word: str, limit: float = 3.3) -> bool:
    """A token anywhere: a listed name that is rare as an English word and not clinical vocabulary."""
    bare = word.strip("'.-")
    if len(bare) < 3 or is_stop(bare) or is_clinical(bare):
        return False
    return is_listed_name(bare) and zipf(bare) < limit


def place_after_cue(word: str, limit: float = 3.9) -> bool:
    """A token after a place cue ("transferred to", "lives in"): not a unit, function or clinical word."""
    bare = word.strip("'.-")
    low = bare.lower()
    if (len(bare) < 2 or low in UNIT_WORDS or is_stop(bare) or is_clinical(bare)
            or re.fullmatch(r"[A-Za-z]{1,2}\d+", bare)):
        return False  # a ward code ("Q7") is not PHI
    return zipf(re.sub(r"\d+$", "", bare) or bare) < limit


@lru_cache(maxsize=8192)
def looks_misspelt(word: str, limit: float = 4.0) -> bool:
    """One edit (a letter dropped, added, changed or two swapped) away from a frequent English word:
    "vebal", "visisted", "decesion" are misspellings, not names. For rare unlisted tokens after weak cues."""
    low = word.lower()
    if len(low) < 4 or not low.isalpha():
        return False
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(low[:i], low[i:]) for i in range(len(low) + 1)]
    candidates = {a + b[1:] for a, b in splits if b}
    candidates |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    candidates |= {a + c + b[1:] for a, b in splits if b for c in letters}
    candidates |= {a + c + b for a, b in splits for c in letters}
    candidates.discard(low)
    return any(len(c) >= 3 and zipf(c) >= limit for c in candidates)
