"""Live entity state: each entity's events, kept sorted in memory and updated as the server runs.

For every shipper, consignee and broker the state holds its shipments' declared times; for every
entity of :data:`features.history.OUTCOME_KEYS` the report times and results of its inspections,
beside their running totals (positives so far, time of the last positive so far); for consignee
and broker, per watched route family, the declared times of the shipments where it was
identified.

A live shipment's history features are what the bulk kernels of :mod:`features.history`
(``entity_volume``, ``entity_outcomes``, ``entity_network``) give for its entities' events, bit
for bit, at a cost that does not grow with how busy an entity has been. The stored arrays are
never copied or scanned to answer: a count of events before a time is a binary search on them,
an outcome query a binary search and a look-up in the running totals. What a batch changes
about them (its earlier rows count as history; a re-scored id's own earlier record and own
credited outcome do not) is a handful of events, counted apart and added or subtracted. The
floating-point features are computed from those counts with the kernels' own formulas,
operation for operation. A query thus costs O(log n) in an entity's history; an append in time
order (the normal case) O(1) amortised; an event added out of order or taken out moves the
later events (and their running totals) once.

A shipment id is one shipment however often it is scored: the state keeps one record per id
(the latest scoring's), a re-scored id's history leaves out its own earlier record and outcome,
and an id's entities are credited with one inspection outcome at most, the first definite one.
Scoring one shipment six times therefore makes none of its parties look more established.

Concurrency: one readers-writer lock. Any number of :meth:`EntityState.history_for` calls read
at once; :meth:`~EntityState.add_shipments` and :meth:`~EntityState.add_outcome` write alone,
and a writer waiting holds off new readers, so appends are not starved by a stream of reads. A
read therefore sees each write whole or not at all (a shipment's five entities, an outcome's
five credits). Striping locks by entity key was not chosen: every row reads five entities, and a
batch would have to take many stripes in order and could see half of a write.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from features.build import context_rows
from features.history import (
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    SMOOTHING_STRENGTH,
    US_PER_DAY,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    Keyed,
    entity_network,
    entity_outcomes,
    entity_volume,
    network_names,
    outcome_names,
    to_micros,
    volume_names,
)
from features.tables import load_tables, table_path
from features.watchlist import Watchlist

_WINDOWS_US = tuple(d * US_PER_DAY for d in WINDOWS_DAYS)  # as the volume kernel's windows
# A query and its windows' starts, as the kernels count them: times before q and before q - w.
_VOLUME_OFFSETS_US = np.array([[0], *([w] for w in _WINDOWS_US)], dtype=np.int64)
_NETWORK_OFFSETS_US = np.array([[0], [NETWORK_WINDOW_DAYS * US_PER_DAY]], dtype=np.int64)
_ENTITY_INDEX = {entity: i for i, entity in enumerate(OUTCOME_KEYS)}
_NO_TIME = np.iinfo(np.int64).min  # "no positive yet", as the outcome kernel marks it
_NO_LEAVE = np.iinfo(np.int64).max  # a row with no event of its own to leave out
_NONE = np.zeros(0, dtype=np.int64)


class ReadWriteLock:
    """Many readers at once or one writer; a waiting writer holds off readers that come after it.
    Not reentrant: a thread must not take it again while it holds it."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            while self._writing or self._writers_waiting:
                self._changed.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                if not self._readers:
                    self._changed.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._changed:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._changed.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` at twice its capacity, holding its first ``size`` elements."""
    grown = np.empty(2 * len(array), dtype=array.dtype)
    grown[:size] = array[:size]
    return grown


class _Times:
    """A growable sorted int64 array of event times, read through zero-copy views. An append in
    time order is O(1) amortised; an event out of order, or one taken out, moves the later ones."""

    __slots__ = ("size", "times")

    def __init__(self) -> None:
        self.times = np.empty(8, dtype=np.int64)
        self.size = 0

    def view(self) -> np.ndarray:
        return self.times[: self.size]

    def add(self, time: int) -> None:
        at = self._open(time)  # first: it may grow the array
        self.times[at] = time

    def remove(self, time: int) -> None:
        """Take out one event at ``time``; none there: nothing."""
        at = int(np.searchsorted(self.view(), time, side="left"))
        if at < self.size and self.times[at] == time:
            self._close(at)

    def _grow(self) -> None:
        self.times = _grown(self.times, self.size)

    def _shift(self, source: slice, target: slice) -> None:
        self.times[target] = self.times[source]

    def _open(self, time: int) -> int:
        """Make room for an event at ``time``, after any equal ones, and return where it goes."""
        if self.size == len(self.times):
            self._grow()
        at = self.size
        if at and self.times[at - 1] > time:  # out of order: the later events move up
            at = int(np.searchsorted(self.view(), time, side="right"))
            self._shift(slice(at, self.size), slice(at + 1, self.size + 1))
        self.size += 1
        return at

    def _close(self, at: int) -> None:
        self._shift(slice(at + 1, self.size), slice(at, self.size - 1))
        self.size -= 1


class _Outcomes(_Times):
    """One entity's outcomes: report times (sorted), results, and running totals: ``positives``
    up to and including each outcome, and ``last``, the report time of the last positive up to
    it (:data:`_NO_TIME` when none), what :func:`~features.history.entity_outcomes` accumulates
    over the whole array, kept as outcomes come in."""

    __slots__ = ("flags", "last", "positives")

    def __init__(self) -> None:
        super().__init__()
        self.flags = np.empty(8, dtype=bool)
        self.positives = np.empty(8, dtype=np.int64)
        self.last = np.empty(8, dtype=np.int64)

    def add_outcome(self, time: int, positive: bool) -> None:
        at = self._open(time)
        self.times[at] = time
        self.flags[at] = positive
        if at == self.size - 1:  # in time order: the totals so far, plus this one
            before = int(self.positives[at - 1]) if at else 0
            self.positives[at] = before + positive
            self.last[at] = time if positive else (self.last[at - 1] if at else _NO_TIME)
        else:
            self._retotal(at)

    def remove_outcome(self, time: int, positive: bool) -> None:
        """Take out one outcome at ``time`` with result ``positive``; none there: nothing."""
        lo, hi = self.run(time)
        base = self.positives_before(lo)

        def passed(j: int) -> int:
            """Outcomes with that result in ``[lo, j]``."""
            positives = int(self.positives[j]) - base
            return positives if positive else j + 1 - lo - positives

        found = bisect.bisect_right(range(lo, hi), 0, key=passed)  # the first of that result
        if found < hi - lo:
            self._close(lo + found)
            if lo + found < self.size:
                self._retotal(lo + found)

    def run(self, time: int) -> tuple[int, int]:
        """Where the outcomes reported at exactly ``time`` are: ``[lo, hi)``."""
        times = self.view()
        lo = int(np.searchsorted(times, time, side="left"))
        return lo, int(np.searchsorted(times[lo:], time, side="right")) + lo

    def positives_before(self, at: int) -> int:
        return int(self.positives[at - 1]) if at else 0

    def last_before(self, at: int) -> int:
        return int(self.last[at - 1]) if at else _NO_TIME

    def _grow(self) -> None:
        super()._grow()
        self.flags = _grown(self.flags, self.size)
        self.positives = _grown(self.positives, self.size)
        self.last = _grown(self.last, self.size)

    def _shift(self, source: slice, target: slice) -> None:
        super()._shift(source, target)
        self.flags[target] = self.flags[source]  # the totals are recomputed from there

    def _retotal(self, at: int) -> None:
        """Recompute the running totals from ``at`` on."""
        flags = self.flags[at : self.size]
        self.positives[at : self.size] = self.positives_before(at) + np.cumsum(
            flags, dtype=np.int64
        )
        last = np.where(flags, self.times[at : self.size], _NO_TIME)
        last[0] = max(int(last[0]), self.last_before(at))
        np.maximum.accumulate(last, out=self.last[at : self.size])


@dataclass(frozen=True, slots=True)
class _Record:
    """What the state remembers of one shipment id."""

    at: int  # declared time, µs since the epoch
    keys: tuple[str, ...]  # entity keys in the order of OUTCOME_KEYS
    families: tuple[str, ...]  # identified route families


@dataclass(frozen=True, slots=True)
class _Credit:
    """The one outcome a shipment id's entities were credited with."""

    at: int  # reported time, µs since the epoch
    positive: bool


class EntityState:
    """Shipments seen and outcomes reported, for the entity history of live shipments."""

    def __init__(self) -> None:
        self._lock = ReadWriteLock()
        self._volume: dict[str, dict[str, _Times]] = {e: {} for e in VOLUME_KEYS}
        self._outcomes: dict[str, dict[str, _Outcomes]] = {e: {} for e in OUTCOME_KEYS}
        # entity -> key -> route family -> declared times of shipments where it was identified
        self._network: dict[str, dict[str, dict[str, _Times]]] = {e: {} for e in NETWORK_KEYS}
        self._records: dict[str, _Record] = {}  # shipment id -> its one record
        self._credits: dict[str, _Credit] = {}  # shipment id -> the outcome credited for it

    @classmethod
    def empty(cls) -> EntityState:
        return cls()

    @classmethod
    def from_tables(
        cls,
        shipments: pl.DataFrame | pl.LazyFrame,
        goods: pl.DataFrame | pl.LazyFrame,
        inspections: pl.DataFrame | pl.LazyFrame,
        watchlist: Watchlist,
    ) -> EntityState:
        """The state of tables with one row per shipment id (see
        :func:`features.tables.fold_tables`); an id's first reported inspection is credited."""
        state = cls()
        state.add_shipments(
            Keyed.from_frame(context_rows(shipments, goods, watchlist)).order_by_time()
        )
        reported = inspections.lazy().select("shipment_id", "reported_at", "positive").collect()
        for shipment_id, reported_at, positive in reported.sort("reported_at").iter_rows():
            state.add_outcome(shipment_id, reported_at, positive)
        return state

    @classmethod
    def from_data_dir(cls, data_dir: Path, watchlist: Watchlist) -> EntityState:
        """History from a directory of canonical tables, one row per shipment id as
        :func:`features.tables.load_tables` folds them; empty when it has none."""
        if not table_path(Path(data_dir), "shipments").exists():
            return cls.empty()
        tables = load_tables(Path(data_dir), need_inspections=False)
        return cls.from_tables(tables.shipments, tables.goods, tables.inspections, watchlist)

    @property
    def shipments(self) -> int:
        return len(self._records)

    @property
    def outcomes(self) -> int:
        return len(self._credits)

    def add_shipments(self, rows: Keyed) -> None:
        """Remember shipments. An id already known keeps one record, the one remembered last;
        an unchanged replay changes nothing."""
        keys_by_row = zip(*(rows.keys[e] for e in OUTCOME_KEYS), strict=True)
        with self._lock.writing():
            for shipment_id, declared_at, families, keys in zip(
                rows.shipment_id, rows.declared_at.tolist(), rows.families, keys_by_row, strict=True
            ):
                record = _Record(int(declared_at), tuple(keys), tuple(families))
                old = self._records.get(shipment_id)
                if old == record:
                    continue
                credit = self._credits.get(shipment_id)
                if old is not None:
                    self._index(old, add=False)
                    if credit is not None and old.keys != record.keys:
                        self._index_outcome(old.keys, credit, add=False)
                        self._index_outcome(record.keys, credit, add=True)
                self._records[shipment_id] = record
                self._index(record, add=True)

    def _index(self, record: _Record, *, add: bool) -> None:
        """Add ``record``'s declared time to its entities' events, or take it out."""
        for entity, key in zip(OUTCOME_KEYS, record.keys, strict=True):
            events = (
                [self._volume[entity].setdefault(key, _Times())] if entity in VOLUME_KEYS else []
            )
            if entity in self._network and record.families:
                by_family = self._network[entity].setdefault(key, {})
                events += [by_family.setdefault(f, _Times()) for f in record.families]
            for sorted_events in events:
                if add:
                    sorted_events.add(record.at)
                else:
                    sorted_events.remove(record.at)

    def _index_outcome(self, keys: tuple[str, ...], credit: _Credit, *, add: bool) -> None:
        for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
            events = self._outcomes[entity].setdefault(key, _Outcomes())
            if add:
                events.add_outcome(credit.at, credit.positive)
            else:
                events.remove_outcome(credit.at, credit.positive)

    def add_outcome(self, shipment_id: str, reported_at: datetime, positive: bool) -> bool:
        """Credit an outcome to the shipment's entities, once per shipment id: False (and
        nothing credited) if the shipment is unknown or its entities were credited before."""
        with self._lock.writing():
            record = self._records.get(shipment_id)
            if record is None or shipment_id in self._credits:
                return False
            credit = _Credit(to_micros(reported_at), positive)
            self._credits[shipment_id] = credit
            self._index_outcome(record.keys, credit, add=True)
            return True

    def history_for(self, targets: Keyed, prior_rate: float) -> dict[str, np.ndarray]:
        """History features of ``targets``, in their order.

        Earlier shipments of the same batch count as history, as they would in bulk. Each row
        gets the history it would have had as its id's first scoring: the record the state
        holds for the same id (which the batch's last row of that id replaces), the outcome
        credited for it and the batch's other rows of that id are not history of itself.

        Per entity key, every row's events are the stored ones less the records the batch
        replaces plus the batch's staying rows (:func:`_batch_events`), less, for a row the
        batch repeats later, that later row (:func:`_leaves`): counts are binary searches on
        the stored arrays corrected by those few events, never copies of them.
        """
        n = len(targets)
        ids = targets.shipment_id
        declared = targets.declared_at
        last = {shipment_id: i for i, shipment_id in enumerate(ids)}
        stays = [last[shipment_id] for shipment_id in ids]  # the row that becomes id's record
        columns: dict[str, np.ndarray] = {}
        # What the kernels give a row of an entity with no events, for every entity alike.
        at_zero = np.zeros(n, dtype=np.int64)
        no_volume = entity_volume(_NONE, at_zero)
        no_outcomes = entity_outcomes(_NONE, np.zeros(0, dtype=bool), at_zero, prior_rate)
        no_network = entity_network({}, at_zero, [[] for _ in range(n)])
        with self._lock.reading():
            replaced = [self._records[s] for s in last if s in self._records]
            for entity in VOLUME_KEYS:
                keys = targets.keys[entity]
                out = [column.copy() for column in no_volume]
                dropped = _replaced_by_key(replaced, _ENTITY_INDEX[entity])
                for key, rows in _rows_by_key(keys).items():
                    store = self._volume[entity].get(key)
                    computed = _volume(
                        store.view() if store is not None else _NONE,
                        _sorted([r.at for r in dropped.get(key, [])]),
                        _sorted(_batch_events(rows, stays, declared)),
                        _leaves(rows, stays, keys, declared),
                        declared[rows],
                    )
                    for target, values in zip(out, computed, strict=True):
                        target[rows] = values
                columns.update(zip(volume_names(entity), out, strict=True))
            for entity in OUTCOME_KEYS:
                keys = targets.keys[entity]
                out = [column.copy() for column in no_outcomes]
                for key, rows in _rows_by_key(keys).items():
                    found = self._outcomes[entity].get(key)
                    if found is None:
                        continue
                    # A re-scored id: its own outcome is not history of itself.
                    own: list[_Credit | None] = []
                    for i in rows.tolist():
                        record, credit = self._records.get(ids[i]), self._credits.get(ids[i])
                        known = record is not None and record.keys[_ENTITY_INDEX[entity]] == key
                        own.append(credit if known else None)
                    computed = _outcomes(found, own, declared[rows], prior_rate)
                    for target, value in zip(out, computed, strict=True):
                        target[rows] = value
                columns.update(zip(outcome_names(entity), out, strict=True))
            for entity in NETWORK_KEYS:
                keys = targets.keys[entity]
                out = [column.copy() for column in no_network]
                dropped = _replaced_by_key(replaced, _ENTITY_INDEX[entity])
                for key, rows in _rows_by_key(keys).items():
                    computed = _network(
                        self._network[entity].get(key, {}),
                        dropped.get(key, []),
                        rows,
                        stays,
                        keys,
                        targets,
                    )
                    for target, value in zip(out, computed, strict=True):
                        target[rows] = value
                columns.update(zip(network_names(entity), out, strict=True))
        return columns


def _rows_by_key(keys: list[str]) -> dict[str, np.ndarray]:
    """Row indices of each key value, in first-seen order."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return {key: np.array(found) for key, found in rows.items()}


def _sorted(times: list[int]) -> np.ndarray:
    if len(times) < 2:
        return np.array(times, dtype=np.int64) if times else _NONE
    return np.sort(np.array(times, dtype=np.int64))


def _replaced_by_key(replaced: list[_Record], at: int) -> dict[str, list[_Record]]:
    """The records a batch replaces, by their key of entity ``at``."""
    by_key: dict[str, list[_Record]] = {}
    for record in replaced:
        by_key.setdefault(record.keys[at], []).append(record)
    return by_key


def _batch_events(
    rows: np.ndarray, stays: list[int], declared: np.ndarray, where: list[bool] | None = None
) -> list[int]:
    """Declared times of the batch's rows of one key that stay (each id's last row), which count
    as history of the others; of those where ``where`` holds, when given."""
    return [
        int(declared[i])
        for j, i in enumerate(rows.tolist())
        if stays[i] == i and (where is None or where[j])
    ]


def _leave_rows(rows: np.ndarray, stays: list[int], keys: list[str]) -> list[int]:
    """For each row, the row to leave out of its history: an earlier row of an id the batch
    repeats gets the history of its id's first scoring, so the id's staying row is not its past
    (-1 when there is none, or when that row is of another key, hence not among these events)."""
    return [stays[i] if stays[i] != i and keys[stays[i]] == keys[i] else -1 for i in rows.tolist()]


def _leaves(
    rows: np.ndarray, stays: list[int], keys: list[str], declared: np.ndarray
) -> np.ndarray:
    """The declared time of each row's :func:`_leave_rows` row, :data:`_NO_LEAVE` when none."""
    return np.array(
        [int(declared[r]) if r >= 0 else _NO_LEAVE for r in _leave_rows(rows, stays, keys)],
        dtype=np.int64,
    )


def _before(
    stored: np.ndarray, dropped: np.ndarray, added: np.ndarray, leave: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """For each row (the last axis of ``x``), how many of its events lie strictly before ``x``:
    the ``stored`` ones less ``dropped`` (some of them) plus ``added``, less the row's own
    ``leave`` (one of ``added``). Binary searches only: nothing of ``stored`` is copied."""
    count = stored.searchsorted(x, side="left")
    if len(dropped):
        count = count - dropped.searchsorted(x, side="left")
    if len(added):
        count = count + added.searchsorted(x, side="left")
        count = count - (leave < x)  # a leave is one of added, or none
    return count


def _without(times: np.ndarray, drop: list[int]) -> np.ndarray:
    """Sorted ``times`` less one occurrence of each value of ``drop`` that it holds."""
    if not drop:
        return times
    keep = np.ones(len(times), dtype=bool)
    for value in drop:
        at = int(np.searchsorted(times, value, side="left"))
        while at < len(times) and times[at] == value and not keep[at]:
            at += 1
        if at < len(times) and times[at] == value:
            keep[at] = False
    return times[keep]


def _firsts(
    stored: np.ndarray, dropped: np.ndarray, added: np.ndarray, leave: np.ndarray
) -> np.ndarray:
    """Each row's first event (0 for a row with none). Of the stored events less ``dropped``,
    the first is among the first ``len(dropped) + 1``; of ``added`` less the row's ``leave``
    (one of them), the first is the first of ``added`` unless that is the one left out."""
    kept = _without(stored[: len(dropped) + 1], dropped.tolist())
    first_kept = int(kept[0]) if len(kept) else None
    firsts = np.zeros(len(leave), dtype=np.int64)
    for j, left in enumerate(leave.tolist()):
        candidates = [] if first_kept is None else [first_kept]
        if len(added):
            if left != int(added[0]):
                candidates.append(int(added[0]))
            elif len(added) > 1:
                candidates.append(int(added[1]))
        if candidates:
            firsts[j] = min(candidates)
    return firsts


def _volume(
    stored: np.ndarray,
    dropped: np.ndarray,
    added: np.ndarray,
    leave: np.ndarray,
    queries: np.ndarray,
) -> list[np.ndarray]:
    """What :func:`~features.history.entity_volume` gives for each row's events (see
    :func:`_before`), with its formulas."""
    # Before each query and before each window's start, in one search: (1 + windows, rows).
    before, *starts = _before(stored, dropped, added, leave, queries - _VOLUME_OFFSETS_US)
    first = _firsts(stored, dropped, added, leave)
    age = np.where(before > 0, (queries - first).astype(np.float64) / US_PER_DAY, np.nan)
    return [age, *((before - start).astype(np.int32) for start in starts)]


def _outcomes(
    found: _Outcomes, own: list[_Credit | None], queries: np.ndarray, prior_rate: float
) -> list[np.ndarray]:
    """What :func:`~features.history.entity_outcomes` gives for each query over ``found``, less
    the row's ``own`` credited outcome when it was reported before the query. From the running
    totals at the query (a binary search), corrected for the outcome left out."""
    end = np.searchsorted(found.view(), queries, side="left")  # outcomes before each query
    inspections = end.astype(np.int64)
    if found.size:
        seen = end > 0
        safe = np.where(seen, end - 1, 0)
        positives = np.where(seen, found.positives[safe], 0)
        last = np.where(seen, found.last[safe], _NO_TIME)
    else:
        positives = np.zeros(len(queries), dtype=np.int64)
        last = np.full(len(queries), _NO_TIME, dtype=np.int64)
    for j, credit in enumerate(own):
        if credit is None or credit.at >= int(queries[j]):
            continue
        lo, hi = found.run(credit.at)  # hi <= end[j]: reported before the query
        in_run = found.positives_before(hi) - found.positives_before(lo)
        if (in_run if credit.positive else hi - lo - in_run) == 0:
            continue  # not among them: nothing to leave out
        inspections[j] -= 1
        if credit.positive:
            positives[j] -= 1
            if found.positives_before(int(end[j])) - found.positives_before(lo) == 1:
                last[j] = found.last_before(lo)  # it was the last positive: the one before it
    return _outcome_columns(inspections, positives, last, queries, prior_rate)


def _outcome_columns(
    inspections: np.ndarray,
    positives: np.ndarray,
    last: np.ndarray,
    queries: np.ndarray,
    prior_rate: float,
) -> list[np.ndarray]:
    """:func:`~features.history.entity_outcomes`' columns from the outcomes before each query
    (how many, how many positive, the last positive's report time): its formulas, operation for
    operation, so the floating point is the same to the bit."""
    rate = (positives.astype(np.float64) + SMOOTHING_STRENGTH * prior_rate) / (
        inspections.astype(np.float64) + SMOOTHING_STRENGTH
    )
    has_positive = last != _NO_TIME
    since = np.where(
        has_positive,
        (queries - np.where(has_positive, last, 0)).astype(np.float64) / US_PER_DAY,
        np.nan,
    )
    return [inspections.astype(np.int32), positives.astype(np.int32), rate, since]


def _network(
    received: dict[str, _Times],
    dropped: list[_Record],
    rows: np.ndarray,
    stays: list[int],
    keys: list[str],
    targets: Keyed,
) -> list[np.ndarray]:
    """What :func:`~features.history.entity_network` gives for the ``rows`` of one key: each
    row's watched route families are its own plus those with an event in the window before it
    (counted as :func:`_before` counts), which the kernel then counts and combines."""
    declared, families = targets.declared_at, targets.families
    queries = declared[rows]
    leave_rows = _leave_rows(rows, stays, keys)
    present = [set(families[i]) for i in rows.tolist()]
    batch_families = {f for i in rows.tolist() if stays[i] == i for f in families[i]}
    for family in sorted(set(received) | batch_families):
        store = received.get(family)
        stored = store.view() if store is not None else _NONE
        has = [family in families[i] for i in rows.tolist()]
        added = _sorted(_batch_events(rows, stays, declared, has))
        leave = _NONE  # used only with events of the batch, one of which it leaves out
        if len(added):
            leave = np.array(
                [
                    int(declared[r]) if r >= 0 and family in families[r] else _NO_LEAVE
                    for r in leave_rows
                ],
                dtype=np.int64,
            )
        gone = _sorted([r.at for r in dropped if family in r.families])
        before, start = _before(stored, gone, added, leave, queries - _NETWORK_OFFSETS_US)
        recent = before - start
        for j in np.flatnonzero(recent > 0).tolist():
            present[j].add(family)
    return entity_network({}, queries, [sorted(p) for p in present])
