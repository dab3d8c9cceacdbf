"""Benchmark the simulator: shipments per second and peak memory, against a same-run baseline.

The baseline is the same generator at a tenth of the size, run first in the same process: if
generation is linear, both rates agree (ratio near 1); a ratio well below 1 means something grows
faster than the data (a per-row loop, a global sort, memory that is not released per chunk).

    .venv/bin/python -m bench.simulate [--shipments 1000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from training.simulate import simulate_world


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(out: Path, shipments: int) -> tuple[float, int]:
    started = time.perf_counter()
    summary = simulate_world(out, shipments=shipments, seed=7, progress=False)
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in summary.paths.values())
    return elapsed, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    args = parser.parse_args()
    full = args.shipments
    baseline = max(1_000, full // 10)
    with tempfile.TemporaryDirectory() as tmp:
        base_s, base_bytes = timed(Path(tmp) / "baseline", baseline)
        base_rss = peak_rss_mb()
        full_s, full_bytes = timed(Path(tmp) / "full", full)
        full_rss = peak_rss_mb()
    base_rate, full_rate = baseline / base_s, full / full_s
    print(
        f"{'run':<10}{'shipments':>12}{'seconds':>10}{'shipments/s':>14}{'MB on disk':>12}"
        f"{'peak RSS MB':>13}"
    )
    print(
        f"{'baseline':<10}{baseline:>12,}{base_s:>10.2f}{base_rate:>14,.0f}"
        f"{base_bytes / 1e6:>12.1f}{base_rss:>13.0f}"
    )
    print(
        f"{'full':<10}{full:>12,}{full_s:>10.2f}{full_rate:>14,.0f}"
        f"{full_bytes / 1e6:>12.1f}{full_rss:>13.0f}"
    )
    print(
        f"throughput ratio full/baseline: {full_rate / base_rate:.2f} (1.0 = linear scaling); "
        f"time ratio {full_s / base_s:.1f}x for {full / baseline:.0f}x the shipments"
    )


if __name__ == "__main__":
    main()
