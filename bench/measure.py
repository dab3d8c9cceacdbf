"""What the benchmarks measure with: peak memory, latency percentiles, and one run at full size
beside a baseline at a tenth of it, in the same process, with its table."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

CENTINELA = str(Path(sys.executable).parent / "centinela")
"""The CLI of the running interpreter's environment, as an analyst runs it."""


def cli(*args: str) -> str:
    """``centinela ARGS`` as an analyst runs it; its stdout, or exit with its error."""
    done = subprocess.run([CENTINELA, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"centinela {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def cli_json(*args: str) -> dict[str, Any]:
    """``centinela ARGS --json``: its JSON answer, or exit with its error."""
    result: dict[str, Any] = json.loads(cli(*args, "--json"))
    return result


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> str:
    """Latencies in seconds as ``p50=…ms p95=…ms p99=…ms``."""
    ms = np.array(samples) * 1000
    return " ".join(f"p{q}={np.percentile(ms, q):.2f}ms" for q in (50, 95, 99))


@dataclass(frozen=True)
class Sized(Generic[T]):
    """One run of a benchmark at a size: what it took and what it returned."""

    name: str  # "baseline" or "full"
    shipments: int
    seconds: float
    result: T
    rss_mb: float  # peak resident set of the process after this run

    @property
    def rate(self) -> float:
        """Shipments per second."""
        return self.shipments / self.seconds


def against_baseline(
    run: Callable[[Path, int], tuple[float, T]], full: int, smallest: int
) -> tuple[Sized[T], Sized[T]]:
    """``run(directory, shipments)`` (which returns its seconds and result) at a tenth of ``full``
    but at least ``smallest``, then at ``full``, each in a fresh directory. If the work scales
    linearly, both rates agree."""
    runs: list[Sized[T]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, n in (("baseline", max(smallest, full // 10)), ("full", full)):
            seconds, result = run(Path(tmp) / name, n)
            runs.append(Sized(name, n, seconds, result, peak_rss_mb()))
    return runs[0], runs[1]


# A column of the scaling table beside the common ones: heading, width, the cell of one run.
Column = tuple[str, int, Callable[[Sized[T]], str]]


def scaling_benchmark(
    doc: str,
    run: Callable[[Path, int], tuple[float, T]],
    smallest: int,
    columns: Sequence[Column[T]],
    note: Callable[[Sized[T], Sized[T]], str],
) -> None:
    """The command line of a benchmark run at ``--shipments`` beside its baseline (see
    :func:`against_baseline`): a table of both runs (shipments, seconds, rate, the ``columns``,
    peak RSS), then their throughput ratio and ``note`` on the two."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    args = parser.parse_args()
    base, full = against_baseline(run, args.shipments, smallest)
    headings = "".join(f"{heading:>{width}}" for heading, width, _ in columns)
    print(
        f"{'run':<10}{'shipments':>12}{'seconds':>10}{'shipments/s':>14}{headings}"
        f"{'peak RSS MB':>13}"
    )
    for sized in (base, full):
        cells = "".join(f"{cell(sized):>{width}}" for _, width, cell in columns)
        print(
            f"{sized.name:<10}{sized.shipments:>12,}{sized.seconds:>10.2f}{sized.rate:>14,.0f}"
            f"{cells}{sized.rss_mb:>13.0f}"
        )
    print(
        f"throughput ratio full/baseline: {full.rate / base.rate:.2f} (1.0 = linear scaling); "
        + note(base, full)
    )
