"""``python -m bench.detection``: simulate, train and evaluate each world as an analyst does, and
report recall against truth beside the rules and the watchlist, per world and on average."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.detection import BUDGETS, figures_of, report

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    out = tmp_path_factory.mktemp("detection") / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.detection", "--worlds", "3,4", "--shipments", "6000",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return done.stdout, json.loads(out.read_text())


def test_each_world_is_measured_against_truth_and_the_baselines(
    run: tuple[str, dict[str, object]],
) -> None:
    stdout, figures = run
    worlds = figures["worlds"]
    assert isinstance(worlds, list)
    assert [w["seed"] for w in worlds] == [3, 4]
    for world in worlds:
        assert world["illicit"] > 0
        assert set(world["recall"]) == set(BUDGETS)
        for budget, by_selector in world["recall"].items():
            assert set(by_selector) == {"model", "rules", "watchlist"}
            low, high = world["interval"][budget]
            assert 0 <= low <= by_selector["model"] <= high <= 1
        # recall can only grow with the budget
        model = [world["recall"][b]["model"] for b in BUDGETS]
        assert model == sorted(model)
    lines = stdout.splitlines()
    assert any(line.split()[:1] == ["3"] for line in lines)
    assert any(line.split()[:1] == ["mean"] for line in lines)


def test_the_mean_line_averages_the_worlds() -> None:
    def evaluated(model: float, rules: float, skill: float) -> dict[str, object]:
        cell = {"recall": 0.0, "recallInterval": [0.0, 1.0]}
        budgets = {
            b: {
                "model": {"truth": {**cell, "recall": model}},
                "rules": {"truth": {**cell, "recall": rules}},
                "watchlist": {"truth": {**cell, "recall": 0.1}},
            }
            for b in BUDGETS
        }
        return {
            "budgets": budgets,
            "patterns": {"a": {"0.02": {"model": {"recall": model}}}},
            "shift": {"inWindow": False},
            "calibration": {"brierSkill": skill, "positives": 5},
            "window": {"positives": {"truth": 10}},
        }

    worlds = [figures_of(1, evaluated(0.8, 0.4, 0.3)), figures_of(2, evaluated(0.6, 0.2, 0.5))]
    mean = next(line for line in report(worlds, 1000, 7).splitlines() if line.startswith("  mean"))
    assert "70.0%" in mean
    assert "30.0%" in mean
    assert "0.400" in mean
    assert "2.33x" in mean  # 0.70 / 0.30
    assert "no shift in window" in report(worlds, 1000, 7)
