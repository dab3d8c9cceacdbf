"""Canonical tables: the one shape of shipment data that every part of Centinela reads.

The simulator writes them, ``train``/``evaluate`` read them, the ``--mapping`` path converts an
analyst's own table into them, the ledger exports into them, and the live path turns one
request into a one-row version of them so the same feature code runs on both.

A data directory holds one Parquet file per table, named ``<table>.parquet``:

* ``shipments``   one row per shipment (parties flattened into columns)
* ``goods``       one row per goods line; ``line_no`` is the 0-based index in the shipment
* ``inspections`` one row per inspected shipment, with its outcome; only inspected shipments
                  have a row. ``reported_at`` is when the outcome became known, which is what
                  point-in-time features may use.
* ``truth``       ground truth for every shipment. Evaluation only: nothing that trains or
                  scores may read it.

A shipment id is one shipment: :func:`load_tables` folds repeated ids (a ledger export of a
shipment scored twice, an appended table) to one row each before anything counts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from features.errors import DataError

UTC_TS = pl.Datetime("us", "UTC")

SHIPMENTS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "declared_at": UTC_TS,
    "port_of_entry": pl.String(),  # UN/LOCODE, e.g. MXZLO
    "mode": pl.String(),  # sea | land | air | postal
    "origin_country": pl.String(),  # ISO 3166 alpha-2
    "export_country": pl.String(),  # ISO 3166 alpha-2
    "transshipment_ports": pl.List(pl.String()),  # UN/LOCODEs, in route order
    "carrier": pl.String(),
    "conveyance_id": pl.String(),  # vessel IMO / flight / truck plate
    "container_id": pl.String(),  # ISO 6346 or empty
    "shipper_id": pl.String(),
    "shipper_name": pl.String(),
    "shipper_country": pl.String(),
    "shipper_tax_id": pl.String(),
    "consignee_id": pl.String(),
    "consignee_name": pl.String(),
    "consignee_country": pl.String(),
    "consignee_tax_id": pl.String(),
    "broker_id": pl.String(),
}

GOODS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "line_no": pl.Int32(),
    "hs_code": pl.String(),  # digits only, 6 to 10 of them
    "description": pl.String(),
    "cas_numbers": pl.List(pl.String()),
    "quantity": pl.Float64(),
    "unit": pl.String(),
    "gross_weight_kg": pl.Float64(),
    "declared_value_usd": pl.Float64(),
}

INSPECTIONS_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "inspected_at": UTC_TS,
    "reported_at": UTC_TS,  # when the result became known to the system
    "positive": pl.Boolean(),  # contraband found
    "substances": pl.List(pl.String()),  # watchlist entry ids found, may be empty
    "selection_probability": pl.Float64(),  # the selecting policy's propensity, in (0, 1]
    "random_selection": pl.Boolean(),  # picked by the random share, not by rules
}

TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "illicit": pl.Boolean(),
    "pattern": pl.String(),  # null when licit; otherwise the illicit pattern's name
    "substances": pl.List(pl.String()),  # watchlist entry ids actually carried
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "shipments": SHIPMENTS_SCHEMA,
    "goods": GOODS_SCHEMA,
    "inspections": INSPECTIONS_SCHEMA,
    "truth": TRUTH_SCHEMA,
}


def check_schema(frame: pl.DataFrame | pl.LazyFrame, table: str) -> None:
    """Raise :class:`DataError` naming every missing or mistyped column of ``table``."""
    expected = TABLES[table]
    actual = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    problems = []
    for name, dtype in expected.items():
        if name not in actual:
            problems.append(f"missing column {name!r} ({dtype})")
        elif actual[name] != dtype:
            problems.append(f"column {name!r} is {actual[name]}, expected {dtype}")
    if problems:
        raise DataError(f"table {table!r}: " + "; ".join(problems))


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Select and order ``table``'s columns, checking names and types."""
    check_schema(frame, table)
    return frame.select(list(TABLES[table]))


def table_path(data_dir: Path, table: str) -> Path:
    return Path(data_dir) / f"{table}.parquet"


def scan_table(data_dir: Path, table: str) -> pl.LazyFrame:
    """Lazily read one canonical table from a data directory, checking its schema."""
    path = table_path(data_dir, table)
    if not path.exists():
        raise DataError(f"{path}: no {table} table in data directory {data_dir}")
    frame = pl.scan_parquet(path)
    check_schema(frame, table)
    return frame.select(list(TABLES[table]))


@dataclass(frozen=True, slots=True)
class Folded:
    """Rows :func:`fold_tables` left out because their shipment id had a later row."""

    shipments: int = 0
    goods: int = 0
    inspections: int = 0

    @property
    def total(self) -> int:
        return self.shipments + self.goods + self.inspections

    def to_json(self) -> dict[str, int]:
        return {"shipments": self.shipments, "goods": self.goods, "inspections": self.inspections}

    def summary(self) -> str:
        return (
            f"folded {self.shipments:,} repeated shipment rows, {self.goods:,} goods lines and "
            f"{self.inspections:,} inspections of the same shipment ids (last kept)"
        )


@dataclass(frozen=True)
class Tables:
    """Canonical tables with one shipment (and at most one inspection) per shipment id."""

    shipments: pl.DataFrame
    goods: pl.DataFrame
    inspections: pl.DataFrame
    folded: Folded


def fold_tables(
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
) -> Tables:
    """One shipment per shipment id, so nothing counts twice in features, labels or history.

    A shipment id is one shipment however often it was declared or scored; without this, a
    repeated id would credit its parties with each repeat and join to its goods lines and
    inspections once per repeat. Of the rows of one id:

    * ``shipments``: the last row wins;
    * ``goods``: the lines of the winning row. Lines of one id are told apart by runs: a run
      starts wherever ``line_no`` does not grow, and the last run is kept. Ids with one
      shipment row keep all their lines;
    * ``inspections``: the one reported last (``reported_at``; equal times: the later row).

    Rows keep their order; tables without repeats come back as they were.
    """
    ships, lines, reports = (f.lazy().collect() for f in (shipments, goods, inspections))
    heights = (ships.height, lines.height, reports.height)
    repeated = ships.filter(pl.col("shipment_id").is_duplicated())["shipment_id"].unique()
    if not repeated.is_empty():
        ships = ships.filter(pl.col("shipment_id").is_last_distinct())
        grows = pl.col("line_no") > pl.col("line_no").shift(1).over("shipment_id")
        runs = lines.with_columns(
            _run=(~grows.fill_null(True)).cast(pl.Int32).cum_sum().over("shipment_id")
        )
        lines = runs.filter(
            ~pl.col("shipment_id").is_in(repeated.implode())
            | (pl.col("_run") == pl.col("_run").max().over("shipment_id"))
        ).drop("_run")
    if reports["shipment_id"].is_duplicated().any():
        indexed = reports.with_row_index("_row")
        latest = indexed.sort("reported_at", "_row", nulls_last=False).unique(
            "shipment_id", keep="last"
        )["_row"]
        reports = indexed.filter(pl.col("_row").is_in(latest.implode())).drop("_row")
    folded = Folded(
        heights[0] - ships.height, heights[1] - lines.height, heights[2] - reports.height
    )
    return Tables(ships, lines, reports, folded)


def load_tables(data_dir: Path, *, need_inspections: bool = True) -> Tables:
    """The ``shipments``, ``goods`` and ``inspections`` tables of a data directory, checked and
    folded to one shipment per shipment id (:func:`fold_tables`): what ``train``, ``evaluate``
    and the server's entity history read. Without ``need_inspections`` a directory with no
    inspections table reads as one with no inspections."""
    shipments, goods = scan_table(data_dir, "shipments"), scan_table(data_dir, "goods")
    inspections = (
        scan_table(data_dir, "inspections")
        if need_inspections or table_path(data_dir, "inspections").exists()
        else pl.DataFrame(schema=INSPECTIONS_SCHEMA)
    )
    return fold_tables(shipments, goods, inspections)


# --------------------------------------------------------------------------- streaming

ORDER: tuple[str, str] = ("declared_at", "shipment_id")
"""The order in which bulk scoring reads shipments: declared time, then id for equal times."""


@dataclass(frozen=True)
class TableChunk:
    """Consecutive shipments in :data:`ORDER` and their goods lines (in ``line_no`` order)."""

    shipments: pl.DataFrame
    goods: pl.DataFrame


@dataclass(frozen=True)
class TableStream:
    """Canonical tables read as chunks of shipments in :data:`ORDER`, with bounded memory.

    Only two columns of each table are read whole (ids and times, to fold and order); the rest
    is read a chunk at a time. Tables already in order, with goods grouped in the same order
    (as exports and the simulator write them), are streamed as they are; otherwise, or when
    shipment ids repeat, a folded, ordered copy is written to ``workdir`` first and streamed.
    """

    shipments_file: Path
    goods_file: Path
    goods_seq: np.ndarray  # each goods row's shipment position in ORDER, -1: no such shipment
    total: int  # shipments, one per id
    inspections: pl.DataFrame  # folded, one per id
    folded: Folded
    chunk_rows: int

    def chunks(self) -> Iterator[TableChunk]:
        goods_batches = pq.ParquetFile(self.goods_file).iter_batches(
            batch_size=self.chunk_rows, columns=list(GOODS_SCHEMA)
        )
        pending: list[pl.DataFrame] = []
        pending_seq: list[np.ndarray] = []
        read = 0  # goods rows read so far
        start = 0  # position of the chunk's first shipment
        for batch in pq.ParquetFile(self.shipments_file).iter_batches(
            batch_size=self.chunk_rows, columns=list(SHIPMENTS_SCHEMA)
        ):
            ships = conform(pl.from_arrow(batch), "shipments")  # type: ignore[arg-type]
            end = start + ships.height
            # Goods rows are in shipment order: read on until a row of a later chunk shows.
            while not pending_seq or pending_seq[-1].size == 0 or pending_seq[-1][-1] < end:
                nxt = next(goods_batches, None)
                if nxt is None:
                    break
                frame = pl.from_arrow(nxt)
                assert isinstance(frame, pl.DataFrame)
                pending.append(frame)
                pending_seq.append(self.goods_seq[read : read + frame.height])
                read += frame.height
            lines = pl.concat(pending) if pending else pl.DataFrame(schema=GOODS_SCHEMA)
            seq = np.concatenate(pending_seq) if pending_seq else np.zeros(0, np.int64)
            mine = (seq >= start) & (seq < end)
            later = seq >= end
            goods = conform(lines.filter(pl.Series(mine)), "goods")
            pending = [lines.filter(pl.Series(later))]
            pending_seq = [seq[later]]
            yield TableChunk(ships, goods)
            start = end


def stream_tables(data_dir: Path, workdir: Path, *, chunk_rows: int = 50_000) -> TableStream:
    """Stream the tables of ``data_dir`` (see :class:`TableStream`); ``workdir`` holds an
    ordered copy when one is needed. Inspections are small and read whole."""
    data_dir = Path(data_dir)
    shipments_file, goods_file = table_path(data_dir, "shipments"), table_path(data_dir, "goods")
    ships = scan_table(data_dir, "shipments")
    lines = scan_table(data_dir, "goods")
    inspections = (
        scan_table(data_dir, "inspections")
        if table_path(data_dir, "inspections").exists()
        else pl.DataFrame(schema=INSPECTIONS_SCHEMA).lazy()
    )
    keys = ships.select(*ORDER).collect()
    reports = fold_tables(
        pl.DataFrame(schema=SHIPMENTS_SCHEMA), pl.DataFrame(schema=GOODS_SCHEMA), inspections
    )
    folded = reports.folded
    repeats = bool(keys["shipment_id"].is_duplicated().any())
    step = pl.col("declared_at").diff()
    in_order = keys.select(
        ((step > 0) | ((step == 0) & (pl.col("shipment_id") > pl.col("shipment_id").shift())))
        .fill_null(True)
        .all()
    ).item()
    if repeats or not in_order:
        # An ordered, folded copy: the tables are read whole once, here.
        tables = fold_tables(ships, lines, pl.DataFrame(schema=INSPECTIONS_SCHEMA))
        folded = Folded(tables.folded.shipments, tables.folded.goods, folded.inspections)
        ordered = tables.shipments.sort(*ORDER)
        position = ordered.select("shipment_id").with_row_index("_seq")
        workdir.mkdir(parents=True, exist_ok=True)
        shipments_file = workdir / "shipments.parquet"
        goods_file = workdir / "goods.parquet"
        ordered.write_parquet(shipments_file)
        tables.goods.join(position, on="shipment_id", how="inner").sort(
            "_seq", "line_no", maintain_order=True
        ).drop("_seq").write_parquet(goods_file)
        keys = ordered.select(*ORDER)
        lines = pl.scan_parquet(goods_file)
        del tables, ordered
    position = keys.select("shipment_id").with_row_index("_seq")
    seq = (
        lines.select("shipment_id", "line_no")
        .join(position.lazy(), on="shipment_id", how="left", maintain_order="left")
        .collect()
    )
    seq_values = seq["_seq"].fill_null(-1).to_numpy().astype(np.int64)
    known = seq_values >= 0
    grouped = bool(np.all(np.diff(seq_values[known]) >= 0))
    if grouped:
        line_no = seq["line_no"].to_numpy()[known]
        same = np.diff(seq_values[known]) == 0
        grouped = bool(np.all(np.diff(line_no)[same] > 0))
    if not grouped:  # goods in another order than their shipments: an ordered copy
        workdir.mkdir(parents=True, exist_ok=True)
        ordered_goods = workdir / "goods-ordered.parquet"
        lines.join(position.lazy(), on="shipment_id", how="inner").sort(
            "_seq", "line_no", maintain_order=True
        ).drop("_seq").sink_parquet(ordered_goods)
        goods_file = ordered_goods
        seq_values = (
            pl.scan_parquet(goods_file)
            .select("shipment_id")
            .join(position.lazy(), on="shipment_id", how="left", maintain_order="left")
            .collect()["_seq"]
            .to_numpy()
            .astype(np.int64)
        )
    return TableStream(
        shipments_file=shipments_file,
        goods_file=goods_file,
        goods_seq=seq_values,
        total=keys.height,
        inspections=reports.inspections,
        folded=folded,
        chunk_rows=chunk_rows,
    )
