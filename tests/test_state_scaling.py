"""Live entity history costs the same however busy an entity is, and is safe to share (issue 11).

No timings: the cost is checked by what the state does to its stored arrays. Every array the
state keeps is swapped for a :class:`Watched` view that records each element read or written
through numpy (copies, element-wise operations, reductions, Python iteration, single reads by
index or ``item``); binary searches are recorded apart, as one search each. The work a query
or an append does on the arrays must then be the same, element for element, at 100 and at
20,000 prior events, for a batch that needs every correction and for new shipments alone (the
state's short path). A second check measures with tracemalloc that answering a query allocates
nothing the size of an entity's history.
"""

from __future__ import annotations

import sys
import threading
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.history import OUTCOME_KEYS, Keyed, entity_outcomes, history_feature_names
from features.state import EntityState, ReadWriteLock
from features.state.batch import Credit
from features.state.columns import outcome_values, outcomes_before, smoothing
from features.state.events import Outcomes, Times

PRIOR = 0.02
NAMES = history_feature_names()
DAY_US = 86_400_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01
BUSY = {
    "shipper": "S",
    "consignee": "C",
    "broker": "B",
    "route": "R",
    "heading": "H",
    "item": "I",
}
FAMILY_CYCLE: tuple[tuple[str, ...], ...] = (
    (),
    ("fentanyl-npp-anpp",),
    ("fentanyl-reagent",),
    ("meth-p2p", "pill-press"),
)


# --------------------------------------------------------------------------- instrumentation


def _plain(value: Any) -> Any:
    if isinstance(value, Watched):
        return value.view(np.ndarray)
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    return value


class Watched(np.ndarray):
    """An ndarray that records the elements numpy touches through it (see the module doc)."""

    touched: ClassVar[Counter[str]] = Counter()  # operation -> elements touched
    searches: ClassVar[list[int]] = [0]

    def __array_finalize__(self, obj: Any) -> None:
        if isinstance(obj, Watched) and not np.may_share_memory(
            self.view(np.ndarray), obj.view(np.ndarray)
        ):
            Watched.touched["copy"] += self.size  # a copy (fancy index, astype, copy...)

    def __getitem__(self, key: Any) -> Any:
        found = super().__getitem__(key)
        if not isinstance(found, np.ndarray):
            Watched.touched["read"] += 1
        return found

    def __setitem__(self, key: Any, value: Any) -> None:
        before = self.view(np.ndarray)[key]
        Watched.touched["write"] += before.size if isinstance(before, np.ndarray) else 1
        super().__setitem__(key, _plain(value))

    def __iter__(self) -> Iterator[Any]:
        Watched.touched["iterate"] += self.size
        return iter(self.view(np.ndarray))

    def tolist(self) -> Any:
        Watched.touched["tolist"] += self.size
        return self.view(np.ndarray).tolist()

    def item(self, *args: Any) -> Any:
        Watched.touched["read"] += 1
        return self.view(np.ndarray).item(*args)

    def searchsorted(self, v: Any, side: Any = "left", sorter: Any = None) -> Any:
        Watched.searches[0] += 1
        return self.view(np.ndarray).searchsorted(_plain(v), side=side, sorter=sorter)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        arrays = [*inputs, *kwargs.get("out", ())]
        Watched.touched[f"{ufunc.__name__}.{method}"] += sum(
            a.size for a in arrays if isinstance(a, Watched)
        )
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*_plain(inputs), **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.searchsorted:
            Watched.searches[0] += 1
        else:
            flat = [*args, *kwargs.values()]
            Watched.touched[func.__name__] += sum(a.size for a in flat if isinstance(a, Watched))
        return func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})


def _stores(state: EntityState) -> Iterator[Times]:
    for volume in state._volume.values():
        yield from volume.values()
    for outcomes in state._outcomes.values():
        yield from outcomes.values()
    for network in state._network.values():
        for by_family in network.values():
            yield from by_family.values()


def _arrays(store: Times) -> list[str]:
    return ["times", "flags", "positives", "last"] if isinstance(store, Outcomes) else ["times"]


def watch(state: EntityState) -> None:
    """Swap every array the state keeps for a :class:`Watched` view of it."""
    for store in _stores(state):
        for name in _arrays(store):
            setattr(store, name, getattr(store, name).view(Watched))


@contextmanager
def counting() -> Iterator[tuple[Counter[str], list[int]]]:
    Watched.touched = Counter()
    Watched.searches = [0]
    yield Watched.touched, Watched.searches


def still_watched(state: EntityState) -> bool:
    """No array was replaced (a growth would replace it, and is amortised, not per call)."""
    return all(
        isinstance(getattr(store, name), Watched)
        for store in _stores(state)
        for name in _arrays(store)
    )


# --------------------------------------------------------------------------- busy states


def keyed(
    ids: list[str], declared: list[int], families: list[tuple[str, ...]], keys: dict[str, str]
) -> Keyed:
    return Keyed(
        shipment_id=ids,
        declared_at=np.array(declared, dtype=np.int64),
        keys={e: [keys[e]] * len(ids) for e in OUTCOME_KEYS},
        families=families,
    )


def busy_state(n: int) -> EntityState:
    """One entity of each kind with ``n`` shipments (all within the last 200 days) and ``n``
    outcomes, credited in time order; and a quiet second entity of each kind."""
    step = 200 * DAY_US // n
    state = EntityState.empty()
    state.add_shipments(
        keyed(
            [f"H{i}" for i in range(n)],
            [START_US + i * step for i in range(n)],
            [FAMILY_CYCLE[i % len(FAMILY_CYCLE)] for i in range(n)],
            BUSY,
        )
    )
    state.add_shipments(
        keyed(["Q0"], [START_US], [("meth-p2p",)], dict.fromkeys(OUTCOME_KEYS, "quiet"))
    )
    for i in range(n):
        state.add_outcome(f"H{i}", _datetime(START_US + i * step + DAY_US), i % 5 == 0)
    return state


def _datetime(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def corner_batch(n: int) -> Keyed:
    """A batch with every correction: a new id, a re-scored id from the middle of the history
    (own record and own outcome left out), an id repeated within the batch, the quiet entity."""
    end = START_US + 210 * DAY_US
    rows = [
        ("NEW", end, ("fentanyl-npp-anpp",), BUSY),
        (f"H{n // 2}", end + 1, ("pill-press",), BUSY),
        ("TWICE", end + 2, ("fentanyl-reagent",), BUSY),
        ("TWICE", end + 3, ("fentanyl-reagent", "meth-p2p"), BUSY),
        ("Q0", end + 4, (), dict.fromkeys(OUTCOME_KEYS, "quiet")),
    ]
    return Keyed(
        shipment_id=[r[0] for r in rows],
        declared_at=np.array([r[1] for r in rows], dtype=np.int64),
        keys={e: [r[3][e] for r in rows] for e in OUTCOME_KEYS},
        families=[r[2] for r in rows],
    )


def newcomers(*days: float) -> Callable[[int], Keyed]:
    """A batch of new ids on the busy entities, one declared at each of ``days`` from the
    start (the history spans days 0 to 200). One row alone is the common case, which takes
    the short path: after the history its counts need no search for what lies before it,
    inside the history they do. Two rows share their keys: each is history of the other."""

    def batch(n: int) -> Keyed:
        declared = [START_US + round(day * DAY_US) for day in days]
        rows = [f"N{i}" for i in range(len(days))]
        families = [FAMILY_CYCLE[i % len(FAMILY_CYCLE)] for i in range(1, len(days) + 1)]
        return keyed(rows, declared, families, BUSY)

    return batch


BATCHES: dict[str, Callable[[int], Keyed]] = {
    "every correction": corner_batch,
    "one new row after the history": newcomers(210),
    "one new row inside the history": newcomers(100.5),
    "two new rows of the same keys": newcomers(100.5, 210),
}
SMALL, BIG = 100, 20_000


@pytest.fixture(scope="module")
def states() -> dict[int, EntityState]:
    return {n: busy_state(n) for n in (SMALL, BIG)}


@pytest.mark.parametrize("batch_for", BATCHES.values(), ids=BATCHES.keys())
def test_a_query_touches_the_same_elements_however_long_the_history(
    states: dict[int, EntityState], batch_for: Callable[[int], Keyed]
) -> None:
    work: dict[int, tuple[dict[str, int], int]] = {}
    for n, state in states.items():
        batch = batch_for(n)
        plain = state.history_for(batch, PRIOR)
        watch(state)
        with counting() as (touched, searches):
            watched = state.history_for(batch, PRIOR)
        for name in NAMES:
            np.testing.assert_array_equal(watched[name], plain[name])
        work[n] = (dict(touched), searches[0])
    assert work[SMALL] == work[BIG]
    elements, binary_searches = work[BIG]
    # A few elements per row and entity looked up (5 of outcomes, 3 of volume, 2 of network),
    # fewer than one pass over the small state's events; and a few searches, O(log n) each.
    rows = len(batch_for(BIG))
    assert sum(elements.values()) <= 3 * rows * 10 < 2 * SMALL, elements
    assert binary_searches <= 10 * rows * 10
    # And the arrays were read through the watch at all (a count of nothing proves nothing).
    assert elements.get("read", 0) >= rows
    assert binary_searches >= rows
    if batch_for is not corner_batch:
        return
    # The history really is there. The new row sees every earlier shipment but the re-scored
    # one, declared again after it, and every outcome; the re-scored row sees the new row
    # instead of its own record, and every outcome but its own.
    big = states[BIG].history_for(corner_batch(BIG), PRIOR)
    assert big["shipper_count_365d"][0] == BIG - 1
    assert big["route_inspections"][0] == BIG
    assert big["shipper_count_365d"][1] == BIG
    assert big["route_inspections"][1] == BIG - 1


def test_appending_in_time_order_touches_the_same_elements_however_long_the_history(
    states: dict[int, EntityState],
) -> None:
    work: dict[int, tuple[dict[str, int], int]] = {}
    for n, state in states.items():
        watch(state)
        later = START_US + 300 * DAY_US
        with counting() as (touched, searches):
            state.add_shipments(
                keyed(["A1", "A2"], [later, later + 1], [("pill-press",), ()], BUSY)
            )
            assert state.add_outcome("A1", _datetime(later + DAY_US), True)
            assert state.add_outcome("A2", _datetime(later + DAY_US), False)
        assert still_watched(state)  # no growth in between: this is the per-append cost
        work[n] = (dict(touched), searches[0])
    assert work[SMALL] == work[BIG]
    # Events appended: 2 shipments x 3 volume entities + 1 x 2 network entities (pill-press),
    # 2 outcomes x 5 entities; at most 5 elements read or written each, and no search.
    appended = 2 * 3 + 2 + 2 * 5
    assert sum(work[BIG][0].values()) <= 5 * appended < SMALL, work[BIG]
    assert work[BIG][1] == 0


def test_a_query_allocates_nothing_the_size_of_the_history() -> None:
    n = 100_000  # one copy of an entity's times alone would be 800 kB
    state = busy_state(n)
    for name, batch_for in BATCHES.items():
        batch = batch_for(n)
        state.history_for(batch, PRIOR)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            state.history_for(batch, PRIOR)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak - base < 100_000, name


# --------------------------------------------------------------------------- running totals


@st.composite
def outcome_ops(draw: st.DrawFn) -> list[tuple[str, int, bool]]:
    ops = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["add", "add", "add", "remove"]))
        ops.append((kind, draw(st.integers(0, 12)), draw(st.booleans())))
    return ops


def _live_outcomes(
    found: Outcomes, own: list[Credit | None], queries: list[int]
) -> list[np.ndarray]:
    """What the live state answers for each query over ``found``, less the row's ``own``
    credited outcome when it was reported before the query, as the kernel's columns."""
    smooth = smoothing(PRIOR)
    rows = [
        outcome_values(*outcomes_before(found, q, credit), q, smooth)
        for q, credit in zip(queries, own, strict=True)
    ]
    inspections, positives, rate, since = zip(*rows, strict=True)
    return [
        np.array(inspections, dtype=np.int32),
        np.array(positives, dtype=np.int32),
        np.array(rate, dtype=np.float64),
        np.array(since, dtype=np.float64),
    ]


@settings(max_examples=300, deadline=None)
@given(outcome_ops(), st.lists(st.integers(-1, 14), min_size=1, max_size=6), st.data())
def test_running_totals_answer_as_the_kernel_over_the_whole_array(
    ops: list[tuple[str, int, bool]], queries: list[int], data: st.DataObject
) -> None:
    """Outcomes added in and out of order and taken out: each query (less a row's own outcome)
    is what :func:`entity_outcomes` says over the remaining outcomes, to the bit. (And plain
    event times, added and taken out, stay sorted.)"""
    store, times = Outcomes(), Times()
    kept: list[tuple[int, bool]] = []
    kept_times: list[int] = []
    for kind, time, positive in ops:
        if kind == "add":
            store.add_outcome(time, positive)
            kept.append((time, positive))
            times.add(time)
            kept_times.append(time)
        else:
            store.remove_outcome(time, positive)
            if (time, positive) in kept:
                kept.remove((time, positive))
            times.remove(time)
            if time in kept_times:
                kept_times.remove(time)
    assert times.view().tolist() == sorted(kept_times)
    kept.sort(key=lambda event: event[0])  # stable: equal times keep the order they came in
    assert store.view().tolist() == [t for t, _ in kept]
    pairs = zip(store.view().tolist(), store.flags[: store.size].tolist(), strict=True)
    assert sorted(pairs) == sorted(kept)
    at = np.array(queries, dtype=np.int64)
    own: list[Credit | None] = [
        data.draw(st.sampled_from([None, *(Credit(t, p) for t, p in kept)])) for _ in queries
    ]
    got = _live_outcomes(store, own, queries)
    for j, credit in enumerate(own):
        left = list(kept)
        if credit is not None and credit.at < queries[j]:
            left.remove((credit.at, credit.positive))
        expected = entity_outcomes(
            np.array([t for t, _ in left], dtype=np.int64),
            np.array([p for _, p in left], dtype=bool),
            at[j : j + 1],
            PRIOR,
        )
        for column, want in zip(got, expected, strict=True):
            assert column[j : j + 1].tobytes() == want.tobytes()


# --------------------------------------------------------------------------- concurrency


def test_readers_share_the_lock_and_a_writer_waits_for_them() -> None:
    lock = ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=30)  # breaks if readers were serialised

    def read() -> None:
        with lock.reading():
            both_inside.wait()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    assert not both_inside.broken

    order: list[str] = []
    reading = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock.reading():
            reading.set()
            release.wait(30)
            order.append("reader leaves")

    def write() -> None:
        with lock.writing():
            order.append("writer enters")

    holder = threading.Thread(target=hold)
    holder.start()
    reading.wait(30)
    writer = threading.Thread(target=write)
    writer.start()
    while lock._writers_waiting == 0:  # the writer is queued behind the reader
        threading.Event().wait(0.001)
    assert order == []
    release.set()
    holder.join()
    writer.join()
    assert order == ["reader leaves", "writer enters"]


def _thread_script(t: int) -> list[tuple[str, Any]]:
    """One thread's writes: its own shipment ids, on entity keys all threads share."""
    script: list[tuple[str, Any]] = []
    for chunk in range(6):
        ids = [f"T{t}-{chunk}-{i}" for i in range(5)]
        declared = [START_US + ((t * 7 + chunk * 13 + i * 29) % 60) * DAY_US for i in range(5)]
        keys = {e: f"{e}{(t + chunk) % 2}" for e in OUTCOME_KEYS}
        families = [FAMILY_CYCLE[(t + i) % len(FAMILY_CYCLE)] for i in range(5)]
        script.append(("ship", keyed(ids, declared, families, keys)))
        for i, shipment_id in enumerate(ids[:4]):
            reported = START_US + ((t * 11 + chunk * 5 + i * 17) % 70) * DAY_US
            script.append(("outcome", (shipment_id, _datetime(reported), (t + i) % 3 == 0)))
        if chunk:  # re-score an earlier id under other keys: its outcome moves with it
            again = f"T{t}-{chunk - 1}-0"
            other = {e: f"{e}{(t + chunk + 1) % 2}" for e in OUTCOME_KEYS}
            script.append(("ship", keyed([again], [declared[0] + 1], [("pill-press",)], other)))
    return script


def probes() -> Keyed:
    rows = [(f"P{k}{d}", d, k) for k in range(2) for d in (20, 45, 90)]
    return Keyed(
        shipment_id=[r[0] for r in rows],
        declared_at=np.array([START_US + r[1] * DAY_US for r in rows], dtype=np.int64),
        keys={e: [f"{e}{r[2]}" for r in rows] for e in OUTCOME_KEYS},
        families=[("fentanyl-reagent",) for _ in rows],
    )


def run(state: EntityState, script: list[tuple[str, Any]]) -> None:
    for kind, what in script:
        if kind == "ship":
            state.add_shipments(what)
        else:
            state.add_outcome(*what)


def dump(state: EntityState) -> dict[str, Any]:
    """The state's contents, with equal-time outcomes in a canonical order."""
    out: dict[str, Any] = {"records": dict(state._records), "credits": dict(state._credits)}
    for entity, by_key in state._volume.items():
        for key, store in by_key.items():
            out[f"volume {entity} {key}"] = store.view().tolist()
    for entity, outcomes in state._outcomes.items():
        for key, found in outcomes.items():
            pairs = zip(found.view().tolist(), found.flags[: found.size].tolist(), strict=True)
            out[f"outcomes {entity} {key}"] = sorted(pairs)
    for entity, network in state._network.items():
        for key, by_family in network.items():
            for family, store in by_family.items():
                out[f"network {entity} {key} {family}"] = store.view().tolist()
    return out


def test_concurrent_writes_and_reads_end_as_the_serial_run() -> None:
    threads = 4
    scripts = [_thread_script(t) for t in range(threads)]
    serial = EntityState.empty()
    for script in scripts:
        run(serial, script)

    shared = EntityState.empty()
    errors: list[BaseException] = []
    start = threading.Barrier(threads * 2, timeout=30)

    def writer(script: list[tuple[str, Any]]) -> None:
        try:
            start.wait()
            run(shared, script)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def reader() -> None:
        try:
            start.wait()
            for _ in range(40):
                got = shared.history_for(probes(), PRIOR)
                assert all(len(got[name]) == len(probes()) for name in NAMES)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave as much as the interpreter will
    try:
        workers = [threading.Thread(target=writer, args=(s,)) for s in scripts]
        workers += [threading.Thread(target=reader) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    assert (shared.shipments, shared.outcomes) == (serial.shipments, serial.outcomes)
    assert dump(shared) == dump(serial)
    got, want = shared.history_for(probes(), PRIOR), serial.history_for(probes(), PRIOR)
    for name in NAMES:
        assert got[name].tobytes() == want[name].tobytes(), name
    assert int(want["consignee_count_365d"].max()) > 0
    assert int(want["route_inspections"].max()) > 0
