"""Benchmark: live entity history (``EntityState.history_for``) against how busy an entity is,
and per shipment on typical live batches.

Run ``python -m bench.history [--sizes 10000,100000,1000000] [--calls N] [--world N]
[--batches 1,8,64]``.

Busy entities: for each size N it builds a live state in which one shipper, consignee, broker,
route and heading have N earlier shipments each (declared over the last 400 days, so most fall
in the year the volume counts look back on, with watched route families for the network
features) and N reported outcomes, credited in time order. It then times ``history_for`` on a
one-row batch of those entities, declared just after the last of them: a new shipment id, and a
re-scored one (an id from the middle of the history, whose own record and outcome must be left
out); and, per shipment, on batches of 8 and 64 new ids of those entities (every row shares
every key, so each row's batch is history of the others). Each figure is the median of
``--calls`` calls; the ratio is to the smallest N. The target of issue 11: at 1M prior events
``history_for`` costs at most 1.5x what it costs at 10k.

Typical batches: a simulated world (``training.simulate``) of ``--world`` shipments (their
keys reused as a live stream reuses them: a few thousand shippers and consignees, tens of
brokers, routes and headings) and their reported outcomes make the state; batches of
``--batches`` sizes of the world's next shipments, new ids declared after all of it, are then
timed, and each figure is the median per shipment over many distinct batches. The target of
issue 11: at most about 40 µs per shipment for a batch of 8 (the scoring budget is about
100 µs per shipment in all). Not a test: figures go to stdout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from features.build import context_rows
from features.history import OUTCOME_KEYS, Keyed
from features.state import EntityState
from features.tables import load_tables
from features.watchlist import load_watchlist
from training.simulate import simulate_world

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_US = 400 * 86_400_000_000
PRIOR = 0.02
KEYS = {
    "shipper": "SHP-BUSY",
    "consignee": "CNE-BUSY",
    "broker": "BRK-BUSY",
    "route": "CN>MXZLO",
    "heading": "2933",
    "item": "npp",
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
    return rows_of([shipment_id])


def rows_of(shipment_ids: list[str]) -> Keyed:
    """Rows of the busy entities, declared a second apart just after the last of them."""
    n = len(shipment_ids)
    after = START_US + SPAN_US + 2 * 86_400_000_000
    return Keyed(
        shipment_id=shipment_ids,
        declared_at=after + np.arange(n, dtype=np.int64) * 1_000_000,
        keys={e: [KEYS[e]] * n for e in OUTCOME_KEYS},
        families=[("fentanyl-npp-anpp",)] * n,
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


def typical(world: int, sizes: list[int], calls: int) -> dict[int, float]:
    """Median µs per shipment of ``history_for`` on batches of each size of new shipments, with
    a state of the first ``world`` shipments of a simulated world and their outcomes."""
    spare = 64 * max(sizes)  # the world's next shipments, cut into batches
    with tempfile.TemporaryDirectory() as tmp:
        simulate_world(Path(tmp), shipments=world + spare, seed=5, progress=False)
        tables = load_tables(Path(tmp), need_inspections=False)
        keyed = Keyed.from_frame(
            context_rows(tables.shipments, tables.goods, load_watchlist())
        ).order_by_time()
        reported = (
            tables.inspections.lazy()
            .select("shipment_id", "reported_at", "positive")
            .collect()
            .sort("reported_at")
        )
    known = keyed.slice(0, world)
    state = EntityState.empty()
    state.add_shipments(known)
    ids = set(known.shipment_id)
    for shipment_id, reported_at, positive in reported.iter_rows():
        if shipment_id in ids:
            state.add_outcome(shipment_id, reported_at, positive)
    later = keyed.slice(world, len(keyed))
    per_shipment: dict[int, float] = {}
    for size in sizes:
        batches = [later.slice(i, i + size) for i in range(0, len(later) - size + 1, size)][:64]
        for batch in batches[:10]:  # warm up
            state.history_for(batch, PRIOR)
        samples: list[float] = []
        while len(samples) < max(len(batches), calls // size):
            for batch in batches:
                t0 = time.perf_counter_ns()
                state.history_for(batch, PRIOR)
                samples.append((time.perf_counter_ns() - t0) / size)
        per_shipment[size] = float(np.median(samples)) / 1000
    return per_shipment


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="prior events per entity, comma-separated (the first is the baseline)",
    )
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per figure")
    parser.add_argument(
        "--world", type=int, default=20_000, help="simulated shipments in the typical state"
    )
    parser.add_argument("--batches", default="1,8,64", help="typical batch sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"history_for on the busy entities, median of {args.calls} calls")
    print(
        f"{'prior events':>12}  {'build s':>8}  {'new id µs':>10}  {'ratio':>6}  "
        f"{'re-scored µs':>12}  {'ratio':>6}  {'8 new µs/row':>12}  {'64 new µs/row':>13}"
    )
    base: tuple[float, float] | None = None
    for n in sizes:
        t0 = time.perf_counter()
        state = busy_state(n)
        built = time.perf_counter() - t0
        new = median_us(state, one_row("Q-NEW"), args.calls)
        rescored = median_us(state, one_row(f"H{n // 2}"), args.calls)
        eight = median_us(state, rows_of([f"Q{i}" for i in range(8)]), args.calls // 8) / 8
        many = median_us(state, rows_of([f"Q{i}" for i in range(64)]), args.calls // 64) / 64
        base = base or (new, rescored)
        print(
            f"{n:>12,}  {built:>8.1f}  {new:>10.1f}  {new / base[0]:>5.2f}x  "
            f"{rescored:>12.1f}  {rescored / base[1]:>5.2f}x  {eight:>12.1f}  {many:>13.1f}",
            flush=True,
        )
        del state
    assert base is not None
    worst = max(new / base[0], rescored / base[1])
    verdict = "met" if worst <= 1.5 else "NOT met"
    print(
        f"target (at most 1.5x the cost at {sizes[0]:,}): {verdict} at {sizes[-1]:,}, {worst:.2f}x"
    )
    batch_sizes = [int(s) for s in args.batches.split(",")]
    print(
        f"\nhistory_for on batches of new shipments, state of {args.world:,} simulated "
        "shipments, median µs per shipment"
    )
    print("  ".join(f"{f'batch {b}':>10}" for b in batch_sizes))
    per_shipment = typical(args.world, batch_sizes, args.calls)
    print("  ".join(f"{per_shipment[b]:>10.1f}" for b in batch_sizes))
    if 8 in per_shipment:
        verdict = "met" if per_shipment[8] <= 40 else "NOT met"
        print(f"target (at most 40 µs per shipment at batch 8): {verdict}")


if __name__ == "__main__":
    main()
