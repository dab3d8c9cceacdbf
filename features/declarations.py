"""The input layout of every feature kernel: shipments column-wise, goods lines flat beside them.

:class:`Declarations` holds one entry per shipment and the goods lines of all of them in one flat
run (the lines of shipment ``i`` are ``line_start[i]:line_start[i + 1]``, in line order), each line
with its watchlist :class:`~features.watchlist.LineMatch`. Both paths lay their shipments out
this way and run the same kernels on it (:mod:`features.stage_one`):

* in bulk, :meth:`Declarations.from_tables` reads canonical tables (a million shipments at once);
* live, :meth:`Declarations.from_shipments` reads the validated records of one batch, with no
  polars plan in between: a one-row frame costs milliseconds of planning, the kernels
  microseconds.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import polars as pl

from features.history import to_micros
from features.records import Shipment
from features.watchlist import LineMatch, Watchlist

Array: TypeAlias = np.ndarray
Table: TypeAlias = pl.DataFrame | pl.LazyFrame
# polars' default engine choice costs ~4x on small frames; whole tables fit in memory here.
ENGINE: Literal["in-memory"] = "in-memory"


@dataclass(frozen=True)
class Declarations:
    """Shipments as the kernels read them: one entry per shipment, goods lines flat.

    Text fields are lists (``None`` where a table holds null); numbers are numpy arrays
    (``NaN`` where null). ``matches[j]`` is the watchlist's reading of line ``j``.
    """

    shipment_id: list[str]
    declared_at: Array  # int64 µs since the epoch
    port_of_entry: list[str | None]
    mode: list[str | None]
    origin_country: list[str | None]
    export_country: list[str | None]
    consignee_country: list[str | None]
    consignee_tax_id: list[str | None]
    shipper_tax_id: list[str | None]
    transshipment_count: Array  # float64, NaN when the list is null
    shipper_id: list[str | None]
    consignee_id: list[str | None]
    broker_id: list[str | None]
    line_start: Array  # int64, n + 1 offsets into the line columns
    hs_code: list[str | None]
    cas_count: Array  # int64: CAS numbers declared on the line
    gross_weight_kg: Array  # float64
    declared_value_usd: Array  # float64
    matches: list[LineMatch]

    def __len__(self) -> int:
        return len(self.shipment_id)

    def lines_of(self, row: int) -> list[LineMatch]:
        """The watchlist readings of shipment ``row``'s lines, in line order."""
        return self.matches[int(self.line_start[row]) : int(self.line_start[row + 1])]

    @classmethod
    def from_shipments(cls, shipments: Sequence[Shipment], watchlist: Watchlist) -> Declarations:
        """The layout of validated shipment records (the live path)."""
        starts = [0]
        hs: list[str | None] = []
        cas: list[int] = []
        weights: list[float] = []
        values: list[float] = []
        matches: list[LineMatch] = []
        match_line = watchlist.match_line
        for s in shipments:
            for g in s.goods:
                hs.append(g.hs_code)
                cas.append(len(g.cas_numbers))
                weights.append(g.gross_weight_kg)
                values.append(g.declared_value_usd)
                matches.append(match_line(g.hs_code, g.description, g.cas_numbers))
            starts.append(len(hs))
        return cls(
            shipment_id=[s.shipment_id for s in shipments],
            declared_at=np.array([to_micros(s.declared_at) for s in shipments], dtype=np.int64),
            port_of_entry=[s.port_of_entry for s in shipments],
            mode=[s.mode for s in shipments],
            origin_country=[s.origin_country for s in shipments],
            export_country=[s.export_country for s in shipments],
            consignee_country=[s.consignee.country for s in shipments],
            consignee_tax_id=[s.consignee.tax_id for s in shipments],
            shipper_tax_id=[s.shipper.tax_id for s in shipments],
            transshipment_count=np.array(
                [len(s.transshipment_ports) for s in shipments], dtype=np.float64
            ),
            shipper_id=[s.shipper.id for s in shipments],
            consignee_id=[s.consignee.id for s in shipments],
            broker_id=[s.broker_id for s in shipments],
            line_start=np.array(starts, dtype=np.int64),
            hs_code=hs,
            cas_count=np.array(cas, dtype=np.int64),
            gross_weight_kg=np.array(weights, dtype=np.float64),
            declared_value_usd=np.array(values, dtype=np.float64),
            matches=matches,
        )

    @classmethod
    def from_tables(cls, shipments: Table, goods: Table, watchlist: Watchlist) -> Declarations:
        """The layout of canonical tables (the bulk path), shipments in their table order.

        Goods lines of a shipment the table does not hold are left out; lines are in
        ``line_no`` order.
        """
        ships = shipments.lazy().collect(engine=ENGINE)
        rows = ships.select("shipment_id").with_row_index("_row")
        lines = (
            goods.lazy()
            .select(
                "shipment_id",
                "line_no",
                "hs_code",
                "description",
                "cas_numbers",
                "gross_weight_kg",
                "declared_value_usd",
            )
            .join(rows.lazy(), on="shipment_id", how="inner")
            .sort("_row", "line_no")
            .collect(engine=ENGINE)
        )
        owner = lines["_row"].to_numpy().astype(np.int64)
        hs = lines["hs_code"].to_list()
        descriptions = lines["description"].to_list()
        cas_lists = lines["cas_numbers"].to_list()
        match_line = watchlist.match_line
        matches = [
            match_line(h or "", d or "", tuple(c) if c else ())
            for h, d, c in zip(hs, descriptions, cas_lists, strict=True)
        ]
        return cls(
            shipment_id=ships["shipment_id"].to_list(),
            declared_at=ships["declared_at"].dt.timestamp("us").to_numpy().astype(np.int64),
            port_of_entry=_shared(ships["port_of_entry"]),
            mode=_shared(ships["mode"]),
            origin_country=_shared(ships["origin_country"]),
            export_country=_shared(ships["export_country"]),
            consignee_country=_shared(ships["consignee_country"]),
            consignee_tax_id=ships["consignee_tax_id"].to_list(),
            shipper_tax_id=ships["shipper_tax_id"].to_list(),
            transshipment_count=float_column(ships["transshipment_ports"].list.len()),
            shipper_id=_shared(ships["shipper_id"]),
            consignee_id=_shared(ships["consignee_id"]),
            broker_id=_shared(ships["broker_id"]),
            line_start=np.searchsorted(owner, np.arange(ships.height + 1), side="left").astype(
                np.int64
            ),
            hs_code=hs,
            cas_count=float_column(lines["cas_numbers"].list.len()).astype(np.int64),
            gross_weight_kg=float_column(lines["gross_weight_kg"]),
            declared_value_usd=float_column(lines["declared_value_usd"]),
            matches=matches,
        )


def _shared(series: pl.Series) -> list[str | None]:
    """A text column as a list in which equal values are one object: entity keys repeat
    across a table, and a million copies of a shipper id would cost a million strings. Each
    distinct value is made (and interned) once; rows take it by their code."""
    distinct = series.drop_nulls().unique().to_list()
    codes = series.cast(pl.Enum(distinct)).to_physical().fill_null(len(distinct)).to_numpy()
    values = np.array([*map(sys.intern, distinct), None], dtype=object)
    return values[codes].tolist()  # type: ignore[no-any-return]


def float_column(series: pl.Series) -> Array:
    """A numeric column as float64, null as NaN."""
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
