"""Lanes follow each port's budget; exploration is seeded; rules only raise a lane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.lanes import Budget, LanePolicy, raise_lane, score_quantiles, uniform_draw
from scoring.registry import Registry
from scoring.rules import RuleSet
from scoring.scorer import Scorer


def test_realised_shares_track_the_budget_on_a_reference_distribution() -> None:
    rng = np.random.default_rng(1)
    scores = rng.beta(0.5, 30, size=20_000)
    policy = LanePolicy(
        {"default": score_quantiles(scores)},
        {"default": Budget(red=0.02, yellow=0.05, explore=0.01)},
    )
    fresh = rng.beta(0.5, 30, size=20_000)
    decided = [policy.decide("MXZLO", float(s), f"S{i}") for i, s in enumerate(fresh)]
    lanes = np.array([d.lane for d in decided])
    random = np.array([d.random_selection for d in decided])
    model_red = ((lanes == "red") & ~random).mean()
    assert model_red == pytest.approx(0.02, abs=0.004)
    assert (lanes == "yellow").mean() == pytest.approx(0.05, abs=0.006)
    assert random.mean() == pytest.approx(0.01 * 0.93, abs=0.003)
    assert all(d.propensity == 1.0 for d in decided if d.lane != "green" and not d.random_selection)
    assert all(d.propensity == 0.01 for d in decided if d.lane == "green" or d.random_selection)


def test_per_port_budgets_override_the_default() -> None:
    scores = np.linspace(0, 1, 1001)
    policy = LanePolicy(
        {"default": score_quantiles(scores)},
        {"default": Budget(red=0.1, yellow=0.0), "MXZLO": Budget(red=0.5, yellow=0.0)},
    )
    assert policy.thresholds("MXZLO")[0] == pytest.approx(0.5)
    assert policy.thresholds("MXNLD")[0] == pytest.approx(0.9)


def test_replay_gives_the_same_decision_and_seed_changes_the_draw() -> None:
    policy = LanePolicy({"default": [0.0, 1.0]}, {"default": Budget(explore=0.5)}, seed=9)
    first = [policy.decide("MXZLO", 0.0, f"S{i}") for i in range(200)]
    again = [policy.decide("MXZLO", 0.0, f"S{i}") for i in range(200)]
    assert first == again
    assert uniform_draw("S1", 9) != uniform_draw("S1", 10)
    assert 60 < sum(d.random_selection for d in first) < 140


def test_rules_only_raise() -> None:
    assert raise_lane("green", "red") == "red"
    assert raise_lane("red", "green") == "red"
    assert raise_lane("yellow", "red") == "red"
    assert raise_lane("red", "yellow") == "red"
    policy = LanePolicy({"default": [0.0, 1.0]}, {"default": Budget(explore=0.0)})
    assert policy.decide("MXZLO", 0.0, "S1", rule_lane="red").lane == "red"
    assert policy.decide("MXZLO", 0.0, "S1", rule_lane="red").propensity == 1.0


def test_budget_rejects_impossible_shares() -> None:
    with pytest.raises(ValueError, match="red \\+ yellow must not exceed 1"):
        Budget(red=0.7, yellow=0.5)


def test_scored_world_matches_budget_per_port(world: Path, registry: Path) -> None:
    bundle = Registry(registry).load()
    budgets = {"default": Budget(red=0.02, yellow=0.05, explore=0.0)}
    policy = LanePolicy(bundle.meta.score_quantiles, budgets)
    watchlist = load_watchlist()
    no_rules = RuleSet("none", ())
    decided = Scorer(bundle, watchlist, no_rules, policy).score_tables(
        scan_table(world, "shipments").sort("declared_at", "shipment_id").collect(),
        scan_table(world, "goods").collect(),
        scan_table(world, "inspections").collect(),
    )
    scored = (
        scan_table(world, "shipments")
        .sort("declared_at", "shipment_id")
        .collect()
        .select("shipment_id", "declared_at", "port_of_entry")
        .with_columns(lane=pl.Series([d.lane for d in decided]))
    )
    start, end = bundle.meta.windows["valid"]
    valid = scored.filter(
        (pl.col("declared_at") >= pl.lit(start).str.to_datetime(time_zone="UTC"))
        & (pl.col("declared_at") <= pl.lit(end).str.to_datetime(time_zone="UTC"))
    )
    own = [p for p in bundle.meta.score_quantiles if p != "default"]
    assert own, "no port had enough validation shipments for its own reference distribution"
    for port in own:
        lanes = valid.filter(pl.col("port_of_entry") == port)["lane"]
        assert lanes.len() >= 200
        # On the window the reference distribution came from, only ties can shift the shares.
        assert (lanes == "red").mean() == pytest.approx(0.02, abs=0.01)
        assert (lanes != "green").mean() == pytest.approx(0.07, abs=0.02)


def test_ties_at_the_threshold_are_split_to_keep_the_budget() -> None:
    rng = np.random.default_rng(2)
    # A small model's scores: a handful of distinct values, 10% of shipments on the top one.
    values = np.array([0.001, 0.01, 0.02, 0.05])
    weights = np.array([0.6, 0.2, 0.1, 0.1])
    reference = rng.choice(values, p=weights, size=50_000)
    policy = LanePolicy(
        {"default": score_quantiles(reference)},
        {"default": Budget(red=0.02, yellow=0.05, explore=0.0)},
    )
    fresh = rng.choice(values, p=weights, size=50_000)
    decided = [policy.decide("MXZLO", float(s), f"S{i}") for i, s in enumerate(fresh)]
    lanes = np.array([d.lane for d in decided])
    assert (lanes == "red").mean() == pytest.approx(0.02, abs=0.005)
    assert (lanes != "green").mean() == pytest.approx(0.07, abs=0.01)
    top = [d for d, s in zip(decided, fresh, strict=True) if s == 0.05]
    # Every top-scored shipment had the same chance; the ledger records it.
    assert len({d.propensity for d in top}) == 1
    assert 0.5 < top[0].propensity < 0.9
