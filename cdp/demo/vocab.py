"""Word lists and spelling helpers the demo population is drawn from.

Faker supplies most names and places; these curated lists add what Faker lacks for a realistic
German/English customer base: common surnames (with umlauts), nickname-able given names, real
UK/US cities with postcode areas, plausible phone prefixes, email providers and the offer catalogue.
"""

from __future__ import annotations

import unicodedata

NICKNAMES: dict[str, tuple[str, ...]] = {
    # German
    "Johannes": ("Hans", "Jo"),
    "Katharina": ("Kathi", "Katja"),
    "Elisabeth": ("Lisa", "Elli", "Sissi"),
    "Alexander": ("Alex",),
    "Alexandra": ("Alex", "Sandra"),
    "Christian": ("Chris",),
    "Christina": ("Tina", "Chris"),
    "Stefanie": ("Steffi",),
    "Michael": ("Micha", "Mike"),
    "Thomas": ("Tom", "Thommy"),
    "Matthias": ("Matze", "Matthes"),
    "Andreas": ("Andi",),
    "Daniel": ("Dani",),
    "Susanne": ("Susi", "Sanne"),
    "Franziska": ("Franzi",),
    "Magdalena": ("Lena", "Leni"),
    "Margarete": ("Grete", "Margit"),
    "Friedrich": ("Fritz",),
    "Wilhelm": ("Willi",),
    "Heinrich": ("Heinz",),
    "Maximilian": ("Max",),
    "Benjamin": ("Ben",),
    "Tobias": ("Tobi",),
    "Sebastian": ("Basti",),
    "Florian": ("Flo",),
    "Gabriele": ("Gabi",),
    "Barbara": ("Babsi",),
    "Veronika": ("Vroni",),
    "Josef": ("Sepp", "Jupp"),
    "Jessica": ("Jessi",),
    "Nikolaus": ("Klaus", "Niko"),
    "Dorothea": ("Doro", "Thea"),
    "Wolfgang": ("Wolf",),
    "Jürgen": ("Jürgi",),
    # English
    "William": ("Bill", "Will"),
    "Elizabeth": ("Liz", "Beth"),
    "Robert": ("Bob", "Rob"),
    "Richard": ("Rich", "Dick"),
    "James": ("Jim", "Jamie"),
    "Margaret": ("Maggie", "Peggy"),
    "Katherine": ("Kate", "Kathy"),
    "Jennifer": ("Jenny", "Jen"),
    "Christopher": ("Chris",),
    "Anthony": ("Tony",),
    "Joseph": ("Joe",),
    "Edward": ("Ed", "Ted"),
    "Samuel": ("Sam",),
    "Nicholas": ("Nick",),
    "Patricia": ("Pat", "Trish"),
    "Rebecca": ("Becky",),
    "Susan": ("Sue",),
    "Victoria": ("Vicky",),
    "Jonathan": ("Jon",),
    "Andrew": ("Andy",),
    "Stephen": ("Steve",),
    "Matthew": ("Matt",),
    "Charles": ("Charlie",),
    "Deborah": ("Debbie",),
}

_UMLAUT_LONG = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                              "ß": "ss"})
_UMLAUT_SHORT = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U",
                               "ß": "ss"})
UMLAUT_CHARS = "äöüÄÖÜß"



def transliterate(text: str, short: bool = False) -> str:
    """ASCII spelling of German umlauts (ü -> ue, or ü -> u when ``short``)."""
    return text.translate(_UMLAUT_SHORT if short else _UMLAUT_LONG)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII version of a name, as used in email local parts."""
    decomposed = unicodedata.normalize("NFKD", transliterate(text).lower())
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in ".-_"))


# Given names that have common nicknames, by (language, gender): drawn often enough that nickname
# noise has something to work on.
FORMAL_FIRST_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("de", "m"): ("Johannes", "Alexander", "Christian", "Michael", "Thomas", "Matthias", "Andreas",
                  "Daniel", "Friedrich", "Wilhelm", "Heinrich", "Maximilian", "Benjamin", "Tobias",
                  "Sebastian", "Florian", "Josef", "Nikolaus", "Wolfgang", "Jürgen"),
    ("de", "f"): ("Katharina", "Elisabeth", "Alexandra", "Christina", "Stefanie", "Susanne",
                  "Franziska", "Magdalena", "Margarete", "Gabriele", "Barbara", "Veronika",
                  "Jessica", "Dorothea"),
    ("en", "m"): ("William", "Robert", "Richard", "James", "Christopher", "Anthony", "Joseph",
                  "Edward", "Samuel", "Nicholas", "Jonathan", "Andrew", "Stephen", "Matthew",
                  "Charles", "Michael", "Thomas", "Daniel", "Alexander"),
    ("en", "f"): ("Elizabeth", "Margaret", "Katherine", "Jennifer", "Patricia", "Rebecca", "Susan",
                  "Victoria", "Deborah"),
}

# The most frequent German surnames (frequency order); many carry umlauts or ß.
COMMON_DE_LAST_NAMES: tuple[str, ...] = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler",
    "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz",
    "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller", "Günther",
    "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht",
    "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer",
    "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas",
    "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn",
    "Busch", "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer", "Gärtner",
    "Größer", "Nußbaum", "Däubler", "Rößler", "Lührs", "Jürgens", "Hölscher", "Böttcher",
)

DE_STREET_BASES: tuple[str, ...] = (
    "Haupt", "Bahnhof", "Schul", "Garten", "Kirch", "Berg", "Wald", "Linden", "Birken", "Mühlen",
    "Goethe", "Schiller", "Dorf", "Feld", "Wiesen", "Ring", "Sonnen", "Rosen", "Am Markt ",
    "Friedhof", "Industrie", "Park", "Buchen", "Eichen", "Tal", "Post", "Brunnen", "Blumen",
    "Mozart", "Beethoven", "Kant", "Lessing", "Uhland", "Bismarck", "Rathaus", "Burg", "Höhen",
    "Grüner ", "Frühlings", "Königs", "Fichten", "Tannen", "Ahorn", "Käthe-Kollwitz-",
)
DE_STREET_SUFFIXES: tuple[str, ...] = ("straße", "straße", "straße", "weg", "weg", "allee",
                                       "gasse", "platz", "ring")
DE_ADJ_STREETS: tuple[str, ...] = (
    "Berliner Straße", "Hamburger Straße", "Münchner Straße", "Frankfurter Allee",
    "Kölner Straße", "Lange Straße", "Neue Straße", "Alte Gasse", "Große Straße", "Kurze Straße",
    "Hauptplatz", "Marktplatz", "Am Bahnhof", "An der Kirche", "Im Winkel", "Zur Mühle",
)
GB_STREETS: tuple[str, ...] = (
    "High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road",
    "Church Street", "Park Road", "Queens Road", "The Crescent", "Mill Lane", "Kings Road",
    "Albert Road", "New Road", "London Road", "Grange Road", "Springfield Road", "Chester Road",
    "Highfield Road", "York Road", "Alexandra Road", "Windsor Road", "North Street",
)
GB_STREET_SUFFIXES: tuple[str, ...] = ("Road", "Street", "Lane", "Avenue", "Close", "Drive",
                                       "Way", "Gardens")
US_STREET_SUFFIXES: tuple[str, ...] = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard",
                                       "Court", "Place")

GB_CITIES: tuple[tuple[str, str], ...] = (
    ("London", "SW"), ("London", "N"), ("London", "E"), ("London", "NW"), ("Manchester", "M"),
    ("Birmingham", "B"), ("Leeds", "LS"), ("Glasgow", "G"), ("Bristol", "BS"),
    ("Edinburgh", "EH"), ("Liverpool", "L"), ("Sheffield", "S"), ("Cardiff", "CF"),
    ("Nottingham", "NG"), ("Leicester", "LE"), ("Brighton", "BN"), ("Oxford", "OX"),
    ("Cambridge", "CB"), ("York", "YO"), ("Newcastle upon Tyne", "NE"), ("Reading", "RG"),
)
US_CITIES: tuple[tuple[str, str, str], ...] = (
    # city, zip prefix, area code
    ("New York", "100", "212"), ("Brooklyn", "112", "718"), ("San Francisco", "941", "415"),
    ("Chicago", "606", "312"), ("Boston", "021", "617"), ("Seattle", "981", "206"),
    ("Austin", "787", "512"), ("Denver", "802", "303"), ("Portland", "972", "503"),
    ("Philadelphia", "191", "215"), ("Atlanta", "303", "404"), ("Miami", "331", "305"),
)

# Phone numbering: country code, mobile prefixes (without trunk 0), landline area codes.
PHONE_PLANS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "DE": ("49", ("151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173",
                  "174", "175", "176", "177", "178", "179"),
           ("30", "40", "89", "221", "69", "711", "211", "351", "341", "511", "911", "421",
            "6221", "7531", "228", "761", "521", "231", "201", "361")),
    "AT": ("43", ("650", "660", "664", "676", "680", "699"),
           ("1", "316", "662", "512", "732", "463")),
    "CH": ("41", ("76", "77", "78", "79"), ("44", "31", "61", "22", "41", "71")),
    "GB": ("44", ("7700", "7711", "7722", "7788", "7799", "7400", "7500", "7900"),
           ("20", "161", "121", "113", "131", "141", "117", "1865", "1223")),
    "US": ("1", (), ()),  # area codes come from the city
}

EMAIL_DOMAINS: dict[str, tuple[str, ...]] = {
    "DE": ("gmx.de", "web.de", "t-online.de", "gmail.com", "gmail.com", "outlook.de", "yahoo.de",
           "posteo.de", "freenet.de", "icloud.com", "mail.de"),
    "AT": ("gmx.at", "aon.at", "gmail.com", "gmail.com", "outlook.com", "chello.at", "a1.net"),
    "CH": ("bluewin.ch", "gmx.ch", "gmail.com", "hispeed.ch", "sunrise.ch"),
    "GB": ("gmail.com", "gmail.com", "outlook.com", "hotmail.co.uk", "btinternet.com",
           "yahoo.co.uk", "sky.com", "icloud.com"),
    "US": ("gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com",
           "hotmail.com"),
}
# Providers whose addresses are long abandoned by most people: old emails bounce.
OLD_EMAIL_DOMAINS: tuple[str, ...] = ("arcor.de", "lycos.de", "aol.com", "freenet.de",
                                      "hotmail.de", "online.de", "yahoo.de", "compuserve.de")

PRODUCT_GROUPS: tuple[str, ...] = ("fashion", "electronics", "garden", "home", "sports", "beauty",
                                   "baby")
# Everyday shopping mix (baby only after the life event).
BASE_PRODUCT_GROUPS: tuple[str, ...] = ("fashion", "fashion", "electronics", "garden", "home",
                                        "home", "sports", "beauty")

# Offer catalogue: id, product group, first and last day (days since the window start) of validity.
OFFERS: tuple[tuple[str, str, int, int], ...] = (
    ("OF-001", "fashion", 0, 90),
    ("OF-002", "electronics", 20, 120),
    ("OF-003", "garden", 120, 240),
    ("OF-004", "home", 0, 365),
    ("OF-005", "sports", 60, 200),
    ("OF-006", "beauty", 90, 180),
    ("OF-007", "baby", 0, 365),
    ("OF-008", "fashion", 180, 300),
    ("OF-009", "electronics", 270, 365),
    ("OF-010", "garden", 200, 330),
    ("OF-011", "beauty", 250, 365),
    ("OF-012", "sports", 300, 365),
)

WEB_PAGES: dict[str, tuple[str, ...]] = {
    "home": ("/", "/de", "/en"),
    "category": ("/c/{g}", "/kategorie/{g}", "/c/{g}/sale"),
    "product": ("/p/{g}/{n}",),
    "cart": ("/cart", "/warenkorb"),
    "login": ("/account/login", "/konto/anmelden"),
    "newsletter": ("/newsletter", "/newsletter/anmelden"),
    "offer": ("/angebote/{o}", "/offers/{o}"),
}
