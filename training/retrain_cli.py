"""``centinela retrain``: a challenger trained on the historical tables plus the ledger's
decisions and outcomes, registered unpromoted (see :mod:`training.retrain`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from training.cli_common import (
    REGISTRY_OPTION,
    TrainOption,
    json_option,
    ledger_option,
    path_option,
    print_json,
    progress_bar,
    run,
    say,
)


def retrain(
    data: Path = typer.Option(
        ..., "--data", help="Directory with the historical canonical tables."
    ),
    ledger: str = ledger_option(
        "The ledger whose decisions and outcomes join the history: a SQLite file or a "
        "postgresql:// URL."
    ),
    registry: Path = REGISTRY_OPTION,
    seed: int = TrainOption.SEED,
    propensity_weights: bool = TrainOption.PROPENSITY_WEIGHTS,
    train_until: datetime | None = TrainOption.TRAIN_UNTIL,
    valid_until: datetime | None = TrainOption.VALID_UNTIL,
    params: Path | None = TrainOption.PARAMS,
    workdir: Path | None = path_option(
        "--workdir", "Keep the merged tables here (default: a temporary directory)."
    ),
    json_out: bool = json_option("the result"),
) -> None:
    """Train a challenger on DATA plus the ledger's decisions and outcomes; never promoted."""
    from training.periods import as_date
    from training.retrain import retrain as run_retrain
    from training.train_output import print_training, training_json
    from training.train_settings import DateSplit, load_train_settings

    def body() -> None:
        split = DateSplit.from_options(as_date(train_until), as_date(valid_until))
        settings = load_train_settings(params)
        with progress_bar("[bold]retraining", "rounds", disable=json_out) as progress:
            task = progress.add_task("train", total=None)
            result = run_retrain(
                data,
                ledger,
                registry,
                seed=seed,
                propensity_weights=propensity_weights,
                settings=settings,
                split=split,
                on_round=lambda done, total: progress.update(task, completed=done, total=total),
                workdir=workdir,
            )
        if json_out:
            print_json({**training_json(result.trained), "tables": result.tables.to_json()})
            return
        ledger_part = result.tables.ledger
        say(
            f"history: {result.tables.history['shipments']:,} shipments; ledger: "
            f"{ledger_part.shipments:,} shipments, {ledger_part.inspections:,} outcomes"
            + (f" ({ledger_part.folded:,} repeated decisions folded)" if ledger_part.folded else "")
        )
        print_training(result.trained)
        say(f"judge it before promoting: centinela models compare {result.trained.version}")

    run(body)
