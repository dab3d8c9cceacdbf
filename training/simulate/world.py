"""Generate the world chunk by chunk and write the four canonical tables.

The skeleton and the illicit events are planned for the whole window first; then each chunk of
``CHUNK_ROWS`` consecutive shipments is generated with its own seeded generator, vectorised over
numpy arrays and polars gathers from small pools, and appended to one Parquet file per table.
Chunk boundaries depend only on the row count, so the files depend only on the parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import FieldViolation, InvalidInput
from features.tables import TABLES, conform, table_path
from training.simulate import ids, inspection, reference, text
from training.simulate.catalogue import (
    AIR_CARRIERS,
    AIR_VIA,
    GROUP_MODE,
    GROUPS,
    LINES_MEAN_EXTRA,
    ORIGINS,
    POSTAL_CARRIER,
    PRODUCT_SUBSTANCE,
    PRODUCTS,
    REEXPORT_HUBS,
    REEXPORT_SHARE,
    SEA_CARRIERS,
    SEA_ROUTES,
    SECTOR_MIX,
    SECTORS,
    TRANSIT_DESTINATIONS,
    WEIGHT_FACTOR,
)
from training.simulate.entities import Group, Roster, build_roster
from training.simulate.illicit import Event, TimeRules, enforcement_month, plan_events
from training.simulate.pools import COUNTRIES, COUNTRY_INDEX, LAND_SOUTH_ROUTES, ROUTE_INDEX, ROUTES
from training.simulate.skeleton import PORTS, SLOTS, Skeleton, build_skeleton
from training.simulate.types import BoolArray, FloatArray, IntArray

SIMULATOR_VERSION = "1.0.0"
CHUNK_ROWS = 100_000
DESCRIPTION_VARIANTS = 12
G_SEA, G_LAND_SOUTH, G_LAND_NORTH, G_AIR, G_POSTAL = range(len(GROUPS))
FORWARDER_SHARE: tuple[float, ...] = (0.1, 0.05, 0.0, 0.15, 0.3)
"""assumption: share of shipments per flow group consolidated by a freight forwarder."""
NORTH_ONLY = frozenset({"avocado", "tomato", "peppers", "berries", "beer"})
SOUTH_ONLY = frozenset({"corn", "pork"})
NO_AIR = frozenset(
    {"steelcoil", "pe", "pet", "corn", "cars", "naoh", "caco3", "cacl2", "tyres", "furniture"}
)
VESSELS_PER_CARRIER = 6
FLIGHTS_PER_AIRLINE = 12
WRITE_OPTIONS: Mapping[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
}


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_world` wrote."""

    out_dir: Path
    paths: Mapping[str, Path]
    rows: Mapping[str, int]
    illicit: int
    inspected: int
    manifest: Path


def _cdf(probs: FloatArray) -> FloatArray:
    cdf = np.cumsum(probs, axis=-1)
    return cdf / cdf[..., -1:]


def _draw(rng: np.random.Generator, table: FloatArray, keys: IntArray) -> IntArray:
    """One categorical draw per row from row ``keys[i]`` of a table of cumulative distributions.

    Loops over the distinct keys (a handful) rather than materialising one distribution per row,
    which keeps memory linear in the chunk.
    """
    u = rng.random(len(keys))
    drawn = np.zeros(len(keys), dtype=np.int64)
    last = table.shape[1] - 1
    for key in np.unique(keys):
        mask = keys == key
        drawn[mask] = np.minimum(np.searchsorted(table[int(key)], u[mask], side="right"), last)
    return drawn


@dataclass
class Static:
    """Pools and lookup tables that every chunk gathers from."""

    rng: np.random.Generator
    roster: Roster

    def __post_init__(self) -> None:
        rng = self.rng
        n_products = len(PRODUCTS)
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
                for d in text.variants(rng, p.en, p.es, DESCRIPTION_VARIANTS, p.unit == "KGM")
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

        self.sector_cdf = _cdf(np.array([SECTOR_MIX[g] for g in GROUPS]))
        cross = np.array([SECTOR_MIX[g] for g in GROUPS])
        cross[:, SECTORS.index("watched")] = 0.0
        self.cross_sector_cdf = _cdf(cross)
        weights = np.zeros((len(GROUPS), len(SECTORS), n_products))
        for g, group in enumerate(GROUPS):
            for i, p in enumerate(PRODUCTS):
                allowed = not (
                    (p.key in NORTH_ONLY and group != "land_north")
                    or (p.key in SOUTH_ONLY and group != "land_south")
                    or (p.key in NO_AIR and group in ("air", "postal"))
                )
                weights[g, SECTORS.index(p.sector), i] = 1.0 if allowed else 0.0
        empty = weights.sum(axis=2) == 0
        weights[empty] = 1.0 / n_products
        self.product_cdf = _cdf(weights)

        self.origin_cdf = np.zeros((len(GROUPS), len(COUNTRIES)))
        for g, group in enumerate(GROUPS):
            for country, share in ORIGINS[group].items():
                self.origin_cdf[g, COUNTRY_INDEX[country]] = share
        self.origin_cdf = _cdf(self.origin_cdf)
        self.hubs = np.array([COUNTRY_INDEX[h] for h in REEXPORT_HUBS])
        dests = sorted(TRANSIT_DESTINATIONS)
        self.transit_dests = dests
        self.transit_cdf = _cdf(np.array([TRANSIT_DESTINATIONS[d] for d in dests]))

        self.route_tables: dict[tuple[int, int], FloatArray] = {}
        for g, table in ((G_SEA, SEA_ROUTES), (G_AIR, AIR_VIA), (G_LAND_SOUTH, LAND_SOUTH_ROUTES)):
            for country, options in table.items():
                probs = np.zeros(len(ROUTES))
                for route, w in options:
                    probs[ROUTE_INDEX[route]] += w
                self.route_tables[(g, COUNTRY_INDEX[country])] = _cdf(probs)
        self.route_pool = pl.Series([list(r) for r in ROUTES], dtype=pl.List(pl.String()))
        self.country_pool = pl.Series(COUNTRIES, dtype=pl.String())
        self.port_pool = pl.Series([s.port for s in SLOTS], dtype=pl.String())
        self.mode_pool = pl.Series(list(GROUP_MODE), dtype=pl.String())
        self.slot_port_index = np.array([PORTS.index(s.port) for s in SLOTS])

        roster = self.roster
        carriers = [c for c, _ in SEA_CARRIERS] + roster.truck_carriers
        carriers += [c for c, _ in AIR_CARRIERS] + [POSTAL_CARRIER]
        self.carrier_pool = pl.Series(carriers, dtype=pl.String())
        self.truck_base = len(SEA_CARRIERS)
        self.air_base = self.truck_base + len(roster.truck_carriers)
        self.postal_carrier = len(carriers) - 1
        conveyances: list[str] = []
        offsets: list[int] = []
        counts: list[int] = []
        for _ in SEA_CARRIERS:
            offsets.append(len(conveyances))
            conveyances += [ids.imo_number(rng) for _ in range(VESSELS_PER_CARRIER)]
            counts.append(VESSELS_PER_CARRIER)
        for plates in roster.truck_plates:
            offsets.append(len(conveyances))
            conveyances += plates
            counts.append(len(plates))
        for _, code in AIR_CARRIERS:
            offsets.append(len(conveyances))
            numbers = rng.choice(np.arange(100, 9999), size=FLIGHTS_PER_AIRLINE, replace=False)
            conveyances += [f"{code}{int(n)}" for n in numbers]
            counts.append(FLIGHTS_PER_AIRLINE)
        offsets.append(len(conveyances))
        conveyances.append("")
        counts.append(1)
        self.conveyance_pool = pl.Series(conveyances, dtype=pl.String())
        self.conveyance_offset = np.array(offsets, dtype=np.int64)
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
        self.entry_month = np.array(self.roster.consignee_entry_month, dtype=np.int64)


@dataclass
class Chunk:
    shipments: pl.DataFrame
    goods: pl.DataFrame
    inspections: pl.DataFrame
    truth: pl.DataFrame


def shipment_ids(rows: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit("SHP-"), rows.cast(pl.String).str.zfill(9))


def generate_chunk(
    rng: np.random.Generator,
    static: Static,
    skeleton: Skeleton,
    rules: TimeRules,
    lo: int,
    hi: int,
    events: list[Event],
) -> Chunk:
    """Shipments ``lo`` to ``hi - 1``: licit by default, taken over where an event says so."""
    roster = static.roster
    rows = np.arange(lo, hi, dtype=np.int64)
    n = hi - lo
    month = skeleton.month[lo:hi]
    group = skeleton.group[lo:hi]
    slot = skeleton.slot[lo:hi]
    transit = skeleton.transit[lo:hi]
    declared = skeleton.declared_us(rows, rng.random(n))

    sector = _draw(rng, static.sector_cdf, group)
    origin = _draw(rng, static.origin_cdf, group)
    export = origin.copy()
    reexport = (group != G_LAND_NORTH) & (group != G_LAND_SOUTH) & (rng.random(n) < REEXPORT_SHARE)
    export[reexport] = static.hubs[rng.integers(0, len(static.hubs), size=int(reexport.sum()))]
    export = np.where(export == origin, export, np.where(reexport, export, origin))

    route = np.full(n, ROUTE_INDEX[()], dtype=np.int64)
    for (g, country), cdf in static.route_tables.items():
        mask = (group == g) & (origin == country)
        if mask.any():
            route[mask] = _draw(rng, cdf[None, :], np.zeros(int(mask.sum()), dtype=np.int64))

    consignee = _licit_consignees(rng, static, group, sector, transit, month)
    shipper = np.zeros(n, dtype=np.int64)
    for country in np.unique(export):
        mask = export == country
        key = f"country:{COUNTRIES[int(country)]}"
        pool = roster.shipper_groups.get(key, roster.shipper_groups["country:CN"])
        shipper[mask] = pool.sample(rng.random(int(mask.sum())))
    broker = np.zeros(n, dtype=np.int64)
    jitter = np.where(rng.random(n) < 0.2, rng.integers(0, 1000, size=n), 0)
    port_index = static.slot_port_index[slot]
    for p in np.unique(port_index):
        mask = port_index == p
        brokers = roster.port_brokers[PORTS[int(p)]]
        broker[mask] = brokers[(consignee[mask] * 7919 + jitter[mask]) % len(brokers)]

    carrier = np.full(n, static.postal_carrier, dtype=np.int64)
    is_sea, is_air = group == G_SEA, group == G_AIR
    is_land = (group == G_LAND_SOUTH) | (group == G_LAND_NORTH)
    carrier[is_sea] = static.sea_carrier_group.sample(rng.random(int(is_sea.sum())))
    carrier[is_land] = static.truck_base + static.truck_group.sample(rng.random(int(is_land.sum())))
    carrier[is_air] = static.air_base + static.air_group.sample(rng.random(int(is_air.sum())))

    by_row = {e.row: e for e in events}
    for event in events:
        i = event.row - lo
        if event.origin is not None:
            origin[i] = event.origin
        if event.export is not None:
            export[i] = event.export
        if event.route is not None:
            route[i] = event.route
        if event.consignee is not None:
            consignee[i] = event.consignee
        if event.shipper is not None:
            shipper[i] = event.shipper
        if event.broker is not None:
            broker[i] = event.broker
        if event.truck_carrier is not None:
            carrier[i] = static.truck_base + event.truck_carrier

    week = (declared // (7 * 86_400_000_000)).astype(np.int64)
    pick = np.where(
        is_sea,
        (week + slot * 3) % static.conveyance_count[carrier],
        np.where(
            is_air,
            (origin * 7 + slot) % static.conveyance_count[carrier],
            rng.integers(0, 1 << 30, size=n) % static.conveyance_count[carrier],
        ),
    )
    conveyance = static.conveyance_pool.gather(static.conveyance_offset[carrier] + pick)
    is_postal = group == G_POSTAL
    conveyance = pl.select(
        pl.when(pl.lit(pl.Series(is_postal)))
        .then(ids.s10_ids(rng, static.country_pool.gather(export)))
        .otherwise(conveyance)
    ).to_series()
    owner = np.where(is_sea, carrier, 0)
    container = ids.container_ids(
        static.owner_codes, owner, rng.integers(0, 1_000_000, size=n, dtype=np.int64)
    )
    container = pl.select(
        pl.when(pl.lit(pl.Series(is_sea))).then(container).otherwise(pl.lit(""))
    ).to_series()

    shipments = pl.DataFrame(
        {
            "row": rows,
            "declared_at": declared,
            "port_of_entry": static.port_pool.gather(slot),
            "mode": static.mode_pool.gather(group),
            "origin_country": static.country_pool.gather(origin),
            "export_country": static.country_pool.gather(export),
            "transshipment_ports": static.route_pool.gather(route),
            "carrier": static.carrier_pool.gather(carrier),
            "conveyance_id": conveyance,
            "container_id": container,
        }
    )
    shipments = pl.concat(
        [
            shipments,
            static.shipper_frame[shipper],
            static.consignee_frame[consignee],
            pl.DataFrame({"broker_id": static.broker_pool.gather(broker)}),
        ],
        how="horizontal",
    ).with_columns(
        shipment_id=shipment_ids(pl.col("row")),
        declared_at=pl.from_epoch(pl.col("declared_at"), time_unit="us").dt.replace_time_zone(
            "UTC"
        ),
    )

    goods = _licit_goods(rng, static, rows, group, sector)
    replaced = np.array(sorted(e.row for e in events if e.goods is not None), dtype=np.int64)
    if len(replaced):
        goods = goods.filter(~pl.col("row").is_in(pl.Series(replaced).implode()))
        event_goods = _event_goods([e for e in events if e.goods is not None])
        goods = pl.concat([goods, event_goods], how="vertical_relaxed").sort(["row", "line_no"])
    truth = _truth(goods, rows, by_row)
    inspections = _inspect(rng, shipments, goods, truth, group, slot, month, rules, by_row, lo)

    goods = goods.with_columns(shipment_id=shipment_ids(pl.col("row")))
    truth = truth.with_columns(shipment_id=shipment_ids(pl.col("row")))
    inspections = inspections.with_columns(shipment_id=shipment_ids(pl.col("row")))
    return Chunk(
        shipments=conform(shipments, "shipments"),
        goods=conform(goods, "goods"),
        inspections=conform(inspections, "inspections"),
        truth=conform(truth, "truth"),
    )


def _licit_consignees(
    rng: np.random.Generator,
    static: Static,
    group: IntArray,
    sector: IntArray,
    transit: BoolArray,
    month: IntArray,
) -> IntArray:
    n = len(group)
    n_sectors = len(SECTORS)
    code = sector.copy()
    forwarder = rng.random(n) < np.asarray(FORWARDER_SHARE)[group]
    code[forwarder] = n_sectors
    code[group == G_LAND_NORTH] = n_sectors + 1
    dest = _draw(rng, static.transit_cdf[None, :], np.zeros(n, dtype=np.int64))
    code = np.where(transit, n_sectors + 2 + dest, code)
    names = [f"sector:{s}" for s in SECTORS] + ["forwarder", "us"]
    names += [f"transit:{d}" for d in static.transit_dests]
    groups = static.roster.consignee_groups
    consignee = np.zeros(n, dtype=np.int64)
    for c in np.unique(code):
        mask = code == c
        consignee[mask] = groups[names[int(c)]].sample(rng.random(int(mask.sum())))
    early = static.entry_month[consignee] > month
    for c in np.unique(code[early]):
        mask = early & (code == c)
        consignee[mask] = groups[names[int(c)] + ":est"].sample(rng.random(int(mask.sum())))
    return consignee


def _licit_goods(
    rng: np.random.Generator, static: Static, rows: IntArray, group: IntArray, sector: IntArray
) -> pl.DataFrame:
    extra = rng.poisson(np.asarray([LINES_MEAN_EXTRA[g] for g in GROUPS])[group])
    lines = 1 + np.minimum(extra, 7)
    ship = np.repeat(np.arange(len(rows)), lines)
    starts = np.repeat(np.cumsum(lines) - lines, lines)
    line_no = (np.arange(len(ship)) - starts).astype(np.int32)
    g = group[ship]
    line_sector = sector[ship]
    crossed = (rng.random(len(ship)) < 0.15) & (line_sector != SECTORS.index("watched"))
    crossed &= g != G_POSTAL
    line_sector[crossed] = _draw(rng, static.cross_sector_cdf, g[crossed])
    product = _draw(
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


def _event_goods(events: list[Event]) -> pl.DataFrame:
    records = [
        {
            "row": e.row,
            "line_no": k,
            "hs_code": line.hs_code,
            "description": line.description,
            "cas_numbers": list(line.cas_numbers),
            "quantity": float(line.quantity),
            "unit": line.unit,
            "gross_weight_kg": float(line.gross_weight_kg),
            "declared_value_usd": float(line.declared_value_usd),
            "substance": None,
        }
        for e in events
        for k, line in enumerate(e.goods or [])
    ]
    return pl.DataFrame(
        records,
        schema={
            "row": pl.Int64(),
            "line_no": pl.Int32(),
            "hs_code": pl.String(),
            "description": pl.String(),
            "cas_numbers": pl.List(pl.String()),
            "quantity": pl.Float64(),
            "unit": pl.String(),
            "gross_weight_kg": pl.Float64(),
            "declared_value_usd": pl.Float64(),
            "substance": pl.String(),
        },
    )


def _truth(goods: pl.DataFrame, rows: IntArray, by_row: dict[int, Event]) -> pl.DataFrame:
    """Licit rows carry the watched chemicals of their licensed trade; events their own."""
    carried = (
        goods.filter(pl.col("substance").is_not_null())
        .group_by("row", maintain_order=True)
        .agg(pl.col("substance").unique().sort().alias("carried"))
    )
    event_rows = sorted(by_row)
    events = pl.DataFrame(
        {
            "row": event_rows,
            "pattern": [by_row[r].pattern for r in event_rows],
            "event_substances": [sorted(by_row[r].substances) for r in event_rows],
        },
        schema={
            "row": pl.Int64(),
            "pattern": pl.String(),
            "event_substances": pl.List(pl.String()),
        },
    )
    return (
        pl.DataFrame({"row": rows})
        .join(carried, on="row", how="left", maintain_order="left")
        .join(events, on="row", how="left", maintain_order="left")
        .select(
            "row",
            illicit=pl.col("pattern").is_not_null(),
            pattern=pl.col("pattern"),
            substances=pl.coalesce(
                "event_substances", "carried", pl.lit([], dtype=pl.List(pl.String()))
            ),
        )
    )


def _inspect(
    rng: np.random.Generator,
    shipments: pl.DataFrame,
    goods: pl.DataFrame,
    truth: pl.DataFrame,
    group: IntArray,
    slot: IntArray,
    month: IntArray,
    rules: TimeRules,
    by_row: dict[int, Event],
    lo: int,
) -> pl.DataFrame:
    n = len(group)
    flags = goods.select(
        pl.col("row") - lo,
        chem=pl.col("hs_code").str.slice(0, 2).is_in(["28", "29"]),
        watched=pl.col("hs_code").str.slice(0, 6).is_in(list(inspection.LEGACY_WATCHED_HS6)),
        press=pl.col("hs_code").str.slice(0, 6).is_in(list(inspection.PRESS_HS6)),
    )
    at = flags["row"].to_numpy()

    def any_line(column: str) -> BoolArray:
        return np.bincount(at, weights=flags[column].to_numpy().astype(np.float64), minlength=n) > 0

    asia = (
        shipments.select(
            pl.col("origin_country").is_in(list(inspection.ASIA))
            | pl.col("export_country").is_in(list(inspection.ASIA))
        )
        .to_series()
        .to_numpy()
    )
    is_zlo = np.array([s.port == "MXZLO" for s in SLOTS])[slot]
    q, propensity = inspection.selection_probability(
        group,
        is_zlo,
        month >= rules.enforcement_month,
        any_line("chem") & asia,
        any_line("press") & asia,
        any_line("watched"),
    )
    random_pick = rng.random(n) < inspection.RANDOM_SHARE
    rule_pick = rng.random(n) < q
    inspected = random_pick | rule_pick
    detected_u = rng.random(n)
    delay_lo = np.asarray([d[0] for d in inspection.INSPECT_DELAY_HOURS])[group]
    delay_hi = np.asarray([d[1] for d in inspection.INSPECT_DELAY_HOURS])[group]
    inspect_delay = rng.uniform(delay_lo, delay_hi) * 3_600_000_000
    report_neg = rng.uniform(*inspection.REPORT_DELAY_DAYS_NEGATIVE, size=n)
    report_pos = rng.uniform(*inspection.REPORT_DELAY_DAYS_POSITIVE, size=n)

    detection = np.zeros(n)
    for row, event in by_row.items():
        detection[row - lo] = event.detection
    positive = inspected & (detected_u < detection)
    report_delay = np.where(positive, report_pos, report_neg) * 86_400_000_000

    idx = np.flatnonzero(inspected)
    declared = shipments["declared_at"].dt.epoch("us").to_numpy()[idx]
    inspected_at = declared + inspect_delay[idx].astype(np.int64)
    reported_at = inspected_at + report_delay[idx].astype(np.int64)
    found = truth["substances"].gather(idx)
    return (
        pl.DataFrame(
            {
                "row": idx + lo,
                "inspected_at": inspected_at,
                "reported_at": reported_at,
                "positive": positive[idx],
                "substances": found,
                "selection_probability": propensity[idx],
                "random_selection": random_pick[idx],
            }
        )
        .with_columns(
            pl.from_epoch(c, time_unit="us").dt.replace_time_zone("UTC")
            for c in ("inspected_at", "reported_at")
        )
        .with_columns(
            substances=pl.when(pl.col("positive"))
            .then(pl.col("substances"))
            .otherwise(pl.lit([], dtype=pl.List(pl.String())))
        )
    )


def _arrow_schema(table: str) -> pa.Schema:
    return pl.DataFrame(schema=TABLES[table]).to_arrow().schema


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_parameters(shipments: int, months: int) -> None:
    violations = []
    if shipments < 1:
        violations.append(FieldViolation("shipments", f"must be at least 1, got {shipments}"))
    if months < 1:
        violations.append(FieldViolation("months", f"must be at least 1, got {months}"))
    if violations:
        raise InvalidInput("invalid simulation parameters", violations)


def tactic_shifts(rules: TimeRules) -> list[dict[str, str]]:
    """The dated changes of tactics inside the window, for evaluation before and after them."""
    first, end = rules.month_starts[0], rules.month_starts[-1]
    candidates = [
        (
            "4-piperidone scheduled in Table I; designer substitutes rise",
            reference.SCHEDULING_4_PIPERIDONE,
        ),
        ("Manzanillo inspections intensify", rules.month_starts[rules.enforcement_month]),
        (
            "illicit sea traffic displaced to Lazaro Cardenas",
            rules.month_starts[min(rules.enforcement_month + 2, rules.months)],
        ),
    ]
    return [
        {"name": name, "date": when.isoformat()}
        for name, when in sorted(candidates, key=lambda c: c[1])
        if first < when < end
    ]


def simulate_world(
    out_dir: Path,
    *,
    shipments: int = 20_000,
    months: int = 24,
    start: date = date(2024, 1, 1),
    seed: int = 7,
    progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
) -> SimulationSummary:
    """Simulate ``months`` months of inbound cargo from ``start`` and write the four tables.

    The same arguments always give byte-identical files. ``on_chunk(done, total)`` is called
    after each chunk (shipments done so far); with ``progress`` and no callback a rich progress
    bar is shown on stderr instead.
    """
    validate_parameters(shipments, months)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    seeds = np.random.SeedSequence(seed)
    plan_seed, roster_seed, static_seed, chunk_seed = seeds.spawn(4)
    skeleton = build_skeleton(np.random.default_rng(plan_seed), shipments, months, start)
    roster = build_roster(np.random.default_rng(roster_seed), shipments, months, PORTS, start.year)
    static = Static(np.random.default_rng(static_seed), roster)
    rules = TimeRules(skeleton.month_starts, enforcement_month(months))
    events = plan_events(np.random.default_rng(plan_seed.spawn(1)[0]), skeleton, roster, rules)
    static.freeze()
    event_rows = np.array([e.row for e in events], dtype=np.int64)

    paths = {table: table_path(out_dir, table) for table in TABLES}
    writers = {
        table: pq.ParquetWriter(paths[table], _arrow_schema(table), **WRITE_OPTIONS)
        for table in TABLES
    }
    rows = dict.fromkeys(TABLES, 0)
    illicit = inspected = positives = 0
    chunk_seeds = chunk_seed.spawn((shipments + CHUNK_ROWS - 1) // CHUNK_ROWS)
    report = on_chunk
    bar = None
    if report is None and progress:
        from training.simulate.progress import chunk_progress

        bar = chunk_progress(shipments)
        report = bar.update
    try:
        for index, lo in enumerate(range(0, shipments, CHUNK_ROWS)):
            hi = min(shipments, lo + CHUNK_ROWS)
            a, b = np.searchsorted(event_rows, [lo, hi])
            chunk = generate_chunk(
                np.random.default_rng(chunk_seeds[index]),
                static,
                skeleton,
                rules,
                lo,
                hi,
                events[int(a) : int(b)],
            )
            for table in TABLES:
                frame: pl.DataFrame = getattr(chunk, table)
                if frame.height:
                    writers[table].write_table(
                        frame.to_arrow().cast(_arrow_schema(table)), row_group_size=CHUNK_ROWS * 8
                    )
                rows[table] += frame.height
            illicit += int(chunk.truth["illicit"].sum())
            inspected += chunk.inspections.height
            positives += int(chunk.inspections["positive"].sum())
            if report is not None:
                report(hi, shipments)
    finally:
        for writer in writers.values():
            writer.close()
        if bar is not None:
            bar.close()

    manifest = out_dir / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "simulator_version": SIMULATOR_VERSION,
                "parameters": {
                    "shipments": shipments,
                    "months": months,
                    "start": start.isoformat(),
                    "seed": seed,
                    "chunk_rows": CHUNK_ROWS,
                    "enforcement_month": rules.enforcement_month,
                },
                "tactic_shifts": tactic_shifts(rules),
                "rows": rows,
                "illicit": illicit,
                "inspected": inspected,
                "positive_inspections": positives,
                "files": {t: {"name": p.name, "sha256": _sha256(p)} for t, p in paths.items()},
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )
    return SimulationSummary(
        out_dir=out_dir,
        paths=paths,
        rows=rows,
        illicit=illicit,
        inspected=inspected,
        manifest=manifest,
    )
