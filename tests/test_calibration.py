"""Calibration that means probability (issue 15): a monotone, floored calibration fitted on the
validation window, chosen by held-out Brier score, sane when the window has few positives, and
old Platt bundles scoring exactly as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from features.errors import ModelError
from scoring.bundle import META_FILE, REFERENCE_FILE, load_bundle
from scoring.calibration import PROBABILITY_FLOOR, TIE_BREAK, Calibration
from scoring.registry import Registry
from tests.support import centinela
from tests.test_reload_safety import edit_meta, reseal
from training.calibrate import (
    MIN_ISOTONIC_POSITIVES,
    PLATT_INTERCEPT,
    PLATT_SLOPE,
    fit_calibration,
    fit_isotonic,
)
from training.train import train
from training.train_settings import TrainSettings


def rare_positives(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores skewed toward 0 and outcomes at a true rate that raw overstates about 2.5
    times: about half a percent positive, as inspections of a customs service find them."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(0.5, 40.0, size=n)
    truth = np.clip(0.3 * raw + 3.0 * raw**2, 0, 1)
    return raw, (rng.random(n) < truth).astype(np.int64)


def test_isotonic_table_is_monotone_floored_and_keeps_the_ranking() -> None:
    raw, y = rare_positives(20_000, seed=3)
    table = fit_isotonic(raw, y, floor=PROBABILITY_FLOOR)
    xs, ps = np.array(table.knots_raw), np.array(table.knots_probability)
    assert len(xs) >= 5
    assert (np.diff(xs) > 0).all()
    assert (np.diff(ps) >= 0).all()
    assert ps.min() >= PROBABILITY_FLOOR
    assert ps.max() <= 1 - TIE_BREAK
    # No block of 0 positives becomes a probability of 0, nor one of a single positive 1.
    assert 0 < ps[0] < 0.01
    assert ps[-1] < 1
    grid = np.concatenate([[0.0, 1e-12], np.sort(raw), [0.999, 1.0]])
    calibrated = table.apply(grid)
    assert np.isfinite(calibrated).all()
    assert calibrated.min() >= PROBABILITY_FLOOR
    assert calibrated.max() <= 1.0
    # Strictly increasing wherever raw is: isotonic blocks do not tie, nor do the flat ends.
    distinct = np.diff(grid) > 0
    assert (np.diff(calibrated)[distinct] > 0).all()
    # And it is a calibration: mean predicted matches the observed rate on fresh data.
    fresh_raw, fresh_y = rare_positives(20_000, seed=4)
    assert table.apply(fresh_raw).mean() == pytest.approx(fresh_y.mean(), rel=0.15)
    assert Calibration.from_json(table.to_json()) == table


def test_the_held_out_choice_beats_raw_probabilities_and_is_recorded() -> None:
    raw, y = rare_positives(20_000, seed=5)
    fitted = fit_calibration(raw, y)
    assert fitted.calibration.method in ("isotonic", "beta", "platt")
    assert fitted.metrics["calibration_fallback"] == 0.0
    held_out = {
        k.removeprefix("calibration_heldout_brier_"): v
        for k, v in fitted.metrics.items()
        if k.startswith("calibration_heldout_brier_")
    }
    assert set(held_out) == {"isotonic", "beta", "platt"}
    assert held_out[fitted.calibration.method] == min(held_out.values())
    fresh_raw, fresh_y = rare_positives(50_000, seed=6)
    brier_raw = np.mean((fresh_raw - fresh_y) ** 2)
    brier = np.mean((fitted.calibration.apply(fresh_raw) - fresh_y) ** 2)
    assert brier < brier_raw


def test_a_window_the_model_separates_gets_bounded_finite_probabilities() -> None:
    # Two positives scored above every negative: unbounded Platt scaling runs a to infinity and
    # gives negatives probabilities such as 1e-50.
    raw = np.concatenate([np.linspace(0.008, 0.012, 300), [0.02, 0.021]])
    y = np.concatenate([np.zeros(300, dtype=np.int64), [1, 1]])
    fitted = fit_calibration(raw, y)
    calibration = fitted.calibration
    assert fitted.metrics["calibration_fallback"] == 1.0
    assert MIN_ISOTONIC_POSITIVES > 2
    assert calibration.method == "platt"
    assert PLATT_SLOPE[0] <= calibration.a <= PLATT_SLOPE[1]
    assert abs(calibration.b) <= PLATT_INTERCEPT
    scores = calibration.apply(np.array([1e-12, 0.001, 0.01, 0.02, 0.5, 1.0]))
    assert np.isfinite(scores).all()
    assert (scores >= calibration.floor).all()
    assert calibration.floor > 0
    assert (np.diff(scores) >= 0).all()
    assert scores[-1] <= 1 - calibration.floor


def test_no_positives_keeps_raw_probabilities_above_the_floor() -> None:
    fitted = fit_calibration(np.array([1e-30, 0.01, 0.2]), np.zeros(3))
    assert fitted.calibration.method == "identity"
    assert fitted.metrics["calibration_fallback"] == 1.0
    low, mid, high = fitted.calibration.apply(np.array([1e-30, 1e-20, 0.2])).tolist()
    assert low == pytest.approx(PROBABILITY_FLOOR, rel=1e-9)  # never below the floor...
    assert low < mid  # ...yet still in the raw scores' order (a clip would tie them)
    assert high == pytest.approx(0.2, abs=2 * PROBABILITY_FLOOR)


def test_five_rounds_on_the_small_world_score_finite_sane_probabilities(
    world: Path, tmp_path: Path
) -> None:
    result = train(world, tmp_path / "r", seed=1, settings=TrainSettings(max_rounds=5))
    bundle = Registry(tmp_path / "r").load(result.version)
    reference = json.loads((result.path / REFERENCE_FILE).read_text(encoding="utf-8"))
    scores = np.array(reference["scores"])
    assert np.isfinite(scores).all()
    assert scores.min() >= bundle.meta.calibration.floor >= 1e-6
    assert scores.max() < 1
    assert result.metrics["calibration_fallback"] in (0.0, 1.0)
    assert bundle.meta.calibration.describe() == result.calibration


def legacy_platt(raw: np.ndarray, a: float, b: float) -> np.ndarray:
    """Platt scaling exactly as bundles before issue 15 applied it."""
    p = np.clip(raw, 1e-9, 1 - 1e-9)
    with np.errstate(over="ignore"):
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))
    return out


def test_an_old_platt_bundle_loads_and_scores_exactly_as_before(
    registry: Path, tmp_path: Path
) -> None:
    old = tmp_path / "v0001"
    shutil.copytree(registry / "v0001", old)
    a, b = 1.37, 0.41
    reference = json.loads((old / REFERENCE_FILE).read_text(encoding="utf-8"))
    bundle = load_bundle(old)
    matrix = np.array(
        [[np.nan if v is None else v for v in row] for row in reference["rows"]], dtype=np.float64
    )
    raw = np.asarray(bundle.booster.predict(matrix, num_threads=1), dtype=np.float64)
    # The bundle as an older Centinela wrote it: calibration {a, b}, no method, no floor.
    reference["scores"] = legacy_platt(raw, a, b).tolist()
    (old / REFERENCE_FILE).write_text(json.dumps(reference), encoding="utf-8")

    def to_legacy(doc: dict[str, object]) -> None:
        doc["calibration"] = {"a": a, "b": b}

    edit_meta(old, to_legacy)
    reseal(old)
    loaded = load_bundle(old)
    assert loaded.meta.calibration == Calibration(method="platt", a=a, b=b, floor=0.0)
    assert loaded.predict(matrix).tobytes() == legacy_platt(raw, a, b).tobytes()
    # Below any floor of a new bundle: old bundles keep their own scores.
    extreme = np.array([1e-12, 1e-6, 0.5])
    assert loaded.meta.calibrate(extreme).tobytes() == legacy_platt(extreme, a, b).tobytes()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"raw": [0.1, 0.05], "probability": [0.01, 0.02]}, "knots out of order"),
        ({"raw": [0.05, 0.1], "probability": [0.02, 0.01]}, "knots out of order"),
        ({"raw": [0.05, 0.1], "probability": [0.02]}, "2 raw scores and 1 probabilities"),
        ({"raw": [0.05, 0.1], "probability": [0.02, float("nan")]}, "not finite"),
        ({"raw": [0.05, 0.1], "probability": [0.0, 0.5]}, r"outside \[0.0001, 1\]"),
    ],
)
def test_a_damaged_calibration_table_is_refused_by_name(
    registry: Path, tmp_path: Path, table: dict[str, list[float]], problem: str
) -> None:
    copy = tmp_path / "v0001"
    shutil.copytree(registry / "v0001", copy)

    def damage(doc: dict[str, object]) -> None:
        doc["calibration"] = {"method": "isotonic", "floor": 1e-4, "tie_break": 0.0, **table}

    edit_meta(copy, damage)
    reseal(copy)
    with pytest.raises(ModelError, match=f"{META_FILE}: the isotonic calibration table has "):
        load_bundle(copy)
    with pytest.raises(ModelError, match=problem):
        load_bundle(copy)


def test_train_and_evaluate_report_the_calibration_and_a_positive_brier_skill(
    dense_world: Path, tmp_path: Path
) -> None:
    args = ("--data", str(dense_world), "--registry", str(tmp_path / "r"))
    trained = centinela("train", *args, "--seed", "1", "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    meta = Registry(tmp_path / "r").load(result["version"]).meta
    assert result["calibration"] == meta.calibration.describe()
    assert result["metrics"]["test_brier_skill"] > 0
    evaluated = centinela("evaluate", *args, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    calibration = json.loads(evaluated.stdout)["calibration"]
    assert calibration["brierSkill"] > 0
    assert min(b["meanPredicted"] for b in calibration["bins"]) >= meta.calibration.floor
