"""``make bench``: run every benchmark; each prints its figures beside a baseline of the same run.

``--quick`` runs each at a small size (CI uses it to prove the benchmarks work); without it the
sizes are the ones the targets are stated at.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# module, arguments for a full run, arguments for a quick run
BENCHMARKS: tuple[tuple[str, list[str], list[str]], ...] = (
    ("bench.watchlist", [], ["--lines", "20000"]),
    ("bench.simulate", [], ["--shipments", "50000"]),
    ("bench.training", [], ["--shipments", "100000"]),
    ("bench.customs", [], ["--seeds", "1"]),
    ("bench.detection", [], ["--worlds", "11", "--shipments", "20000"]),
    ("bench.scoring", [], ["--requests", "300"]),
    ("bench.history", [], ["--sizes", "10000,100000"]),
    ("bench.bulk", [], ["--shipments", "20000"]),
    ("bench.parity", [], ["--world", "8000", "--live", "2000"]),
    ("bench.memory", [], ["--decisions", "2000", "--world", "5000"]),
    ("bench.ledger", [], ["--decisions", "300", "--world", "3000", "--latency-rows", "100"]),
    (
        "bench.peers",
        [],
        ["--calls", "200", "--calls-one", "100", "--manifest", "1000", "--reps", "1"],
    ),
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("only", nargs="*", help="run only these benchmarks (e.g. watchlist)")
    args = parser.parse_args()
    failed = []
    for module, full, quick in BENCHMARKS:
        if args.only and module.split(".")[-1] not in args.only:
            continue
        print(f"\n=== {module} {'(quick)' if args.quick else ''}", flush=True)
        code = subprocess.call([sys.executable, "-m", module, *(quick if args.quick else full)])
        if code != 0:
            failed.append(module)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
