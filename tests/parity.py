"""Live against bulk on one simulated world: the check behind the parity test and the parity
benchmark (``python -m bench.parity``, at 100,000 live shipments).

The newest ``live_count`` shipments of a world are scored one at a time through the live path
(records in, entity state carried from call to call, outcomes credited as they are reported),
and the whole world is scored in bulk from its tables. Features must be bit-identical and
decisions (score, lane, propensity, rules) the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from features.build import build_features, feature_matrix
from features.live import shipments_from_frames
from features.schema import FEATURE_NAMES
from features.state import EntityState
from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.bulk import risk_scores
from scoring.lanes import LANE_ORDER, Budget, LanePolicy
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer


@dataclass(frozen=True)
class Parity:
    live: int  # shipments scored live
    with_history: int  # of them, with a consignee seen in the prior year
    live_seconds: float
    bulk_seconds: float


def tables(world: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (
        scan_table(world, "shipments").sort("declared_at", "shipment_id").collect(),
        scan_table(world, "goods").collect(),
        scan_table(world, "inspections").collect(),
    )


def assert_same_bits(live: np.ndarray, bulk: np.ndarray, ids: list[str]) -> None:
    """Every feature of every row bit for bit (NaN where NaN)."""
    assert live.shape == bulk.shape, (live.shape, bulk.shape)
    mismatch = live.view(np.int64) != bulk.view(np.int64)
    if mismatch.any():
        rows, cols = np.nonzero(mismatch)
        where = [(ids[int(r)], FEATURE_NAMES[int(c)]) for r, c in zip(rows, cols, strict=True)]
        raise AssertionError(f"{len(rows)} feature values differ, first: {where[:5]}")


def check_live_matches_bulk(world: Path, registry: Path, live_count: int) -> Parity:
    shipments, goods, inspections = tables(world)
    bundle = Registry(registry).load()
    watchlist = load_watchlist()
    start = shipments.height - live_count
    cut = shipments["declared_at"][start]
    history = shipments.slice(0, start)
    live = shipments.slice(start)
    assert live["declared_at"].min() >= cut  # type: ignore[operator]

    t0 = time.perf_counter()
    rules = load_rules(None, watchlist)
    policy = LanePolicy(bundle.meta.score_quantiles, {"default": Budget()}, seed=3)
    decided = Scorer(bundle, watchlist, rules, policy).score_tables(shipments, goods, inspections)
    bulk = decided[start:]
    bulk_features = build_features(shipments, goods, inspections, watchlist, bundle.meta.reference)
    bulk_seconds = time.perf_counter() - t0
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
    rows: list[np.ndarray] = []
    ids: list[str] = []
    live_scores = []
    t0 = time.perf_counter()
    for shipment in records:
        while next_outcome is not None and next_outcome["reported_at"] < shipment.declared_at:
            state.add_outcome(
                next_outcome["shipment_id"], next_outcome["reported_at"], next_outcome["positive"]
            )
            next_outcome = next(pending_rows, None)
        batch = scorer.score_batch([shipment], state)
        rows.append(batch.features.matrix[0])
        ids.extend(batch.features.shipment_id)
        scored = batch.scored[0]
        live_scores.append((scored.risk_score, scored.lane, scored.propensity, scored.rules_fired))
        state.add_shipments(batch.keyed)
    live_seconds = time.perf_counter() - t0

    assert len(records) == live_count
    assert ids == bulk_features["shipment_id"].to_list()[start:]
    live_matrix = np.vstack(rows)
    assert_same_bits(live_matrix, feature_matrix(bulk_features.slice(start)), ids)
    assert live_scores == [(b.risk_score, b.lane, b.propensity, b.rules_fired) for b in bulk]
    assert [s[0] for s in live_scores] == risk_scores(
        bundle, shipments, goods, inspections, watchlist
    )["risk_score"].to_list()[start:]
    with_history = int((live_matrix[:, FEATURE_NAMES.index("consignee_count_365d")] > 0).sum())
    return Parity(live_count, with_history, live_seconds, bulk_seconds)
