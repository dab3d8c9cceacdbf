"""``centinela score`` at scale: shipments per second and peak memory on a simulated world,
beside the whole-tables path it replaced (every table in memory, one decision list), in the
same run. Each runs in a child process so its peak RSS is its own.

The issue 11 bar: 50,000 shipments/s on a 1M-shipment world with peak RSS under 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.world import trained_world
from training.simulate import simulate_world

WHOLE = """
import sys
from pathlib import Path
from features.tables import load_tables
from features.watchlist import load_watchlist
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer
from scoring.settings import load_settings
from training.score_cli import _rows
world, registry, out = map(Path, sys.argv[1:4])
watchlist = load_watchlist()
scorer = Scorer.create(
    Registry(registry).load(), watchlist, load_rules(None, watchlist), load_settings(None)
)
tables = load_tables(world, need_inspections=False)
ships = tables.shipments.sort("declared_at", "shipment_id")
_rows(scorer.score_tables(ships, tables.goods, tables.inspections), scorer).write_parquet(out)
"""


def child(argv: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one child process: its own peak, from ``wait4`` on it
    (``RUSAGE_CHILDREN`` would give the largest child of this process so far), or the peak of
    a process it started and waited for, if larger (``centinela score``'s lane process, about
    90 MB, is not)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, argv)
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    centinela = str(Path(sys.executable).parent / "centinela")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, registry = trained_world(root / "training", 20_000, seed=5)
        simulate_world(root / "world", shipments=args.shipments, seed=7, progress=False)
        n = args.shipments
        rows = []
        if args.baseline:  # smaller peak first: ru_maxrss keeps the largest child's
            seconds, rss = child(
                [
                    sys.executable,
                    "-c",
                    WHOLE,
                    str(root / "world"),
                    str(registry),
                    str(root / "whole.parquet"),
                ]
            )
            rows.append(("whole tables (before)", seconds, rss))
        seconds, rss = child(
            [
                centinela,
                "score",
                "--in",
                str(root / "world"),
                "--out",
                str(root / "out.parquet"),
                "--registry",
                str(registry),
            ]
        )
        rows.append(("centinela score (chunks)", seconds, rss))
    print(f"{n:,} shipments")
    for name, seconds, rss in rows:
        rate = n / seconds
        print(f"  {name:26} {rate:>9,.0f} shipments/s  {seconds:7.1f} s  peak RSS {rss:,.0f} MB")
    if len(rows) == 2:
        (_, s0, r0), (_, s1, r1) = rows
        print(f"  chunks / whole tables: {s0 / s1:.2f}x the rate, {r1 / r0:.2f}x the memory")
    print("  bar (issue 11): 50,000 shipments/s, peak RSS < 1,500 MB on 1M shipments")


if __name__ == "__main__":
    main()
