"""Entity history, point in time: what was known about a shipment's parties before it arrived.

For each shipment and each entity (shipper, consignee, broker, route, HS heading) this computes
only from rows strictly before the shipment's ``declared_at``:

* volume: days since the entity was first seen, and its shipment counts over 30/90/365 days
  (shipper, consignee and broker; routes and headings are too coarse for volume to mean much);
* outcomes: inspections and positive results *reported* before ``declared_at`` (an outcome
  known only later is invisible), the positive rate smoothed toward the prior rate, and the
  days since the last positive.

Every figure is computed per entity, from that entity's rows alone, so the result for a shipment
is the same whether the frame holds the whole world or only the rows of its own entities: the
live path (:mod:`features.state`) relies on that to run this same code on a small slice.
"""

from __future__ import annotations

import polars as pl

VOLUME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker")
OUTCOME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker", "route", "heading")
WINDOWS_DAYS: tuple[int, ...] = (30, 90, 365)
LOOKBACK_DAYS = max(WINDOWS_DAYS)
SMOOTHING_STRENGTH = 20.0  # pseudo-inspections at the prior rate

# Entity key columns as they appear in the keyed shipments frame.
KEY_COLUMNS: dict[str, str] = {
    "shipper": "shipper_id",
    "consignee": "consignee_id",
    "broker": "broker_id",
    "route": "route_key",
    "heading": "heading_key",
}
_US_PER_DAY = 86_400_000_000


def key_expressions() -> list[pl.Expr]:
    """The derived entity keys: route (origin > port) and the principal HS heading."""
    return [
        pl.concat_str(pl.col("origin_country"), pl.lit(">"), pl.col("port_of_entry")).alias(
            "route_key"
        ),
        pl.col("principal_hs_heading").cast(pl.String).fill_null("").alias("heading_key"),
    ]


def _days(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / _US_PER_DAY


def volume_features(keyed: pl.LazyFrame, entity: str) -> pl.LazyFrame:
    """Age and windowed counts for ``entity``; one row per row of ``keyed``, same order.

    ``keyed`` needs ``_row``, ``declared_at`` and the entity's key column.
    """
    key = KEY_COLUMNS[entity]
    t = pl.col("declared_at")
    ordered = keyed.select("_row", key, "declared_at").sort(key, "declared_at")
    before = t.search_sorted(t, side="left").over(key)
    exprs = [
        pl.when(t.min().over(key) < t)
        .then(_days(t - t.min().over(key)))
        .otherwise(None)
        .alias(f"{entity}_age_days"),
    ]
    for days in WINDOWS_DAYS:
        start = t.search_sorted(t - pl.duration(days=days), side="left").over(key)
        exprs.append((before - start).cast(pl.Int32).alias(f"{entity}_count_{days}d"))
    return ordered.select("_row", *exprs).sort("_row").drop("_row")


def outcome_features(
    keyed: pl.LazyFrame, outcomes: pl.LazyFrame, entity: str, prior_rate: float
) -> pl.LazyFrame:
    """Outcome history for ``entity``; one row per row of ``keyed``, same order.

    ``outcomes`` has the entity's key column, ``reported_at`` and ``positive``: one row per
    reported inspection of a shipment of that entity.
    """
    key = KEY_COLUMNS[entity]
    timeline = (
        outcomes.group_by(key, "reported_at")
        .agg(
            pl.len().cast(pl.Int32).alias("_n"),
            pl.col("positive").cast(pl.Int32).sum().alias("_p"),
        )
        .sort(key, "reported_at")
        .with_columns(
            pl.col("_n").cum_sum().over(key).alias("_inspections"),
            pl.col("_p").cum_sum().over(key).alias("_positives"),
            pl.when(pl.col("_p") > 0)
            .then(pl.col("reported_at"))
            .otherwise(None)
            .forward_fill()
            .over(key)
            .alias("_last_positive"),
        )
        .select(key, "reported_at", "_inspections", "_positives", "_last_positive")
    )
    left = keyed.select("_row", key, "declared_at").sort("declared_at")
    joined = left.join_asof(
        timeline.sort("reported_at"),
        left_on="declared_at",
        right_on="reported_at",
        by=key,
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    inspections = pl.col("_inspections").fill_null(0)
    positives = pl.col("_positives").fill_null(0)
    return joined.sort("_row").select(
        inspections.cast(pl.Int32).alias(f"{entity}_inspections"),
        positives.cast(pl.Int32).alias(f"{entity}_positives"),
        (
            (positives.cast(pl.Float64) + SMOOTHING_STRENGTH * prior_rate)
            / (inspections.cast(pl.Float64) + SMOOTHING_STRENGTH)
        ).alias(f"{entity}_positive_rate"),
        _days(pl.col("declared_at") - pl.col("_last_positive")).alias(
            f"{entity}_days_since_positive"
        ),
    )


def history_features(
    keyed: pl.DataFrame, outcomes: pl.DataFrame, prior_rate: float
) -> pl.DataFrame:
    """Every history feature, one row per row of ``keyed`` in its order.

    ``keyed``: ``_row``, ``declared_at`` and every key column of :data:`KEY_COLUMNS`.
    ``outcomes``: ``reported_at``, ``positive`` and every key column, one row per reported
    inspection (the shipment's keys copied onto it).
    """
    lazy_keyed, lazy_outcomes = keyed.lazy(), outcomes.lazy()
    parts = [volume_features(lazy_keyed, e) for e in VOLUME_KEYS]
    parts += [outcome_features(lazy_keyed, lazy_outcomes, e, prior_rate) for e in OUTCOME_KEYS]
    return pl.concat(parts, how="horizontal").collect()


def history_feature_names() -> list[str]:
    names = []
    for e in VOLUME_KEYS:
        names.append(f"{e}_age_days")
        names += [f"{e}_count_{d}d" for d in WINDOWS_DAYS]
    for e in OUTCOME_KEYS:
        names += [
            f"{e}_inspections",
            f"{e}_positives",
            f"{e}_positive_rate",
            f"{e}_days_since_positive",
        ]
    return names
