"""Feature computation, one definition for training in bulk and for live shipments.

:func:`build_features` takes canonical ``shipments`` and ``goods`` frames (see
:mod:`features.tables`) of any size, one row or millions, and returns one row per shipment with
the key columns and every feature of :data:`features.schema.FEATURES` in schema order. The live
path (:mod:`features.live`) only turns requests into one-row frames and calls this.

Per-shipment sums are taken over lists ordered by ``line_no`` so a shipment's features are
bit-identical whether it is computed alone or among a million others.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features.records import MODES
from features.schema import FEATURE_NAMES, FEATURES
from features.vocab import PORTS

KEY_COLUMNS: tuple[str, ...] = ("shipment_id", "declared_at", "port_of_entry")

_COUNTRY_CODES = {chr(65 + a) + chr(65 + b): a * 26 + b for a in range(26) for b in range(26)}
_CHEMICAL_CHAPTERS = (28, 29, 38)
_DTYPES: dict[str, type[pl.DataType]] = {"float64": pl.Float64, "int32": pl.Int32}


def _code(column: str, mapping: dict[str, int]) -> pl.Expr:
    return pl.col(column).replace_strict(mapping, default=-1, return_dtype=pl.Int32)


def _goods_aggregates(goods: pl.LazyFrame) -> pl.LazyFrame:
    lines = goods.sort("shipment_id", "line_no").with_columns(
        chapter=pl.col("hs_code").str.slice(0, 2).cast(pl.Int32, strict=False),
        heading=pl.col("hs_code").str.slice(0, 4).cast(pl.Int32, strict=False),
        has_cas=(pl.col("cas_numbers").list.len() > 0).cast(pl.Int32),
    )
    grouped = lines.group_by("shipment_id", maintain_order=True).agg(
        pl.len().cast(pl.Int32).alias("goods_line_count"),
        pl.col("gross_weight_kg").alias("_weights"),
        pl.col("declared_value_usd").alias("_values"),
        pl.col("chapter").alias("_chapters"),
        pl.col("heading").alias("_headings"),
        pl.col("has_cas").sum().cast(pl.Int32).alias("cas_line_count"),
    )
    principal = pl.col("_values").list.arg_max()
    return grouped.select(
        "shipment_id",
        "goods_line_count",
        pl.col("_chapters").list.get(principal).alias("principal_hs_chapter"),
        pl.col("_headings").list.get(principal).alias("principal_hs_heading"),
        pl.col("_chapters").list.n_unique().cast(pl.Int32).alias("hs_chapter_count"),
        (pl.col("_chapters").list.eval(pl.element().is_in(_CHEMICAL_CHAPTERS)).list.mean()).alias(
            "chemical_line_share"
        ),
        "cas_line_count",
        pl.col("_weights").list.sum().alias("total_weight_kg"),
        pl.col("_values").list.sum().alias("total_value_usd"),
    )


def build_features(
    shipments: pl.DataFrame | pl.LazyFrame, goods: pl.DataFrame | pl.LazyFrame
) -> pl.DataFrame:
    """Features for every shipment in ``shipments``: key columns, then the schema's features."""
    ship = shipments.lazy()
    aggregates = _goods_aggregates(goods.lazy())
    frame = ship.join(aggregates, on="shipment_id", how="left", maintain_order="left")
    frame = frame.with_columns(
        _code("port_of_entry", {p: i for i, p in enumerate(PORTS)}).alias("port_code"),
        _code("mode", {m: i for i, m in enumerate(MODES)}).alias("mode_code"),
        _code("origin_country", _COUNTRY_CODES).alias("origin_code"),
        _code("export_country", _COUNTRY_CODES).alias("export_code"),
        (pl.col("origin_country") != pl.col("export_country"))
        .cast(pl.Int32)
        .alias("export_differs"),
        pl.col("transshipment_ports").list.len().cast(pl.Int32).alias("transshipment_count"),
        (pl.col("total_value_usd") / pl.col("total_weight_kg").clip(lower_bound=0.001)).alias(
            "value_per_kg"
        ),
        (pl.col("consignee_country") != "MX").cast(pl.Int32).alias("consignee_is_foreign"),
        (pl.col("consignee_tax_id").str.len_chars() > 0)
        .cast(pl.Int32)
        .alias("consignee_has_tax_id"),
    )
    return frame.select(
        *KEY_COLUMNS,
        *(pl.col(f.name).cast(_DTYPES[f.dtype]) for f in FEATURES),
    ).collect()


def feature_matrix(features: pl.DataFrame) -> np.ndarray:
    """The model's input: schema columns in order as float64, nulls as NaN."""
    return features.select(FEATURE_NAMES).to_numpy().astype(np.float64, copy=False)
