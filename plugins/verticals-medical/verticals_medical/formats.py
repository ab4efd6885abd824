"""Generic PII in everyday formats (issue 23): what a general PII tool finds outside clinical notes.

- **Whole addresses**: a street line, its unit (``Apt 4B``, ``Suite 300``, ``#12``), city, state and ZIP are one
  ADDRESS span (:func:`assemble_addresses` grows a detected street over the rest of the address on its line).
- **Tables and records**: CSV / TSV / Markdown rows under a header, and ``"key": "value"`` records, whose column or
  key names say what the cell is (``name``, ``customer``, ``city``, ``street``, ``zip``, ``phone``...).
- **Names by position**: form labels (``First name:``, ``Surname:``, ``Insured:``, ``Applicant:``), greetings
  and sign-offs (``Dear``, ``Hi``, ``Regards,`` + the next line), ``My name is``, ``I, X,``, chat speakers
  (``[10:42] anna:``), in any letter case when the word is a listed name.
- **Driver's licences and phones** in the shapes states and countries write them (``H123-456-78-901-2``,
  ``123 456 789``, ``00 44 20 7946 0958``, ``555-123-4567x89``).

Each finding is ``(start, end, category, score, rule, context)``, ``context`` the character range of the cue
(the header cell, key, label or greeting the rule read).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from .lexicon import fold, is_clinical, is_listed_name, is_stop, name_after_cue, name_without_cue

Found = tuple[int, int, str, float, str, tuple[tuple[int, int], ...]]

UPPER = "A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĴĶĹĻĽĿŁŃŅŇŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽ"
LOWER = "a-zß-öø-ÿ\u0100-\u017f"
WORD = rf"[{UPPER}{LOWER}][{UPPER}{LOWER}'’-]*"
CAP_WORD = rf"(?:(?:Mac|Mc|O'|O’|Ó|Ní|Ni|Nic|Mhic|Van|Von|De|Di|Da|Le|La|El|Al)\s?)?[{UPPER}][{UPPER}{LOWER}'’-]+"
STATES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|"
          "Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|"
          "Mississippi|Missouri|Montana|Nebraska|Nevada|New\\s+Hampshire|New\\s+Jersey|New\\s+Mexico|New\\s+York|"
          "North\\s+Carolina|North\\s+Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode\\s+Island|South\\s+Carolina|"
          "South\\s+Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West\\s+Virginia|Wisconsin|Wyoming|"
          "Ontario|Quebec|Alberta|Manitoba|Saskatchewan|Nova\\s+Scotia|New\\s+Brunswick|British\\s+Columbia")
STATE_CODES = ("AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|"
               "ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|AS|GU|MP|PR|VI|FM|MH|PW|AA|AE|AP|"
               "ON|QC|BC|AB|MB|SK|NS|NB|NL|PE|YT|NT|NU")
UNIT = r"(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Fl\.?|Floor|Room|Rm\.?|Bldg\.?|Building|#)\s*#?[A-Za-z0-9-]+"
POSTAL = r"(?:\d{5}(?:-\d{4})?|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"  # US ZIP, Canadian postal code
# what may follow a street on the same line: units, then "City, ST 12345" (or "City ST", "City, State")
_ADDRESS_TAIL = re.compile(
    rf"(?:,?[ \t]*{UNIT})*"
    rf"(?:,?[ \t]+(?:{CAP_WORD}[ \t]+){{0,3}}{CAP_WORD},?[ \t]+(?:{STATE_CODES}|{STATES})\.?(?:,?[ \t]+{POSTAL})?"
    rf"|,[ \t]*(?:{CAP_WORD}[ \t]+){{0,3}}{CAP_WORD}(?:,?[ \t]*{POSTAL})?(?=[ \t]*(?:[.;,)\n]|$)))?")


def assemble_addresses(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """For each ADDRESS span, the range of the whole address it starts (units, city, state, ZIP on its line)."""
    out = []
    for start, end, category in spans:
        if category != "ADDRESS":
            continue
        tail = _ADDRESS_TAIL.match(text, end)
        if tail and tail.end() > end:
            stop = tail.end()
            while stop > end and text[stop - 1] in " \t,.":
                stop -= 1
            out.append((start, stop))
    return out


# -- tables and records --------------------------------------------------------------------------------------

COLUMN_KINDS = [
    ("NAME", re.compile(r"^(?:(?:full|first|last|given|family|middle|sur|user|customer|client|patient|contact|"
                        r"account|card|employee|member|guest|passenger|holder|owner)[\s_-]*)?(?:name|names)$|"
                        r"^(?:surname|forename|customer|client|employee|contact|recipient|sender|beneficiary|insured|"
                        r"applicant|tenant|driver|passenger|owner|holder|guest|member|person|author|manager|"
                        r"physician|doctor|nurse|attending|provider|referrer|parent|guardian|spouse|kin|nok)$", re.I)),
    ("ADDRESS", re.compile(r"^(?:(?:street|home|mailing|postal|billing|shipping|residential|work)[\s_-]*)?"
                           r"(?:address|addr|street)(?:[\s_-]*(?:line)?[\s_-]*\d)?$|^(?:address|street)[\s_-]*\d$",
                           re.I)),
    ("LOCATION", re.compile(r"^(?:city|town|village|municipality|county|place|birthplace|place[\s_-]of[\s_-]birth|"
                            r"hometown|locality|suburb|neighbou?rhood|hospital|facility)$", re.I)),
    ("ZIP", re.compile(r"^(?:zip|zip[\s_-]*code|zipcode|postal[\s_-]*code|postcode|post[\s_-]*code|plz)$", re.I)),
    ("PHONE", re.compile(r"^(?:phone|tel|telephone|mobile|cell|cellphone|fax|phone[\s_-]*(?:number|no)|"
                         r"contact[\s_-]*(?:number|phone))$", re.I)),
    ("DATE", re.compile(r"^(?:dob|date[\s_-]*of[\s_-]*birth|birth[\s_-]*date|birthdate|birthday|admission[\s_-]*date|"
                        r"discharge[\s_-]*date|date)$", re.I)),
    ("LICENSE", re.compile(r"^(?:dl|driver'?s?[\s_-]*licen[cs]e(?:[\s_-]*(?:number|no|#))?|licen[cs]e(?:[\s_-]*"
                           r"(?:number|no|#))?)$", re.I)),
    ("ID", re.compile(r"^(?:ssn|social[\s_-]*security(?:[\s_-]*number)?|mrn|passport(?:[\s_-]*(?:number|no))?|"
                      r"member[\s_-]*id|policy[\s_-]*(?:number|no)|account[\s_-]*(?:number|no)|iban)$", re.I)),
]


def _kind(header: str) -> str | None:
    cell = header.strip().strip('"\'*_` ').strip()
    for kind, pattern in COLUMN_KINDS:
        if pattern.match(cell):
            return kind
    return None


def _cells(line: str, delimiter: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for part in line.split(delimiter):
        end = start + len(part)
        a, b = start, end
        while a < b and line[a] in " \t\"'":
            a += 1
        while b > a and line[b - 1] in " \t\"'":
            b -= 1
        out.append((a, b))
        start = end + len(delimiter)
    return out


def table_spans(text: str) -> list[Found]:
    """Cells under a header whose column name says what they hold (CSV, TSV, Markdown tables)."""
    found: list[Found] = []
    lines, offsets, position = text.split("\n"), [], 0
    for line in lines:
        offsets.append(position)
        position += len(line) + 1
    header: tuple[str, list[tuple[str | None, tuple[int, int]]], int] | None = None
    for index, line in enumerate(lines):
        delimiter = next((d for d in ("\t", "|", ";", ",") if line.count(d) >= (2 if d == "|" else 1)), None)
        if delimiter is None or not line.strip():
            header = None
            continue
        cells = _cells(line, delimiter)
        if header is None or header[0] != delimiter or abs(len(cells) - len(header[1])) > 1:
            kinds = [_kind(line[a:b]) for a, b in cells]
            texts = [line[a:b] for a, b in cells]
            header = (delimiter, [(k, (offsets[index] + a, offsets[index] + b)) for k, (a, b) in zip(
                kinds, cells, strict=True)], index) if any(kinds) and not any(
                re.search(r"\d{3}", t) for t in texts) else None
            continue
        if re.fullmatch(r"[\s|:\-+]*", line):  # a Markdown rule line
            continue
        for (kind, cue), (a, b) in zip(header[1], cells, strict=False):
            if kind and b > a and not re.fullmatch(r"[\s\-–—n/aNA.]*", line[a:b]):
                found.append((offsets[index] + a, offsets[index] + b, kind, 0.85, "format:table-column", (cue,)))
    return found


_RECORD = re.compile(r"""(?P<q>["']?)(?P<key>[A-Za-z][A-Za-z _-]{1,30})(?P=q)\s*[:=]\s*"""
                     r"""(?P<vq>["'])(?P<v>[^"'\n]{1,80})(?P=vq)""")


def record_spans(text: str) -> list[Found]:
    """``"city": "Springfield"``, ``name='Ana Lopes'``: values of keys that name what they hold."""
    found: list[Found] = []
    for m in _RECORD.finditer(text):
        kind = _kind(m.group("key"))
        if kind and m.group("v").strip():
            found.append((m.start("v"), m.end("v"), kind, 0.85, "format:record-key", ((m.start("key"),
                                                                                       m.end("key")),)))
    return found


# -- names by position -----------------------------------------------------------------------------------------

NAME_WORDS = rf"{WORD}(?:\s+(?:[{UPPER}]\.|{WORD})){{0,3}}"
_FORM_LABEL = re.compile(
    r"(?im)(?:^|[|;]\s*|\s{2,})(?P<cue>(?:first|last|middle|given|family|full|legal|maiden|preferred|customer|client|"
    r"account\s+holder|card\s*holder|policy\s*holder|employee|member)\s+names?|surname|forename|given\s+names?|"
    r"insured|applicant|claimant|beneficiary|customer|client|employee|tenant|landlord|passenger|witness|"
    r"recipient|sender|addressee|driver|owner|holder|student|parent|guardian|spouse|emergency\s+contact|"
    r"next\s+of\s+kin|attn|attention|c/o|care\s+of)\s*[:#-]\s*(?P<v>[^\n|;:]{1,60}?)(?=\s*(?:$|\||;|\s{2,}|\n|,\s|"
    r"\(|\s+-\s))")
# greetings in English and the languages next to it (sixth round: "Estimado Sr. Ruiz:", "Agent: Thanks Rahul,"),
# a title between greeting and name
_GREETING = re.compile(r"(?im)(?:^|(?<=[.!?:]\s))(?P<cue>dear|hi|hello|hey|hiya|good\s+(?:morning|afternoon|evening)|"
                       r"thanks|thank\s+you|congratulations\s+to|welcome|estimad[oa]s?|querid[oa]s?|hola|cher|chère|"
                       r"bonjour|salut|liebe[rs]?|hallo|sehr\s+geehrte[r]?|caro|cara|gentile|ciao|beste|hej|hoi|olá|"
                       r"prezado|prezada|drog[ia])[ \t]+(?:(?:mr|mrs|ms|dr|sr|sra|srta|dña|don|mme|mlle|m|herr|frau|"
                       r"sig|sig\.ra|pan|pani)\.?[ \t]+)?(?P<v>[^\n,!.:;?]{1,40}?)(?=\s*(?:[,!.:;?\n]|$))")
_SIGN_OFF_WORDS = (r"atentamente|cordialement|saludos(?:\s+cordiales)?|un\s+abrazo|abrazos|besos|bisous|"
                   r"je\s+t'embrasse|bien\s+à\s+(?:vous|toi)|(?:liebe|viele|herzliche)\s+grüße|grüße|"
                   r"mit\s+freundlichen\s+grüßen|cordiali\s+saluti|saluti|un\s+abbraccio|"
                   r"met\s+vriendelijke\s+groet(?:en)?|groetjes|pozdrawiam|hälsningar|med\s+venlig\s+hilsen|"
                   r"hilsen|terveisin|abraços|atenciosamente")
_SIGN_OFF = re.compile(r"(?im)^[ \t]*(?P<cue>(?:kind|best|warm|warmest)?\s*regards|sincerely(?:\s+yours)?|"
                       r"yours\s+(?:sincerely|truly|faithfully)|best(?:\s+wishes)?|cheers|thanks|thank\s+you|"
                       r"cordially|respectfully|love|xoxo|--|" + _SIGN_OFF_WORDS + r")[ \t]*,?[ \t]*\n[ \t]*"
                       r"(?P<v>[^\n]{2,40}?)[ \t]*(?:\n|$)")
# "Yours faithfully, Ana Ruiz" on one line, at the end of a line
_SIGN_OFF_INLINE = re.compile(r"(?im)(?:^|(?<=[.!?]\s))[ \t]*(?P<cue>(?:kind|best|warm|warmest)\s+regards|regards|"
                              r"sincerely(?:\s+yours)?|yours\s+(?:sincerely|truly|faithfully)|best\s+wishes|cheers|"
                              r"cordially|respectfully|" + _SIGN_OFF_WORDS + r")"
                              r"[ \t]*,[ \t]*(?P<v>[^\n,]{2,40}?)[ \t]*$")
_SELF = re.compile(r"(?i)\b(?P<cue>my\s+name\s+is|my\s+name's|name\s+is|i\s+am|i'm|this\s+is|it's|call\s+me|"
                   r"known\s+as|named|called)\s+(?P<v>" + NAME_WORDS + r")")
_I_COMMA = re.compile(r"\b(?P<cue>I),\s+(?P<v>" + NAME_WORDS + r"),")
_CHAT = re.compile(r"(?m)^[ \t]*(?P<cue>\[?\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?\]?|<\d{1,2}:\d{2}>)[ \t]*"
                   r"(?P<v>[^\s:\]]{2,25}(?:\s[^\s:\]]{2,25})?):")
_AUTHORISE = re.compile(rf"(?i)\b(?P<cue>authori[sz]e|appoint|nominate|introduce|recommend|meet|met|married|"
                        rf"hired|interviewed|thank|contact|email|e-mail|text|ring|visit(?:ed)?|forward\s+this\s+to|"
                        rf"told|asked|with|and|from|to|by|for|cc|dear)\s+(?P<v>{NAME_WORDS})")


def _name_value(text: str, start: int, end: int, strict: bool) -> tuple[int, int] | None:
    """The leading run of name-like words of text[start:end]; strict: every word must be a listed name
    (cues that are common words, in prose)."""
    words = list(re.finditer(rf"{WORD}|[{UPPER}]\.", text[start:end]))
    kept: list[re.Match[str]] = []
    for w in words:
        token = fold(w.group().strip(".'’-"))
        if not token:
            break
        if len(token) == 1 and w.group().endswith("."):  # an initial
            kept.append(w)
            continue
        low = token.lower()
        if is_stop(token) or (is_clinical(token) and not is_listed_name(token)) or low in _NOT_NAME:
            break
        if strict and not (kept and (token[0].isupper() or is_listed_name(token))) and not (
                token[0].isupper() and name_without_cue(token, 3.8)):
            break  # a common-word cue in prose: a capitalised listed name that is rare as an English word
        if not strict and not (token[0].isupper() or name_after_cue(token)):
            break
        kept.append(w)
    if not kept or all(len(w.group().strip(".")) == 1 for w in kept):
        return None
    return start + kept[0].start(), start + kept[-1].end()


_NOT_NAME = {"sir", "madam", "all", "team", "everyone", "there", "guys", "folks", "customer", "doctor", "nurse",
             "again", "so", "much", "very", "you", "your", "sender", "recipient", "n/a", "none", "unknown", "agent",
             "bot", "user", "system", "admin", "support", "mom", "dad", "the", "for", "regarding", "re"}


# (sixth round) a dialogue written "Name: message" line after line, with no clock ("Vasiliki: ok see u at 8\nlosa: 👍")
_CHAT_WORD = rf"[{UPPER}{LOWER}][{UPPER}{LOWER}'’-]+"
_SPEAKER = re.compile(rf"(?m)^[ \t]*(?P<v>{_CHAT_WORD}(?:[ \t]+{_CHAT_WORD})?)"
                      r":[ \t]+(?![\d#(+$€£])\S")  # a message, not a form's value ("DOB: 4/19/12", "Pager: #54321")
# the person to call, right before a phone number ("call Isabelle on +47 343 34 229", "ring Yifan at (0113) 496")
_CALL = re.compile(rf"(?i)\b(?P<cue>call|ring|text|phone|contact|ask\s+for|speak\s+to|reach)[ \t]+"
                   rf"(?P<v>(?-i:{WORD}(?:[ \t]+{WORD})?))[ \t]+(?:on|at)[ \t]+(?=\+?\(?\d)")
# a message signed with a name alone after its last sentence ("... come by after 8. Niluka")
_LAST_NAME = re.compile(rf"(?<=[.!?])[ \t]+(?P<v>[{UPPER}{LOWER}][{UPPER}{LOWER}'’-]+(?:[ \t]+"
                        rf"[{UPPER}{LOWER}][{UPPER}{LOWER}'’-]+)?)[ \t]*$")


def _named(words: list[str]) -> bool:
    """Words that read as a person's name with no cue: one style of case, a listed or rare given name first, the
    others listed or rare (:func:`_pair_word_ok`)."""
    style = _case(words[0])
    return bool(style) and all(_case(w) == style and _pair_word_ok(w, style, k == 0) for k, w in enumerate(words))


def name_spans(text: str) -> list[Found]:
    found: list[Found] = []

    def add(m: re.Match[str], rule: str, strict: bool, score: float) -> None:
        value = _name_value(text, m.start("v"), m.end("v"), strict)
        if value:
            found.append((*value, "NAME", score, rule, ((m.start("cue"), m.end("cue")),)))

    for m in _FORM_LABEL.finditer(text):
        add(m, "format:form-label", strict=False, score=0.9)
    for m in _GREETING.finditer(text):
        add(m, "format:greeting", strict=False, score=0.8)
    for m in _SIGN_OFF.finditer(text):
        add(m, "format:sign-off", strict=False, score=0.75)
    for m in _SIGN_OFF_INLINE.finditer(text):
        add(m, "format:sign-off", strict=False, score=0.75)
    for m in _SELF.finditer(text):
        add(m, "format:self-introduction", strict=m.group("cue").lower() not in ("my name is", "my name's"),
            score=0.85)
    for m in _I_COMMA.finditer(text):
        add(m, "format:self-introduction", strict=False, score=0.85)
    for m in _CHAT.finditer(text):
        value = m.group("v")
        if value.lower().strip() not in _NOT_NAME and not re.search(r"\d", value):
            found.append((m.start("v"), m.end("v"), "NAME", 0.75, "format:chat-speaker", ((m.start("cue"),
                                                                                           m.end("cue")),)))
    for m in _AUTHORISE.finditer(text):
        add(m, "format:name-in-prose", strict=True, score=0.6)
    for m in _CALL.finditer(text):
        if _named(m.group("v").split()):
            found.append((m.start("v"), m.end("v"), "NAME", 0.7, "format:name-before-phone",
                          ((m.start("cue"), m.end("cue")),)))
    if everyday_prose(text):
        speakers = [m for m in _SPEAKER.finditer(text) if m.group("v").lower() not in _NOT_NAME]
        # a dialogue, not a form's labels ("Surname: Kowalski\nPolicyholder: n/a"): two messages or more are
        # sentences (a function word in them), or one speaker at least is a listed given name
        said = [m for m in speakers
                if any(is_stop(w) for w in re.findall(r"[A-Za-z']+", text[m.end("v"):text.find("\n", m.end("v"))
                                                                             % (len(text) + 1)]))]
        if len(speakers) >= 2 and (len(said) >= 2 or any(
                _pair_word_ok(m.group("v").split()[0], _case(m.group("v").split()[0]) or "title", True) == 2
                for m in speakers)):
            for m in speakers:
                words = m.group("v").split()
                if _named(words) and (words[0].isupper() is False or is_listed_name(words[0])):
                    found.append((m.start("v"), m.end("v"), "NAME", 0.7, "format:dialogue-speaker", ()))
        if (last := _LAST_NAME.search(text)) and _named(last.group("v").split()):
            found.append((last.start("v"), last.end("v"), "NAME", 0.65, "format:signed-message", ()))
    return found


# -- identifiers -------------------------------------------------------------------------------------------------

_LICENCE = re.compile(
    r"(?i)(?P<cue>driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e|\bDL|\bD/L|permit)\s*(?:number|no\.?|"
    r"num|nr|#|id)?\s*(?:is|was|:|#|=)?\s*#?\s*"
    r"(?P<v>(?=[A-Z0-9 -]*\d{3})[A-Z]{0,3}\d[A-Z0-9]{0,14}(?:[ -][A-Z0-9]{1,6}){0,5}|[A-Z]{1,3}\d{4,14})(?![\w-])")
_PHONE_EXTRA = re.compile(
    r"(?<![\w+])(?P<v>(?:\+|00)\d{1,3}[-. ]?(?:\(0\)\s?)?(?:\(?\d{1,4}\)?[-. ]?){1,5}\d{2,6}"
    r"(?:\s?(?:x|ext\.?|#)\s?\d{1,6})?|\(?\d{3}\)?[-. ]?\d{3}[-. ]\d{4}\s?(?:x|ext\.?|#)\s?\d{1,6}|"
    r"1-\d{3}-\d{3}-\d{4})(?![\w/])")
_PHONE_LABEL = re.compile(r"(?i)(?P<cue>\b(?:phone|tel\.?|telephone|cell|mobile|mob\.?|landline|fax|contact\s+no\.?|"
                          r"contact\s+number|whatsapp|sms\s+from|text\s+from|call\s+(?:me\s+)?(?:at|on)|"
                          r"call\s+back\s+on|reach\s+me\s+at))\s*(?:number|no\.?|#)?\s*[:#]?\s*"
                          r"(?P<v>\+?\(?\d[\d\s().-]{5,18}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?)")


# a national number with its trunk "0" and 9 to 12 digits in groups ("0803 123 4567", "090-1234-5678",
# "(0532) 123 45 67"), in whatever country's shape: checked by phonenumbers against every region that dials "0"
_NATIONAL_PHONE = re.compile(r"(?<![\w+/.,:-])(?P<v>\(?0\d{1,4}\)?(?:[ .-]\d{2,5}){1,4})(?![\w/-]|[.,:]\d)")


@lru_cache(maxsize=1)
def _trunk_zero_regions() -> tuple[str, ...]:
    import phonenumbers

    return tuple(sorted(r for r in phonenumbers.SUPPORTED_REGIONS
                        if getattr(phonenumbers.PhoneMetadata.metadata_for_region(r), "national_prefix", None) == "0"))


def national_phone(value: str) -> bool:
    """9 to 12 digits after the trunk "0", not a list of clock times ("0800 1200 1600"), a valid number of some
    country that dials "0" before its area codes."""
    import phonenumbers

    digits = re.sub(r"\D", "", value)
    groups = re.findall(r"\d+", value)
    if not 9 <= len(digits) <= 12 or all(len(g) == 4 and int(g[:2]) < 24 and int(g[2:]) < 60 for g in groups):
        return False
    for region in _trunk_zero_regions():
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def identifier_spans(text: str) -> list[Found]:
    found: list[Found] = []
    for m in _LICENCE.finditer(text):
        value = m.group("v").strip()
        if sum(ch.isdigit() for ch in value) >= 5:
            found.append((m.start("v"), m.start("v") + len(value), "LICENSE", 0.85, "format:licence",
                          ((m.start("cue"), m.end("cue")),)))
    for m in _PHONE_EXTRA.finditer(text):
        if sum(ch.isdigit() for ch in m.group("v")) >= 9:
            found.append((m.start("v"), m.end("v"), "PHONE", 0.8, "format:phone", ()))
    for m in _NATIONAL_PHONE.finditer(text):
        if national_phone(m.group("v")):
            found.append((m.start("v"), m.end("v"), "PHONE", 0.7, "format:phone-national", ()))
    for m in _PHONE_LABEL.finditer(text):
        if sum(ch.isdigit() for ch in m.group("v")) >= 7:
            found.append((m.start("v"), m.end("v"), "PHONE", 0.9, "format:phone-labelled",
                          ((m.start("cue"), m.end("cue")),)))
    return found


# -- places and international addresses ----------------------------------------------------------------------

PLACE_WORDS = rf"{CAP_WORD}(?:[ \t]+(?:{CAP_WORD}|de|del|la|le|on|upon|sur|am|an|im)){{0,3}}"
_PLACE_STRONG = re.compile(
    rf"(?i)\b(?P<cue>lives?\s+in|living\s+in|resides?\s+in|residing\s+in|resident\s+of|moved\s+(?:from|to)|"
    rf"relocated\s+(?:from|to)|grew\s+up\s+in|born\s+in|raised\s+in|based\s+in|located\s+in|issued\s+in|"
    rf"registered\s+in|drove\s+(?:from|to)|flew\s+(?:from|to)|travel(?:l?ed)?\s+(?:from|to)|visiting|"
    rf"originally\s+from|comes?\s+from|office\s+in|branch\s+in|home\s+in|native\s+of|hometown\s+of|"
    rf"(?:to|from)\s+(?=(?-i:[{UPPER}]))(?=[^\n]{{0,60}}\b(?:drove|moved|flew|travel)))\s+(?P<v>(?-i:{PLACE_WORDS}))")
_PLACE_WEAK = re.compile(rf"\b(?P<cue>in|at|near|outside|from|to|of)\s+(?P<v>{PLACE_WORDS})")
_PLACE_SHAPE = re.compile(r"(?:ville|town|burg|burgh|borough|boro|ton|ford|field|wood|dale|port|mouth|ham|chester|"
                          r"bury|berry|haven|ridge|hurst|land|wick|stead|view|side|shire|fort|stad|furt|hagen|"
                          r"heim|dorf|sund|by|bo|holm|köping|grad|ovo|ów|ice|ino|ia)$", re.I)
_PLACE_PREFIX = {"north", "south", "east", "west", "new", "lake", "port", "fort", "mount", "mt", "san", "santa",
                 "saint", "st", "los", "las", "el", "la", "le", "upper", "lower", "great", "little", "old", "bad",
                 "sankt", "nieuw", "villa", "porto"}
_FOREIGN_ADDRESS = re.compile(
    r"(?P<v>(?:\b(?:ul\.|ulica|pl\.|plac|al\.|aleja|os\.|rue|chemin|all[ée]e|impasse|quai|strada|viale|via|vicolo|"
    r"corso|piazza|calle|glorieta|avenida|paseo|ronda|traves[ií]a|carrer|rua|pra[cç]a|largo|camino|carretera)\s|"
    r"\d{1,5}(?:\s*bis)?,?\s+(?:rue|chemin|boulevard|avenue|all[ée]e|impasse|place)\s)"
    r"[^\n;]{1,60}?,?\s*(?:\d{2}-\d{3}|\d{4,5}|[A-Z]{1,2}\d[\dA-Z]?\s?\d[A-Z]{2})[ \t]+"
    rf"[{UPPER}][^\n,.;()]{{1,40}}(?:\s*\([A-Z]{{2}}\))?)")


def _place_ok(value: str, strong: bool) -> bool:
    words = [fold(w) for w in re.findall(WORD, value)]
    if not words or any(is_stop(w) or is_clinical(w) for w in words if w.lower() not in _PLACE_PREFIX):
        return False
    from .lexicon import zipf

    if strong:
        return all(zipf(w) < 4.2 or w.lower() in _PLACE_PREFIX for w in words)
    return (words[0].lower() in _PLACE_PREFIX and len(words) > 1) or (bool(_PLACE_SHAPE.search(words[-1])) and all(
        zipf(w) < 3.5 for w in words if w.lower() not in _PLACE_PREFIX))


def place_spans(text: str) -> list[Found]:
    found: list[Found] = []
    for pattern, strong in ((_PLACE_STRONG, True), (_PLACE_WEAK, False)):
        for m in pattern.finditer(text):
            value = m.group("v")
            words = list(re.finditer(rf"{CAP_WORD}|de|del|la|le|on|upon|sur|am|an|im", value))
            while words and not _place_ok(value[words[0].start():words[-1].end()], strong):
                words.pop()  # "in Springfield Tuesday": the place is the leading words
            if words and words[-1].group()[0].isupper():
                found.append((m.start("v") + words[0].start(), m.start("v") + words[-1].end(), "LOCATION",
                              0.75 if strong else 0.6, "format:place-strong" if strong else "format:place-shape",
                              ((m.start("cue"), m.end("cue")),)))
    for m in _FOREIGN_ADDRESS.finditer(text):
        found.append((m.start("v"), m.end("v"), "ADDRESS", 0.8, "format:international-address", ()))
    return found


# -- street grammar beyond "number + words + suffix" (USPS forms), names by shape, ZIPs and ids by their cue --

_ROUTE_ADDRESS = re.compile(
    r"(?i)\b(?P<v>(?:(?:rural\s+route|r\.?\s?r\.?|star\s+route|highway\s+contract|hc)\s+\d{1,4},?\s+box\s+\d{1,5}"
    r"|\d{1,6}\s+(?:county\s+(?:road|rd\.?|route|highway|hwy)|state\s+(?:road|rd\.?|route|highway|hwy)|"
    r"(?:us|u\.s\.)\s+(?:highway|hwy|route)|farm\s+to\s+market(?:\s+road)?|fm|ranch\s+road|highway|hwy\.?|route|"
    r"interstate)\s+\d{1,4}[A-Z]?(?:\s+[NSEW]\b)?))")
_UNIT_FIRST = re.compile(  # "Flat 3, 17 Wexford Close", "Unit 5/12 Larch Street": the unit before the street
    r"(?i)\b(?P<v>(?:flat|unit|apt\.?|apartment|suite|ste\.?)\s+[A-Za-z0-9-]{1,5}(?:,\s*|\s*/\s*|\s+))(?=\d{1,6}\s+[A-Za-z])")
_LOWER_STREET = re.compile(  # "25661 south quarry rd": a standard suffix, in any case
    r"(?i)\b(?P<v>\d{1,6}(?:\s+(?:[nsew]|north|south|east|west|ne|nw|se|sw)\.?)?(?:\s+[a-z][a-z'-]+){1,3}\s+"
    r"(?:street|avenue|ave|road|rd|lane|drive|boulevard|blvd|court|terrace|parkway|pkwy|crescent|highway|hwy)"
    r"\b\.?(?:,?\s+(?:apt\.?|apartment|suite|ste\.?|unit|#)\s*[a-z0-9-]+)?)")  # not "st" (sinus tachycardia)


# (sixth round) streets as other countries write them, the type word before the name ("Av. Lajos Kossuth 1683",
# "C/ Garibaldi, 49", "Jl. Sudirman No. 74", "Odos Venizelou 46", "Náměstí Míru 5/18", "Jr. Grau 30") or after it
# ("Kossuth Lajos utca 18", "Brīvības iela 7", "Pärna tn 4"), then the house number; a Thai "moo" (village) address
# ("30/71 Moo 6"); a plot before its street ("Plot 97, Kenyatta Avenue")
_NAME_PART = rf"(?:{CAP_WORD}|de|del|la|las|los|da|das|do|dos|di|y|e)"
_WORLD_STREET = re.compile(
    rf"(?<![\w./-])(?P<v>(?:(?:Av|Avda|Cra|Cl|Jr|Jl|Psje|Leof|Nám|Bd|Sok|Cad|Str)\.|C/|Calle|Carrera|Avenida|"
    rf"Jirón|Pasaje|Jalan|Odos|Odós|Leoforos|Náměstí|Namesti|Ulitsa|Prospekt|Rambla|Passeig|Camí|Strada|Bulevardul|"
    rf"Sokak|Caddesi|Rúa|Estrada|Alameda|Travessa|Praça|Vía)[ \t]+{_NAME_PART}(?:[ \t]+{_NAME_PART}){{0,4}},?[ \t]+"
    rf"(?:(?:No\.?|Nº|N°|n\.|#)[ \t]*)?#?\d{{1,5}}[A-Za-z]?(?![\w-])"
    rf"|{CAP_WORD}(?:[ \t]+{CAP_WORD}){{0,3}}[ \t]+(?:utca|út|útja|tér|körút|ulica|iela|tn|tänav|maantee|cesta|"
    rf"trg|gatve|prospektas|sokak|caddesi)[ \t]+\d{{1,5}}[A-Za-z]?(?![\w-])"
    rf"|\d{{1,5}}(?:/\d{{1,4}})?[ \t]+(?:Moo|M\.)[ \t]+\d{{1,2}}(?![\w-])"
    rf"|(?:Plot|Lot|Stand|Erf)[ \t]+\d{{1,5}}[A-Za-z]?,?[ \t]+{CAP_WORD}(?:[ \t]+{CAP_WORD}){{0,3}}[ \t]+"
    rf"(?:Road|Rd|Street|St|Avenue|Ave|Close|Crescent|Drive|Lane|Way)\b\.?)")


def address_spans(text: str) -> list[Found]:
    from .lexicon import is_clinical, is_stop

    found: list[Found] = []
    for m in _WORLD_STREET.finditer(text):
        found.append((m.start("v"), m.end("v"), "ADDRESS", 0.8, "format:world-street", ()))
    for m in _ROUTE_ADDRESS.finditer(text):
        found.append((m.start("v"), m.end("v"), "ADDRESS", 0.85, "format:route-address", ()))
    for m in _LOWER_STREET.finditer(text):
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", m.group("v"))[:-1]
        if words and not any(is_clinical(w) or (is_stop(w) and w.lower() not in ("north", "south", "east", "west"))
                             for w in words):
            found.append((m.start("v"), m.end("v"), "ADDRESS", 0.8, "format:street", ()))
    return found


_WEEKDAY = re.compile(r"(?i)\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|rsday|urday|sday)?"
                      r"\.?,?[ \t]+$")


def weekday_prefixes(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """A date takes the weekday written before it ("Sat 07 Jun", "Thursday, March 4")."""
    out = []
    for start, end, category in spans:
        if category == "DATE" and (m := _WEEKDAY.search(text, max(0, start - 12), start)):
            out.append((m.start(), end))
    return out


# what follows a house number in other countries: "107/9", "141 B 28", "124, 4. th." (Danish floor and side),
# "12 bus 3" (Belgian box), ", 6º" / ", depto 4B" (floor, flat), "No. 74", a neighbourhood ("St., Brgy. Poblacion",
# "Col. Centro", "Bairro Jardim")
_STREET_TAIL = re.compile(
    rf"(?:[ \t]*/[ \t]*\d{{1,4}}[A-Za-z]?(?![\w/])|-\d{{1,4}}[A-Za-z]?(?![\w-])"
    rf"|[ \t]+[A-H](?:[ \t]+\d{{1,3}})?(?=[ \t]*(?:[,;\n]|$))"
    rf"|,?[ \t]+(?:bus|bte|boîte|apt|apto|depto|dpto|piso|lgh|app|whg|int)\.?[ \t]*\d{{1,4}}[A-Za-z]?(?![\w-])"
    rf"|,[ \t]*\d{{1,2}}\.?[ \t]*(?:th|tv|mf|sal)\b\.?"
    rf"|,[ \t]*\d{{1,2}}[ \t]*[º°ª](?:[ \t]*[A-Z](?![\w]))?"
    rf"|,?[ \t]+(?:No\.?|Nº|N°)[ \t]*\d{{1,5}}[A-Za-z]?(?![\w-])"
    rf"|,?[ \t]+(?:Brgy\.?|Barangay|Bgy\.?|Col\.|Colonia|Bairro|Barrio|Kel\.|Kelurahan)[ \t]+"
    rf"{CAP_WORD}(?:[ \t]+{CAP_WORD}){{0,2}})")


def street_tails(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """An ADDRESS span takes what other countries write after the street (:data:`_STREET_TAIL`): half an address
    is still a leak."""
    out = []
    for start, end, category in spans:
        if category != "ADDRESS":
            continue
        stop = end
        if back := re.search(r",?[ \t]+(?:Brgy|Bgy|Col|Kel)\.?$", text[start:end]):
            stop = start + back.start()  # "12 Rizal St., Brgy" cut at the keyword: the tail takes it whole
        while (m := _STREET_TAIL.match(text, stop)) and m.end() > stop:
            stop = m.end()
        if stop > end:
            out.append((start, stop))
    return out


# a street is the clause right before a postcode and town found together ("Satamakatu 14 B 2\n83378 Kuopio",
# "Calle Bramble #34, Morelia 51959"): on the line above or after the comma before them, with a house number
_SEGMENT_WORD = re.compile(rf"[{UPPER}{LOWER}][{UPPER}{LOWER}'’.-]*")


def streets_before_postcodes(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    zips = [(start, end) for start, end, category in spans if category == "ZIP"]
    places = [(start, end) for start, end, category in spans if category == "LOCATION"]
    out = []
    for z0, z1 in zips:
        pair = None
        for p0, p1 in places:
            if 0 <= p0 - z1 <= 3 and text[z1:p0].strip() == "":
                pair = (z0, p1)  # "83378 Kuopio"
            elif 0 <= z0 - p1 <= 6 and re.fullmatch(r"[ \t,-]*(?:[A-Z]{2,3}[ \t]+)?", text[p1:z0]):
                pair = (p0, z1)  # "Morelia 51959", "Whitehorse YT Y1A 2C6"
        if pair is None:
            continue
        before = text[:pair[0]]
        m = re.search(r"(?:,[ \t]*|\n[ \t]*)$", before)
        if not m:
            continue
        head = before[:m.start()]
        cut = max(head.rfind("\n"), head.rfind(","), head.rfind(":"), head.rfind(";"), head.rfind("("))
        seg0 = cut + 1
        while seg0 < len(head) and head[seg0] in " \t":
            seg0 += 1
        segment = head[seg0:]
        if not (3 <= len(segment) <= 60) or not re.search(r"(?<![\w.])#?\d{1,5}[A-Za-z]?(?![\w.@]|\.\d)", segment):
            continue
        words = _SEGMENT_WORD.findall(segment)
        if not words or "@" in segment or re.search(r"\d{6,}|\d[ .-]\d{3}[ .-]\d", segment):
            continue  # not a phone or an identifier
        if any(is_clinical(w) for w in words if len(w) > 3):
            continue
        tokens = list(re.finditer(r"\S+", segment))
        k = len(tokens)
        while k and _street_token(tokens[k - 1].group()):
            k -= 1  # "Write to me at Satamakatu 14 B 2": the street is the trailing run of street-like words
        if k == len(tokens) or not re.search(r"\d", segment[tokens[k].start():]):
            continue
        out.append((seg0 + tokens[k].start(), seg0 + len(segment.rstrip(" \t."))))
    return out


_STREET_LOWER = frozenset({"de", "del", "la", "las", "los", "da", "das", "do", "dos", "di", "du", "des", "van", "von",
                           "der", "den", "am", "an", "bis", "y", "e", "rue", "via", "calle", "utca", "iela", "ulica",
                           "tn", "th.", "tv.", "no.", "nº", "ul.", "bus", "apto", "depto", "piso"})


def _street_token(token: str) -> bool:
    """A word that may stand in a street line: a number, a capitalised word, a particle or a street word."""
    bare = token.strip(",.;")
    return bool(bare) and (any(ch.isdigit() for ch in bare) or bare[:1].isupper() or token.lower() in _STREET_LOWER
                           or bare.lower() in _STREET_LOWER or bare in ("#", "/", "-", "º", "°")) and not (
        bare[:1].isupper() and is_stop(bare) and bare.lower() not in ("am", "an", "de"))


def unit_prefixes(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """A unit written before its street ("Flat 3, 17 Wexford Close") joins the ADDRESS span that follows it."""
    starts = {start: end for start, end, category in spans if category == "ADDRESS"}
    out = []
    for m in _UNIT_FIRST.finditer(text):
        if m.end("v") in starts:
            out.append((m.start("v"), starts[m.end("v")]))
    return out


_NAME_SHAPE = re.compile(rf"(?<![\w.])(?P<v>[{UPPER}][{LOWER}]+(?:-[{UPPER}][{LOWER}]+)?(?:[ \t]+[{UPPER}]\.)?"
                         rf"(?:[ \t]+(?:Mac|Mc|O'|Ó|Ní|Van|Von|De|Di|Da|Del|Le|La|St\.?)?[ \t]?[{UPPER}][{LOWER}'’]+"
                         rf"(?:-[{UPPER}][{LOWER}]+)?){{1,2}})(?![\w])")


def shaped_name_spans(text: str) -> list[Found]:
    """Capitalised "Given [I.] Surname" anywhere: the first word a listed given name that is not a frequent English
    word, the others listed names or rare words, none clinical, a function word, a month or a place word
    ("Tobiasz Bogaczyk", "Grete I. Chatterjee"; not "May Street", "Will Foley")."""
    from .lexicon import first_names, zipf

    found: list[Found] = []
    for m in _NAME_SHAPE.finditer(text):
        words = re.findall(rf"[{UPPER}][{LOWER}'’]+(?:-[{UPPER}][{LOWER}]+)?", m.group("v"))
        words = [w for w in words if w.lower() not in ("mac", "mc", "van", "von", "de", "di", "da", "del", "le",
                                                      "la", "st")]
        if len(words) < 2:
            continue
        first, rest = words[0], words[1:]
        if fold(first).lower() not in first_names() or zipf(first) >= 4.0 or is_stop(first) or is_clinical(first):
            continue
        if any(is_stop(w) or is_clinical(w) or w.lower() in _NOT_NAME or w.lower() in _PLACE_PREFIX
               or not (is_listed_name(w) or zipf(w) < 2.5) for w in rest):
            continue
        found.append((m.start("v"), m.end("v"), "NAME", 0.6, "format:name-shape", ()))
    return found


_PAIR_WORD = re.compile(rf"(?<![\w'’.@/-])(?:[{UPPER}{LOWER}]\.(?=[ \t])|[{UPPER}{LOWER}][{UPPER}{LOWER}'’]*"
                        rf"(?:-[{UPPER}{LOWER}]+)?)"
                        rf"(?![\w'’@/-]|\.[\w])")
_PAIR_GAP = re.compile(r"[ \t]+")


_PAIR_PARTICLES = frozenset({"ó", "ní", "nic", "mac", "mc", "van", "von", "de", "di", "da", "del", "della", "dos",
                              "du", "le", "la", "bin", "ibn", "al", "el", "ter", "ten"})


def _case(word: str) -> str:
    """"title" ("Okafor", "McAllen", "Ó"), "upper" ("OKAFOR"), "lower" ("okafor") or "" (mixed: "iPhone")."""
    if word.islower():
        return "lower"
    if word.isupper():
        return "upper" if len(word) > 1 else ""
    return "title" if word[:1].isupper() and not any(ch.isupper() for ch in word[1:2]) else ""


@lru_cache(maxsize=1)
def _pair_heads() -> frozenset[str]:
    """Organisation, street and place words: never half of a name pair, nor the word right after one."""
    from .phi import ORG_WORDS, STREET_SUFFIXES

    return frozenset(ORG_WORDS | {w.lower() for w in STREET_SUFFIXES.split("|")} | _PLACE_PREFIX
                     | {"hall", "house", "church", "library", "museum", "hotel", "cafe", "restaurant", "bridge",
                        "station", "airport", "county", "city", "town", "village", "state", "river", "lake",
                        "island", "mountain", "valley", "beach", "bay", "road"})


def _pair_word_ok(word: str, style: str, given: bool) -> int:
    """How a word may stand in a name pair written in ``style`` case: 2 listed (a given name when ``given``, else
    a surname or given name), 1 unlisted but rare as an English word and written as a name, 0 not a name."""
    from .lexicon import MONTH_WORDS, UNIT_WORDS, first_names, last_names, zipf

    low = fold(word).lower()
    if (len(low) < 2 or is_stop(word) or is_clinical(word) or low in MONTH_WORDS or low in UNIT_WORDS
            or low in _pair_heads() or low in _TITLES or low in _NOT_NAME
            or not re.fullmatch(r"[a-z'-]+", low.replace("’", "'"))):
        return 0
    frequency = zipf(low)
    listed = low in first_names() if given else (low in last_names() or low in first_names())
    limit = {"title": 5.0, "upper": 4.5, "lower": 4.3}[style]
    if listed and frequency < limit:
        return 2
    if listed:
        return 0
    return 1 if frequency < (3.6 if given and style == "title" else 3.0) else 0


# everyday prose vs clinical notes: the share of words that are clinical vocabulary (``lexicon.is_clinical``) is
# 0.16 or more in 99% of the PhysioNet training notes, under 0.11 in 90% of the generated PII texts; a short text
# needs three such words too ("Re: Ana Lim. The family moved" has one: "family")
PROSE_CLINICAL_SHARE = 0.12
PROSE_CLINICAL_WORDS = 3
_SHARE_WORD = re.compile(r"[A-Za-z][A-Za-z'/-]+")


def clinical_share(text: str) -> float:
    """The share of the text's words that are clinical vocabulary (0 for a text without words)."""
    words = _SHARE_WORD.findall(text)
    return sum(1 for w in words if is_clinical(w)) / len(words) if words else 0.0


def everyday_prose(text: str) -> bool:
    """Not a clinical note: under ``PROSE_CLINICAL_SHARE`` of its words, or fewer than ``PROSE_CLINICAL_WORDS``
    words, are clinical vocabulary."""
    words = _SHARE_WORD.findall(text)
    clinical = sum(1 for w in words if is_clinical(w))
    return clinical < PROSE_CLINICAL_WORDS or clinical < PROSE_CLINICAL_SHARE * len(words)


def name_pair_spans(text: str) -> list[Found]:
    """Two to four words in one case that read as a person's name with no cue: a given name then surnames of the
    name lists (``lexicon``: Faker's names of every Latin-script locale), a middle initial or a particle ("Ó", "van")
    between them. Listed words up to Zipf 5 in title case ("Howard Bell"), 4.5 in capitals ("JAMAL OKAFOR"), 4.3 in
    lower case ("efua dube"); one unlisted word below Zipf 3 (3.6 for a given name in title case) next to a listed
    one ("Ming Okafor", "jamal ishikawa"). Not organisation, street, place, clinical or function words, not before
    an organisation or street word ("Grace Bell Foundation"). Only in everyday prose (:func:`everyday_prose`):
    clinical notes name syndromes, signs and devices after people ("mallory weiss tear", "Passy Muir valve")."""
    found: list[Found] = []
    if not everyday_prose(text):
        return found
    words = list(_PAIR_WORD.finditer(text))
    i = 0
    while i < len(words) - 1:
        first = words[i]
        style = _case(first.group())
        if not style or first.group().endswith(".") or not (given := _pair_word_ok(first.group(), style, True)):
            i += 1
            continue
        run, scores, k = [first], [given], i + 1
        while k < len(words) and len(run) < 4 and _PAIR_GAP.fullmatch(text[run[-1].end():words[k].start()]):
            word = words[k].group()
            if (word.endswith(".") and len(word) == 2 and len(run) == 1
                    and word[0].islower() == (style == "lower")) or (
                    word.lower() in _PAIR_PARTICLES and k + 1 < len(words)):
                run.append(words[k])  # a middle initial, a particle ("Ó Briain", "van Dijk")
                scores.append(-1)
                k += 1
                continue
            if _case(word) != style or not (score := _pair_word_ok(word, style, False)):
                break
            run.append(words[k])
            scores.append(score)
            k += 1
        while run and scores[-1] == -1:
            run.pop()
            scores.pop()
        full = [s for s in scores if s > 0]
        after = re.match(r"[ \t]+([^\W\d_]+)", text[run[-1].end():run[-1].end() + 30])
        if (len(full) >= 2 and 2 in full and (full.count(1) == 0 or full[0] == 2 or full[-1] == 2)
                and not (after and fold(after.group(1)).lower() in _pair_heads())):
            found.append((run[0].start(), run[-1].end(), "NAME", 0.6, "format:name-pair-listed", ()))
            i = k
            continue
        i += 1
    return found


def extend_names(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """A NAME span takes the capitalised listed names and initials right next to it on its line ("Bogaczyk" found
    alone in "Tobiasz Bogaczyk" takes "Tobiasz"): half a name is still a leak."""
    word = rf"(?:[{UPPER}][{LOWER}'’]+(?:-[{UPPER}][{LOWER}]+)?|[{UPPER}]\.)"
    before = re.compile(rf"(?<![\w.'’-])({word})[ \t]+$")  # a whole word: not the "R." of "DR."
    after = re.compile(rf"[ \t]+({word})(?![\w'’-])")

    def ok(token: str) -> bool:
        return (len(token) == 2 and token.endswith(".")) or (
            is_listed_name(token) and not is_stop(token) and not is_clinical(token) and token.lower() not in _NOT_NAME)

    out = []
    for start, end, category in spans:
        if category != "NAME" or not text[start:end].strip()[:1].isupper():
            continue
        a, b = start, end
        while (m := before.search(text, max(0, a - 40), a)) and ok(m.group(1)):
            a = m.start(1)
        kept = b
        while (m := after.match(text, b)) and ok(m.group(1)):
            b = m.end(1)
            if not m.group(1).endswith("."):
                kept = b  # an initial counts only when a name follows it
        b = kept
        if (a, b) != (start, end):
            out.append((a, b))
    return out


_ZIP_CUE = re.compile(r"(?i)(?:\b(?P<cue>zip|zip\s*code|zipcode|postal\s+code|postcode)\s+(?:is\s+|of\s+)?(?P<v>\d{5}"
                      r"(?:-\d{4})?)\b|(?<![\d-])(?P<v2>\d{5}(?:-\d{4})?)\s+(?P<cue2>zip|zip\s*code|zipcode|postal\s+code|"
                      r"area\s+code|postcode|area|neighbou?rhood|district)\b)")
_ID_CUE = re.compile(
    r"(?i)\b(?P<cue>confirmation|booking|reservation|passport|ticket|case|docket|invoice|order|policy|member|badge|"
    r"employee|student|account|tracking|reference|ref|claim|license\s+plate|plate|serial)\s*(?:number|no\.?|num|"
    r"id|code|#)?\s*(?:is\s+|:\s*|#\s*)?(?P<v>(?=[A-Z0-9-]*\d[A-Z0-9-]*\d[A-Z0-9-]*\d[A-Z0-9-]*\d)"
    r"[A-Z0-9][A-Z0-9-]{4,24})(?![\w-])")


def cue_number_spans(text: str) -> list[Found]:
    """A ZIP code next to the word that names it ("zip 60614", "the 60614 zip code"), an identifier of four digits
    or more after the word that names it ("confirmation HX9921734", "passport K4471092", "case 24-CV-1187")."""
    found: list[Found] = []
    for m in _ZIP_CUE.finditer(text):
        key, cue = ("v", "cue") if m.group("v") else ("v2", "cue2")
        if m.group(cue).lower() != "area code":
            found.append((m.start(key), m.end(key), "ZIP", 0.85, "format:zip-cue", ((m.start(cue), m.end(cue)),)))
    for m in _ID_CUE.finditer(text):
        found.append((m.start("v"), m.end("v"), "ID", 0.8, "format:id-cue", ((m.start("cue"), m.end("cue")),)))
    return found


_ROLE = re.compile(
    rf"(?i)\b(?P<cue>caller|tenant|landlord|witness(?:es)?|members?|neighbou?rs?|agent|coach|driver|plaintiff|"
    rf"defendant|officer|deputy|sergeant|detective|teacher|professor|student|pupil|customer|client|resident|guest|"
    rf"author|owner|buyer|seller|applicant|employee|manager|colleague|co-?worker|classmate|roommate|flatmate|"
    rf"cousin|friend|partner|fianc[ée]e?|boyfriend|girlfriend|grandma|grandpa|granny|uncle|aunt|nephew|niece|"
    rf"posted\s+by|written\s+by|reported\s+by|belonging\s+to|addressed\s+to|signed\s+by|attn\.?)"
    rf"(?:\s*[:,]\s*|\s+)(?P<v>(?-i:{NAME_WORDS}))")


_NAME_RUN = re.compile(rf"{WORD}(?:[ \t]+(?:[{UPPER}]\.|{WORD})){{0,3}}")
_CITY_STATE = re.compile(rf"(?P<v>{CAP_WORD}(?:[ \t]+{CAP_WORD}){{0,2}}),[ \t]+(?:{STATES})\b"
                         r"(?!\s+(?:State|Street|St\b|Ave|Avenue|Road|University|College))")


def city_state_spans(text: str) -> list[Found]:
    """"Roanoke, Virginia", "Eau Claire, Wisconsin 54701": a city before a state written out in full."""
    found: list[Found] = []
    for m in _CITY_STATE.finditer(text):
        words = re.findall(rf"[{UPPER}{LOWER}'’-]+", m.group("v"))
        if words and not any(is_stop(w) or is_clinical(w) for w in words):
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.75, "format:city-state", ()))
    return found


def _role_name_word(word: str) -> bool:
    """After a role noun, every word is capitalised (or listed) and one of them is a listed name or a capitalised
    word rare in English ("caller Ahanu Guo")."""
    from .lexicon import zipf

    return is_listed_name(word) or (word.istitle() and zipf(fold(word)) < 3.0)


def role_name_spans(text: str) -> list[Found]:
    """A name after a role noun ("caller Ahanu Guo", "tenant Okafor", "witnesses: A, B", "posted by X"): the
    words must be capitalised or listed names (the cue is a common word), and a list after the cue continues
    over ", " and " and "."""
    found: list[Found] = []
    for m in _ROLE.finditer(text):
        position = m.start("v")
        for _ in range(4):  # "Witnesses: Ana Ruiz, Bo Lind and Cy Park"
            words = _NAME_RUN.match(text, position)
            value = _name_value(text, position, words.end(), strict=False) if words else None
            if value is None:
                break
            tokens = re.findall(rf"[{UPPER}{LOWER}'’-]{{2,}}", text[value[0]:value[1]])
            if not tokens or not all(w.istitle() or is_listed_name(w) for w in tokens) or not any(
                    _role_name_word(w) for w in tokens):
                break
            found.append((*value, "NAME", 0.7, "format:role-name", ((m.start("cue"), m.end("cue")),)))
            more = re.match(r"(?:,\s*(?:and\s+)?|\s+(?:and|&)\s+)", text[value[1]:value[1] + 8])
            if not more:
                break
            position = value[1] + more.end()
    return found


_PLACE_PREPOSITION = re.compile(rf"\b(?P<cue>in|from|near|outside|around)\s+(?P<v>{CAP_WORD}"
                                rf"(?:[ \t]+{CAP_WORD})?)(?=\s*(?:[.,;:!?)\n]|$|\s+(?:to|on|in|at|for|and|now|"
                                rf"junction|branch|office|area|station|county)\b))")


def preposition_place_spans(text: str) -> list[Found]:
    """A capitalised word or two after "in", "from", "near"... at the end of a clause ("wrote from Ballarat.",
    "teaches in Salamanca;", "near Davao junction"): a place when no word is a listed person name, an English word
    of any frequency (zipf 3.0 or more), a clinical, function or organisation word, a month, a weekday, or a word
    not written as a name ("MDs", "PAline", "UE's")."""
    from .lexicon import zipf

    found: list[Found] = []
    for m in _PLACE_PREPOSITION.finditer(text):
        value = m.group("v")
        words = re.findall(rf"[{UPPER}{LOWER}'’-]+", value)
        if not words or any(not w.istitle() or is_stop(w) or is_clinical(w) or is_listed_name(w)
                            or w.lower() in _NOT_NAME or zipf(fold(w)) >= 3.0 for w in words):
            continue
        found.append((m.start("v"), m.end("v"), "LOCATION", 0.55, "format:place-after-preposition",
                      ((m.start("cue"), m.end("cue")),)))
    return found


_OUR_PLACE = re.compile(rf"\b(?P<cue>(?i:our|their|the))\s+(?P<v>{CAP_WORD}(?:[ \t]+{CAP_WORD})?)\s+"
                        r"(?:branch|office|store|campus|plant|depot|warehouse|site|location|clinic|chapter|parish)\b")


def contact_names(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The name written right before an e-mail address or a phone number in brackets ("Ana Ruiz (ana@x.org)",
    "Ana Ruiz <ana@x.org>", "Bo Lind (555-201-7788)"): capitalised or listed words, one of them listed or rare."""
    out = []
    for start, _, category in spans:
        if category not in ("EMAIL", "PHONE") or start < 2:
            continue
        m = re.search(rf"(?:^|(?<=[\s:;,(\-–—]))({WORD}(?:[ \t]+(?:[{UPPER}]\.|{WORD})){{0,3}})[ \t]*[(<]\s*$",
                      text[max(0, start - 60):start])
        if not m:
            continue
        offset = max(0, start - 60)
        words = list(re.finditer(rf"[{UPPER}{LOWER}'’-]{{2,}}|[{UPPER}]\.", m.group(1)))

        def ok(w: str) -> bool:
            return (len(w) == 2 and w.endswith(".")) or ((w.istitle() or is_listed_name(w)) and not is_stop(w)
                                                       and not is_clinical(w) and w.lower() not in _NOT_NAME)

        while words and not all(ok(w.group()) for w in words):
            words.pop(0)  # "... and Bram Quist <": the name is the words nearest the address
        begin = offset + m.start(1) + words[0].start() if words else 0
        if re.search(r"(?i)\b(?:the|a|an|our|your|my|this|that)\s+$", text[max(0, begin - 8):begin]):
            continue  # "call the Ward (555-...)": a determiner makes it a common noun
        if words and any(_role_name_word(w.group()) for w in words):
            out.append((begin, offset + m.end(1)))
    return out


def places_after_places(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """"from Leuven to Carlisle", "between Odense and Aarhus": the second place of a pair whose first was found."""
    from .lexicon import zipf

    out = []
    for start, end, category in spans:
        if category != "LOCATION":
            continue
        before = text[max(0, start - 10):start]
        m = re.match(rf"[ \t]+(?:to|and)[ \t]+({CAP_WORD}(?:[ \t]+{CAP_WORD}){{0,2}})", text[end:end + 60])
        if not m or not re.search(r"\b(?:from|between)\s+$", before, re.I):
            continue
        words = re.findall(rf"[{UPPER}{LOWER}'’-]+", m.group(1))
        if words and not any(is_stop(w) or is_clinical(w) or w.lower() in _NOT_NAME or not w.istitle()
                             or (zipf(fold(w)) >= 4.5 and w.lower() not in _PLACE_PREFIX) for w in words):
            out.append((end + m.start(1), end + m.end(1)))
    return out


# postal codes in the shapes countries write them: US ZIP and ZIP+4 and the 5 digits of most of Europe and Latin
# America, 4 digits (AU, AT, BE, CH, DK, NO, HU...; not a year 1900-2099), NL "1012 AB", PL "00-950", PT "1000-001",
# BR "01310-100", JP "100-0001", SE/CZ/GR "113 51", CA "K1A 0B1", UK "SW1A 1AA"; Australian states before them
# (sixth round) a country's letters before the code ("CH-8004", "DK-7198", "LV-1050"), six digits (IN, NG, VN, CO,
# RU, CN, SG), a US state or Canadian province code between the town and the code ("Whitehorse YT Y1A 2C6")
_POSTCODE = (r"(?:(?:[A-Z]{1,3}-)?(?:\d{5}(?:-\d{4}|-\d{3})?|\d{4}(?:[ \t]?[A-Z]{2}(?![A-Za-z])|-\d{3})?)|\d{6}|"
             r"\d{2}-\d{3}|\d{3}-\d{4}|"
             r"\d{3}[ \t]\d{2}|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})")
_POSTCODE_AFTER = re.compile(rf",?[ \t]+(?:(?:NSW|VIC|QLD|TAS|ACT|NT|SA|WA|{STATE_CODES})[ \t]+)?"
                             rf"(?P<v>{_POSTCODE})(?![\w-]|[.,]\d)")
_POSTCODE_BEFORE = re.compile(rf"(?<![\w.,/-])(?P<v>{_POSTCODE}),?[ \t]+$")


def _postcode_ok(value: str, after_street: bool = False) -> bool:
    """Not a year ("Paris 2024"), unless a street comes right before ("Buchenveien 27, 1990 Harstad")."""
    return after_street or not re.fullmatch(r"(?:19|20)\d{2}", value)


_STREET_THEN = re.compile(r"[ \t]*(?:,[ \t]*|\n[ \t]*)$")


def _after_street(text: str, at: int, streets: list[tuple[int, int]]) -> bool:
    """An ADDRESS span ends right before ``at``: after a comma or on the line above."""
    m = _STREET_THEN.search(text, max(0, at - 6), at)
    if m is None:
        return False
    return any(end == m.start() for _, end in streets)


_CLAUSE_END = re.compile(r"[ \t]*(?:[.,;:)\n]|$)")
_LINE_OR_COMMA = re.compile(r"(?:^|[,;:\n])[ \t]*$")


def postcodes_by_places(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """A postal code next to a place found on its line: after it, ending the clause ("Ballarat VIC 3350", "Tadipatri
    43391.", "Leeds LS1 4AP"; not "Boston 3 days", "Paris 2024"), or before it ("75008 Paris", "00-950 Warszawa",
    "1012 AB Amsterdam"; four digits alone only at the start of a line or after a comma)."""
    out = []
    streets = [(start, end) for start, end, category in spans if category == "ADDRESS"]
    for start, end, category in spans:
        if category != "LOCATION":
            continue
        street = _after_street(text, start, streets)  # "Plot 4, Garibaldi Avenue, Zaria 475918 Nigeria"
        if (m := _POSTCODE_AFTER.match(text, end)) and _postcode_ok(m.group("v")) and (
                not m.group("v").isdigit() or m.group().lstrip(", \t")[:1].isalpha() or street
                or _CLAUSE_END.match(text, m.end())):
            out.append((m.start("v"), m.end("v")))
        if (m := _POSTCODE_BEFORE.search(text, max(0, start - 14), start)) and _postcode_ok(
                m.group("v"), _after_street(text, m.start("v"), streets)) and (
                not re.fullmatch(r"\d{4}", m.group("v"))
                or _LINE_OR_COMMA.search(text, max(0, m.start() - 10), m.start())):
            out.append((m.start("v"), m.end("v")))
    return out


_TOWN = rf"{CAP_WORD}(?:[ \t]+(?:{CAP_WORD}|de|da|do|del|la|le|sur|am|an|im|ob|der)){{0,3}}"
_AFTER_STREET = re.compile(
    rf"(?:,[ \t]*|[ \t]*\n[ \t]*)(?:(?P<z1>{_POSTCODE})[ \t]+(?P<t1>{_TOWN})"
    rf"|(?P<t2>{_TOWN}),?[ \t]+(?:(?:{STATE_CODES}|NSW|VIC|QLD|TAS|ACT)[ \t]+)?(?P<z2>{_POSTCODE}))"
    r"(?=[ \t]*(?:[,.;)\n]|$)|[ \t]+[a-zà-ÿ])")


def places_after_streets(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The postcode and town written right after a street, on its line after a comma or on the next line ("Lípaveien
    13\nN-3277 Bodø", "9 Lípa Court, Nelson 3168", "Schloss Lane, Stornoway, K68 2HH"), whether or not a list knows
    the town: their position in the address says what they are. Not a country or a state ("..., 0150 Oslo, Norway")."""
    from .lexicon import MONTH_WORDS

    out = []
    for _, end, category in spans:
        if category != "ADDRESS" or not (m := _AFTER_STREET.match(text, end)):
            continue
        town, code = ("t1", "z1") if m.group("z1") else ("t2", "z2")
        words = re.findall(rf"[{UPPER}{LOWER}'’-]+", m.group(town))
        value = m.group(town).lower()
        if (not _postcode_ok(m.group(code), True) or any(is_stop(w) or is_clinical(w) or w.lower() in MONTH_WORDS
                                                          for w in words if w[:1].isupper())):
            continue
        from .places import _regions

        if fold(value) in _regions()[0]:
            continue
        out.append((m.start(town), m.end(town), "LOCATION"))
        out.append((m.start(code), m.end(code), "ZIP"))
    return out


def our_place_spans(text: str) -> list[Found]:
    """"our Roanoke branch", "the Groningen office": a capitalised place-like word before a site noun."""
    from .lexicon import zipf

    found: list[Found] = []
    for m in _OUR_PLACE.finditer(text):
        words = re.findall(rf"[{UPPER}{LOWER}'’-]+", m.group("v"))
        if words and not any(is_stop(w) or is_clinical(w) or is_listed_name(w) or not w.istitle()
                             or zipf(fold(w)) >= 3.0 for w in words):
            found.append((m.start("v"), m.end("v"), "LOCATION", 0.6, "format:place-site",
                          ((m.start("cue"), m.end("cue")),)))
    return found


# a word of the Greek or Cyrillic alphabet ("Κωνσταντίνα", "ΜΑΡΚΈΛΛΑ", "Людмила") in text written in Latin letters
# is a proper name; the Latin names next to it are part of it ("Λουκάς Nowak")
_OTHER_LETTER = "\u0370-\u03ff\u1f00-\u1fff\u0400-\u04ff"
_LATIN_NAME = rf"[{UPPER}{LOWER}][{UPPER}{LOWER}'’]+(?:-[{UPPER}{LOWER}][{UPPER}{LOWER}]+)*"
_SCRIPT_NAME = re.compile(
    rf"(?<![\w'’-])(?P<v>(?:(?:{_LATIN_NAME}|[{UPPER}]\.)[ \t]+){{0,2}}"
    rf"[{_OTHER_LETTER}]+(?:['’-][{_OTHER_LETTER}]+)*(?:[ \t]+(?:[{_OTHER_LETTER}]+(?:['’-][{_OTHER_LETTER}]+)*|"
    rf"[{UPPER}]\.|{_LATIN_NAME})){{0,5}})(?![\w'’-])")
_OTHER_WORD = re.compile(rf"(?<![\w'’-])[{_OTHER_LETTER}]")
_LATIN_WORD = re.compile(r"(?<![\w'’-])[A-Za-z\u00c0-\u024f]")
_OTHER_LETTER_RE = re.compile(rf"[{_OTHER_LETTER}]")
_INITIAL = re.compile(rf"[{UPPER}]\.")
_PAIR_NAME = rf"(?:[{UPPER}{LOWER}][{LOWER}'’-]+(?:-[{UPPER}{LOWER}][{LOWER}]+)?|[{UPPER}]\.)"
_PAIR_AFTER = re.compile(rf"[ \t]+(?:and|&)[ \t]+({_PAIR_NAME}(?:[ \t]+{_PAIR_NAME}){{0,2}})(?![\w'’-])")
_PAIR_BEFORE = re.compile(rf"(?<![\w'’.-])({_PAIR_NAME}(?:[ \t]+{_PAIR_NAME}){{0,2}})[ \t]+(?:and|&)[ \t]+$")
_SCRIPT_PLACE_CUE = re.compile(r"(?i)\b(?:in|from|near|of|to|at|outside|around|visiting)[ \t]+$")


def script_name_spans(text: str) -> list[Found]:
    """Words in the Greek or Cyrillic alphabet within text in Latin letters are proper names, in any case ("my cousin
    Κωνσταντίνα lives", "Posted by Μιχαέλα Townsend", "jamal λιάνου"), with the Latin names next to them: LOCATION
    after a place preposition ("from Χανιά"), else NAME. Not in text written mostly in that alphabet."""
    others = len(_OTHER_WORD.findall(text))  # words in the other alphabets
    if not others or 2 * others > len(_LATIN_WORD.findall(text)):
        return []
    found: list[Found] = []
    def latin_ok(word: str) -> bool:
        """A Latin word next to the name: an initial, a capitalised listed or rare word, a listed rare word."""
        from .lexicon import zipf

        if _INITIAL.fullmatch(word):
            return True  # "Τηλέμαχος Q. Shin"
        if is_stop(word) or is_clinical(word) or word.lower() in _NOT_NAME:
            return False
        frequency = zipf(fold(word))
        if word.isupper():  # "EFUA", not "TENANT"
            return is_listed_name(word) or frequency < 3.0
        return (word[0].isupper() and (is_listed_name(word) or frequency < 3.6)) or (
            is_listed_name(word) and frequency < 4.0)

    other = _OTHER_LETTER_RE
    for m in _SCRIPT_NAME.finditer(text):
        words = list(re.finditer(r"\S+", m.group("v")))
        groups: list[list[int]] = []  # runs of names; "Hayer married Σωφρονία" is two names
        for k, word in enumerate(words):
            if other.search(word.group()) and len(word.group()) < 3:
                continue  # a symbol or a unit: "Δ 3 mmHg", "5 μg"
            if other.search(word.group()) or latin_ok(word.group()):
                if groups and groups[-1][-1] == k - 1:
                    groups[-1].append(k)
                else:
                    groups.append([k])
        for group in groups:
            if not any(other.search(words[k].group()) for k in group):
                continue  # Latin words alone: other rules decide
            while words[group[-1]].group().endswith(".") and not other.search(words[group[-1]].group()):
                group.pop()  # an initial counts only before a name
            start, end = m.start("v") + words[group[0]].start(), m.start("v") + words[group[-1]].end()
            category = "LOCATION" if _SCRIPT_PLACE_CUE.search(text[max(0, start - 12):start]) else "NAME"
            found.append((start, end, category, 0.6, "format:other-script-name", ()))
    return found


_TITLES = {"dr", "drs", "mr", "mrs", "ms", "miss", "mx", "prof", "rev", "sir", "dame", "nurse", "md", "rn", "np"}


def coordinated_names(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The other name of a pair joined by "and" or "&" ("Dariush Scaramucci & Mar Lim", "Nowak and Inti Sato"):
    capitalised words, or listed names in lower case, one of them listed or rare, none a function or clinical word."""
    after, before = _PAIR_AFTER, _PAIR_BEFORE

    def ok(words: list[str]) -> bool:
        from .lexicon import zipf

        full = [w for w in words if not w.endswith(".")]
        return bool(full) and all((w[0].isupper() or is_listed_name(w)) and not is_stop(w) and not is_clinical(w)
                                  and w.lower() not in _NOT_NAME and w.lower() not in _TITLES
                                  and not (w.isupper() and len(w) <= 3)
                                  for w in full) and any(
            is_listed_name(w) or (w.istitle() and zipf(fold(w)) < 3.0) for w in full) and not words[-1].endswith(".")

    out = []
    for start, end, category in spans:
        if category != "NAME":
            continue
        if m := after.match(text, end):  # the longest run of words from the left that reads as a name
            words = list(re.finditer(r"\S+", m.group(1)))
            n = next((n for n in range(len(words), 0, -1) if ok([w.group() for w in words[:n]])), 0)
            if n:
                out.append((m.start(1), m.start(1) + words[n - 1].end()))
        if m := before.search(text, max(0, start - 60), start):  # ... from the right
            words = list(re.finditer(r"\S+", m.group(1)))
            n = next((n for n in range(len(words), 0, -1) if ok([w.group() for w in words[-n:]])), 0)
            if n:
                out.append((m.start(1) + words[-n].start(), m.end(1)))
    return out


def format_spans(text: str) -> Iterator[Found]:
    yield from script_name_spans(text)
    from .places import cased_gazetteer_spans, gazetteer_spans

    yield from gazetteer_spans(text)
    yield from cased_gazetteer_spans(text)
    yield from our_place_spans(text)
    yield from city_state_spans(text)
    yield from role_name_spans(text)
    yield from preposition_place_spans(text)
    yield from address_spans(text)
    yield from shaped_name_spans(text)
    yield from name_pair_spans(text)
    yield from cue_number_spans(text)
    yield from place_spans(text)
    yield from table_spans(text)
    yield from record_spans(text)
    yield from name_spans(text)
    yield from identifier_spans(text)
