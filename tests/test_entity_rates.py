"""Entity risk: the rates' smoothing tuned on the validation window, stored in the bundle, applied
the same way live and in bulk, the gain the entity history carries reported, and the founding
date of a Mexican party's RFC."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from features.build import FeatureReference, build_features, context_rows, keyed_outcomes
from features.history import (
    OUTCOME_KEYS,
    SMOOTHING_CANDIDATES,
    SMOOTHING_STRENGTH,
    Keyed,
    history_features,
    outcome_names,
)
from features.state import EntityState
from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.registry import Registry
from training.entity_rates import tune_smoothing

PRIOR = 0.02


def test_the_bundle_keeps_the_tuned_smoothing_and_the_gain_of_entity_history(
    registry: Path,
) -> None:
    meta = Registry(registry).load().meta
    assert meta.reference.smoothing_strength in SMOOTHING_CANDIDATES
    assert meta.metrics["smoothing_strength"] == meta.reference.smoothing_strength
    shares = [meta.metrics[k] for k in ("party_rate_gain_share", "party_history_gain_share")]
    assert 0.0 <= shares[0] <= shares[1] <= meta.metrics["history_gain_share"] <= 1.0
    assert meta.metrics["history_gain_share"] > 0.0  # the world's parties do carry signal


def test_a_bundle_without_a_smoothing_keeps_the_old_one() -> None:
    old = FeatureReference.from_json({"prior_rate": 0.03, "heading_log_value_per_kg": {}})
    assert old.smoothing_strength == SMOOTHING_STRENGTH == 20.0
    tuned = FeatureReference(prior_rate=0.03, smoothing_strength=3.0)
    assert FeatureReference.from_json(tuned.to_json()) == tuned


def test_live_and_bulk_smooth_with_the_same_strength(world: Path) -> None:
    """Live history (the entity state) with a strength other than the default gives the bulk
    kernels' bits, and the strength does change the rates."""
    watchlist = load_watchlist()
    shipments = scan_table(world, "shipments").sort("declared_at", "shipment_id").collect()
    goods = scan_table(world, "goods").collect()
    start = shipments.height - 300
    cut = shipments["declared_at"][start]
    inspections = scan_table(world, "inspections").filter(pl.col("reported_at") < cut).collect()
    keyed = Keyed.from_frame(context_rows(shipments, goods, watchlist))
    outcomes = keyed_outcomes(keyed.keys_frame(), inspections)
    bulk = history_features(keyed, outcomes, PRIOR, 3.0)
    earlier = shipments.slice(0, start)
    state = EntityState.from_tables(earlier, goods, inspections, watchlist)
    live = state.history_for(keyed.slice(start, shipments.height), PRIOR, 3.0)
    default = history_features(keyed, outcomes, PRIOR)
    changed = 0
    for entity in OUTCOME_KEYS:
        for name in outcome_names(entity):
            assert live[name].tobytes() == bulk[name][start:].tobytes(), name
        rate = outcome_names(entity)[2]
        changed += int((bulk[rate] != default[rate]).sum())
    assert changed > 0


def _history(inspections: np.ndarray, positives: np.ndarray) -> pl.DataFrame:
    columns = {}
    for entity in ("shipper", "consignee", "broker"):
        names = outcome_names(entity)
        columns[names[0]] = inspections
        columns[names[1]] = positives
    return pl.DataFrame(columns)


def test_tuning_trusts_few_inspections_only_when_they_predict() -> None:
    """Parties seen a few times: when their record predicts the outcome, little smoothing wins;
    when the record is noise, much smoothing does."""
    rng = np.random.default_rng(5)
    n = 4_000
    inspections = rng.integers(1, 5, n)
    risky = rng.random(n) < 0.2
    positives = np.where(risky, inspections, 0)
    telling = (rng.random(n) < np.where(risky, 0.8, 0.02)).astype(np.int8)
    noise = (rng.random(n) < 0.2).astype(np.int8)
    history = _history(inspections, positives)
    low, high = SMOOTHING_CANDIDATES[0], SMOOTHING_CANDIDATES[-1]
    assert tune_smoothing(history, telling, 0.2) == low
    assert tune_smoothing(history, noise, 0.2) == high


def test_a_mexican_rfc_tells_how_long_ago_the_company_was_founded(world: Path) -> None:
    """The founding date a Mexican RFC encodes (YYMMDD after the letters), in days before the
    declaration; no figure for a tax id that is not an RFC (a US EIN, a Chinese USCC)."""
    shipments = scan_table(world, "shipments").sort("declared_at", "shipment_id").collect()
    goods = scan_table(world, "goods").collect()
    inspections = scan_table(world, "inspections").collect()
    features = build_features(
        shipments, goods, inspections, load_watchlist(), FeatureReference(prior_rate=PRIOR)
    )
    for party in ("shipper", "consignee"):
        got = features[f"{party}_rfc_days_since_founding"].to_list()
        checked = 0
        for tax_id, at, days in zip(
            shipments[f"{party}_tax_id"], shipments["declared_at"], got, strict=True
        ):
            if tax_id and len(tax_id) == 12 and tax_id[3:9].isdigit():
                yy, mm, dd = int(tax_id[3:5]), int(tax_id[5:7]), int(tax_id[7:9])
                year = 2000 + yy if 2000 + yy <= at.year else 1900 + yy
                assert days == (at.date() - date(year, mm, dd)).days, tax_id
                checked += 1
            elif tax_id and "-" in tax_id:  # a US EIN
                assert math.isnan(days), tax_id
        assert checked > 100
