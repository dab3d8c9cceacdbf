"""Benchmark the simulator: shipments per second and peak memory, against a same-run baseline.

The baseline is the same generator at a tenth of the size, run first in the same process: if
generation is linear, both rates agree (ratio near 1); a ratio well below 1 means something grows
faster than the data (a per-row loop, a global sort, memory that is not released per chunk).

    .venv/bin/python -m bench.simulate [--shipments 1000000]
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import scaling_benchmark
from training.simulate import simulate_world


def timed(out: Path, shipments: int) -> tuple[float, int]:
    """Seconds to simulate, and the bytes written."""
    started = time.perf_counter()
    summary = simulate_world(out, shipments=shipments, seed=7, progress=False)
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in summary.paths.values())
    return elapsed, size


def main() -> None:
    scaling_benchmark(
        __doc__,
        timed,
        smallest=1_000,
        columns=[("MB on disk", 12, lambda run: f"{run.result / 1e6:.1f}")],
        note=lambda base, full: (
            f"time ratio {full.seconds / base.seconds:.1f}x for "
            f"{full.shipments / base.shipments:.0f}x the shipments"
        ),
    )


if __name__ == "__main__":
    main()
