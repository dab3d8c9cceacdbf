"""The ordinary world: goods, sectors, origins, routes and carriers.

Nothing here is sourced unless it says so: the mixes are assumptions chosen to look like
Mexico's import trade (consumer goods, electronics and auto parts dominate; chemicals are a
minority), listed in ``docs/simulated-world.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUPS: tuple[str, ...] = ("sea", "land_south", "land_north", "air", "postal")
"""Flow groups: mode plus, for land, the direction of the freight declared at the crossing."""
GROUP_MODE: tuple[str, ...] = ("sea", "land", "land", "air", "postal")
G_SEA, G_LAND_SOUTH, G_LAND_NORTH, G_AIR, G_POSTAL = range(len(GROUPS))
"""Indices of the flow groups in ``GROUPS``, as the skeleton's ``group`` column holds them."""


@dataclass(frozen=True, slots=True)
class Product:
    """One kind of ordinary goods line. ``kg`` is the median gross weight of a sea line."""

    key: str
    sector: str
    hs: str  # 8-digit Mexican tariff line (6-digit HS + national extension)
    en: str
    es: str
    unit: str  # UN/ECE Rec 20: KGM kilogram, H87 piece, LTR litre, SET set, PR pair
    kg: float
    usd_per_kg: float
    kg_per_unit: float = 1.0
    cas: str = ""


PRODUCTS: tuple[Product, ...] = (
    Product(
        "tshirts",
        "consumer",
        "61091001",
        "cotton t-shirts",
        "camisetas de algodón",
        "H87",
        4000,
        9,
        0.2,
    ),
    Product(
        "footwear",
        "consumer",
        "64039999",
        "leather footwear",
        "calzado de piel",
        "PR",
        3500,
        14,
        0.9,
    ),
    Product(
        "toys", "consumer", "95030099", "plastic toys", "juguetes de plástico", "H87", 3000, 6, 0.4
    ),
    Product(
        "furniture",
        "consumer",
        "94036099",
        "wooden furniture",
        "muebles de madera",
        "H87",
        6000,
        3,
        25,
    ),
    Product(
        "kitchenware",
        "consumer",
        "73239399",
        "stainless steel kitchenware",
        "utensilios de cocina de acero",
        "H87",
        5000,
        5,
        0.8,
    ),
    Product(
        "cosmetics",
        "consumer",
        "33049999",
        "cosmetic preparations",
        "preparaciones cosméticas",
        "H87",
        2000,
        12,
        0.15,
    ),
    Product("bags", "consumer", "42029299", "travel bags", "bolsas de viaje", "H87", 2500, 10, 0.6),
    Product(
        "smartphones",
        "electronics",
        "85171300",
        "smartphones",
        "teléfonos inteligentes",
        "H87",
        1500,
        180,
        0.3,
    ),
    Product(
        "laptops",
        "electronics",
        "84713001",
        "laptop computers",
        "computadoras portátiles",
        "H87",
        1800,
        120,
        2.5,
    ),
    Product(
        "tv",
        "electronics",
        "85287299",
        "LED television sets",
        "televisores LED",
        "H87",
        5000,
        25,
        12,
    ),
    Product(
        "cables",
        "electronics",
        "85444299",
        "insulated electric cables",
        "cables eléctricos aislados",
        "KGM",
        8000,
        8,
    ),
    Product(
        "psu", "electronics", "85044099", "power supplies", "fuentes de poder", "H87", 2500, 30, 0.5
    ),
    Product(
        "ics",
        "electronics",
        "85423999",
        "integrated circuits",
        "circuitos integrados",
        "H87",
        300,
        900,
        0.002,
    ),
    Product(
        "brakes",
        "auto",
        "87083099",
        "brake parts for vehicles",
        "partes de frenos para vehículos",
        "H87",
        9000,
        7,
        3,
    ),
    Product(
        "autoparts",
        "auto",
        "87089999",
        "motor vehicle parts",
        "partes para vehículos automóviles",
        "H87",
        10000,
        9,
        2,
    ),
    Product(
        "tyres",
        "auto",
        "40111001",
        "new car tyres",
        "llantas nuevas para automóvil",
        "H87",
        12000,
        4,
        9,
    ),
    Product(
        "harness",
        "auto",
        "85443002",
        "ignition wiring sets",
        "arneses eléctricos",
        "H87",
        6000,
        15,
        1.5,
    ),
    Product(
        "cars",
        "auto",
        "87032301",
        "passenger cars",
        "automóviles de pasajeros",
        "H87",
        14000,
        12,
        1400,
    ),
    Product(
        "valves",
        "machinery",
        "84818099",
        "industrial valves",
        "válvulas industriales",
        "H87",
        6000,
        15,
        4,
    ),
    Product(
        "pumps",
        "machinery",
        "84137099",
        "centrifugal pumps",
        "bombas centrífugas",
        "H87",
        7000,
        12,
        35,
    ),
    Product(
        "fridges", "machinery", "84181099", "refrigerators", "refrigeradores", "H87", 9000, 6, 60
    ),
    Product(
        "aircon",
        "machinery",
        "84151099",
        "air conditioners",
        "aparatos de aire acondicionado",
        "H87",
        8000,
        8,
        40,
    ),
    Product(
        "mixers",
        "machinery",
        "84743999",
        "industrial mixing machines",
        "mezcladoras industriales",
        "H87",
        5000,
        10,
        400,
    ),
    Product(
        "packers",
        "machinery",
        "84224099",
        "packing machinery",
        "máquinas empacadoras",
        "H87",
        4000,
        14,
        600,
    ),
    Product(
        "pharma_press",
        "machinery",
        "84798999",
        "machines for pharmaceutical industry",
        "máquinas para la industria farmacéutica",
        "H87",
        3000,
        25,
        900,
    ),
    Product(
        "steelcoil",
        "metals",
        "72085101",
        "hot-rolled steel coils",
        "rollos de acero laminado en caliente",
        "KGM",
        24000,
        0.8,
    ),
    Product(
        "bolts",
        "metals",
        "73181599",
        "steel bolts and screws",
        "tornillos y pernos de acero",
        "KGM",
        15000,
        2.5,
    ),
    Product(
        "aluminium",
        "metals",
        "76061299",
        "aluminium plates",
        "placas de aluminio",
        "KGM",
        20000,
        3.2,
    ),
    Product(
        "ironart",
        "metals",
        "73269099",
        "articles of iron or steel",
        "manufacturas de hierro o acero",
        "KGM",
        10000,
        3,
    ),
    Product(
        "pe",
        "plastics",
        "39011001",
        "polyethylene pellets",
        "polietileno en pellets",
        "KGM",
        24000,
        1.3,
    ),
    Product("pet", "plastics", "39076101", "PET resin", "resina PET", "KGM", 22000, 1.2),
    Product("epoxy", "plastics", "39073099", "epoxy resins", "resinas epóxicas", "KGM", 16000, 3.5),
    Product(
        "film",
        "plastics",
        "39201099",
        "polyethylene film",
        "película de polietileno",
        "KGM",
        15000,
        2,
    ),
    Product(
        "plasticart",
        "plastics",
        "39269099",
        "articles of plastic",
        "manufacturas de plástico",
        "KGM",
        8000,
        5,
    ),
    Product(
        "cacl2",
        "chemicals",
        "28272001",
        "calcium chloride",
        "cloruro de calcio",
        "KGM",
        22000,
        0.3,
        cas="10043-52-4",
    ),
    Product(
        "citric",
        "chemicals",
        "29181401",
        "citric acid",
        "ácido cítrico",
        "KGM",
        20000,
        0.9,
        cas="77-92-9",
    ),
    Product(
        "tio2",
        "chemicals",
        "28230001",
        "titanium dioxide",
        "dióxido de titanio",
        "KGM",
        20000,
        3,
        cas="13463-67-7",
    ),
    Product(
        "naoh",
        "chemicals",
        "28151101",
        "sodium hydroxide solid",
        "hidróxido de sodio sólido",
        "KGM",
        24000,
        0.5,
        cas="1310-73-2",
    ),
    Product(
        "surfactant",
        "chemicals",
        "34024299",
        "non-ionic surfactants",
        "agentes de superficie no iónicos",
        "KGM",
        18000,
        1.8,
    ),
    Product(
        "paint",
        "chemicals",
        "32089099",
        "paints and varnishes",
        "pinturas y barnices",
        "KGM",
        15000,
        3,
    ),
    Product(
        "pigment",
        "chemicals",
        "32041799",
        "organic pigments",
        "pigmentos orgánicos",
        "KGM",
        12000,
        6,
    ),
    Product(
        "chemprep",
        "chemicals",
        "38249999",
        "chemical preparations",
        "preparaciones químicas",
        "KGM",
        14000,
        2.5,
    ),
    Product(
        "sodiumbenz",
        "chemicals",
        "29163101",
        "sodium benzoate",
        "benzoato de sodio",
        "KGM",
        18000,
        1.6,
        cas="532-32-1",
    ),
    Product(
        "caco3",
        "chemicals",
        "28365001",
        "calcium carbonate",
        "carbonato de calcio",
        "KGM",
        24000,
        0.2,
        cas="471-34-1",
    ),
    Product(
        "medicaments",
        "pharma",
        "30049099",
        "medicaments in measured doses",
        "medicamentos dosificados",
        "KGM",
        3000,
        40,
    ),
    Product(
        "vitc",
        "pharma",
        "29362701",
        "vitamin C (ascorbic acid)",
        "vitamina C (ácido ascórbico)",
        "KGM",
        8000,
        5,
        cas="50-81-7",
    ),
    Product(
        "antacid", "pharma", "30049099", "antacid tablets", "tabletas antiácidas", "KGM", 4000, 8
    ),
    Product(
        "apis",
        "pharma",
        "29420099",
        "pharmaceutical intermediates",
        "intermedios farmacéuticos",
        "KGM",
        2000,
        30,
    ),
    Product(
        "medical",
        "pharma",
        "90189099",
        "medical instruments",
        "instrumentos médicos",
        "H87",
        1500,
        60,
        0.5,
    ),
    Product(
        "avocado", "food", "08044001", "fresh avocados", "aguacates frescos", "KGM", 20000, 2.2
    ),
    Product("tomato", "food", "07020099", "fresh tomatoes", "jitomates frescos", "KGM", 20000, 1.1),
    Product("peppers", "food", "07096099", "fresh peppers", "chiles frescos", "KGM", 18000, 1.4),
    Product(
        "beer",
        "food",
        "22030001",
        "beer made from malt",
        "cerveza de malta",
        "LTR",
        22000,
        1.1,
        1.05,
    ),
    Product("corn", "food", "10059099", "yellow corn", "maíz amarillo", "KGM", 25000, 0.25),
    Product(
        "pork",
        "food",
        "02032999",
        "frozen pork cuts",
        "cortes de cerdo congelados",
        "KGM",
        22000,
        3,
    ),
    Product("berries", "food", "08104001", "fresh berries", "frutillas frescas", "KGM", 15000, 5),
    Product(
        "aniline_lic", "watched", "29214101", "aniline", "anilina", "KGM", 20000, 1.6, cas="62-53-3"
    ),
    Product(
        "acetic_lic",
        "watched",
        "29152101",
        "glacial acetic acid",
        "ácido acético glacial",
        "KGM",
        22000,
        0.6,
        cas="64-19-7",
    ),
    Product(
        "piperidine_lic",
        "watched",
        "29333201",
        "piperidine",
        "piperidina",
        "KGM",
        4000,
        12,
        cas="110-89-4",
    ),
    Product(
        "pse_lic",
        "watched",
        "29394201",
        "pseudoephedrine hydrochloride",
        "clorhidrato de pseudoefedrina",
        "KGM",
        500,
        150,
        cas="90-82-4",
    ),
    Product(
        "ephedrine_lic",
        "watched",
        "29394101",
        "ephedrine sulphate",
        "sulfato de efedrina",
        "KGM",
        300,
        180,
        cas="299-42-3",
    ),
    Product(
        "propanhyd_lic",
        "watched",
        "29159099",
        "propionic anhydride",
        "anhídrido propiónico",
        "KGM",
        8000,
        3,
        cas="123-62-6",
    ),
    Product(
        "methylamine_lic",
        "watched",
        "29211101",
        "methylamine 40% solution",
        "metilamina solución 40%",
        "KGM",
        12000,
        1.2,
        cas="74-89-5",
    ),
)
"""The ordinary goods catalogue (HS lines from the WCO nomenclature; weights and values assumed)."""

PRODUCT_SUBSTANCE: dict[str, str] = {
    "aniline_lic": "aniline",
    "acetic_lic": "acetic-acid",
    "piperidine_lic": "piperidine",
    "pse_lic": "pseudoephedrine",
    "ephedrine_lic": "ephedrine",
    "propanhyd_lic": "propionic-anhydride",
    "methylamine_lic": "methylamine",
}
"""Licensed trade in watched chemicals: legal, but a watchlist hit (ref §3 ¶ on pseudoephedrine)."""

SECTORS: tuple[str, ...] = (
    "consumer",
    "electronics",
    "auto",
    "machinery",
    "metals",
    "plastics",
    "chemicals",
    "pharma",
    "food",
    "watched",
)

SECTOR_MIX: dict[str, tuple[float, ...]] = {
    # consumer electr auto  mach  metal plast chem  pharm food  watched
    "sea": (0.23, 0.15, 0.12, 0.12, 0.09, 0.09, 0.10, 0.03, 0.05, 0.02),
    "land_south": (0.08, 0.08, 0.22, 0.15, 0.12, 0.10, 0.07, 0.02, 0.15, 0.01),
    "land_north": (0.08, 0.20, 0.30, 0.10, 0.07, 0.03, 0.02, 0.0, 0.20, 0.0),
    "air": (0.20, 0.30, 0.08, 0.14, 0.0, 0.0, 0.05, 0.17, 0.04, 0.02),
    "postal": (0.64, 0.20, 0.02, 0.03, 0.0, 0.0, 0.02, 0.09, 0.0, 0.0),
}
"""assumption: sector of a shipment by flow group; chemicals (ch. 28/29/38) stay a minority."""

LINES_MEAN_EXTRA: dict[str, float] = {
    "sea": 1.1,
    "land_south": 0.8,
    "land_north": 0.6,
    "air": 0.5,
    "postal": 0.2,
}
"""assumption: goods lines per shipment are 1 + Poisson(mean), capped at 8."""

WEIGHT_FACTOR: dict[str, float] = {
    "sea": 1.0,
    "land_south": 0.8,
    "land_north": 0.8,
    "air": 0.03,
    "postal": 0.0006,
}
"""assumption: a line's weight relative to a full sea container line."""

ORIGINS: dict[str, dict[str, float]] = {
    "sea": {
        "CN": 0.55,
        "KR": 0.08,
        "JP": 0.07,
        "TW": 0.05,
        "VN": 0.06,
        "IN": 0.05,
        "TH": 0.03,
        "MY": 0.02,
        "US": 0.03,
        "DE": 0.02,
        "CL": 0.02,
        "PE": 0.02,
    },
    "land_south": {"US": 0.9, "CA": 0.03, "CN": 0.04, "DE": 0.03},
    "land_north": {"MX": 1.0},
    "air": {
        "US": 0.35,
        "CN": 0.25,
        "DE": 0.08,
        "ES": 0.05,
        "IN": 0.05,
        "KR": 0.05,
        "JP": 0.05,
        "NL": 0.04,
        "FR": 0.04,
        "HK": 0.04,
    },
    "postal": {"CN": 0.55, "US": 0.2, "HK": 0.08, "IN": 0.05, "KR": 0.04, "ES": 0.04, "DE": 0.04},
}
"""assumption: origin mix per flow group; China dominates the Pacific ports (ref §6 names China
then India as precursor sources, which the illicit mix uses; the licit mix is assumed)."""

REEXPORT_HUBS: tuple[str, ...] = ("HK", "SG", "US", "NL")
REEXPORT_SHARE = 0.06
"""assumption: share of non-land shipments exported from a hub other than the origin country."""

TRANSIT_DESTINATIONS: dict[str, float] = {
    "GT": 0.35,
    "SV": 0.15,
    "NI": 0.1,
    "HN": 0.12,
    "CR": 0.1,
    "EC": 0.08,
    "CO": 0.1,
}
"""Final destinations of transit consignments; Guatemala and Nicaragua from ref §6 routes."""

SEA_ROUTES: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "CN": (
        (("CNSHA",), 0.3),
        (("CNNGB",), 0.15),
        (("CNYTN",), 0.15),
        (("CNTAO",), 0.08),
        (("HKHKG",), 0.07),
        (("CNSHA", "KRPUS"), 0.12),
        (("CNYTN", "SGSIN"), 0.05),
        (("CNNGB", "USLGB"), 0.04),
        (("CNSHA", "PABLB"), 0.04),
    ),
    "KR": ((("KRPUS",), 0.85), (("KRPUS", "JPYOK"), 0.15)),
    "JP": ((("JPYOK",), 0.6), (("JPTYO",), 0.25), (("JPYOK", "KRPUS"), 0.15)),
    "TW": ((("TWKHH",), 0.8), (("TWKHH", "KRPUS"), 0.2)),
    "VN": ((("VNSGN",), 0.5), (("VNSGN", "SGSIN"), 0.3), (("VNHPH", "KRPUS"), 0.2)),
    "IN": ((("INNSA", "SGSIN"), 0.5), (("INMUN", "LKCMB"), 0.25), (("INMAA", "SGSIN"), 0.25)),
    "TH": ((("THLCH", "SGSIN"), 0.6), (("THLCH",), 0.4)),
    "MY": ((("MYPKG",), 0.5), (("MYTPP", "SGSIN"), 0.5)),
    "US": ((("USLGB",), 0.6), (("USLAX",), 0.4)),
    "DE": ((("DEHAM", "PABLB"), 0.6), (("DEHAM", "PAMIT"), 0.4)),
    "CL": ((("CLSAI",), 0.6), (("CLVAP", "PECLL"), 0.4)),
    "PE": ((("PECLL",), 1.0),),
}
"""Loading ports and transshipment hubs as UN/LOCODEs, in route order (assumed service mix;
the hubs Busan, Singapore, Balboa and Long Beach follow ref §6 routes and the brief)."""

AIR_VIA: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "CN": ((("CNPVG",), 0.5), (("CNCAN",), 0.2), (("CNPVG", "USLAX"), 0.3)),
    "IN": ((("INBOM", "DEFRA"), 0.5), (("INDEL", "NLAMS"), 0.5)),
    "HK": ((("HKHKG",), 0.7), (("HKHKG", "USLAX"), 0.3)),
    "ES": ((("ESMAD",), 1.0),),
}
"""Air routes that record loading and transit airports; other origins fly direct (empty list)."""

SEA_CARRIERS: tuple[tuple[str, str], ...] = (
    ("Pacifico Meridian Lines", "PMQ"),
    ("Oriental Harbor Shipping", "OHQ"),
    ("Blue Lantern Container Line", "BLQ"),
    ("Trans-Pacific Crescent Lines", "TPQ"),
    ("Jade Current Maritime", "JCQ"),
    ("Southern Cross Feeder Services", "SCQ"),
    ("Kestrel Bay Shipping", "KBQ"),
    ("Harborlight Marine", "HLQ"),
    ("Golden Reef Lines", "GRQ"),
    ("Copper Tide Navigation", "CTQ"),
)
"""Invented ocean carriers with invented ISO 6346 owner prefixes (the 'U' category is added)."""

AIR_CARRIERS: tuple[tuple[str, str], ...] = (
    ("Aerocarga Quetzal", "Q7"),
    ("Silverwing Cargo", "W9"),
    ("Transcontinental Air Freight", "T6"),
    ("Pacific Condor Airlines", "P5"),
    ("Eurostar Air Cargo", "E8"),
    ("Meridian Express", "M4"),
)
"""Invented airlines; the codes are placeholders, not assigned IATA designators."""

POSTAL_CARRIER = "Correo internacional (EMS)"

TRUCK_CARRIER_ROOTS: tuple[str, ...] = (
    "Autotransportes",
    "Transportes",
    "Fletes",
    "Logística",
    "Carga Express",
    "Trailers",
)
