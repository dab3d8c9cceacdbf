"""The parties of the world: shippers, consignees, brokers and truck fleets, with histories.

Licit parties are drawn by popularity (a Zipf law: a few big importers, a long tail) and some of
them enter the market part-way through, so "new consignee" and "new exporter" are common and not
by themselves a sign of crime. Shell consignees are added by the illicit planner, live a few
weeks, and get RFCs whose founding date sits just before their first shipment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from training.simulate import ids
from training.simulate.catalogue import (
    ORIGINS,
    SECTORS,
    TRANSIT_DESTINATIONS,
    TRUCK_CARRIER_ROOTS,
)
from training.simulate.names import (
    SYLLABLES,
    foreign_company_name,
    founded_before,
    mx_company_name,
    pseudo_word,
)
from training.simulate.types import FloatArray, IntArray

ZIPF_EXPONENT = 1.0
"""assumption: party popularity follows a Zipf law with this exponent."""
NEW_ENTRANT_SHARE = 0.15
"""assumption: share of licit consignees (importers of each sector, and the US buyers of
northbound freight), and of licit Mexican exporters, that start trading part-way through the
window."""
BEFORE_WINDOW = -1
"""Entry month of a party trading since before the window."""
STAGGERED_GROUPS = ("sector:", "us")
"""Consignee groups with new entrants: a new importer or US buyer is common, not a tell."""
NEW_EXPORTER_FOUNDED_MONTHS = 12
"""assumption: a licit Mexican exporter that starts trading inside the window was founded zero
to twelve months before its first shipment (a shell: zero to four, ``planner``), so a young
exporter RFC is common among licit exporters too, not a tell by itself."""


@dataclass
class PartyTable:
    """Append-only party list; ``frame()`` freezes it for gathering by index."""

    prefix: str
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    tax_ids: list[str] = field(default_factory=list)
    entry_month: list[int] = field(default_factory=list)

    def add(self, name: str, country: str, tax_id: str, entry_month: int = BEFORE_WINDOW) -> int:
        """Append a party first trading in ``entry_month`` (default: before the window)."""
        index = len(self.ids)
        self.ids.append(f"{self.prefix}-{index:06d}")
        self.names.append(name)
        self.countries.append(country)
        self.tax_ids.append(tax_id)
        self.entry_month.append(entry_month)
        return index

    def frame(self, column_prefix: str) -> pl.DataFrame:
        """The parties as ``<column_prefix>_id``, ``_name``, ``_country`` and ``_tax_id``."""
        columns = {
            f"{column_prefix}_id": self.ids,
            f"{column_prefix}_name": self.names,
            f"{column_prefix}_country": self.countries,
            f"{column_prefix}_tax_id": self.tax_ids,
        }
        return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String()))


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


def sampling_groups(members: dict[str, list[int]], entry_month: list[int]) -> dict[str, Group]:
    """Sampling groups by name, each with an ``:est`` twin of its members trading from month 0
    (to draw from while a late entrant has not started yet)."""
    groups: dict[str, Group] = {}
    for name in sorted(members):
        group = members[name]
        groups[name] = Group.of(group)
        established = [m for m in group if entry_month[m] == BEFORE_WINDOW]
        groups[name + ":est"] = Group.of(established or group)
    return groups


def late_entrants(rng: np.random.Generator, members: list[int], months: int) -> dict[int, int]:
    """``NEW_ENTRANT_SHARE`` of the less popular ``members`` (all but the first fifth), each
    with the month it starts trading (1 to ``months - 1``); none when the group is tiny."""
    if len(members) < 10:
        return {}
    tail = members[len(members) // 5 :]
    chosen = rng.choice(len(tail), size=int(len(tail) * NEW_ENTRANT_SHARE), replace=False)
    return {tail[int(c)]: int(rng.integers(1, max(2, months))) for c in sorted(chosen)}


@dataclass
class Roster:
    """Every party of the world and the groups the generator samples them from."""

    consignees: PartyTable
    shippers: PartyTable
    broker_ids: list[str]
    consignee_groups: dict[str, Group]
    shipper_groups: dict[str, Group]
    port_brokers: dict[str, IntArray]
    complicit_brokers: IntArray
    truck_carriers: list[str]
    truck_plates: list[list[str]]


def _scaled(n: int, per: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, round(n / per))))


@dataclass
class _Consignees:
    """Licit consignees as they are created: the table and its members by group name."""

    table: PartyTable = field(default_factory=lambda: PartyTable("CNE"))
    members: dict[str, list[int]] = field(default_factory=dict)

    def add(self, group: str, name: str, country: str, tax_id: str) -> None:
        """A consignee trading from the first month, in sampling group ``group``."""
        index = self.table.add(name, country, tax_id)
        self.members.setdefault(group, []).append(index)

    def stagger_entries(self, rng: np.random.Generator, months: int) -> None:
        """Let ``NEW_ENTRANT_SHARE`` of the less popular importers of each sector, and of the
        US buyers, start later."""
        for name, members in self.members.items():
            if name.startswith(STAGGERED_GROUPS):
                for index, month in late_entrants(rng, members, months).items():
                    self.table.entry_month[index] = month

    def groups(self) -> dict[str, Group]:
        return sampling_groups(self.members, self.table.entry_month)


def _licit_consignees(rng: np.random.Generator, shipments: int, start_year: int) -> _Consignees:
    """Importers per sector, freight forwarders, US buyers of northbound freight, and the
    consignees of transit cargo in third countries."""
    consignees = _Consignees()
    importers = _scaled(shipments, 30, 150, 30_000)
    for sector_index, sector in enumerate(SECTORS):
        if sector == "watched":
            count = _scaled(shipments, 2_000, 8, 300)
        else:
            count = max(8, importers // (len(SECTORS) - 1) + (sector_index % 3) * importers // 60)
        for _ in range(count):
            name = mx_company_name(rng, sector)
            founded = (
                int(rng.integers(1985, start_year - 1)),
                int(rng.integers(1, 13)),
                int(rng.integers(1, 29)),
            )
            consignees.add(f"sector:{sector}", name, "MX", ids.rfc(rng, name, founded))
    for _ in range(_scaled(shipments, 2_000, 8, 200)):
        name = mx_company_name(rng, None).replace("Comercializadora", "Agencia de Carga")
        founded = (int(rng.integers(1990, start_year - 1)), 6, 15)
        consignees.add("forwarder", name, "MX", ids.rfc(rng, name, founded))
    for _ in range(_scaled(shipments, 60, 50, 10_000)):
        name = foreign_company_name(rng, "US")
        consignees.add("us", name, "US", ids.foreign_tax_id(rng, "US"))
    destinations = sorted(TRANSIT_DESTINATIONS)
    for i in range(_scaled(shipments, 1_000, 14, 500)):
        country = destinations[i % len(destinations)]
        name = foreign_company_name(rng, country)
        consignees.add(f"transit:{country}", name, country, ids.foreign_tax_id(rng, country))
    return consignees


def _shippers(
    rng: np.random.Generator, shipments: int, months: int, start: date
) -> tuple[PartyTable, dict[str, Group]]:
    """Foreign shippers per origin country, in proportion to its trade, and Mexican ones, some of
    which start exporting part-way through the window with a recently founded RFC."""
    shippers = PartyTable("SHR")
    members: dict[str, list[int]] = {}
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
            members.setdefault(f"country:{country}", []).append(index)
    for _ in range(_scaled(shipments, 60, 50, 10_000)):
        name = mx_company_name(rng, None)
        tax = ids.rfc(
            rng, name, (int(rng.integers(1985, start.year - 1)), int(rng.integers(1, 13)), 10)
        )
        members.setdefault("country:MX", []).append(shippers.add(name, "MX", tax))
    for index, month in late_entrants(rng, members["country:MX"], months).items():
        first = start.year * 12 + start.month - 1 + month
        founded = founded_before(rng, first // 12, first % 12 + 1, NEW_EXPORTER_FOUNDED_MONTHS)
        shippers.tax_ids[index] = ids.rfc(rng, shippers.names[index], founded)
        shippers.entry_month[index] = month
    return shippers, sampling_groups(members, shippers.entry_month)


def _brokers(
    rng: np.random.Generator, shipments: int, ports: list[str]
) -> tuple[list[str], dict[str, IntArray], IntArray]:
    """Broker ids, the brokers serving each port (one to three ports each), and the complicit."""
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
    return broker_ids, port_brokers, np.sort(complicit.astype(np.int64))


def _truck_fleets(rng: np.random.Generator, shipments: int) -> tuple[list[str], list[list[str]]]:
    """Mexican trucking companies and the plates of each one's trucks."""
    carriers: list[str] = []
    plates: list[list[str]] = []
    for _ in range(_scaled(shipments, 500, 30, 600)):
        root = TRUCK_CARRIER_ROOTS[int(rng.integers(0, len(TRUCK_CARRIER_ROOTS)))]
        carriers.append(f"{root} {pseudo_word(rng, SYLLABLES)} S.A. de C.V.")
        plates.append([ids.mx_plate(rng) for _ in range(int(rng.integers(3, 25)))])
    return carriers, plates


def build_roster(
    rng: np.random.Generator, shipments: int, months: int, ports: list[str], start: date
) -> Roster:
    """Create the licit parties for a world of ``shipments`` shipments over ``months`` months
    from ``start``."""
    consignees = _licit_consignees(rng, shipments, start.year)
    consignees.stagger_entries(rng, months)
    shippers, shipper_groups = _shippers(rng, shipments, months, start)
    broker_ids, port_brokers, complicit_brokers = _brokers(rng, shipments, ports)
    truck_carriers, truck_plates = _truck_fleets(rng, shipments)
    return Roster(
        consignees=consignees.table,
        shippers=shippers,
        broker_ids=broker_ids,
        consignee_groups=consignees.groups(),
        shipper_groups=shipper_groups,
        port_brokers=port_brokers,
        complicit_brokers=complicit_brokers,
        truck_carriers=truck_carriers,
        truck_plates=truck_plates,
    )
