"""A SECOND held-out set of generic PII texts (issue 23, sixth round): never tune on it, never print its errors.

``piigen_holdout.py`` had been read as an aggregate five times by the end of the fifth round, so this set was written
(templates, name, town, street, postcode and phone lists below) and committed, with its baseline figure, **before**
any rule of the sixth round was changed. Styles none of the other generators has: web-form dumps, e-mail headers,
chat exports (WhatsApp, Slack, ride-share), Markdown, CSV and tab tables, vCards, YAML, letters with international
address blocks (postcode before or after the town, as each country writes it), customs and hotel forms, genealogy,
carpool lists, podcast show notes, bulletins. People: given names and surnames from lists written here (many origins,
English surnames that are also words among them) and from Faker locales no other generator uses (``de_CH``,
``fr_CH``, ``it_CH``, ``nl_BE``, ``fr_BE``, ``es_AR``, ``es_CO``, ``es_CL``, ``et_EE``, ``lv_LV``, ``sl_SI``,
``vi_VN``); towns from a list of real places of every size written here, by country, and those locales' cities;
phones in the national and international shapes of about twenty countries.

Only aggregate figures of this set are read: rows have ``holdout-`` ids, which ``deid_eval.py`` refuses to print
errors of, and the file name ``pii_holdout2.jsonl`` is protected as well. Gold labels are the task's categories;
an address written in pieces is a street (ADDRESS), a postcode (ZIP) and a town (LOCATION) span; a state, a region
or a country alone is not PHI (no span).

    python plugins/verticals-medical/research/piigen_holdout2.py --n 500 --seed 61 --out /tmp/pii_holdout2.jsonl
"""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable
from typing import Any

from piigen_common import Piece, check, fill, generate_main

LOCALES = ["de_CH", "fr_CH", "it_CH", "nl_BE", "fr_BE", "es_AR", "es_CO", "es_CL", "et_EE", "lv_LV", "sl_SI",
           "vi_VN"]

GIVEN = ["Adaeze", "Olumide", "Kwabena", "Ama", "Tendai", "Wanjiru", "Kipchoge", "Zawadi", "Selam", "Tesfaye",
         "Abdirahman", "Hodan", "Youssef", "Samira", "Karim", "Rania", "Parisa", "Kaveh", "Emre", "Elif", "Rojda",
         "Aram", "Anahit", "Levan", "Nino", "Arjun", "Priya", "Sanjana", "Rohan", "Meenakshi", "Karthik", "Venkat",
         "Sourav", "Ishita", "Gurpreet", "Harjit", "Bishnu", "Sunita", "Chaminda", "Dilani", "Somchai", "Nattaya",
         "Thanh", "Huong", "Bao", "Jericho", "Maricel", "Dewi", "Budi", "Siti", "Haziq", "Wei", "Jiahui", "Zhiwei",
         "Xiaoling", "Seo-yeon", "Ji-ho", "Haruto", "Yui", "Takumi", "Bat-Erdene", "Aigerim", "Nursultan", "Dilnoza",
         "Timur", "Yevgenia", "Dmytro", "Oksana", "Bartosz", "Agnieszka", "Vojtěch", "Zuzana", "Bence", "Réka",
         "Ioana", "Mihai", "Arben", "Elira", "Stavros", "Eleni", "Giulia", "Matteo", "Lorenzo", "Inés", "Iñigo",
         "Montserrat", "Jordi", "João", "Conceição", "Amélie", "Théo", "Maëlle", "Bram", "Femke", "Jannik",
         "Friederike", "Ingrid", "Magnus", "Sanna", "Eero", "Kadri", "Rasmus", "Baiba", "Guðrún", "Siobhán",
         "Cathal", "Eilidh", "Dafydd", "Gwen", "Keoni", "Leilani", "Aroha", "Tane", "Sefo", "Tala", "Nizhoni",
         "Takoda", "Yupanqui", "Ximena", "Mateus", "Wilson", "Grace", "Hope", "Summer", "Rose", "Dawn", "Mason",
         "Hunter", "Carter", "Jack", "Holly", "Eve", "Brooke", "Dale", "Frank", "June", "Faith", "Harper"]
SURNAMES = ["Nwachukwu", "Adeyemi", "Boateng", "Owusu", "Moyo", "Kariuki", "Otieno", "Haile", "Gebremedhin",
            "Warsame", "Abdullahi", "Haddad", "Mansour", "Farahani", "Rezaei", "Yilmaz", "Kaya", "Demir",
            "Petrosyan", "Beridze", "Kapanadze", "Iyer", "Venkataraman", "Subramanian", "Chatterjee", "Mukherjee",
            "Deshpande", "Kulkarni", "Sandhu", "Gill", "Thapa", "Gurung", "Perera", "Jayasuriya", "Srisuk",
            "Wongsakul", "Nguyen Van", "Tran", "Pham", "Dela Cruz", "Santos", "Reyes", "Wijaya", "Hidayat",
            "Abdullah", "Tan", "Goh", "Zhang", "Huang", "Xu", "Kwon", "Jung", "Yamamoto", "Fujita", "Nakamura",
            "Ganbold", "Nurlanov", "Karimova", "Sokolova", "Kovalenko", "Hrytsenko", "Wiśniewska", "Lewandowski",
            "Dvořák", "Procházková", "Szabó", "Tóth", "Popescu", "Ionescu", "Hoxha", "Papadakis", "Georgiou",
            "Ricci", "Esposito", "Bianchi", "Fernández", "Etxeberria", "Puig", "Ferreira", "Gonçalves", "Lefèvre",
            "Moreau", "Dubois", "De Smet", "Peeters", "Van den Berg", "Bakker", "Schmid", "Huber", "Brunner",
            "Lindgren", "Haugen", "Virtanen", "Tamm", "Ozoliņa", "Jónsdóttir", "O'Sullivan", "MacLeod", "Llewellyn",
            "Kahananui", "Ngata", "Tuilagi", "Begay", "Yazzie", "Mamani", "Quispe", "Wilson", "Allen", "Bell",
            "Baker", "Mason", "Young", "Long", "Hill", "Wood", "Stone", "Fox", "Park", "Green", "Marsh", "Burns",
            "Church", "Cross", "Rich", "Day", "Street", "Banks", "Carpenter", "Fisher", "Knight", "Page", "Hardy",
            "Moody", "Frost", "Love", "Sharp", "Savage", "Chambers", "Fields", "Rivers", "Woods", "Holmes", "Nash"]
TITLES = ["Ms", "Mr", "Mrs", "Dr", "Prof.", "Mx", "Herr", "Frau", "Mme", "M.", "Sr.", "Sra."]

# Real towns and cities by country (written here): the country's name, how its postcode is written and where
# it goes. Sizes from capitals to villages of a few hundred people.
COUNTRIES: dict[str, dict[str, Any]] = {
    "Switzerland": {"towns": ["Winterthur", "Lugano", "Thun", "Chur", "Aarau", "Sion", "Frauenfeld", "Bellinzona",
                              "Yverdon-les-Bains", "Uster", "Zug", "Grindelwald", "Appenzell", "Delémont", "Küsnacht",
                              "Martigny", "Wetzikon", "Sarnen"],
                    "post": "N###", "before": True},
    "Belgium": {"towns": ["Leuven", "Mechelen", "Hasselt", "Namur", "Mons", "Kortrijk", "Ostend", "Genk",
                          "Tournai", "Arlon", "Durbuy", "Ypres", "Lier", "Waregem", "Spa", "Bastogne"],
                "post": "N###", "before": True},
    "Argentina": {"towns": ["Rosario", "Mendoza", "Salta", "Bariloche", "Ushuaia", "Tandil", "Posadas",
                            "Neuquén", "Rafaela", "Tilcara", "Esquel", "Villa Gesell"],
                  "post": "L####LLL", "before": True},
    "Colombia": {"towns": ["Medellín", "Manizales", "Pereira", "Bucaramanga", "Popayán", "Villa de Leyva",
                           "Santa Marta", "Pasto", "Tunja", "Salento", "Montería", "Girardot"],
                 "post": "N#####", "before": False},
    "Chile": {"towns": ["Valparaíso", "Temuco", "Antofagasta", "Puerto Montt", "Chillán", "Punta Arenas",
                        "Pucón", "Talca", "Osorno", "Castro", "Iquique", "Frutillar"],
              "post": "N######", "before": True},
    "Estonia": {"towns": ["Tartu", "Pärnu", "Narva", "Viljandi", "Rakvere", "Kuressaare", "Haapsalu", "Võru",
                          "Paide", "Otepää"],
                "post": "#####", "before": True},
    "Latvia": {"towns": ["Daugavpils", "Liepāja", "Jelgava", "Ventspils", "Sigulda", "Cēsis", "Kuldīga",
                         "Valmiera", "Talsi", "Jūrmala"],
               "post": "LV-####", "before": False},
    "Slovenia": {"towns": ["Maribor", "Celje", "Kranj", "Koper", "Novo Mesto", "Ptuj", "Bled", "Piran",
                           "Velenje", "Idrija", "Kamnik"],
                 "post": "N###", "before": True},
    "Vietnam": {"towns": ["Da Nang", "Hue", "Hoi An", "Nha Trang", "Can Tho", "Hai Phong", "Vinh", "Da Lat",
                          "Quy Nhon", "Sa Pa", "Buon Ma Thuot"],
                "post": "N#####", "before": False},
    "Japan": {"towns": ["Sapporo", "Sendai", "Kanazawa", "Matsumoto", "Takayama", "Okayama", "Kumamoto",
                        "Nagasaki", "Hakodate", "Kurashiki", "Toyama", "Beppu"],
              "post": "###-####", "before": True},
    "South Korea": {"towns": ["Busan", "Daegu", "Gwangju", "Jeonju", "Gyeongju", "Suwon", "Chuncheon",
                              "Gangneung", "Andong", "Mokpo"],
                    "post": "#####", "before": False},
    "India": {"towns": ["Mysuru", "Coimbatore", "Nagpur", "Indore", "Vadodara", "Thrissur", "Madurai",
                        "Udaipur", "Shillong", "Dehradun", "Hubballi", "Puducherry", "Gangtok", "Kozhikode"],
              "post": "N## ###", "before": False},
    "South Africa": {"towns": ["Stellenbosch", "Gqeberha", "Polokwane", "Bloemfontein", "Mbombela", "Knysna",
                               "Hermanus", "Kimberley", "Makhanda", "Upington"],
                     "post": "N###", "before": False},
    "Ireland": {"towns": ["Galway", "Kilkenny", "Athlone", "Tralee", "Westport", "Dundalk", "Ennis", "Clonakilty",
                          "Mullingar", "Letterkenny", "Kinsale"],
                "post": "EIR", "before": False},
    "United Kingdom": {"towns": ["Harrogate", "Shrewsbury", "Aberystwyth", "Kendal", "Truro", "Stirling",
                                 "Dumfries", "Lowestoft", "Hexham", "Ludlow", "Whitby", "Penzance", "Bury St Edmunds",
                                 "Market Harborough", "Tobermory"],
                       "post": "UK", "before": False},
    "Germany": {"towns": ["Bamberg", "Tübingen", "Lüneburg", "Görlitz", "Passau", "Konstanz", "Wernigerode",
                          "Quedlinburg", "Husum", "Meißen", "Bad Tölz", "Rothenburg ob der Tauber"],
                "post": "#####", "before": True},
    "France": {"towns": ["Annecy", "Colmar", "Périgueux", "Quimper", "Albi", "Chambéry", "Vannes", "Arles",
                         "Saint-Malo", "Cahors", "Honfleur", "Aix-les-Bains"],
               "post": "#####", "before": True},
    "Italy": {"towns": ["Lucca", "Ferrara", "Matera", "Treviso", "Lecce", "Cremona", "Urbino", "Bolzano",
                        "Siracusa", "Orvieto", "Alghero", "Bergamo"],
              "post": "#####", "before": True},
    "Brazil": {"towns": ["Florianópolis", "Campinas", "Ouro Preto", "Petrópolis", "Joinville", "Maringá",
                         "Londrina", "Paraty", "Blumenau", "Olinda"],
               "post": "#####-###", "before": False},
    "Canada": {"towns": ["Kelowna", "Kingston", "Moncton", "Lethbridge", "Thunder Bay", "Trois-Rivières",
                         "Nanaimo", "Yellowknife", "Charlottetown", "Sudbury", "Canmore"],
               "post": "CA", "before": False},
    "United States": {"towns": ["Missoula", "Asheville", "Flagstaff", "Duluth", "Burlington", "Bozeman",
                                "Ithaca", "Santa Fe", "Boulder", "Savannah", "Bend", "Taos", "Marfa", "Sedona",
                                "Bar Harbor", "Galena", "Ouray", "Lanesboro"],
                      "post": "US", "before": False},
    "Australia": {"towns": ["Toowoomba", "Bendigo", "Wagga Wagga", "Geraldton", "Launceston", "Mildura",
                            "Orange", "Byron Bay", "Kalgoorlie", "Broome", "Port Douglas", "Mudgee"],
                  "post": "AU", "before": False},
    "Poland": {"towns": ["Toruń", "Zakopane", "Olsztyn", "Rzeszów", "Sopot", "Kazimierz Dolny", "Opole",
                         "Białystok", "Zamość", "Sandomierz"],
               "post": "##-###", "before": True},
    "Netherlands": {"towns": ["Deventer", "Zwolle", "Leeuwarden", "Delft", "Haarlem", "Maastricht", "Giethoorn",
                              "Zierikzee", "Alkmaar", "Enschede"],
                    "post": "N### LL", "before": True},
}
US_STATES = ["MT", "NC", "AZ", "MN", "VT", "NY", "NM", "CO", "GA", "OR", "ME", "IL", "TX", "WA", "Montana",
             "Vermont", "Oregon"]
AU_STATES = ["NSW", "VIC", "QLD", "WA", "TAS", "SA"]
CA_PROVINCES = ["BC", "ON", "NB", "AB", "QC", "NT", "PE", "Alberta", "Ontario"]

STREET_WORDS = ["Linden", "Kastanien", "Birken", "Mühle", "Rosen", "Amsel", "Tilleul", "Peupliers", "Moulin",
                "Cerisiers", "Olmo", "Castagni", "Ulivi", "Lijsterbes", "Beuken", "Esdoorn", "Kastanje",
                "Roble", "Jacarandá", "Ceibo", "Aromos", "Pärna", "Kase", "Liepu", "Ozolu", "Lipova", "Brezova",
                "Sakura", "Momiji", "Banyan", "Gulmohar", "Protea", "Wattle", "Rowan", "Hawthorn", "Sycamore",
                "Juniper", "Heather", "Foxglove", "Meadowsweet", "Quarry", "Tannery", "Ropewalk", "Brewery",
                "Chapel", "Orchard", "Copper", "Saddler", "Weaver", "Cooper"]
PERSON_STREETS = ["Général Leclerc", "Giuseppe Verdi", "José Martí", "San Martín", "Bernardo O'Higgins",
                  "Francisco de Paula Santander", "Jaan Tõnisson", "Krišjānis Barons", "France Prešeren",
                  "Lê Lợi", "Nguyễn Huệ", "Mahatma Gandhi", "Nelson Mandela", "Dante Alighieri", "Victor Hugo",
                  "Henri Dunant", "Alfred Escher", "Pieter de Hooch", "Rembrandt", "Adam Mickiewicz"]
EMAIL_DOMAINS = ["gmx.ch", "bluewin.ch", "web.de", "proton.me", "skynet.be", "telenet.be", "fibertel.com.ar",
                 "une.net.co", "vtr.net", "hot.ee", "inbox.lv", "siol.net", "fpt.vn", "ezweb.ne.jp", "naver.com",
                 "rediffmail.com", "mweb.co.za", "eircom.net", "btinternet.com", "posteo.de", "orange.fr",
                 "libero.it", "uol.com.br", "shaw.ca", "bigpond.com", "wp.pl", "ziggo.nl", "fastmail.fm",
                 "tutanota.com", "icloud.com"]


def _digits(rng: random.Random, shape: str) -> str:
    """``#`` a digit, ``N`` a digit but 0, ``L`` a capital letter, anything else itself."""
    return "".join(str(rng.randint(0, 9)) if c == "#" else str(rng.randint(1, 9)) if c == "N"
                   else rng.choice(string.ascii_uppercase) if c == "L" else c for c in shape)


class Values:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 7919 + 101 * i)
        self.country = ""

    def faker(self) -> Any:
        return self.fakers[self.rng.choice(LOCALES)]

    def case(self, text: str) -> str:
        r = self.rng.random()
        return text.lower() if r < 0.08 else text.upper() if r < 0.14 else text

    # people ---------------------------------------------------------------------------------------------------
    def given(self) -> str:
        if self.rng.random() < 0.7:
            return self.rng.choice(GIVEN)
        return str(self.faker().first_name())

    def surname(self) -> str:
        r = self.rng.random()
        if r < 0.65:
            return self.rng.choice(SURNAMES)
        if r < 0.72:
            return f"{self.rng.choice(SURNAMES)}-{self.rng.choice(SURNAMES)}"
        return str(self.faker().last_name())

    def person(self) -> str | list[Piece]:
        r = self.rng.random()
        if r < 0.55:
            text = f"{self.given()} {self.surname()}"
        elif r < 0.65:
            text = f"{self.given()} {self.rng.choice(string.ascii_uppercase)}. {self.surname()}"
        elif r < 0.75:
            text = f"{self.surname()}, {self.given()}"
        elif r < 0.85:
            # a title is not PHI: only the surname after it is a NAME span ("Ms [Okafor]")
            title, rest = self.case(f"{self.rng.choice(TITLES)} {self.surname()}").split(" ", 1)
            return [(title + " ", None), (rest, "NAME")]
        elif r < 0.93:
            text = self.given()
        else:
            text = self.surname()
        return self.case(text)

    def full(self) -> str:
        return self.case(f"{self.given()} {self.surname()}")

    # places ---------------------------------------------------------------------------------------------------
    def pick_country(self) -> str:
        self.country = self.rng.choice(list(COUNTRIES))
        return self.country

    def town(self) -> str:
        if self.rng.random() < 0.25:
            return self.case(str(self.faker().city()))
        return self.case(self.rng.choice(COUNTRIES[self.pick_country()]["towns"]))

    def postcode(self, country: str) -> str:
        shape = COUNTRIES[country]["post"]
        rng = self.rng
        if shape == "US":
            return _digits(rng, "#####" if rng.random() < 0.7 else "#####-####")
        if shape == "CA":
            return _digits(rng, "L#L #L#")
        if shape == "UK":
            return _digits(rng, rng.choice(["LL# #LL", "LL## #LL", "L# #LL", "LL#L #LL"]))
        if shape == "EIR":
            return _digits(rng, rng.choice(["L## LLLL", "D0# L#L#", "L## L#LL"]))
        if shape == "AU":
            return _digits(rng, "N###")
        return _digits(rng, shape)

    def street(self, country: str) -> str:
        rng = self.rng
        n = rng.randint(1, 240)
        word = rng.choice(STREET_WORDS)
        who = rng.choice(PERSON_STREETS)
        if country in ("Switzerland", "Germany"):
            return rng.choice([f"{word}strasse {n}", f"{word}gasse {n}", f"{word}weg {n}a", f"{who}-Strasse {n}",
                               f"Am {word}hof {n}"])
        if country in ("France",) or (country in ("Belgium", "Switzerland") and rng.random() < 0.5):
            return rng.choice([f"{n}, rue {who}", f"{n} avenue {who}", f"{n} chemin des {word}s",
                               f"{n} bis, place du {word}"])
        if country in ("Belgium", "Netherlands"):
            return rng.choice([f"{word}straat {n}", f"{word}laan {n}", f"{who}plein {n}", f"{word}dreef {n} bus 3"])
        if country in ("Argentina", "Chile", "Colombia"):
            if country == "Colombia" and rng.random() < 0.5:
                return f"Carrera {rng.randint(1, 90)} # {rng.randint(1, 120)}-{rng.randint(1, 99):02d}"
            return rng.choice([f"Calle {who} {n}", f"Av. {who} {n * 10}", f"Pasaje Los {word}s {n}",
                               f"{who} {n * 7}, depto {rng.randint(1, 20)}B"])
        if country == "Italy":
            return rng.choice([f"Via {who} {n}", f"Piazza {who} {n}", f"Corso {who} {n}/B"])
        if country == "Estonia":
            return f"{rng.choice(['Pärna', 'Kase', 'Tähe', 'Jõe', 'Kalda'])} tn {n}"
        if country == "Latvia":
            return f"{rng.choice(['Liepu', 'Ozolu', 'Brīvības', 'Dzirnavu', 'Skolas'])} iela {n}"
        if country == "Slovenia":
            return f"{rng.choice(['Lipova', 'Brezova', 'Cankarjeva', 'Trubarjeva', 'Gregorčičeva'])} ulica {n}"
        if country == "Vietnam":
            return rng.choice([f"{n} Đường {who}", f"Số {n} Phố {rng.choice(['Hàng Bạc', 'Trần Phú', 'Lý Thái Tổ'])}"])
        if country == "Japan":
            block = f"{rng.randint(1, 9)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
            return f"{block} {rng.choice(['Hon', 'Naka', 'Kita', 'Minami'])}-cho"
        if country == "South Korea":
            return f"{rng.randint(1, 300)} {rng.choice(['Jungang', 'Haeundae', 'Dongseong', 'Sejong'])}-ro"
        if country == "India":
            return rng.choice([f"Flat {n}, {word} Apartments, {rng.choice(['Gandhi', 'Shastri', 'Anna'])} Nagar",
                               f"{n}/{rng.randint(1, 9)} {who} Road"])
        if country == "Brazil":
            return f"Rua {who}, {n * 3}, apto {rng.randint(11, 99)}"
        if country == "Poland":
            return f"ul. {rng.choice(['Lipowa', 'Klonowa', 'Mickiewicza', 'Kościuszki'])} {n}/{rng.randint(1, 40)}"
        suffix = rng.choice(["Road", "Close", "Crescent", "Lane", "Drive", "Street", "Terrace", "Way", "Avenue",
                             "Row", "Gardens", "Mews"])
        unit = rng.choice(["", "", "", f"Unit {rng.randint(1, 30)}/", f"Apt {rng.randint(1, 40)}{rng.choice('ABC')}, ",
                           f"Flat {rng.randint(1, 12)}, "])
        return f"{unit}{n} {word} {suffix}"

    def address_pieces(self, block: bool) -> list[Piece]:
        """Street, postcode, town (and a region and country, not PHI) as the country writes them; ``block``: on
        lines of a letter, else inline with commas."""
        country = self.rng.choice(list(COUNTRIES))
        town = self.rng.choice(COUNTRIES[country]["towns"])
        sep = "\n" if block else ", "
        post = self.postcode(country)
        pieces: list[Piece] = [(self.street(country), "ADDRESS"), (sep, None)]
        if country == "United States":
            pieces += [(town, "LOCATION"), (", ", None), (self.rng.choice(US_STATES), None), (" ", None),
                       (post, "ZIP")]
        elif country == "Canada":
            pieces += [(town, "LOCATION"), (" ", None), (self.rng.choice(CA_PROVINCES), None), ("  ", None),
                       (post, "ZIP")]
        elif country == "Australia":
            pieces += [(town, "LOCATION"), (" ", None), (self.rng.choice(AU_STATES), None), (" ", None),
                       (post, "ZIP")]
        elif country == "United Kingdom":
            pieces += [(town, "LOCATION"), (sep, None), (post, "ZIP")]
        elif COUNTRIES[country]["before"]:
            prefix = {"Switzerland": "CH-", "Slovenia": "SI-", "Belgium": "B-"}.get(country, "")
            if prefix and self.rng.random() < 0.3:
                post = prefix + post
            pieces += [(post, "ZIP"), (" ", None), (town, "LOCATION")]
        else:
            pieces += [(town, "LOCATION"), (" " if self.rng.random() < 0.6 else " - ", None), (post, "ZIP")]
        if self.rng.random() < 0.6:
            pieces += [(sep, None), (country.upper() if block and self.rng.random() < 0.5 else country, None)]
        return pieces

    def faker_address(self) -> list[Piece]:
        """A Faker address of one of the locales: street, then postcode and city (whatever order the locale's
        format has, here as street, postcode city)."""
        f = self.faker()
        return [(str(f.street_address()), "ADDRESS"), (", ", None), (str(f.postcode()), "ZIP"), (" ", None),
                (str(f.city()), "LOCATION")]

    def address(self) -> list[Piece]:
        return self.faker_address() if self.rng.random() < 0.2 else self.address_pieces(block=False)

    def block(self) -> list[Piece]:
        return self.address_pieces(block=True)

    def zip_town(self) -> list[Piece]:
        country = self.rng.choice([c for c, d in COUNTRIES.items() if d["before"]])
        return [(self.postcode(country), "ZIP"), (" ", None), (self.rng.choice(COUNTRIES[country]["towns"]),
                                                             "LOCATION")]

    # contact details ------------------------------------------------------------------------------------------
    def phone(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return str(self.faker().phone_number())
        shape = rng.choice([
            "+41 ## ### ## ##", "0## ### ## ##", "+32 # ### ## ##", "04## ## ## ##", "+54 9 11 ####-####",
            "(011) ####-####", "+57 3## ### ####", "+56 9 #### ####", "+372 #### ####", "+371 2### ####",
            "+386 # ### ## ##", "+84 ## #### ####", "09## ### ###", "+81 3-####-####", "0##-####-####",
            "+82 10-####-####", "+91 ##### #####", "0##-########", "+27 ## ### ####", "0## ### ####",
            "+353 8# ### ####", "07### ######", "+44 (0)1### ######", "+49 (0)### #######", "+33 6 ## ## ## ##",
            "+39 3## ### ####", "+55 (##) #####-####", "(###) ###-####", "###.###.####", "+1 ###-###-####",
            "+61 4## ### ###", "(0#) #### ####", "+48 ### ### ###", "+31 6 ########"])
        return _digits(rng, shape)

    def email(self, name: str | None = None) -> str:
        who = name or f"{self.given()} {self.surname()}"
        folded = "".join(c for c in unicodedata.normalize("NFKD", who) if not unicodedata.combining(c))
        words = [w for w in folded.lower().replace(",", " ").replace("'", "").split() if w.isalpha()]
        words = words or ["info"]
        local = self.rng.choice([".".join(words), words[0][0] + words[-1], words[-1] + str(self.rng.randint(1, 99)),
                                 "_".join(words[:2])])
        return f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"

    def date(self) -> str:
        f = self.faker()
        d = f.date_between("-70y", "+1y")
        return self.rng.choice([d.strftime("%d.%m.%Y"), d.strftime("%-d %B %Y"), d.strftime("%Y-%m-%d"),
                                d.strftime("%d/%m/%y"), d.strftime("%b %-d, %Y")])

    def ident(self) -> str:
        return _digits(self.rng, self.rng.choice(["LL#######", "##-####-##", "L########", "####LL##"]))


def _slots(v: Values) -> dict[str, tuple[str | None, Callable[[], Any]]]:
    def first() -> str:
        return v.case(v.given())

    def last() -> str:
        return v.case(v.surname())

    return {
        "person": ("NAME", v.person), "person2": ("NAME", v.person), "person3": ("NAME", v.person),
        "full": ("NAME", v.full), "full2": ("NAME", v.full), "first": ("NAME", first), "first2": ("NAME", first),
        "first3": ("NAME", first), "last": ("NAME", last), "LAST": ("NAME", lambda: v.surname().upper()),
        "FIRST": ("NAME", lambda: v.given()),
        "town": ("LOCATION", v.town), "town2": ("LOCATION", v.town), "town3": ("LOCATION", v.town),
        "address": (None, v.address), "address2": (None, v.address), "block": (None, v.block),
        "zip_town": (None, v.zip_town), "street": ("ADDRESS", lambda: v.street(v.rng.choice(list(COUNTRIES)))),
        "street2": ("ADDRESS", lambda: v.street(v.rng.choice(list(COUNTRIES)))),
        "phone": ("PHONE", v.phone), "phone2": ("PHONE", v.phone), "email": ("EMAIL", v.email),
        "email2": ("EMAIL", v.email), "date": ("DATE", v.date), "date2": ("DATE", v.date),
        "ident": ("ID", v.ident), "country": (None, lambda: v.rng.choice(list(COUNTRIES))),
    }


TEMPLATES = [
    "Full name: {full}\nStreet: {street}\nPostcode / City: {zip_town}\nCountry: {country}\nMobile: {phone}\n"
    "E-mail: {email}",
    "From: {full} <{email}>\nTo: {full2} <{email2}>\nSubject: keys for the flat\n\nHi {first},\n\n"
    "I left the spare keys with {person3} downstairs. Back on {date}.\n\n{first2}",
    "[{date}, 14:02] {full}: landed in {town}, will call you from {phone}\n[{date}, 14:05] {full2}: ok!! say hi "
    "to {first3}",
    "{full}  10:42 AM\n@{first2} can you ship the samples to {address} by Friday? thx",
    "| Name | City | Phone |\n|---|---|---|\n| {full} | {town} | {phone} |\n| {full2} | {town2} | {phone2} |",
    "name;postcode_city;phone\n{full};{zip_town};{phone}",
    "{full}\n{block}\n\n{town2}, {date}\n\nDear {person2},\n\nthank you for your letter of {date2}. "
    "I will be in {town3} next month.",
    "CUSTOMS DECLARATION CN23\nSender: {full}, {address}\nAddressee: {full2}, {address2}\nContents: books, used",
    "GUEST REGISTRATION CARD\nSurname: {LAST}    Given names: {FIRST}\nHome address: {address}\nTel.: {phone}\n"
    "Arrival: {date}",
    "Speakers this year: {full} ({town}), {full2} ({town2}) and {person3} from {town3}.",
    "LOST CAT near {street}!! Answers to Miso. Owner {first} - please ring {phone}",
    "driver: hi i'm {first}, waiting outside {street} in a grey skoda\nrider: coming down now",
    "Membership no. {ident}: {full}, born {date}, {zip_town}. Emergency contact: {person2}, {phone}.",
    "{full} and {full2} were married on {date} in {town}. The bride is the daughter of {person3} of {town2}.",
    "Applicant {full}, passport {ident}, residing at {address}, intends to visit {town2} from {date}.",
    "Huge thanks to our backers {full}, {person2}, {first3} from {town} and everyone else who chipped in!",
    "This week {full} joins us from {town} to talk about urban beekeeping. Her shop: {street}, {town}.",
    "Please keep {full} of {street} in your prayers. Meals can be dropped at {address} or call {phone}.",
    "Hi all, from Monday my new address is {address} and my number is {phone}. Cheers, {first}",
    "Stayed at {person}'s guesthouse in {town} - spotless and quiet. Book directly on {phone}.",
    "Student\tGuardian\tPhone\n{full}\t{full2}\t{phone}\n{person3}\t{person}\t{phone2}",
    "{first} here - new number, save it: {phone}",
    "Your parcel for {full}, {zip_town} is out for delivery today. Your driver is {first2}.",
    "I, {full}, resident in {town}, wish to apply for the post of archivist. Referees: {full2} ({email}), "
    "{person3}.",
    "{full} (b. {date}, {town}; d. {date2}, {town2}) married {full2} in {town3}.",
    "Landlord: {full}\n{block}\nTenant: {full2}\nRent due on the first of each month.",
    "contact:\n  name: {full}\n  phone: \"{phone}\"\n  city: {town}\n  email: {email}",
    "BEGIN:VCARD\nVERSION:3.0\nFN:{full}\nTEL;TYPE=cell:{phone}\nEMAIL:{email}\nEND:VCARD",
    "Organizer: {full}\nWhere: {address}\nDial-in: {phone}\nNotes: {first2} brings the projector",
    "--\n{full} | {town}, {country} | {phone}",
    "Sir, as a resident of {town} for forty years I must object to the new car park. {full}, {street}",
    "Bill to: Harrow & Daughters Ltd\nAttn: {full}\n{block}",
    "In case of emergency please contact my partner {full} on {phone} or my sister {first2} in {town}.",
    "My grandmother {full} taught me this soup in her kitchen in {town}, long before she moved to {town2}.",
    "Carpool, Monday:\n{first} - pick up at {street} 7:45\n{first2} - {street2} 7:55\ndriver: {first3}",
    "Wir gratulieren {full} aus {town} zum 80. Geburtstag! Grüße von {person2}.",
    "Chère {first}, merci pour ton accueil à {town}. Je t'embrasse, {first2}. PS: mon nouveau numéro {phone}",
    "Querida {first}: te escribo desde {town}. Mi dirección nueva es {address}. Un abrazo, {full2}",
    "ok so {first} and {first2} are both coming to {town} on the 5th, {last} can't make it",
    "Re: invoice {ident}\n\nDear {person},\nplease send the original to our {town} office, {address}.\n\n"
    "Regards,\n{full2}\n{phone}",
]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    v = Values(seed)
    out = []
    for i in range(n):
        template = TEMPLATES[v.rng.randrange(len(TEMPLATES))]
        out.append({"id": f"holdout-2-{seed}-{i:04d}", **fill(template, _slots(v))})
    check(out)
    return out


def main(argv: list[str] | None = None) -> None:
    generate_main(argv, __doc__, rows, n=500, seed=61)


if __name__ == "__main__":
    main()
