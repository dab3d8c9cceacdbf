"""Benchmark ``train``: seconds and peak memory to train on a simulated world, against a
same-run baseline at a tenth of the size (the target: 1M shipments in at most 2 minutes).

Simulation is not timed; the clock covers what ``centinela train`` does: reading the tables,
watchlist matching, point-in-time features, LightGBM with early stopping, calibration, the
bundle. If training scales linearly, the throughput ratio is near 1.

    .venv/bin/python -m bench.training [--shipments 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.simulate import peak_rss_mb
from training.simulate import simulate_world
from training.train import TrainResult, train

TARGET_SECONDS_PER_MILLION = 120.0


def timed(root: Path, shipments: int) -> tuple[float, TrainResult]:
    data = root / "world"
    simulate_world(data, shipments=shipments, seed=3, progress=False)
    started = time.perf_counter()
    result = train(data, root / "registry", seed=3)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    args = parser.parse_args()
    full = args.shipments
    baseline = max(20_000, full // 10)
    with tempfile.TemporaryDirectory() as tmp:
        base_s, base_result = timed(Path(tmp) / "baseline", baseline)
        base_rss = peak_rss_mb()
        full_s, full_result = timed(Path(tmp) / "full", full)
        full_rss = peak_rss_mb()
    base_rate, full_rate = baseline / base_s, full / full_s
    print(
        f"{'run':<10}{'shipments':>12}{'seconds':>10}{'shipments/s':>14}{'rounds':>8}"
        f"{'test PR-AUC':>13}{'peak RSS MB':>13}"
    )
    for name, n, secs, rate, result, rss in (
        ("baseline", baseline, base_s, base_rate, base_result, base_rss),
        ("full", full, full_s, full_rate, full_result, full_rss),
    ):
        print(
            f"{name:<10}{n:>12,}{secs:>10.2f}{rate:>14,.0f}{result.rounds:>8}"
            f"{result.metrics['test_pr_auc']:>13.3f}{rss:>13.0f}"
        )
    budget = TARGET_SECONDS_PER_MILLION * full / 1_000_000
    print(
        f"throughput ratio full/baseline: {full_rate / base_rate:.2f} (1.0 = linear scaling); "
        f"full run used {full_s / budget:.0%} of its {budget:.0f} s target"
    )


if __name__ == "__main__":
    main()
