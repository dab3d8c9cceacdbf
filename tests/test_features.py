"""Features are point in time, and the live path computes exactly what the bulk path does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.build import FeatureReference, build_features, feature_matrix
from features.schema import FEATURE_NAMES, FEATURES, schema_mismatch
from features.tables import scan_table
from features.watchlist import load_watchlist
from tests.parity import check_live_matches_bulk

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
    """1,000 shipments here; ``python -m bench.parity`` runs the same check on 100,000."""
    parity = check_live_matches_bulk(world, registry, live_count=1_000)
    assert parity.with_history > 100
