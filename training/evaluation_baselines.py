"""The baselines an inspection service could run without the model, and the common tie-break.

``rules``
    A legacy rule score, one point each for: a goods line in HS chapter 28, 29 or 38 (the
    chemical chapters, :data:`RULE_CHAPTERS`), an origin in a high-risk precursor country
    (:data:`RULE_ORIGINS`), and any transshipment. Scores run 0 to 3 (:func:`rule_scores`).
``watchlist``
    The watchlist matcher alone. Each goods line counts once, at its strongest match type;
    shipments rank by those counts compared in the order :data:`WATCHLIST_EVIDENCE` (one CAS
    line outranks any number of weaker lines). Shipments without hits rank last
    (:func:`watchlist_evidence`).

``random`` needs no scores: its figures are expectations (:mod:`training.evaluation_metrics`).
Every selector breaks ties by a hash of ``shipment_id`` (:func:`tiebreak_keys`), so rankings and
all figures are deterministic and a coarse score gains nothing from the order of the input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

import polars as pl

RULE_CHAPTERS: Final[tuple[str, ...]] = ("28", "29", "38")
RULE_ORIGINS: Final[tuple[str, ...]] = ("CN", "IN", "HK")
WATCHLIST_EVIDENCE: Final[tuple[str, ...]] = (
    "cas",
    "hs_specific",
    "name_exact",
    "name_fuzzy",
    "hs_broad",
)
"""Match types from strongest to weakest evidence, as the ``watchlist`` baseline ranks them."""

EVIDENCE_COLUMNS: Final[tuple[str, ...]] = tuple(f"wl_{t}" for t in WATCHLIST_EVIDENCE)
"""The columns of :func:`watchlist_evidence`, strongest evidence first."""


def rule_scores(shipments: pl.DataFrame, goods: pl.DataFrame) -> pl.DataFrame:
    """``shipment_id``, ``rule_score`` (0 to 3): the legacy rule described in the module doc."""
    chemical = (
        goods.filter(pl.col("hs_code").str.slice(0, 2).is_in(RULE_CHAPTERS))
        .select("shipment_id")
        .unique()
        .with_columns(chem=pl.lit(1, dtype=pl.Int32))
    )
    return (
        shipments.select("shipment_id", "origin_country", "transshipment_ports")
        .join(chemical, on="shipment_id", how="left")
        .select(
            "shipment_id",
            rule_score=(
                pl.col("chem").fill_null(0)
                + pl.col("origin_country").is_in(RULE_ORIGINS).fill_null(False).cast(pl.Int32)
                + (pl.col("transshipment_ports").list.len().fill_null(0) > 0).cast(pl.Int32)
            ).cast(pl.Int32),
        )
    )


def watchlist_evidence(hits: pl.DataFrame) -> pl.DataFrame:
    """``shipment_id`` and, per match type, how many goods lines have it as strongest evidence.

    ``hits`` is :meth:`Watchlist.match_goods` output. Unknown match types count for nothing.
    """
    rank = {t: i for i, t in enumerate(WATCHLIST_EVIDENCE)}
    per_line = (
        hits.select(
            "shipment_id",
            "line_no",
            level=pl.col("match_type").replace_strict(rank, default=None, return_dtype=pl.Int32),
        )
        .drop_nulls("level")
        .group_by("shipment_id", "line_no")
        .agg(pl.col("level").min())
    )
    return per_line.group_by("shipment_id").agg(
        (pl.col("level") == i).sum().cast(pl.Int32).alias(c) for i, c in enumerate(EVIDENCE_COLUMNS)
    )


def tiebreak_keys(shipment_ids: pl.Series | Iterable[str]) -> pl.Series:
    """A stable 64-bit hash of each shipment id: the tie-break of every ranking.

    Not polars' own hash, which may change between versions; figures must not.
    """
    values = [
        int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")
        for s in (shipment_ids.to_list() if isinstance(shipment_ids, pl.Series) else shipment_ids)
    ]
    return pl.Series("tiebreak", values, dtype=pl.UInt64)
