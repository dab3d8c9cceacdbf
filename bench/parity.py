"""Live against bulk at scale: the newest ``--live`` shipments of a ``--world``-shipment
simulated world scored one at a time through the live path, the whole world in bulk, features
compared bit for bit and decisions one by one (tests/parity.py; the test suite runs 1,000).

Prints how many matched and what each path took; exits non-zero on the first difference.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.world import trained_world
from tests.parity import check_live_matches_bulk


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parity", description=__doc__)
    parser.add_argument("--world", type=int, default=120_000, help="shipments to simulate")
    parser.add_argument("--live", type=int, default=100_000, help="newest shipments scored live")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world, registry = trained_world(Path(tmp), args.world, seed=11)
        parity = check_live_matches_bulk(world, registry, live_count=args.live)
    print(
        f"parity: {parity.live:,} shipments scored live one at a time match the bulk path bit "
        f"for bit (features) and decision for decision; {parity.with_history:,} of them with a "
        f"consignee seen in the prior year"
    )
    print(
        f"live {parity.live / parity.live_seconds:,.0f} shipments/s (one per call, in process) | "
        f"bulk {args.world / parity.bulk_seconds:,.0f} shipments/s (whole tables)"
    )


if __name__ == "__main__":
    main()
