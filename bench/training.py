"""Benchmark ``train``: seconds and peak memory to train on a simulated world, against a
same-run baseline at a tenth of the size (the target: 1M shipments in at most 2 minutes).

Simulation is not timed; the clock covers what ``centinela train`` does: reading the tables,
watchlist matching, point-in-time features, LightGBM with early stopping, calibration, the
bundle. If training scales linearly, the throughput ratio is near 1.

    .venv/bin/python -m bench.training [--shipments 1000000]
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import Sized, scaling_benchmark
from training.simulate import simulate_world
from training.train import TrainResult, train

TARGET_SECONDS_PER_MILLION = 120.0


def timed(root: Path, shipments: int) -> tuple[float, TrainResult]:
    """Seconds to train on a fresh world of ``shipments`` (simulating it is not timed)."""
    data = root / "world"
    simulate_world(data, shipments=shipments, seed=3, progress=False)
    started = time.perf_counter()
    result = train(data, root / "registry", seed=3)
    return time.perf_counter() - started, result


def used_of_target(base: Sized[TrainResult], full: Sized[TrainResult]) -> str:
    budget = TARGET_SECONDS_PER_MILLION * full.shipments / 1_000_000
    return f"full run used {full.seconds / budget:.0%} of its {budget:.0f} s target"


def main() -> None:
    scaling_benchmark(
        __doc__,
        timed,
        smallest=20_000,
        columns=[
            ("rounds", 8, lambda run: f"{run.result.rounds}"),
            ("test PR-AUC", 13, lambda run: f"{run.result.metrics['test_pr_auc']:.3f}"),
        ],
        note=used_of_target,
    )


if __name__ == "__main__":
    main()
