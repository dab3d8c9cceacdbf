"""The parties of the world: shippers, consignees, brokers and truck fleets, with histories.

Licit parties are drawn by popularity (a Zipf law: a few big importers, a long tail) and some of
them enter the market part-way through, so "new consignee" is common and not by itself a sign of
crime. Shell consignees are added by the illicit planner, live a few weeks, and get RFCs whose
founding date sits just before their first shipment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from training.simulate import ids
from training.simulate.catalogue import (
    ORIGINS,
    SECTORS,
    TRANSIT_DESTINATIONS,
    TRUCK_CARRIER_ROOTS,
)
from training.simulate.types import FloatArray, IntArray

SYLLABLES: tuple[str, ...] = (
    "ta",
    "ro",
    "mex",
    "zan",
    "li",
    "qui",
    "vo",
    "tel",
    "ar",
    "co",
    "nu",
    "bal",
    "dor",
    "sa",
    "ven",
    "tla",
    "xo",
    "mi",
    "ra",
    "pel",
    "cu",
    "an",
    "ti",
    "lo",
    "ber",
    "gal",
    "ri",
    "zu",
)
CN_SYLLABLES: tuple[str, ...] = (
    "hua",
    "xin",
    "long",
    "tai",
    "feng",
    "jia",
    "rui",
    "sheng",
    "hong",
    "yuan",
    "kang",
    "da",
    "mei",
    "tong",
    "xiang",
    "bao",
    "heng",
    "jin",
    "lian",
    "shun",
)
IN_SYLLABLES: tuple[str, ...] = (
    "shri",
    "ava",
    "niv",
    "aro",
    "dhan",
    "vik",
    "ram",
    "sun",
    "kri",
    "pra",
    "dev",
    "lak",
    "mit",
    "aan",
    "jay",
    "sar",
)
MX_PREFIXES: tuple[str, ...] = (
    "Comercializadora",
    "Distribuidora",
    "Importadora",
    "Grupo",
    "Industrias",
    "Corporativo",
    "Servicios",
    "Manufacturas",
    "Proveedora",
    "Suministros",
)
MX_REGIONS: tuple[str, ...] = (
    "del Pacífico",
    "del Norte",
    "de Occidente",
    "del Bajío",
    "del Golfo",
    "de México",
    "Internacional",
    "Global",
    "",
)
SECTOR_WORDS: dict[str, str] = {
    "consumer": "Comercial",
    "electronics": "Electrónica",
    "auto": "Autopartes",
    "machinery": "Maquinaria",
    "metals": "Aceros",
    "plastics": "Plásticos",
    "chemicals": "Química",
    "pharma": "Farma",
    "food": "Alimentos",
    "watched": "Química Fina",
}
FOREIGN_SUFFIX: dict[str, str] = {
    "CN": "Co., Ltd.",
    "HK": "Trading Ltd.",
    "IN": "Pvt. Ltd.",
    "US": "Inc.",
    "DE": "GmbH",
    "KR": "Co., Ltd.",
    "JP": "K.K.",
    "TW": "Co., Ltd.",
    "VN": "JSC",
    "TH": "Co., Ltd.",
    "MY": "Sdn. Bhd.",
    "ES": "S.L.",
    "NL": "B.V.",
    "FR": "SAS",
    "CA": "Ltd.",
    "CL": "SpA",
    "PE": "S.A.C.",
    "SG": "Pte. Ltd.",
    "GT": "S.A.",
    "SV": "S.A. de C.V.",
    "NI": "S.A.",
    "HN": "S. de R.L.",
    "CR": "S.A.",
    "EC": "S.A.",
    "CO": "S.A.S.",
}
FOREIGN_TRADES: tuple[str, ...] = (
    "Industrial",
    "Trading",
    "Import & Export",
    "Manufacturing",
    "Technology",
    "Chemical",
    "Materials",
    "Supply",
    "Commerce",
)

ZIPF_EXPONENT = 1.0
"""assumption: party popularity follows a Zipf law with this exponent."""
NEW_ENTRANT_SHARE = 0.15
"""assumption: share of licit consignees that start trading part-way through the window."""


def pseudo_word(
    rng: np.random.Generator, syllables: tuple[str, ...], lo: int = 2, hi: int = 3
) -> str:
    k = int(rng.integers(lo, hi + 1))
    return "".join(syllables[int(i)] for i in rng.integers(0, len(syllables), size=k)).capitalize()


def mx_company_name(rng: np.random.Generator, sector: str | None) -> str:
    prefix = MX_PREFIXES[int(rng.integers(0, len(MX_PREFIXES)))]
    core = pseudo_word(rng, SYLLABLES)
    word = SECTOR_WORDS.get(sector or "", "")
    region = MX_REGIONS[int(rng.integers(0, len(MX_REGIONS)))]
    legal = "S.A. de C.V." if rng.random() < 0.8 else "S. de R.L. de C.V."
    parts = [prefix, core, word if rng.random() < 0.6 else "", region, legal]
    return " ".join(p for p in parts if p)


def foreign_company_name(rng: np.random.Generator, country: str) -> str:
    syllables = (
        CN_SYLLABLES
        if country in {"CN", "HK", "TW"}
        else IN_SYLLABLES
        if country == "IN"
        else SYLLABLES
    )
    core = pseudo_word(rng, syllables)
    if rng.random() < 0.5:
        core = f"{core} {pseudo_word(rng, syllables)}"
    trade = FOREIGN_TRADES[int(rng.integers(0, len(FOREIGN_TRADES)))]
    return f"{core} {trade} {FOREIGN_SUFFIX.get(country, 'Ltd.')}"


@dataclass
class PartyTable:
    """Append-only party list; ``frame()`` freezes it for gathering by index."""

    prefix: str
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    tax_ids: list[str] = field(default_factory=list)

    def add(self, name: str, country: str, tax_id: str) -> int:
        index = len(self.ids)
        self.ids.append(f"{self.prefix}-{index:06d}")
        self.names.append(name)
        self.countries.append(country)
        self.tax_ids.append(tax_id)
        return index

    def frame(self, column_prefix: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                f"{column_prefix}_id": self.ids,
                f"{column_prefix}_name": self.names,
                f"{column_prefix}_country": self.countries,
                f"{column_prefix}_tax_id": self.tax_ids,
            },
            schema={
                f"{column_prefix}_id": pl.String(),
                f"{column_prefix}_name": pl.String(),
                f"{column_prefix}_country": pl.String(),
                f"{column_prefix}_tax_id": pl.String(),
            },
        )


@dataclass(frozen=True)
class Group:
    """Members of one sampling group, most popular first, with their cumulative weights."""

    members: IntArray
    cdf: FloatArray

    @staticmethod
    def of(members: list[int]) -> Group:
        ranks = np.arange(1, len(members) + 1, dtype=np.float64)
        weights = ranks**-ZIPF_EXPONENT
        cdf = np.cumsum(weights)
        return Group(np.asarray(members, dtype=np.int64), cdf / cdf[-1])

    def sample(self, u: FloatArray) -> IntArray:
        position = np.searchsorted(self.cdf, u, side="right")
        return self.members[np.minimum(position, len(self.members) - 1)]


def founded_before(
    rng: np.random.Generator, year: int, month: int, max_months: int
) -> tuple[int, int, int]:
    back = int(rng.integers(0, max_months + 1))
    total = year * 12 + (month - 1) - back
    return total // 12, total % 12 + 1, int(rng.integers(1, 29))


@dataclass
class Roster:
    """Every party of the world and the groups the generator samples them from."""

    consignees: PartyTable
    shippers: PartyTable
    broker_ids: list[str]
    consignee_groups: dict[str, Group]
    consignee_entry_month: list[int]
    shipper_groups: dict[str, Group]
    port_brokers: dict[str, IntArray]
    complicit_brokers: IntArray
    truck_carriers: list[str]
    truck_plates: list[list[str]]


def _scaled(n: int, per: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, round(n / per))))


def build_roster(
    rng: np.random.Generator, shipments: int, months: int, ports: list[str], start_year: int
) -> Roster:
    """Create the licit parties for a world of ``shipments`` shipments over ``months`` months."""
    consignees = PartyTable("CNE")
    shippers = PartyTable("SHR")
    groups: dict[str, list[int]] = {}
    entry: list[int] = []

    def mx_consignee(sector: str | None, group: str) -> None:
        name = mx_company_name(rng, sector)
        tax = ids.rfc(
            rng,
            name,
            (
                int(rng.integers(1985, start_year - 1)),
                int(rng.integers(1, 13)),
                int(rng.integers(1, 29)),
            ),
        )
        index = consignees.add(name, "MX", tax)
        groups.setdefault(group, []).append(index)
        entry.append(0)

    importers = _scaled(shipments, 30, 150, 30_000)
    for sector_index, sector in enumerate(SECTORS):
        if sector == "watched":
            count = _scaled(shipments, 2_000, 8, 300)
        else:
            count = max(8, importers // (len(SECTORS) - 1) + (sector_index % 3) * importers // 60)
        for _ in range(count):
            mx_consignee(sector, f"sector:{sector}")
    for _ in range(_scaled(shipments, 2_000, 8, 200)):
        name = mx_company_name(rng, None).replace("Comercializadora", "Agencia de Carga")
        index = consignees.add(
            name, "MX", ids.rfc(rng, name, (int(rng.integers(1990, start_year - 1)), 6, 15))
        )
        groups.setdefault("forwarder", []).append(index)
        entry.append(0)
    for _ in range(_scaled(shipments, 60, 50, 10_000)):
        name = foreign_company_name(rng, "US")
        index = consignees.add(name, "US", ids.foreign_tax_id(rng, "US"))
        groups.setdefault("us", []).append(index)
        entry.append(0)
    destinations = sorted(TRANSIT_DESTINATIONS)
    for i in range(_scaled(shipments, 1_000, 14, 500)):
        country = destinations[i % len(destinations)]
        name = foreign_company_name(rng, country)
        index = consignees.add(name, country, ids.foreign_tax_id(rng, country))
        groups.setdefault(f"transit:{country}", []).append(index)
        entry.append(0)

    for name, members in groups.items():
        if not name.startswith("sector:") or len(members) < 10:
            continue
        tail = members[len(members) // 5 :]
        chosen = rng.choice(len(tail), size=int(len(tail) * NEW_ENTRANT_SHARE), replace=False)
        for position in sorted(int(c) for c in chosen):
            entry[tail[position]] = int(rng.integers(1, max(2, months)))

    consignee_groups: dict[str, Group] = {}
    for name in sorted(groups):
        members = groups[name]
        consignee_groups[name] = Group.of(members)
        established = [m for m in members if entry[m] == 0]
        consignee_groups[name + ":est"] = Group.of(established or members)

    shipper_members: dict[str, list[int]] = {}
    countries = sorted({c for mix in ORIGINS.values() for c in mix} - {"MX"} | {"HK", "SG", "NL"})
    weight_by_country: dict[str, float] = {}
    for mix in ORIGINS.values():
        for country, share in mix.items():
            weight_by_country[country] = weight_by_country.get(country, 0.0) + share
    for country in countries:
        count = _scaled(int(shipments * weight_by_country.get(country, 0.05) / 5), 40, 6, 20_000)
        for _ in range(count):
            index = shippers.add(
                foreign_company_name(rng, country), country, ids.foreign_tax_id(rng, country)
            )
            shipper_members.setdefault(f"country:{country}", []).append(index)
    for _ in range(_scaled(shipments, 60, 50, 10_000)):
        name = mx_company_name(rng, None)
        tax = ids.rfc(
            rng, name, (int(rng.integers(1985, start_year - 1)), int(rng.integers(1, 13)), 10)
        )
        shipper_members.setdefault("country:MX", []).append(shippers.add(name, "MX", tax))
    shipper_groups = {k: Group.of(v) for k, v in sorted(shipper_members.items())}

    broker_count = _scaled(shipments, 2_500, 30, 400)
    broker_ids = [f"BRK-{i:06d}" for i in range(broker_count)]
    port_members: dict[str, list[int]] = {port: [] for port in ports}
    for broker in range(broker_count):
        for port_index in rng.choice(len(ports), size=int(rng.integers(1, 4)), replace=False):
            port_members[ports[int(port_index)]].append(broker)
    for port_index, port in enumerate(ports):
        if not port_members[port]:
            port_members[port].append(port_index % broker_count)
    port_brokers = {port: np.asarray(sorted(m), dtype=np.int64) for port, m in port_members.items()}
    complicit = rng.choice(broker_count, size=max(3, broker_count // 20), replace=False)

    truck_carriers: list[str] = []
    truck_plates: list[list[str]] = []
    for _ in range(_scaled(shipments, 500, 30, 600)):
        root = TRUCK_CARRIER_ROOTS[int(rng.integers(0, len(TRUCK_CARRIER_ROOTS)))]
        truck_carriers.append(f"{root} {pseudo_word(rng, SYLLABLES)} S.A. de C.V.")
        truck_plates.append([ids.mx_plate(rng) for _ in range(int(rng.integers(3, 25)))])

    return Roster(
        consignees=consignees,
        shippers=shippers,
        broker_ids=broker_ids,
        consignee_groups=consignee_groups,
        consignee_entry_month=entry,
        shipper_groups=shipper_groups,
        port_brokers=port_brokers,
        complicit_brokers=np.sort(complicit.astype(np.int64)),
        truck_carriers=truck_carriers,
        truck_plates=truck_plates,
    )
