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
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

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
