"""``bench.ceiling``: the full-information ceiling on a tiny, dense simulated world."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from bench.ceiling import CONCEALMENT, MODELS, SHOWN_BUDGETS, SIGNALS
from scoring.registry import Registry
from tests.support import centinela
from training.train import train


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 shipments at ten times the sourced illicit rates: every pattern in the window."""
    out = tmp_path_factory.mktemp("ceiling") / "world"
    done = centinela(
        "simulate", "--out", str(out), "--shipments", "3000", "--seed", "3",
        "--illicit-scale", "10",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def result(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ceiling-json") / "ceiling.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ceiling", "--data", str(world), "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "recall against truth at 2.0% of the window" in done.stdout
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def windows(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, datetime]:
    """The ends of the training and validation windows of ``centinela train``'s own bundle."""
    root = tmp_path_factory.mktemp("ceiling-registry")
    version = train(world, root, seed=7).version
    ends = Registry(root).load(version).meta.windows
    return {name: datetime.fromisoformat(ends[name][1]) for name in ("train", "valid")}


def _shipments(world: Path) -> pl.DataFrame:
    shipments = pl.read_parquet(world / "shipments.parquet")
    truth = pl.read_parquet(world / "truth.parquet")
    return shipments.join(truth, on="shipment_id", how="left")


def test_pattern_counts_are_truths_in_the_evaluated_window(
    world: Path, result: dict[str, Any], windows: dict[str, datetime]
) -> None:
    unseen = _shipments(world).filter(pl.col("declared_at") > windows["valid"])
    expected = {
        str(p): int(n)
        for p, n in unseen.filter(pl.col("illicit")).group_by("pattern").len().iter_rows()
    }
    assert len(expected) == 6  # the world puts every pattern in the window
    assert result["window"]["shipments"] == unseen.height
    assert result["window"]["illicit"] == sum(expected.values())
    recall = result["recall"]
    assert set(recall) == {"all", *expected}
    assert {p: recall[p]["positives"] for p in expected} == expected
    assert recall["all"]["positives"] == sum(expected.values())


def test_recall_is_found_over_positives_and_grows_with_the_budget(
    result: dict[str, Any],
) -> None:
    for table in result["recall"].values():
        assert list(table["budgets"]) == [str(b) for b in SHOWN_BUDGETS]
        for model in MODELS:
            found = [table["budgets"][str(b)][model]["found"] for b in SHOWN_BUDGETS]
            assert found == sorted(found)
            for budget in SHOWN_BUDGETS:
                cell = table["budgets"][str(budget)][model]
                assert 0 <= cell["found"] <= table["positives"]
                assert 0.0 <= cell["recall"] <= 1.0
                assert cell["recall"] == pytest.approx(cell["found"] / table["positives"])


def test_full_information_models_are_labelled_by_truth(
    world: Path, result: dict[str, Any], windows: dict[str, datetime]
) -> None:
    shipments = _shipments(world)
    training = shipments.filter(pl.col("declared_at") <= windows["train"])
    inspections = pl.read_parquet(world / "inspections.parquet").join(
        training.select("shipment_id"), on="shipment_id", how="semi"
    )
    models = result["models"]
    for name in ("full", "full+carrier"):
        assert models[name]["trainRows"] == training.height
        assert models[name]["trainPositives"] == int(training["illicit"].sum())
    assert models["normal"]["trainRows"] == inspections.height
    assert models["normal"]["trainPositives"] == int(inspections["positive"].sum())
    assert models["full"]["trainPositives"] > models["normal"]["trainPositives"]
    assert result["extraFeatures"] == [
        "carrier_age_days", "carrier_count_30d", "carrier_count_90d", "carrier_count_365d",
        "carrier_inspections", "carrier_positives", "carrier_positive_rate",
        "carrier_days_since_positive",
        "conveyance_age_days", "conveyance_count_30d", "conveyance_count_90d",
        "conveyance_count_365d", "conveyance_inspections", "conveyance_positives",
        "conveyance_positive_rate", "conveyance_days_since_positive",
    ]  # fmt: skip


def test_concealment_breakdown_covers_every_load(result: dict[str, Any]) -> None:
    concealment = result["concealment"]
    loads = concealment["loads"]
    assert len(loads) == result["recall"][CONCEALMENT]["positives"] > 0
    at_two = result["recall"][CONCEALMENT]["budgets"]["0.02"]
    groups = {g["group"]: g for g in concealment["groups"]}
    for model in MODELS:
        assert groups["all"]["found"][model] == at_two[model]["found"]
        assert sum(load["found"][model] for load in loads) == at_two[model]["found"]
        for load in loads:
            assert load["found"][model] == (load["rank"][model] <= concealment["selected"])
    for signal in SIGNALS:
        assert groups[f"with {signal}"]["loads"] + groups[f"without {signal}"]["loads"] == len(
            loads
        )
    assert sum(groups[f"{n} signal{'' if n == 1 else 's'}"]["loads"] for n in range(5)) == len(
        loads
    )
    # The simulator's plan, replayed from the manifest, drew every load of the window.
    assert all(load["drawn"] is not None for load in loads)
    for signal, counts in concealment["agreement"].items():
        drawn = sum(load["drawn"][signal] for load in loads)
        assert counts["both"] + counts["drawnOnly"] == drawn


def test_a_world_without_truth_is_refused_naming_the_table(world: Path, tmp_path: Path) -> None:
    for name in ("shipments", "goods", "inspections"):
        (tmp_path / f"{name}.parquet").symlink_to(world / f"{name}.parquet")
    done = subprocess.run(
        [sys.executable, "-m", "bench.ceiling", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert f"{tmp_path / 'truth.parquet'}: no ground truth" in done.stderr
