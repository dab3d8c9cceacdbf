"""The ordinary world: goods, sectors, origins, routes and carriers.

Nothing here is sourced unless it says so: the mixes are assumptions chosen to look like
Mexico's import trade (consumer goods, electronics and auto parts dominate; chemicals are a
minority), listed in ``docs/simulated-world.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

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


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)


def _products() -> tuple[Product, ...]:
    """``products.csv`` beside this module, a row a product in :class:`Product`'s field order
    (numbers as written: whole ones stay ints)."""
    with (Path(__file__).parent / "products.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = [f.name for f in fields(Product)]
    if rows[0] != header:
        raise ValueError(f"products.csv: header {rows[0]} is not {header}")
    return tuple(
        Product(key, sector, hs, en, es, unit, _number(kg), _number(usd), _number(per_unit), cas)
        for key, sector, hs, en, es, unit, kg, usd, per_unit, cas in rows[1:]
    )


PRODUCTS: tuple[Product, ...] = _products()
"""The ordinary goods catalogue (HS lines from the WCO nomenclature; weights and values assumed),
kept as a table in ``products.csv``."""

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
