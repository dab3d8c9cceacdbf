"""Bulk scoring of canonical tables with one bundle: the path ``evaluate`` and ``score`` use.

It runs exactly the feature code and model the live path runs (see :mod:`features.build`), over
whole tables at once.
"""

from __future__ import annotations

import polars as pl

from features.build import build_features, feature_matrix
from features.watchlist import Watchlist
from scoring.bundle import ModelBundle
from scoring.lanes import Budget, LanePolicy


def score_tables(
    bundle: ModelBundle,
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
    policy: LanePolicy | None = None,
) -> pl.DataFrame:
    """One row per shipment: ``shipment_id``, ``declared_at``, ``port_of_entry``, ``risk_score``,
    ``lane``, ``random_selection`` and ``propensity`` (by ``policy``, default: the default
    budgets over the bundle's reference distributions), in the order of ``shipments``.

    ``inspections`` are the outcomes known so far; each shipment's features use only those
    reported before it was declared. Lanes here come from the budget policy alone: the hard
    rules, which can only raise a lane, are applied on the live path.
    """
    features = build_features(shipments, goods, inspections, watchlist, bundle.meta.reference)
    scores = bundle.predict(feature_matrix(features))
    policy = policy or LanePolicy(bundle.meta.score_quantiles, {"default": Budget()})
    ports = features["port_of_entry"].to_list()
    ids = features["shipment_id"].to_list()
    decided = [
        policy.decide(port, score, sid)
        for port, score, sid in zip(ports, scores.tolist(), ids, strict=True)
    ]
    return features.select("shipment_id", "declared_at", "port_of_entry").with_columns(
        risk_score=pl.Series(scores, dtype=pl.Float64),
        lane=pl.Series([d.lane for d in decided], dtype=pl.String),
        random_selection=pl.Series([d.random_selection for d in decided], dtype=pl.Boolean),
        propensity=pl.Series([d.propensity for d in decided], dtype=pl.Float64),
    )
