"""Features are point in time, and the live path computes exactly what the bulk path does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.build import FeatureReference, build_features, feature_matrix
from features.live import shipments_from_frames
from features.schema import FEATURE_NAMES, FEATURES, schema_mismatch
from features.state import EntityState
from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.bulk import score_tables
from scoring.lanes import LANE_ORDER, Budget, LanePolicy
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer

REFERENCE = FeatureReference(prior_rate=0.02, heading_log_value_per_kg={"2933": 4.0})


def tables(world: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (
        scan_table(world, "shipments").sort("declared_at", "shipment_id").collect(),
        scan_table(world, "goods").collect(),
        scan_table(world, "inspections").collect(),
    )


def assert_frames_identical(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    left, right = feature_matrix(a), feature_matrix(b)
    both_nan = np.isnan(left) & np.isnan(right)
    mismatch = ~(both_nan | (left == right))
    if mismatch.any():
        rows, cols = np.nonzero(mismatch)
        where = [
            (a["shipment_id"][int(r)], FEATURE_NAMES[int(c)])
            for r, c in zip(rows, cols, strict=True)
        ]
        raise AssertionError(f"{len(rows)} feature values differ, first: {where[:5]}")
    assert a["shipment_id"].to_list() == b["shipment_id"].to_list()


def test_schema_is_self_consistent() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert all(f.meaning for f in FEATURES)
    doc = [{"name": f.name, "dtype": f.dtype, "categorical": f.categorical} for f in FEATURES]
    assert schema_mismatch(doc) == []
    assert "different order" in schema_mismatch([doc[1], doc[0], *doc[2:]])[0]


def test_appending_later_rows_changes_no_earlier_feature(world: Path) -> None:
    shipments, goods, inspections = tables(world)
    watchlist = load_watchlist()
    cut = shipments["declared_at"][shipments.height // 2]
    early = shipments.filter(pl.col("declared_at") < cut)
    early_ids = early["shipment_id"]
    known_then = inspections.filter(pl.col("reported_at") < cut)
    before = build_features(
        early,
        goods.filter(pl.col("shipment_id").is_in(early_ids.implode())),
        known_then,
        watchlist,
        REFERENCE,
    )
    after = build_features(shipments, goods, inspections, watchlist, REFERENCE)
    assert_frames_identical(after.filter(pl.col("declared_at") < cut), before)
    # The history features really are in play: later rows do see earlier outcomes.
    assert after["consignee_count_365d"].max() > 0  # type: ignore[operator]
    assert after["route_inspections"].max() > 0  # type: ignore[operator]


def test_an_outcome_reported_after_declaration_is_invisible(world: Path) -> None:
    shipments, goods, inspections = tables(world)
    watchlist = load_watchlist()
    base = build_features(shipments, goods, inspections, watchlist, REFERENCE)
    late = inspections.with_columns(pl.col("reported_at") + timedelta(days=3650))
    hidden = build_features(shipments, goods, late, watchlist, REFERENCE)
    assert hidden["route_inspections"].max() == 0
    assert base["route_inspections"].max() > 0  # type: ignore[operator]


@pytest.mark.slow
def test_live_path_matches_bulk_path_exactly(world: Path, registry: Path) -> None:
    shipments, goods, inspections = tables(world)
    bundle = Registry(registry).load()
    watchlist = load_watchlist()
    live_count = 1_000
    start = shipments.height - live_count
    cut = shipments["declared_at"][start]
    history = shipments.slice(0, start)
    live = shipments.slice(start)
    assert live["declared_at"].min() >= cut  # type: ignore[operator]

    rules = load_rules(None, watchlist)
    policy = LanePolicy(bundle.meta.score_quantiles, {"default": Budget()}, seed=3)
    scorer = Scorer(bundle, watchlist, rules, policy)
    decided = scorer.score_tables(shipments, goods, inspections)
    bulk = decided[start:]
    # The lane policy is stateful (capacity over a window of decisions): the live policy sees
    # the history's decisions first, in the same order, as the bulk run's did.
    rule_lanes = {r.id: r.lane for r in rules.rules}
    live_policy = LanePolicy(bundle.meta.score_quantiles, {"default": Budget()}, seed=3)
    for earlier, at in zip(decided[:start], shipments["declared_at"][:start], strict=True):
        lanes = [rule_lanes[r] for r in earlier.rules_fired]
        rule_lane = max(lanes, key=LANE_ORDER.__getitem__, default="green")
        live_policy.decide(
            earlier.port_of_entry, earlier.risk_score, earlier.shipment_id, rule_lane, at
        )
    scorer = Scorer(bundle, watchlist, rules, live_policy)
    bulk_features = build_features(
        shipments, goods, inspections, watchlist, bundle.meta.reference
    ).slice(start)

    state = EntityState.from_tables(
        history,
        goods.filter(pl.col("shipment_id").is_in(history["shipment_id"].implode())),
        inspections.filter(pl.col("reported_at") < cut),
        watchlist,
    )
    pending = inspections.filter(pl.col("reported_at") >= cut).sort("reported_at")
    pending_rows = pending.iter_rows(named=True)
    next_outcome = next(pending_rows, None)
    live_goods = goods.filter(pl.col("shipment_id").is_in(live["shipment_id"].implode()))
    records = shipments_from_frames(live, live_goods)
    live_frames, live_scores = [], []
    for shipment in records:
        while next_outcome is not None and next_outcome["reported_at"] < shipment.declared_at:
            state.add_outcome(
                next_outcome["shipment_id"], next_outcome["reported_at"], next_outcome["positive"]
            )
            next_outcome = next(pending_rows, None)
        batch = scorer.score_batch([shipment], state)
        live_frames.append(batch.features.frame())
        scored = batch.scored[0]
        live_scores.append((scored.risk_score, scored.lane, scored.propensity, scored.rules_fired))
        state.add_shipments(batch.keyed)

    assert len(records) == live_count
    assert_frames_identical(pl.concat(live_frames), bulk_features)
    assert live_scores == [(b.risk_score, b.lane, b.propensity, b.rules_fired) for b in bulk]
    assert [s[0] for s in live_scores] == score_tables(
        bundle, shipments, goods, inspections, watchlist
    )["risk_score"].to_list()[start:]
    assert sum(1 for f in live_frames if f["consignee_count_365d"][0] > 0) > 100
