"""What ``train`` and ``retrain`` print: the bundle, its rounds, its test figures, or all of it
as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.cli_common import console, print_json, say

if TYPE_CHECKING:
    from training.train import TrainResult


def training_json(result: TrainResult) -> dict[str, object]:
    """What ``train --json`` prints (and ``retrain --json`` with its tables)."""
    from training.train_settings import split_json

    return {
        "version": result.version,
        "path": str(result.path),
        "promoted": result.promoted,
        "rounds": result.rounds,
        "hit_round_limit": result.hit_round_limit,
        "params": result.settings.model_dump(),
        "split": split_json(result.split),
        "metrics": result.metrics,
        "calibration": result.calibration,
        "folded": result.folded.to_json(),
    }


def print_training(result: TrainResult, json_out: bool = False) -> None:
    """What ``train`` did: the bundle, its rounds (and whether they ran out), its test figures."""
    limit = result.settings.max_rounds
    if json_out:
        print_json(training_json(result))
        return
    if result.folded.total:
        say(result.folded.summary())
    console.print(f"trained [bold]{result.version}[/] in {result.rounds} rounds → {result.path}")
    if result.hit_round_limit:
        say(
            f"[bold yellow]warning:[/] boosting reached the round limit ({limit} rounds) before "
            "early stopping: the model may be under-fitted; raise max_rounds (or learning_rate) "
            "in a --params file"
        )
    for name, value in result.metrics.items():
        if name != "hit_round_limit":
            console.print(f"  {name:>16}: {value:.4f}")
    console.print(f"  calibration: {result.calibration}")
    if result.test_shipments == 0:
        say(
            "no test window: nothing was declared after --valid-until; measure the model with "
            "centinela evaluate on newer data"
        )
    if result.promoted:
        console.print(f"promoted {result.version} (no gate verdict: logged as forced)")
    else:
        console.print(
            f"not promoted; judge it with: centinela models compare {result.version} "
            f"--ledger FILE, then: centinela models promote {result.version}"
        )
