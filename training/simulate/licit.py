"""The licit traffic of one chunk: flows, parties, carriers and goods lines, drawn per row.

:func:`licit_rows` draws, for each skeleton row of the chunk, indices into the pools of
:class:`~training.simulate.static.Static`: the declared time, sector, origin and export country,
route, consignee, shipper, broker and carrier. Illicit events later overwrite some of them
(:mod:`training.simulate.chunk`). :func:`licit_goods` draws the goods lines of every row. All draws
are vectorised over the chunk and made in a fixed order from the chunk's own generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from training.simulate.catalogue import (
    G_AIR,
    G_LAND_NORTH,
    G_LAND_SOUTH,
    G_POSTAL,
    G_SEA,
    GROUPS,
    LINES_MEAN_EXTRA,
    PRODUCTS,
    REEXPORT_SHARE,
    SECTORS,
    WEIGHT_FACTOR,
)
from training.simulate.pools import COUNTRIES, ROUTE_INDEX
from training.simulate.sampling import draw
from training.simulate.skeleton import PORTS, Skeleton
from training.simulate.static import DESCRIPTION_VARIANTS, Static
from training.simulate.types import BoolArray, IntArray

FORWARDER_SHARE: tuple[float, ...] = (0.1, 0.05, 0.0, 0.15, 0.3)
"""assumption: share of shipments per flow group consolidated by a freight forwarder."""


@dataclass
class ChunkRows:
    """Per-row values of one chunk: skeleton columns, then indices into the static pools."""

    lo: int
    rows: IntArray
    month: IntArray
    group: IntArray
    slot: IntArray
    transit: BoolArray
    declared: IntArray  # µs since the epoch, UTC
    sector: IntArray
    origin: IntArray
    export: IntArray
    route: IntArray
    consignee: IntArray
    shipper: IntArray
    broker: IntArray
    carrier: IntArray


def licit_rows(
    rng: np.random.Generator, static: Static, skeleton: Skeleton, lo: int, hi: int
) -> ChunkRows:
    """Skeleton rows ``lo`` to ``hi - 1`` as ordinary trade."""
    rows = np.arange(lo, hi, dtype=np.int64)
    month, group = skeleton.month[lo:hi], skeleton.group[lo:hi]
    slot, transit = skeleton.slot[lo:hi], skeleton.transit[lo:hi]
    declared = skeleton.declared_us(rows, rng.random(hi - lo))
    sector, origin, export, route = _flows(rng, static, group)
    consignee = _consignees(rng, static, group, sector, transit, month)
    shipper = _shippers(rng, static, export, month)
    broker = _brokers(rng, static, slot, consignee)
    carrier = _carriers(rng, static, group)
    return ChunkRows(
        lo=lo,
        rows=rows,
        month=month,
        group=group,
        slot=slot,
        transit=transit,
        declared=declared,
        sector=sector,
        origin=origin,
        export=export,
        route=route,
        consignee=consignee,
        shipper=shipper,
        broker=broker,
        carrier=carrier,
    )


def _flows(
    rng: np.random.Generator, static: Static, group: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Sector, origin, export country (a re-export hub now and then) and route of each row."""
    n = len(group)
    sector = draw(rng, static.sector_cdf, group)
    origin = draw(rng, static.origin_cdf, group)
    export = origin.copy()
    reexport = (group != G_LAND_NORTH) & (group != G_LAND_SOUTH) & (rng.random(n) < REEXPORT_SHARE)
    export[reexport] = static.hubs[rng.integers(0, len(static.hubs), size=int(reexport.sum()))]
    export = np.where(export == origin, export, np.where(reexport, export, origin))
    route = np.full(n, ROUTE_INDEX[()], dtype=np.int64)
    for (g, country), table in static.route_tables.items():
        mask = (group == g) & (origin == country)
        if mask.any():
            route[mask] = draw(rng, table[None, :], np.zeros(int(mask.sum()), dtype=np.int64))
    return sector, origin, export, route


def _consignees(
    rng: np.random.Generator,
    static: Static,
    group: IntArray,
    sector: IntArray,
    transit: BoolArray,
    month: IntArray,
) -> IntArray:
    """An importer of the row's sector, a forwarder, a US buyer (northbound) or a transit
    consignee; one already trading in the row's month."""
    n = len(group)
    n_sectors = len(SECTORS)
    code = sector.copy()
    forwarder = rng.random(n) < np.asarray(FORWARDER_SHARE)[group]
    code[forwarder] = n_sectors
    code[group == G_LAND_NORTH] = n_sectors + 1
    dest = draw(rng, static.transit_cdf[None, :], np.zeros(n, dtype=np.int64))
    code = np.where(transit, n_sectors + 2 + dest, code)
    names = [f"sector:{s}" for s in SECTORS] + ["forwarder", "us"]
    names += [f"transit:{d}" for d in static.transit_dests]
    groups = static.roster.consignee_groups
    consignee = np.zeros(n, dtype=np.int64)
    for c in np.unique(code):
        mask = code == c
        consignee[mask] = groups[names[int(c)]].sample(rng.random(int(mask.sum())))
    early = static.consignee_entry_month[consignee] > month
    for c in np.unique(code[early]):
        mask = early & (code == c)
        consignee[mask] = groups[names[int(c)] + ":est"].sample(rng.random(int(mask.sum())))
    return consignee


def _shippers(
    rng: np.random.Generator, static: Static, export: IntArray, month: IntArray
) -> IntArray:
    """A shipper of the export country (of China where the roster has none), one already
    trading in the row's month."""
    groups = static.roster.shipper_groups
    shipper = np.zeros(len(export), dtype=np.int64)
    names = {int(c): f"country:{COUNTRIES[int(c)]}" for c in np.unique(export)}
    names = {c: name if name in groups else "country:CN" for c, name in names.items()}
    for country, name in names.items():
        mask = export == country
        shipper[mask] = groups[name].sample(rng.random(int(mask.sum())))
    early = static.shipper_entry_month[shipper] > month
    for country in np.unique(export[early]):
        mask = early & (export == country)
        shipper[mask] = groups[names[int(country)] + ":est"].sample(rng.random(int(mask.sum())))
    return shipper


def _brokers(
    rng: np.random.Generator, static: Static, slot: IntArray, consignee: IntArray
) -> IntArray:
    """A broker of the port of entry: mostly the consignee's usual one, sometimes another."""
    n = len(slot)
    broker = np.zeros(n, dtype=np.int64)
    jitter = np.where(rng.random(n) < 0.2, rng.integers(0, 1000, size=n), 0)
    port_index = static.slot_port_index[slot]
    for p in np.unique(port_index):
        mask = port_index == p
        brokers = static.roster.port_brokers[PORTS[int(p)]]
        broker[mask] = brokers[(consignee[mask] * 7919 + jitter[mask]) % len(brokers)]
    return broker


def _carriers(rng: np.random.Generator, static: Static, group: IntArray) -> IntArray:
    """A shipping line, truck fleet or airline by popularity; the post for postal items."""
    carrier = np.full(len(group), static.postal_carrier, dtype=np.int64)
    is_sea, is_air = group == G_SEA, group == G_AIR
    is_land = (group == G_LAND_SOUTH) | (group == G_LAND_NORTH)
    carrier[is_sea] = static.sea_carrier_group.sample(rng.random(int(is_sea.sum())))
    carrier[is_land] = static.truck_base + static.truck_group.sample(rng.random(int(is_land.sum())))
    carrier[is_air] = static.air_base + static.air_group.sample(rng.random(int(is_air.sum())))
    return carrier


def licit_goods(
    rng: np.random.Generator, static: Static, rows: IntArray, group: IntArray, sector: IntArray
) -> pl.DataFrame:
    """One to eight goods lines per row, mostly of the row's sector, keyed by ``row``."""
    extra = rng.poisson(np.asarray([LINES_MEAN_EXTRA[g] for g in GROUPS])[group])
    lines = 1 + np.minimum(extra, 7)
    ship = np.repeat(np.arange(len(rows)), lines)
    starts = np.repeat(np.cumsum(lines) - lines, lines)
    line_no = (np.arange(len(ship)) - starts).astype(np.int32)
    g = group[ship]
    line_sector = sector[ship]
    crossed = (rng.random(len(ship)) < 0.15) & (line_sector != SECTORS.index("watched"))
    crossed &= g != G_POSTAL
    line_sector[crossed] = draw(rng, static.cross_sector_cdf, g[crossed])
    product = draw(
        rng, static.product_cdf.reshape(-1, len(PRODUCTS)), g * len(SECTORS) + line_sector
    )

    weight_factor = np.asarray([WEIGHT_FACTOR[x] for x in GROUPS])[g]
    kg = static.product_kg[product] * weight_factor * rng.lognormal(0.0, 0.5, len(ship))
    kg = np.maximum(np.round(kg / np.sqrt(lines[ship]), 2), 0.05)
    qty = np.where(
        static.product_is_kgm[product],
        np.round(kg * 0.96, 2),
        np.where(
            static.product_is_ltr[product],
            np.round(kg / static.product_kpu[product], 1),
            np.maximum(1.0, np.round(kg / static.product_kpu[product])),
        ),
    )
    usd = np.round(kg * static.product_usd[product] * rng.lognormal(0.0, 0.35, len(ship)), 2)
    hs_variant = np.minimum((rng.random(len(ship)) * 20).astype(np.int64) // 7, 2)
    hs_variant = np.where(rng.random(len(ship)) < 0.05, 2, np.minimum(hs_variant, 1))
    cas_p = np.where(static.product_watched[product], 0.7, 0.45)
    has_cas = static.product_has_cas[product] & (rng.random(len(ship)) < cas_p)
    desc = product * DESCRIPTION_VARIANTS + rng.integers(0, DESCRIPTION_VARIANTS, len(ship))
    return pl.DataFrame(
        {
            "row": rows[ship],
            "line_no": line_no,
            "hs_code": static.hs_pool.gather(product * 3 + hs_variant),
            "description": static.desc_pool.gather(desc),
            "cas_numbers": static.cas_pool.gather(product * 2 + has_cas),
            "quantity": qty,
            "unit": static.unit_pool.gather(product),
            "gross_weight_kg": kg,
            "declared_value_usd": usd,
            "substance": static.substance_pool.gather(product),
        }
    )
