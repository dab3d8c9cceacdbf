"""Bulk risk scores for canonical tables with one bundle: what ``evaluate`` ranks by.

It runs exactly the feature code and model the live path runs (see :mod:`features.build`), over
whole tables at once. Decisions (rules, lanes, exploration, reasons) are not made here: they
come from :meth:`scoring.scorer.Scorer.decide`, for tables through ``Scorer.score_tables``.
"""

from __future__ import annotations

import polars as pl

from features.build import build_features, feature_matrix
from features.watchlist import Watchlist
from scoring.bundle import ModelBundle


def risk_scores(
    bundle: ModelBundle,
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """One row per shipment: ``shipment_id``, ``declared_at``, ``port_of_entry`` and the
    calibrated ``risk_score``, in the order of ``shipments``.

    ``inspections`` are the outcomes known so far; each shipment's features use only those
    reported before it was declared.
    """
    features = build_features(shipments, goods, inspections, watchlist, bundle.meta.reference)
    scores = bundle.predict(feature_matrix(features))
    return features.select("shipment_id", "declared_at", "port_of_entry").with_columns(
        risk_score=pl.Series(scores, dtype=pl.Float64)
    )
