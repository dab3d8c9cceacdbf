"""Pools and lookup tables that every chunk of the world gathers from.

:class:`Static` is built once per world from the catalogue and the roster: per-product arrays,
string pools that chunks ``gather`` from by index, the cumulative mixes (sector, product, origin,
route) the licit generator draws from, and the carriers with their vessels, trucks and flights.
Building it draws description variants and conveyance ids from its own generator, in a fixed
order. :meth:`Static.freeze` adds the party tables once the illicit planner has added its
parties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from training.simulate import ids, text
from training.simulate.catalogue import (
    AIR_CARRIERS,
    AIR_VIA,
    G_AIR,
    G_LAND_SOUTH,
    G_SEA,
    GROUP_MODE,
    GROUPS,
    ORIGINS,
    POSTAL_CARRIER,
    PRODUCT_SUBSTANCE,
    PRODUCTS,
    REEXPORT_HUBS,
    SEA_CARRIERS,
    SEA_ROUTES,
    SECTOR_MIX,
    SECTORS,
    TRANSIT_DESTINATIONS,
)
from training.simulate.entities import Group, Roster
from training.simulate.pools import COUNTRIES, COUNTRY_INDEX, LAND_SOUTH_ROUTES, ROUTE_INDEX, ROUTES
from training.simulate.sampling import cdf
from training.simulate.skeleton import PORTS, SLOTS
from training.simulate.types import FloatArray

DESCRIPTION_VARIANTS = 12
NORTH_ONLY = frozenset({"avocado", "tomato", "peppers", "berries", "beer"})
SOUTH_ONLY = frozenset({"corn", "pork"})
NO_AIR = frozenset(
    {"steelcoil", "pe", "pet", "corn", "cars", "naoh", "caco3", "cacl2", "tyres", "furniture"}
)
VESSELS_PER_CARRIER = 6
FLIGHTS_PER_AIRLINE = 12


def product_allowed(product: str, group: str) -> bool:
    """Whether ``product`` travels in flow ``group`` (fresh food north only, no bulk by air)."""
    return not (
        (product in NORTH_ONLY and group != "land_north")
        or (product in SOUTH_ONLY and group != "land_south")
        or (product in NO_AIR and group in ("air", "postal"))
    )


@dataclass
class Static:
    """Pools and lookup tables that every chunk gathers from."""

    rng: np.random.Generator
    roster: Roster

    def __post_init__(self) -> None:
        self._product_pools()
        self._goods_mixes()
        self._place_tables()
        self._carrier_pools()

    def _product_pools(self) -> None:
        """Per-product arrays, and the strings a goods line gathers by product index."""
        self.product_kg = np.array([p.kg for p in PRODUCTS])
        self.product_usd = np.array([p.usd_per_kg for p in PRODUCTS])
        self.product_kpu = np.array([p.kg_per_unit for p in PRODUCTS])
        self.product_is_kgm = np.array([p.unit == "KGM" for p in PRODUCTS])
        self.product_is_ltr = np.array([p.unit == "LTR" for p in PRODUCTS])
        self.product_has_cas = np.array([bool(p.cas) for p in PRODUCTS])
        self.product_watched = np.array([p.sector == "watched" for p in PRODUCTS])
        self.unit_pool = pl.Series([p.unit for p in PRODUCTS], dtype=pl.String())
        self.hs_pool = pl.Series(
            [v for p in PRODUCTS for v in (p.hs, p.hs + "00", p.hs[:6])], dtype=pl.String()
        )
        self.desc_pool = pl.Series(
            [
                d
                for p in PRODUCTS
                for d in text.variants(self.rng, p.en, p.es, DESCRIPTION_VARIANTS, p.unit == "KGM")
            ],
            dtype=pl.String(),
        )
        self.cas_pool = pl.Series(
            [v for p in PRODUCTS for v in ([], [p.cas] if p.cas else [])],
            dtype=pl.List(pl.String()),
        )
        self.substance_pool = pl.Series(
            [PRODUCT_SUBSTANCE.get(p.key) for p in PRODUCTS], dtype=pl.String()
        )

    def _goods_mixes(self) -> None:
        """Sector mix per flow group (with and without watched goods) and the product mix per
        (group, sector), leaving out products that do not travel in the group."""
        self.sector_cdf = cdf(np.array([SECTOR_MIX[g] for g in GROUPS]))
        cross = np.array([SECTOR_MIX[g] for g in GROUPS])
        cross[:, SECTORS.index("watched")] = 0.0
        self.cross_sector_cdf = cdf(cross)
        weights = np.zeros((len(GROUPS), len(SECTORS), len(PRODUCTS)))
        for g, group in enumerate(GROUPS):
            for i, p in enumerate(PRODUCTS):
                allowed = product_allowed(p.key, group)
                weights[g, SECTORS.index(p.sector), i] = 1.0 if allowed else 0.0
        empty = weights.sum(axis=2) == 0
        weights[empty] = 1.0 / len(PRODUCTS)
        self.product_cdf = cdf(weights)

    def _place_tables(self) -> None:
        """Origins per group, re-export hubs, transit destinations, routes, and the pools of
        countries, ports and modes."""
        origins = np.zeros((len(GROUPS), len(COUNTRIES)))
        for g, group in enumerate(GROUPS):
            for country, share in ORIGINS[group].items():
                origins[g, COUNTRY_INDEX[country]] = share
        self.origin_cdf = cdf(origins)
        self.hubs = np.array([COUNTRY_INDEX[h] for h in REEXPORT_HUBS])
        dests = sorted(TRANSIT_DESTINATIONS)
        self.transit_dests = dests
        self.transit_cdf = cdf(np.array([TRANSIT_DESTINATIONS[d] for d in dests]))

        self.route_tables: dict[tuple[int, int], FloatArray] = {}
        for g, table in ((G_SEA, SEA_ROUTES), (G_AIR, AIR_VIA), (G_LAND_SOUTH, LAND_SOUTH_ROUTES)):
            for country, options in table.items():
                probs = np.zeros(len(ROUTES))
                for route, w in options:
                    probs[ROUTE_INDEX[route]] += w
                self.route_tables[(g, COUNTRY_INDEX[country])] = cdf(probs)
        self.route_pool = pl.Series([list(r) for r in ROUTES], dtype=pl.List(pl.String()))
        self.country_pool = pl.Series(COUNTRIES, dtype=pl.String())
        self.port_pool = pl.Series([s.port for s in SLOTS], dtype=pl.String())
        self.mode_pool = pl.Series(list(GROUP_MODE), dtype=pl.String())
        self.slot_port_index = np.array([PORTS.index(s.port) for s in SLOTS])

    def _carrier_pools(self) -> None:
        """Carriers (shipping lines, truck fleets, airlines, the post) and their conveyances.

        Carrier ``c`` owns conveyances ``conveyance_offset[c]`` onwards, ``conveyance_count[c]``
        of them: vessels by IMO number, trucks by plate, flights by number; the post has one
        empty conveyance (its items carry S10 ids instead).
        """
        roster = self.roster
        carriers = [c for c, _ in SEA_CARRIERS] + roster.truck_carriers
        carriers += [c for c, _ in AIR_CARRIERS] + [POSTAL_CARRIER]
        self.carrier_pool = pl.Series(carriers, dtype=pl.String())
        self.truck_base = len(SEA_CARRIERS)
        self.air_base = self.truck_base + len(roster.truck_carriers)
        self.postal_carrier = len(carriers) - 1
        fleets: list[list[str]] = [
            [ids.imo_number(self.rng) for _ in range(VESSELS_PER_CARRIER)] for _ in SEA_CARRIERS
        ]
        fleets += roster.truck_plates
        for _, code in AIR_CARRIERS:
            numbers = self.rng.choice(np.arange(100, 9999), size=FLIGHTS_PER_AIRLINE, replace=False)
            fleets.append([f"{code}{int(n)}" for n in numbers])
        fleets.append([""])
        counts = [len(fleet) for fleet in fleets]
        self.conveyance_pool = pl.Series([c for fleet in fleets for c in fleet], dtype=pl.String())
        self.conveyance_offset = np.cumsum([0, *counts[:-1]], dtype=np.int64)
        self.conveyance_count = np.array(counts, dtype=np.int64)
        self.owner_codes = [code for _, code in SEA_CARRIERS]
        self.sea_carrier_group = Group.of(list(range(len(SEA_CARRIERS))))
        self.truck_group = Group.of(list(range(len(roster.truck_carriers))))
        self.air_group = Group.of(list(range(len(AIR_CARRIERS))))

    def freeze(self) -> None:
        """Freeze the party tables once the illicit planner has added its parties."""
        self.consignee_frame = self.roster.consignees.frame("consignee")
        self.shipper_frame = self.roster.shippers.frame("shipper")
        self.broker_pool = pl.Series(self.roster.broker_ids, dtype=pl.String())
        self.consignee_entry_month = np.array(self.roster.consignees.entry_month, dtype=np.int64)
        self.shipper_entry_month = np.array(self.roster.shippers.entry_month, dtype=np.int64)
