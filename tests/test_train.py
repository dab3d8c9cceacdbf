"""Training is deterministic, calibrated on a held-out window, and honours its options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.build import feature_matrix
from features.tables import Folded, fold_tables, load_tables
from scoring.calibration import Calibration
from scoring.registry import Registry
from training.simulate import simulate_world
from training.train import fit_platt, labelled_features, train


def test_platt_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(4)
    raw = rng.beta(0.6, 12, size=200_000)
    logit = np.log(raw / (1 - raw))
    truth = 1 / (1 + np.exp(-(0.6 * logit - 1.1)))
    y = (rng.random(raw.size) < truth).astype(np.int32)
    a, b = fit_platt(raw, y)
    assert a == pytest.approx(0.6, abs=0.05)
    assert b == pytest.approx(-1.1, abs=0.1)


def test_platt_is_identity_without_both_classes() -> None:
    assert fit_platt(np.array([0.1, 0.2]), np.array([0, 0])) == (1.0, 0.0)
    assert fit_platt(np.array([]), np.array([])) == (1.0, 0.0)


@pytest.fixture(scope="module")
def big_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big-world")
    # Observed positives are a few per thousand inspections: the newest 15% of a world this
    # size holds enough of them to check calibration against.
    simulate_world(out, shipments=300_000, months=24, seed=21, progress=False)
    return out


def test_calibrated_scores_match_observed_rates_on_unseen_data(
    big_world: Path, tmp_path: Path
) -> None:
    result = train(big_world, tmp_path / "registry", seed=2)
    bundle = Registry(tmp_path / "registry").load(result.version)
    assert bundle.meta.calibration != Calibration()
    from features.build import build_features
    from features.tables import scan_table
    from features.watchlist import load_watchlist

    frame = build_features(
        scan_table(big_world, "shipments").sort("declared_at", "shipment_id"),
        scan_table(big_world, "goods"),
        scan_table(big_world, "inspections"),
        load_watchlist(),
        bundle.meta.reference,
    )
    inspected = scan_table(big_world, "inspections").select("shipment_id", "positive").collect()
    start = bundle.meta.windows["test"][0]
    test = frame.join(inspected, on="shipment_id").filter(
        pl.col("declared_at") >= pl.lit(start).str.to_datetime(time_zone="UTC")
    )
    predicted = bundle.predict(feature_matrix(test))
    observed = test["positive"].cast(pl.Float64).to_numpy()
    assert observed.sum() >= 8
    # Calibrated: mean predicted risk among inspected shipments near the observed rate.
    assert predicted.mean() == pytest.approx(observed.mean(), rel=0.6)
    # And it ranks: positives score far above the inspected average.
    assert predicted[observed == 1].mean() > 5 * predicted.mean()
    assert result.metrics["test_brier"] < observed.mean()


def test_same_seed_same_model_and_options_change_it(world: Path, tmp_path: Path) -> None:
    first = train(world, tmp_path / "a", seed=5)
    again = train(world, tmp_path / "b", seed=5)
    model = (first.path / "model.txt").read_text()
    assert model == (again.path / "model.txt").read_text()
    weighted = train(world, tmp_path / "c", seed=5, propensity_weights=True)
    assert (weighted.path / "model.txt").read_text() != model
    meta = Registry(tmp_path / "c").load().meta
    assert meta.params["propensity_weights"] is True
    assert meta.data_fingerprint
    assert meta.code_version


def test_labels_are_observed_outcomes_only(world: Path) -> None:
    from features.watchlist import load_watchlist

    basics, _, labels = labelled_features(load_tables(world), load_watchlist())
    inspected = pl.read_parquet(world / "inspections.parquet")
    assert labels["label"].is_not_null().sum() == inspected.height
    assert basics.height == labels.height


def test_fold_tables_keeps_one_shipment_per_id_with_its_own_lines() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    shipments = pl.DataFrame(
        {
            "shipment_id": ["A", "B", "A", "C", "A"],
            "declared_at": [at + timedelta(days=d) for d in (0, 1, 2, 3, 4)],
        }
    )
    goods = pl.DataFrame(
        {
            "shipment_id": ["A", "A", "B", "A", "C", "C", "A", "A", "A"],
            "line_no": [0, 1, 0, 0, 1, 0, 0, 1, 2],
            "hs_code": ["a0", "a1", "b0", "a0'", "c1", "c0", "a0''", "a1''", "a2''"],
        }
    )
    inspections = pl.DataFrame(
        {
            "shipment_id": ["A", "B", "A", "A"],
            "reported_at": [at + timedelta(days=d) for d in (9, 5, 7, 9)],
            "positive": [False, True, True, True],
        }
    )
    tables = fold_tables(shipments, goods, inspections)
    assert tables.shipments["shipment_id"].to_list() == ["B", "C", "A"]
    assert tables.shipments["declared_at"][2] == at + timedelta(days=4)  # the last row
    # A's last run of lines; C has one row, so both lines stay even out of order.
    assert tables.goods["hs_code"].to_list() == ["b0", "c1", "c0", "a0''", "a1''", "a2''"]
    # A's latest report; of two at the same time, the later row.
    b, a = tables.inspections.rows()
    assert b == ("B", at + timedelta(days=5), True)
    assert a == ("A", at + timedelta(days=9), True)
    assert tables.folded == Folded(shipments=2, goods=3, inspections=2)
    unique = fold_tables(tables.shipments, tables.goods, tables.inspections)
    assert unique.folded.total == 0
    assert unique.goods.equals(tables.goods)
