"""Benchmark: live entity history (``EntityState.history_for``) against how busy an entity is.

Run ``python -m bench.history [--sizes 10000,100000,1000000] [--calls N]``. For each size N it
builds a live state in which one shipper, consignee, broker, route and heading have N earlier
shipments each (declared over the last 400 days, so most fall in the year the volume
counts look back on, with watched route families for the network features) and N reported
outcomes, credited in time order. It then times ``history_for`` on a one-row batch of those
entities, declared just after the last of them: a new shipment id, and a re-scored one (an id
from the middle of the history, whose own record and outcome must be left out). Each figure is
the median of ``--calls`` calls; the ratio is to the smallest N. The target of issue 11: at 1M
prior events ``history_for`` costs at most 1.5x what it costs at 10k. Not a test: figures go to
stdout.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from features.history import OUTCOME_KEYS, Keyed
from features.state import EntityState

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_US = 400 * 86_400_000_000
PRIOR = 0.02
KEYS = {
    "shipper": "SHP-BUSY",
    "consignee": "CNE-BUSY",
    "broker": "BRK-BUSY",
    "route": "CN>MXZLO",
    "heading": "2933",
}
FAMILY_CYCLE: tuple[tuple[str, ...], ...] = (
    (),
    ("fentanyl-npp-anpp",),
    ("fentanyl-reagent",),
    ("meth-p2p", "pill-press"),
    (),
)
START_US = (START - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def busy_state(n: int) -> EntityState:
    """A state in which one entity of each kind has ``n`` shipments and ``n`` outcomes."""
    declared = START_US + np.arange(n, dtype=np.int64) * (SPAN_US // n)
    ids = [f"H{i}" for i in range(n)]
    state = EntityState.empty()
    state.add_shipments(
        Keyed(
            shipment_id=ids,
            declared_at=declared,
            keys={e: [KEYS[e]] * n for e in OUTCOME_KEYS},
            families=[FAMILY_CYCLE[i % len(FAMILY_CYCLE)] for i in range(n)],
        )
    )
    for i, shipment_id in enumerate(ids):  # reported a day after declaration, in time order
        reported = START + timedelta(microseconds=int(declared[i] - START_US), days=1)
        state.add_outcome(shipment_id, reported, i % 7 == 0)
    return state


def one_row(shipment_id: str) -> Keyed:
    return Keyed(
        shipment_id=[shipment_id],
        declared_at=np.array([START_US + SPAN_US + 2 * 86_400_000_000], dtype=np.int64),
        keys={e: [KEYS[e]] for e in OUTCOME_KEYS},
        families=[("fentanyl-npp-anpp",)],
    )


def median_us(state: EntityState, batch: Keyed, calls: int) -> float:
    for _ in range(min(calls, 50)):  # warm up
        state.history_for(batch, PRIOR)
    samples = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter_ns()
        state.history_for(batch, PRIOR)
        samples[i] = time.perf_counter_ns() - t0
    return float(np.median(samples)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="prior events per entity, comma-separated (the first is the baseline)",
    )
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per figure")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"history_for on a one-row batch, median of {args.calls} calls")
    print(
        f"{'prior events':>12}  {'build s':>8}  {'new id µs':>10}  {'ratio':>6}  "
        f"{'re-scored µs':>12}  {'ratio':>6}"
    )
    base: tuple[float, float] | None = None
    for n in sizes:
        t0 = time.perf_counter()
        state = busy_state(n)
        built = time.perf_counter() - t0
        new = median_us(state, one_row("Q-NEW"), args.calls)
        rescored = median_us(state, one_row(f"H{n // 2}"), args.calls)
        base = base or (new, rescored)
        print(
            f"{n:>12,}  {built:>8.1f}  {new:>10.1f}  {new / base[0]:>5.2f}x  "
            f"{rescored:>12.1f}  {rescored / base[1]:>5.2f}x",
            flush=True,
        )
        del state
    assert base is not None
    worst = max(new / base[0], rescored / base[1])
    verdict = "met" if worst <= 1.5 else "NOT met"
    print(
        f"target (at most 1.5x the cost at {sizes[0]:,}): {verdict} at {sizes[-1]:,}, {worst:.2f}x"
    )


if __name__ == "__main__":
    main()
