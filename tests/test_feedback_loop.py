"""Issue 17 end to end: a simulated world lived month by month through a real server, then
retrained from its ledger, judged off-policy and gated, as an analyst types it.

The world (60,000 shipments over eight months, smuggling at 20 times the sourced rates so a
month holds a few hundred positives) gives its first four months to the server as history and to
a small first model, the champion (two leaves, ten rounds: an old, weak model). Months five to
eight arrive through ``ScoreShipments``, a month at a time, under a 10% RED budget of which 80%
explores; every RED and YELLOW decision's outcome is reported through ``RecordOutcome`` as the
ground truth has it before the next month comes. Then:

- ``centinela retrain`` fits a challenger on the history plus the ledger (fitted to the end of
  month six, calibrated on month seven) and a deliberately worse one (two leaves, two rounds);
- ``centinela models compare`` judges each on month eight, traffic neither model was fitted on;
- the estimate of the challenger's recall at capacity must hold, within its interval, the recall
  it really has on that traffic by the simulator's ground truth (for the champion too);
- the gate passes the better challenger and fails the worse one, ``models promote`` refuses the
  worse one (exit 6) and promotes the better one;
- ``models card`` prints a card for every bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from features.tables import table_path
from tests.conftest import server_settings
from tests.feedback_loop import drive_month, history_before
from tests.support import ServerThread, centinela

BUDGET = {"red": 0.10, "yellow": 0.05, "exploration": 0.8, "window": 500}
MONTHS = [datetime(2024, m, 1, tzinfo=UTC) for m in range(1, 10)]
ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Loop:
    root: Path
    world: Path
    history: Path
    registry: Path
    ledger: Path
    config: Path
    monthly: list[pl.DataFrame]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    from training.simulate import simulate_world
    from training.train import train
    from training.train_settings import TrainSettings

    root = tmp_path_factory.mktemp("loop")
    world = root / "world"
    simulate_world(world, shipments=60_000, months=8, seed=5, progress=False, illicit_scale=20)
    history = history_before(world, MONTHS[4], root / "history")
    registry = root / "registry"
    train(history, registry, seed=1, settings=TrainSettings(num_leaves=2, max_rounds=10))
    config = root / "centinela.yaml"
    config.write_text(yaml.safe_dump({"lane_budgets": {"default": BUDGET}}))
    settings = server_settings(
        registry, root / "server", data_dir=history, lane_budgets={"default": BUDGET}
    )
    server = ServerThread(settings)
    try:
        assert server.load()
        monthly = [
            drive_month(server, world, MONTHS[m], MONTHS[m + 1]).decisions for m in range(4, 8)
        ]
    finally:
        server.stop()
    return Loop(root, world, history, registry, settings.ledger_path, config, monthly)


def _json(*args: str) -> dict:
    done = centinela(*args, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def _retrain(loop: Loop, *extra: str) -> str:
    out = _json(
        "retrain",
        "--data", str(loop.history),
        "--ledger", str(loop.ledger),
        "--registry", str(loop.registry),
        "--seed", "1",
        "--train-until", "2024-06-30",
        "--valid-until", "2024-07-31",
        *extra,
    )  # fmt: skip
    assert out["promoted"] is False  # a challenger waits for the gate
    return str(out["version"])


def _compare(loop: Loop, version: str) -> tuple[dict, pl.DataFrame]:
    selections = loop.root / f"{version}-selections.parquet"
    out = _json(
        "models", "compare", version,
        "--ledger", str(loop.ledger),
        "--data", str(loop.history),
        "--registry", str(loop.registry),
        "--config", str(loop.config),
        "--selections", str(selections),
    )  # fmt: skip
    truth = pl.read_parquet(table_path(loop.world, "truth")).select("shipment_id", "illicit")
    return out["verdict"], pl.read_parquet(selections).join(truth, on="shipment_id")


def _true_recall(judged: pl.DataFrame, side: str) -> float:
    return float(
        judged.filter(pl.col(f"{side}_selected"))["illicit"].sum() / judged["illicit"].sum()
    )


def _check(verdict: dict, name: str) -> dict:
    return next(c for c in verdict["checks"] if c["name"] == name)


def test_the_loop_logged_what_off_policy_evaluation_needs(loop: Loop) -> None:
    decisions = pl.concat(loop.monthly)
    history = pl.read_parquet(table_path(loop.history, "shipments"))
    assert decisions.height + history.height == 60_000
    assert decisions["random_selection"].sum() > 1_000  # exploration ran
    explored = decisions.filter(pl.col("random_selection"))
    # ...and recorded the draw's small probability (higher only near the model's threshold)
    assert explored["propensity"].median() < 0.2
    assert (decisions.filter(pl.col("lane") == "LANE_GREEN")["propensity"] > 0).all()


def test_a_better_challenger_is_estimated_truly_and_promoted(loop: Loop) -> None:
    challenger = _retrain(loop)
    verdict, judged = _compare(loop, challenger)
    assert verdict["champion"] == "v0001"
    assert judged["declared_at"].min() >= MONTHS[7]  # month eight: neither model fitted on it
    truth = {side: _true_recall(judged, side) for side in ("challenger", "champion")}
    assert truth["challenger"] > truth["champion"] + 0.10  # genuinely better, by ground truth
    comparisons = {c["estimator"]: c for c in verdict["figures"]["comparisons"]["comparisons"]}
    assert set(comparisons) == set(ESTIMATORS)
    for estimator in ESTIMATORS:
        for side in ("challenger", "champion"):
            recall = comparisons[estimator][side]["overall"]["recall"]
            assert recall["lower"] <= truth[side] <= recall["upper"], (estimator, side, recall)
    assert verdict["passed"], verdict["checks"]
    assert all(c["passed"] for c in verdict["checks"])
    promoted = centinela("models", "promote", challenger, "--registry", str(loop.registry))
    assert promoted.returncode == 0, promoted.stderr
    listed = _json("models", "list", "--registry", str(loop.registry))
    assert [r["version"] for r in listed if r["promoted"]] == [challenger]


def test_a_worse_challenger_is_refused(loop: Loop) -> None:
    worse_params = loop.root / "worse.yaml"
    worse_params.write_text("num_leaves: 2\nmax_rounds: 2\n")
    worse = _retrain(loop, "--params", str(worse_params))
    champion = _json("models", "list", "--registry", str(loop.registry))
    against = next(r["version"] for r in champion if r["promoted"])
    verdict, judged = _compare(loop, worse)
    assert verdict["champion"] == against
    assert _true_recall(judged, "challenger") < _true_recall(judged, "champion")
    assert not verdict["passed"]
    assert not _check(verdict, "better at capacity")["passed"]
    refused = centinela("models", "promote", worse, "--registry", str(loop.registry))
    assert refused.returncode == 6, refused.stderr + refused.stdout
    assert "better at capacity" in refused.stderr + refused.stdout
    listed = _json("models", "list", "--registry", str(loop.registry))
    assert [r["version"] for r in listed if r["promoted"]] == [against]


def test_every_bundle_has_a_card(loop: Loop) -> None:
    versions = [r["version"] for r in _json("models", "list", "--registry", str(loop.registry))]
    assert versions[0] == "v0001"
    for version in versions:
        card = centinela("models", "card", version, "--registry", str(loop.registry))
        assert card.returncode == 0, card.stderr
        assert version in card.stdout
        assert "gate" in card.stdout.lower()
        retrained = "Trained by `centinela retrain`" in card.stdout
        assert retrained == (version != "v0001")  # the champion came from the history alone
        if retrained:
            assert str(loop.ledger) in card.stdout


def test_compare_refuses_a_period_a_model_was_fitted_on(loop: Loop) -> None:
    judged = centinela(
        "models", "compare", "v0001", "--against", "v0001",
        "--ledger", str(loop.ledger),
        "--data", str(loop.history),
        "--registry", str(loop.registry),
        "--from", "2024-03-01",
    )  # fmt: skip
    assert judged.returncode == 3, judged.stderr
    assert "starts inside model v0001's validation window" in judged.stderr
    assert not (loop.registry / "v0001" / "gate.json").exists()  # nothing judged, nothing kept
