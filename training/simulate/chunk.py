"""One chunk of the world: consecutive skeleton rows turned into the four canonical tables.

:func:`generate_chunk` runs the stages in a fixed order, all drawing from the chunk's own
generator: the licit rows (:func:`training.simulate.licit.licit_rows`), the illicit events taking
some of them over, conveyances and containers, the shipments table, the goods lines (licit, or
the event's own), the ground truth, and the legacy policy's inspections
(:func:`training.simulate.inspection.inspect`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.tables import GOODS_SCHEMA, conform
from training.simulate import ids
from training.simulate.catalogue import G_AIR, G_LAND_NORTH, G_POSTAL, G_SEA
from training.simulate.entities import BEFORE_WINDOW
from training.simulate.illicit import Event, TimeRules
from training.simulate.inspection import NEW_TRADER_MONTHS, inspect
from training.simulate.licit import ChunkRows, licit_goods, licit_rows
from training.simulate.skeleton import Skeleton
from training.simulate.static import Static
from training.simulate.types import BoolArray, IntArray

EVENT_OVERRIDES: tuple[str, ...] = ("origin", "export", "route", "consignee", "shipper", "broker")
"""Row values an :class:`Event` sets as indices into the same pools; ``None`` keeps the licit."""
ROW_GOODS_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.Int64(),
    **{name: dtype for name, dtype in GOODS_SCHEMA.items() if name != "shipment_id"},
    "substance": pl.String(),
}
"""Goods lines while a chunk is generated: keyed by row, with the watched substance carried."""


@dataclass
class Chunk:
    """The four canonical tables of one chunk, conformed to :data:`features.tables.TABLES`."""

    shipments: pl.DataFrame
    goods: pl.DataFrame
    inspections: pl.DataFrame
    truth: pl.DataFrame


def shipment_ids(rows: pl.Expr) -> pl.Expr:
    """``SHP-`` and the row number in nine digits."""
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
    rows = licit_rows(rng, static, skeleton, lo, hi)
    apply_events(rows, events, static)
    shipments = _shipments(static, rows, *_conveyances(rng, static, rows))
    goods = _goods(rng, static, rows, events)
    by_row = {e.row: e for e in events}
    truth = _truth(goods, rows.rows, by_row)
    inspections = inspect(
        rng,
        shipments,
        goods,
        truth,
        rows.group,
        rows.slot,
        rows.month,
        rules,
        by_row,
        lo,
        new_trader(static, rows),
    )
    tables = {"shipments": shipments, "goods": goods, "inspections": inspections, "truth": truth}
    return Chunk(
        **{
            name: conform(frame.with_columns(shipment_id=shipment_ids(pl.col("row"))), name)
            for name, frame in tables.items()
        }
    )


def new_trader(static: Static, rows: ChunkRows) -> BoolArray:
    """Northbound rows whose US consignee or Mexican exporter started trading inside the window
    less than :data:`~training.simulate.inspection.NEW_TRADER_MONTHS` months ago (the legacy
    policy's new-trader rule; licit new entrants and shells alike)."""

    def new(entry: IntArray) -> BoolArray:
        recent: BoolArray = (entry != BEFORE_WINDOW) & (rows.month - entry < NEW_TRADER_MONTHS)
        return recent

    north: BoolArray = rows.group == G_LAND_NORTH
    consignee = new(static.consignee_entry_month[rows.consignee])
    shipper = new(static.shipper_entry_month[rows.shipper])
    return north & (consignee | shipper)


def apply_events(rows: ChunkRows, events: list[Event], static: Static) -> None:
    """Overwrite, in place, what each event sets on the row it takes over."""
    for event in events:
        i = event.row - rows.lo
        for name in EVENT_OVERRIDES:
            value = getattr(event, name)
            if value is not None:
                getattr(rows, name)[i] = value
        if event.truck_carrier is not None:
            rows.carrier[i] = static.truck_base + event.truck_carrier


def _conveyances(
    rng: np.random.Generator, static: Static, rows: ChunkRows
) -> tuple[pl.Series, pl.Series]:
    """Conveyance and container of each row.

    A sea row sails on its carrier's vessel of the week for its port, an air row on the flight
    its airline flies from the origin, a truck is any of the fleet's; postal items carry an S10
    id instead. Only sea rows have a container.
    """
    n = len(rows.rows)
    group, carrier, slot = rows.group, rows.carrier, rows.slot
    is_sea, is_air = group == G_SEA, group == G_AIR
    week = (rows.declared // (7 * 86_400_000_000)).astype(np.int64)
    pick = np.where(
        is_sea,
        (week + slot * 3) % static.conveyance_count[carrier],
        np.where(
            is_air,
            (rows.origin * 7 + slot) % static.conveyance_count[carrier],
            rng.integers(0, 1 << 30, size=n) % static.conveyance_count[carrier],
        ),
    )
    conveyance = static.conveyance_pool.gather(static.conveyance_offset[carrier] + pick)
    conveyance = pl.select(
        pl.when(pl.lit(pl.Series(group == G_POSTAL)))
        .then(ids.s10_ids(rng, static.country_pool.gather(rows.export)))
        .otherwise(conveyance)
    ).to_series()
    owner = np.where(is_sea, carrier, 0)
    container = ids.container_ids(
        static.owner_codes, owner, rng.integers(0, 1_000_000, size=n, dtype=np.int64)
    )
    container = pl.select(
        pl.when(pl.lit(pl.Series(is_sea))).then(container).otherwise(pl.lit(""))
    ).to_series()
    return conveyance, container


def _shipments(
    static: Static, rows: ChunkRows, conveyance: pl.Series, container: pl.Series
) -> pl.DataFrame:
    """The shipments of the chunk, keyed by ``row``, with their parties gathered by index."""
    shipments = pl.DataFrame(
        {
            "row": rows.rows,
            "declared_at": rows.declared,
            "port_of_entry": static.port_pool.gather(rows.slot),
            "mode": static.mode_pool.gather(rows.group),
            "origin_country": static.country_pool.gather(rows.origin),
            "export_country": static.country_pool.gather(rows.export),
            "transshipment_ports": static.route_pool.gather(rows.route),
            "carrier": static.carrier_pool.gather(rows.carrier),
            "conveyance_id": conveyance,
            "container_id": container,
        }
    )
    return pl.concat(
        [
            shipments,
            static.shipper_frame[rows.shipper],
            static.consignee_frame[rows.consignee],
            pl.DataFrame({"broker_id": static.broker_pool.gather(rows.broker)}),
        ],
        how="horizontal",
    ).with_columns(
        declared_at=pl.from_epoch(pl.col("declared_at"), time_unit="us").dt.replace_time_zone(
            "UTC"
        ),
    )


def _goods(
    rng: np.random.Generator, static: Static, rows: ChunkRows, events: list[Event]
) -> pl.DataFrame:
    """Licit goods lines for every row; an event that declares its own goods replaces them."""
    goods = licit_goods(rng, static, rows.rows, rows.group, rows.sector)
    declaring = [e for e in events if e.goods is not None]
    replaced = np.array(sorted(e.row for e in declaring), dtype=np.int64)
    if len(replaced):
        goods = goods.filter(~pl.col("row").is_in(pl.Series(replaced).implode()))
        goods = pl.concat([goods, _event_goods(declaring)], how="vertical_relaxed")
        goods = goods.sort(["row", "line_no"])
    return goods


def _event_goods(events: list[Event]) -> pl.DataFrame:
    """The goods lines events declare, in :data:`ROW_GOODS_SCHEMA` (no licit substance)."""
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
    return pl.DataFrame(records, schema=ROW_GOODS_SCHEMA)


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
