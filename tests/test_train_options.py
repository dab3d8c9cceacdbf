"""``train --train-until/--valid-until/--params`` and ``evaluate --from/--until``, run as an
analyst types them: windows fixed by date, boosting settings from a file, a round limit that is
never silent, and every bad option named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from scoring.registry import Registry
from tests.support import centinela

# The session world (tests/conftest.py) is declared from 2024-01-01 to 2025-12-31.
TRAIN_UNTIL, VALID_UNTIL = "2025-03-31", "2025-08-31"


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_dates_fix_the_windows_and_the_settings_file_steers_boosting(
    world: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    params = tmp_path / "params.yaml"
    params.write_text("learning_rate: 0.1\nnum_leaves: 7\nmax_rounds: 20\n")
    dates = ("--train-until", TRAIN_UNTIL, "--valid-until", VALID_UNTIL)
    args = ("--data", str(world), "--registry", str(registry))

    trained = centinela("train", *args, *dates, "--params", str(params), "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    # 20 rounds cannot outlast early stopping's 50 rounds of patience: the limit ended it.
    assert result["hit_round_limit"] is True
    assert result["split"] == {"train_until": TRAIN_UNTIL, "valid_until": VALID_UNTIL}
    assert result["params"]["max_rounds"] == 20

    meta = Registry(registry).load(result["version"]).meta
    assert meta.metrics["hit_round_limit"] == 1.0
    assert (meta.params["learning_rate"], meta.params["num_leaves"]) == (0.1, 7)
    assert (meta.params["max_rounds"], meta.params["early_stopping_rounds"]) == (20, 50)
    assert meta.params["split"] == result["split"]
    windows = {name: (_day(a), _day(b)) for name, (a, b) in meta.windows.items()}
    assert windows["train"][1] < datetime(2025, 4, 1, tzinfo=UTC) <= windows["valid"][0]
    assert windows["valid"][1] < datetime(2025, 9, 1, tzinfo=UTC) <= windows["test"][0]

    text = centinela("train", *args, *dates, "--params", str(params))
    assert text.returncode == 0, text.stderr
    assert "reached the round limit (20 rounds) before early stopping" in text.stdout

    evaluated = centinela(
        "evaluate", *args, "--model", result["version"], "--from", "2025-10-01",
        "--until", "2025-11-30", "--json",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    window = json.loads(evaluated.stdout)["window"]
    declared = pl.read_parquet(world / "shipments.parquet")["declared_at"]
    in_period = declared.is_between(
        datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), closed="left"
    )
    assert window["shipments"] == int(in_period.sum())
    assert "2025-10-01" <= window["start"][:10] <= window["end"][:10] <= "2025-11-30"

    seen = centinela("evaluate", *args, "--model", result["version"], "--from", "2025-08-01")
    assert seen.returncode == 3
    assert "--from 2025-08-01 starts inside model v0001's validation window" in seen.stderr
    empty = centinela("evaluate", *args, "--model", result["version"], "--from", "2026-02-01")
    assert empty.returncode == 3
    assert "no shipments declared from 2026-02-01" in empty.stderr


def test_without_options_training_is_what_it_was(world: Path, tmp_path: Path) -> None:
    defaults = tmp_path / "defaults.yaml"
    defaults.write_text(
        "learning_rate: 0.05\nnum_leaves: 15\nmin_data_in_leaf: 20\nmax_rounds: 5000\n"
        "early_stopping_rounds: 50\n"
    )
    plain = centinela("train", "--data", str(world), "--registry", str(tmp_path / "a"), "--json")
    steered = centinela(
        "train", "--data", str(world), "--registry", str(tmp_path / "b"),
        "--params", str(defaults), "--json",
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert steered.returncode == 0, steered.stderr
    result = json.loads(plain.stdout)
    # Stopped by the limit exactly when early stopping's patience would have run past it.
    assert result["hit_round_limit"] is (result["rounds"] + 50 > 5000)
    assert result["split"] == {"train_share": 0.7, "valid_share": 0.15}
    model = (tmp_path / "a" / "v0001" / "model.txt").read_text()
    assert (tmp_path / "b" / "v0001" / "model.txt").read_text() == model


def test_a_bad_settings_file_is_named_with_every_bad_key(world: Path, tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("learning_rat: 0.1\nnum_leaves: 1\nmax_rounds: many\n")
    result = centinela(
        "train", "--data", str(world), "--registry", str(tmp_path), "--params", str(bad)
    )
    assert result.returncode == 3
    assert f"invalid training settings file {bad}" in result.stderr
    assert "learning_rat: unknown setting; did you mean 'learning_rate'?" in result.stderr
    assert "num_leaves: Input should be greater than or equal to 2" in result.stderr
    assert "max_rounds: Input should be a valid integer" in result.stderr
    assert not (tmp_path / "v0001").exists()

    bad.write_text("- learning_rate\n")
    listed = centinela(
        "train", "--data", str(world), "--registry", str(tmp_path), "--params", str(bad)
    )
    assert listed.returncode == 3
    assert f"training settings file {bad} must be a mapping" in listed.stderr


def test_dates_that_leave_a_window_empty_are_named(world: Path, tmp_path: Path) -> None:
    def train(*dates: str) -> tuple[int, str]:
        result = centinela("train", "--data", str(world), "--registry", str(tmp_path), *dates)
        return result.returncode, result.stderr

    code, err = train("--train-until", "2023-06-30", "--valid-until", "2024-06-30")
    assert code == 3
    assert "--train-until 2023-06-30 leaves the training window empty" in err
    assert "the data runs 2024-01-01 to 2025-12-31" in err

    code, err = train("--train-until", "2025-12-31", "--valid-until", "2026-03-31")
    assert code == 3
    assert "leave the validation window empty" in err

    code, err = train("--train-until", "2025-03-31")
    assert code == 3
    assert "give both --train-until and --valid-until" in err

    code, err = train("--train-until", "2025-03-31", "--valid-until", "2025-01-31")
    assert code == 3
    assert "--valid-until 2025-01-31 must be after --train-until 2025-03-31" in err

    code, err = train("--train-until", "31/03/2025", "--valid-until", "2025-08-31")
    assert code == 2
    assert "--train-until" in err
    assert not (tmp_path / "v0001").exists()
