"""Generic PII texts to READ errors on in the sixth round of issue 23 (a tuning set, like ``piigen_tune.py``).

Written after ``piigen_holdout2.py`` (held out) was committed with its baseline, to find general failures in
international formats without reading the held-out sets: address blocks and inline addresses as about twenty
countries write them (postcode before or after the town, districts, unit and floor), national and international
phones, forms, e-mails, chats, tables and letters. Its own lists: given names and surnames, real towns of other
countries (or other towns of the same ones), street words; Faker only from the locales the earlier tuning
generators use (``en_US``, ``en_GB``, ``de_DE``, ``fr_FR``, ``es_ES``, ``it_IT``, ``pl_PL``, ``pt_PT``, ``el_GR``,
``en_IN``), none of ``piigen_holdout2``'s.

    python plugins/verticals-medical/research/piigen_tune2.py --n 400 --seed 3 --out /tmp/pii_tune2.jsonl
"""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable
from typing import Any

from piigen_common import Piece, check, fill, generate_main

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "pt_PT", "el_GR", "en_IN"]

GIVEN = ["Chidi", "Ngozi", "Kofi", "Akosua", "Thabo", "Lerato", "Jabari", "Amani", "Dawit", "Liya", "Hamid",
         "Mariam", "Omar", "Layla", "Navid", "Shirin", "Burak", "Derya", "Serwa", "Gohar", "Tamar", "Rahul",
         "Anjali", "Deepa", "Suresh", "Lalitha", "Manpreet", "Pooja", "Tenzin", "Pema", "Kasun", "Niluka",
         "Anong", "Kittisak", "Quynh", "Tuan", "Rizal", "Ayu", "Farid", "Mei", "Jun", "Yifan", "Hyun-woo",
         "Min-seo", "Sora", "Ren", "Batbayar", "Askar", "Madina", "Rustam", "Svetlana", "Artem", "Halyna",
         "Wojciech", "Małgorzata", "Jiří", "Lenka", "Gábor", "Zsófia", "Andrei", "Bianca", "Dritan", "Vasiliki",
         "Chiara", "Federico", "Pilar", "Xabier", "Núria", "Duarte", "Leonor", "Clémence", "Gaspard", "Solène",
         "Joris", "Sanne", "Lukas", "Annika", "Tove", "Henrik", "Aino", "Mikko", "Liis", "Aleksis", "Sigrún",
         "Ciarán", "Aoife", "Mhairi", "Rhys", "Kalena", "Manaia", "Ngaio", "Losa", "Ayasha", "Citlali",
         "Amaru", "Rosa", "Joy", "Victor", "Sterling", "Gale", "Neil", "Sky", "Ivy", "Autumn", "Miles", "Chase",
         "Reed", "Iris", "Hazel"]
SURNAMES = ["Okonkwo", "Eze", "Mensah", "Asante", "Ndlovu", "Mokoena", "Njoroge", "Wambui", "Tadesse", "Bekele",
            "Omar", "Nasser", "Khoury", "Tehrani", "Mohammadi", "Aksoy", "Çelik", "Sargsyan", "Lomidze",
            "Raghavan", "Pillai", "Bhattacharya", "Joshi", "Patil", "Dhillon", "Bhandari", "Fernando",
            "Bandara", "Chaiyaporn", "Le", "Hoang", "Bautista", "Mendoza", "Santoso", "Rahmat", "Lim", "Chen",
            "Zhou", "Lee", "Choi", "Watanabe", "Kobayashi", "Bold", "Akhmetov", "Yusupova", "Ivanova", "Bondarenko",
            "Kowalczyk", "Zając", "Novotný", "Horváth", "Nagy", "Dumitru", "Marin", "Berisha", "Nikolaidis",
            "Romano", "Greco", "Ruiz", "Aguirre", "Vidal", "Sousa", "Carvalho", "Girard", "Fontaine", "Janssens",
            "Visser", "De Vries", "Keller", "Weber", "Nilsson", "Berg", "Korhonen", "Saar", "Bērziņš",
            "Stefánsson", "Gallagher", "Campbell", "Pritchard", "Kealoha", "Tapsell", "Faleolo", "Tsosie",
            "Huarachi", "Flores", "Walker", "Turner", "Cook", "Shepherd", "Sparrow", "Crane", "Lamb", "Bird",
            "Bishop", "Pope", "King", "Noble", "Good", "West", "North", "Snow", "Winter", "Lake", "Brook", "Ford",
            "Heath", "Hall", "Gray", "Brown", "White", "Little", "Strong", "Mills", "Potter", "Glass", "Price"]

# Real towns by country (written here; other countries, or other towns of the same ones, than the held-out sets)
COUNTRIES: dict[str, dict[str, Any]] = {
    "Austria": {"towns": ["Villach", "Wels", "Steyr", "Leoben", "Bregenz", "Hallein", "Zell am See", "Krems"],
                "post": "N###", "before": True},
    "Norway": {"towns": ["Tromsø", "Bodø", "Ålesund", "Lillehammer", "Molde", "Hamar", "Harstad", "Røros"],
               "post": "####", "before": True},
    "Denmark": {"towns": ["Aalborg", "Esbjerg", "Vejle", "Randers", "Ribe", "Skagen", "Svendborg", "Holstebro"],
                "post": "N###", "before": True},
    "Portugal": {"towns": ["Braga", "Évora", "Aveiro", "Viseu", "Tavira", "Guimarães", "Sintra", "Lagos"],
                 "post": "N###-###", "before": True},
    "Spain": {"towns": ["Cáceres", "Logroño", "Teruel", "Ronda", "Cuenca", "Jerez", "Lugo", "Girona", "Soria"],
              "post": "#####", "before": True},
    "Mexico": {"towns": ["Oaxaca", "Puebla", "Mérida", "Querétaro", "Morelia", "Zacatecas", "Taxco", "Tulum"],
               "post": "#####", "before": True},
    "Peru": {"towns": ["Arequipa", "Trujillo", "Huancayo", "Iquitos", "Puno", "Chiclayo", "Ayacucho"],
             "post": "#####", "before": False},
    "Philippines": {"towns": ["Iloilo", "Bacolod", "Dumaguete", "Baguio", "Tagbilaran", "Vigan", "Legazpi"],
                    "post": "N###", "before": True},
    "Indonesia": {"towns": ["Malang", "Bogor", "Semarang", "Padang", "Makassar", "Ubud", "Solo"],
                  "post": "N####", "before": False},
    "Thailand": {"towns": ["Chiang Mai", "Khon Kaen", "Hat Yai", "Udon Thani", "Lampang", "Hua Hin"],
                 "post": "N####", "before": False},
    "Kenya": {"towns": ["Kisumu", "Eldoret", "Nakuru", "Nyeri", "Malindi", "Thika", "Naivasha"],
              "post": "N####", "before": False},
    "Nigeria": {"towns": ["Enugu", "Abeokuta", "Jos", "Calabar", "Owerri", "Ilorin", "Zaria"],
                "post": "N#####", "before": False},
    "Greece": {"towns": ["Ioannina", "Volos", "Larissa", "Chania", "Kavala", "Nafplio", "Kalamata"],
               "post": "N## ##", "before": True},
    "Czechia": {"towns": ["Olomouc", "Tábor", "Třebíč", "Jihlava", "Telč", "Kutná Hora", "Znojmo"],
                "post": "N## ##", "before": True},
    "Hungary": {"towns": ["Pécs", "Eger", "Szeged", "Győr", "Sopron", "Kecskemét", "Tokaj"],
                "post": "N###", "before": True},
    "Finland": {"towns": ["Tampere", "Jyväskylä", "Kuopio", "Porvoo", "Rovaniemi", "Savonlinna", "Vaasa"],
                "post": "#####", "before": True},
    "Sweden": {"towns": ["Umeå", "Visby", "Falun", "Kiruna", "Växjö", "Östersund", "Ystad"],
               "post": "N## ##", "before": True},
    "New Zealand": {"towns": ["Whanganui", "Nelson", "Timaru", "Rotorua", "Gisborne", "Oamaru", "Wanaka"],
                    "post": "N###", "before": False},
    "Germany": {"towns": ["Erfurt", "Göttingen", "Flensburg", "Landshut", "Weimar", "Cochem", "Bad Kissingen"],
                "post": "#####", "before": True},
    "France": {"towns": ["Rodez", "Nevers", "Dieppe", "Bayonne", "Sarlat-la-Canéda", "Menton", "Beaune"],
               "post": "#####", "before": True},
    "United Kingdom": {"towns": ["Ilfracombe", "Oban", "Ripon", "Bideford", "Keswick", "Alnwick", "Llandudno",
                                 "Stornoway"],
                       "post": "UK", "before": False},
    "United States": {"towns": ["Laramie", "Durango", "Eureka", "Moab", "Astoria", "Beaufort", "Paducah",
                                "Stillwater", "Hood River", "Port Townsend"],
                      "post": "US", "before": False},
    "Canada": {"towns": ["Tofino", "Lunenburg", "Kamloops", "Brandon", "Saguenay", "Whitehorse", "Fredericton"],
               "post": "CA", "before": False},
}
TITLES = ["Ms", "Mr", "Dr", "Mrs", "Sig.", "Mme", "Herr", "Dña."]
US_STATES = ["WY", "CO", "CA", "UT", "OR", "SC", "KY", "OK", "WA"]
CA_PROVINCES = ["BC", "NS", "MB", "QC", "YT", "NB"]
STREET_WORDS = ["Eichen", "Buchen", "Ahorn", "Schloss", "Bahnhof", "Kirch", "Fjord", "Skov", "Strand",
                "Oliveira", "Laranjeiras", "Pinar", "Almendros", "Nogal", "Cedro", "Akasya", "Lale", "Platanos",
                "Lípa", "Jabloň", "Tölgy", "Koivu", "Björk", "Aspen", "Larch", "Alder", "Bramble", "Thistle",
                "Mulberry", "Cobbler", "Tanner", "Miller", "Granary", "Harbour", "Lantern", "Market"]
PERSON_STREETS = ["Camões", "Cervantes", "Benito Juárez", "Miguel Grau", "José Rizal", "Jomo Kenyatta",
                  "Nnamdi Azikiwe", "Eleftherios Venizelos", "Jan Hus", "Lajos Kossuth", "Jean Sibelius",
                  "Selma Lagerlöf", "Kate Sheppard", "Goethe", "Jules Ferry", "Garibaldi", "Chopin",
                  "Hans Christian Andersen", "Henrik Ibsen", "Mozart"]
EMAIL_DOMAINS = ["gmail.com", "yahoo.co.uk", "t-online.de", "free.fr", "telefonica.net", "tiscali.it", "onet.pl",
                 "sapo.pt", "otenet.gr", "yandex.ru", "seznam.cz", "freemail.hu", "luukku.com", "telia.com",
                 "xtra.co.nz", "outlook.com", "aol.com", "mail.com", "pm.me", "zoho.com"]


def _digits(rng: random.Random, shape: str) -> str:
    return "".join(str(rng.randint(0, 9)) if c == "#" else str(rng.randint(1, 9)) if c == "N"
                   else rng.choice(string.ascii_uppercase) if c == "L" else c for c in shape)


class Values:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 4241 + 37 * i)

    def faker(self) -> Any:
        return self.fakers[self.rng.choice(LOCALES)]

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.08 else text.upper() if r < 0.14 else text

    def given(self) -> str:
        return self.rng.choice(GIVEN) if self.rng.random() < 0.7 else str(self.faker().first_name())

    def surname(self) -> str:
        r = self.rng.random()
        if r < 0.65:
            return self.rng.choice(SURNAMES)
        if r < 0.72:
            return f"{self.rng.choice(SURNAMES)}-{self.rng.choice(SURNAMES)}"
        return str(self.faker().last_name())

    def person(self) -> str | list[Piece]:
        r = self.rng.random()
        if r < 0.5:
            text = f"{self.given()} {self.surname()}"
        elif r < 0.6:
            text = f"{self.given()} {self.rng.choice(string.ascii_uppercase)}. {self.surname()}"
        elif r < 0.7:
            text = f"{self.surname()}, {self.given()}"
        elif r < 0.8:
            # a title is not PHI: only the surname after it is a NAME span ("Ms [Okafor]")
            title, rest = self.case(f"{self.rng.choice(TITLES)} {self.surname()}").split(" ", 1)
            return [(title + " ", None), (rest, "NAME")]
        elif r < 0.9:
            text = self.given()
        else:
            text = self.surname()
        return self.case(text)

    def full(self) -> str:
        return self.case(f"{self.given()} {self.surname()}")

    def town(self) -> str:
        if self.rng.random() < 0.25:
            return self.case(str(self.faker().city()))
        return self.case(self.rng.choice(COUNTRIES[self.rng.choice(list(COUNTRIES))]["towns"]))

    def postcode(self, country: str) -> str:
        shape = COUNTRIES[country]["post"]
        rng = self.rng
        if shape == "US":
            return _digits(rng, "#####" if rng.random() < 0.7 else "#####-####")
        if shape == "CA":
            return _digits(rng, "L#L #L#")
        if shape == "UK":
            return _digits(rng, rng.choice(["LL# #LL", "LL## #LL", "L# #LL", "L## #LL"]))
        return _digits(rng, shape)

    def street(self, country: str) -> str:
        rng = self.rng
        n = rng.randint(1, 180)
        word = rng.choice(STREET_WORDS)
        who = rng.choice(PERSON_STREETS)
        if country in ("Austria", "Germany"):
            return rng.choice([f"{word}straße {n}", f"{who}platz {n}", f"{word}allee {n}/{rng.randint(1, 9)}",
                               f"Obere {word}gasse {n}"])
        if country in ("Norway", "Denmark", "Sweden"):
            return rng.choice([f"{word}veien {n}", f"{word}gade {n}, {rng.randint(1, 4)}. th.", f"{word}vägen {n}"])
        if country == "Finland":
            return f"{rng.choice(['Koivu', 'Kirkko', 'Satama'])}katu {n} B {rng.randint(1, 30)}"
        if country in ("Portugal", "Spain", "Mexico", "Peru"):
            return rng.choice([f"Rua {who}, {n}", f"C/ {who}, {n}, {rng.randint(1, 6)}º", f"Calle {word} #{n}",
                               f"Av. {who} {n * 11}", f"Jr. {who} {n}"])
        if country == "Philippines":
            return f"{n} {who} St., Brgy. {rng.choice(['San Roque', 'Poblacion', 'Mabini'])}"
        if country in ("Indonesia",):
            return f"Jl. {rng.choice(['Merdeka', 'Sudirman', 'Diponegoro'])} No. {n}"
        if country == "Thailand":
            return f"{n}/{rng.randint(1, 99)} Moo {rng.randint(1, 12)}, {rng.choice(['Nimman', 'Suthep'])} Rd"
        if country in ("Kenya", "Nigeria"):
            return rng.choice([f"Plot {n}, {who} Avenue", f"{n} {who} Road", f"P.O. Box {n * 37}"])
        if country == "Greece":
            return f"Odos {who} {n}"
        if country in ("Czechia", "Hungary"):
            return rng.choice([f"{who} utca {n}", f"Náměstí {who} {n}/{rng.randint(1, 30)}"])
        if country == "France":
            return rng.choice([f"{n}, rue {who}", f"{n} boulevard {who}", f"{n} impasse des {word}s"])
        suffix = rng.choice(["Road", "Street", "Lane", "Place", "Court", "Hill", "Parade", "Grove", "Walk", "Close"])
        unit = rng.choice(["", "", f"Apt {rng.randint(1, 30)}, ", f"{rng.randint(1, 9)}/"])
        return f"{unit}{n} {word} {suffix}"

    def address_pieces(self, block: bool) -> list[Piece]:
        country = self.rng.choice(list(COUNTRIES))
        town = self.rng.choice(COUNTRIES[country]["towns"])
        sep = "\n" if block else ", "
        post = self.postcode(country)
        pieces: list[Piece] = [(self.street(country), "ADDRESS"), (sep, None)]
        if country == "United States":
            pieces += [(town, "LOCATION"), (", ", None), (self.rng.choice(US_STATES), None), (" ", None),
                       (post, "ZIP")]
        elif country == "Canada":
            pieces += [(town, "LOCATION"), (" ", None), (self.rng.choice(CA_PROVINCES), None), (" ", None),
                       (post, "ZIP")]
        elif country == "United Kingdom":
            pieces += [(town, "LOCATION"), (sep, None), (post, "ZIP")]
        elif COUNTRIES[country]["before"]:
            prefix = {"Austria": "A-", "Norway": "N-", "Denmark": "DK-", "Hungary": "H-"}.get(country, "")
            if prefix and self.rng.random() < 0.3:
                post = prefix + post
            pieces += [(post, "ZIP"), (" ", None), (town, "LOCATION")]
        else:
            pieces += [(town, "LOCATION"), (" ", None), (post, "ZIP")]
        if self.rng.random() < 0.6:
            pieces += [(sep, None), (country.upper() if block and self.rng.random() < 0.5 else country, None)]
        return pieces

    def address(self) -> list[Piece]:
        return self.address_pieces(block=False)

    def block(self) -> list[Piece]:
        return self.address_pieces(block=True)

    def zip_town(self) -> list[Piece]:
        country = self.rng.choice([c for c, d in COUNTRIES.items() if d["before"]])
        return [(self.postcode(country), "ZIP"), (" ", None),
                (self.rng.choice(COUNTRIES[country]["towns"]), "LOCATION")]

    def phone(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return str(self.faker().phone_number())
        shape = rng.choice([
            "+43 664 #######", "0664 ### ####", "+47 ### ## ###", "+45 ## ## ## ##", "+351 9## ### ###",
            "+34 6## ## ## ##", "6## ### ###", "+52 55 #### ####", "+51 9## ### ###", "+63 9## ### ####",
            "0917-###-####", "+62 812-####-####", "+66 8# ### ####", "+254 7## ######", "0722 ######",
            "+234 80# ### ####", "+30 69# ### ####", "+420 ### ### ###", "+36 30 ### ####", "06 30 ### ####",
            "+358 40 ### ####", "040 ### ####", "+46 70-### ## ##", "+64 21 ### ####", "+49 151 ########",
            "0151 #######", "+33 (0)1 ## ## ## ##", "+44 7### ######", "(###) ###-####", "+1 (###) ###-####"])
        return _digits(rng, shape)

    def email(self) -> str:
        who = f"{self.given()} {self.surname()}"
        folded = "".join(c for c in unicodedata.normalize("NFKD", who) if not unicodedata.combining(c))
        words = [w for w in folded.lower().split() if w.isalpha()] or ["hello"]
        local = self.rng.choice([".".join(words), words[0] + words[-1][0], words[-1] + str(self.rng.randint(1, 99))])
        return f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"

    def date(self) -> str:
        d = self.faker().date_between("-60y", "+1y")
        return self.rng.choice([d.strftime("%d.%m.%Y"), d.strftime("%-d %B %Y"), d.strftime("%Y-%m-%d")])

    def ident(self) -> str:
        return _digits(self.rng, self.rng.choice(["LL######", "###-###-###", "L#######L"]))


def _slots(v: Values) -> dict[str, tuple[str | None, Callable[[], Any]]]:
    return {
        "person": ("NAME", v.person), "person2": ("NAME", v.person), "full": ("NAME", v.full),
        "full2": ("NAME", v.full), "first": ("NAME", lambda: v.case(v.given())),
        "first2": ("NAME", lambda: v.case(v.given())), "last": ("NAME", lambda: v.case(v.surname())),
        "town": ("LOCATION", v.town), "town2": ("LOCATION", v.town), "address": (None, v.address),
        "block": (None, v.block), "zip_town": (None, v.zip_town),
        "street": ("ADDRESS", lambda: v.street(v.rng.choice(list(COUNTRIES)))),
        "phone": ("PHONE", v.phone), "phone2": ("PHONE", v.phone), "email": ("EMAIL", v.email),
        "date": ("DATE", v.date), "ident": ("ID", v.ident),
    }


TEMPLATES = [
    "Booking reference {ident}\nLead guest: {full}\nBilling address: {address}\nPhone: {phone}",
    "Shipping label\nTO: {full}\n{block}\nFROM: {full2}, {address}",
    "Name | Town | Mobile\n{full} | {town} | {phone}\n{full2} | {town2} | {phone2}",
    "first_name,last_name,city,phone\n{first},{last},{town},{phone}",
    "Support chat\nAgent: Hello, who am I speaking with?\nCustomer: {full}. I moved to {address} last week.\n"
    "Agent: Thanks {first}, I have updated it.",
    "hey {first}!! we're at {street} now, come by after 8. {first2}",
    "Dear {person},\n\nWe are pleased to confirm your place on the course in {town}. Please send the form to our "
    "office at {address}.\n\nKind regards\n{full2}",
    "Pen-pal wanted! I am {full}, 15, from {town}. Write to me at {block}",
    "Registration: {full} ({email}), {zip_town}, tel {phone}",
    "Owner: {full}\nAddress: {address}\nVet: {full2}, {town2}",
    "{full} will take over the {town} branch from {date}; reach her on {phone}.",
    "Minutes: present {full}, {full2} and {person}. Next meeting at {address}.",
    "Transfer to {full}, IBAN on file, beneficiary address {address}.",
    "The flat on {street} in {town} is free from {date}. Viewings: call {first} on {phone}.",
    "Sent from {town}: my mother {full} and my uncle {full2} say hello.",
    "RSVP to {full} at {email} or {phone} before {date}.",
    "Ihre Bestellung wird an {full}, {address} geliefert. Rückfragen: {phone}",
    "Je soussigné {full}, demeurant {address}, certifie sur l'honneur ...",
    "Estimado {person}: le esperamos en {town} el {date}. Atentamente, {full2}",
    "{first}: ok see u at {town} station\n{first2}: 👍 my number changed btw {phone}",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[v.rng.randrange(len(TEMPLATES))]
        out.append({"id": f"tune2-{seed}-{i:04d}", **fill(template, _slots(v))})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=400, seed=3)


if __name__ == "__main__":
    main()
