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

A live batch is a few rows, so a query is answered row by row in Python, not with numpy over
arrays of a few elements (whose per-call overhead would dominate): one binary search per count
(``ndarray.searchsorted`` with a Python int, or with the few times one key asks about at
once), single elements read with ``ndarray.item``, and each sorted array's first and last time
kept as Python ints, so that a query after an entity's last event (the live case) needs no
search for what lies before it. The float features are then the kernels' float64 operations
on Python floats, which are IEEE doubles too: the same operations in the same order give the
same bits. A key asked about by one row only, with no record of it replaced by the batch (the
common case), needs none of the batch's corrections and takes a short path.

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
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from features.build import context_rows
from features.history import (
    COMPLEMENTARY_FAMILIES,
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    SMOOTHING_STRENGTH,
    US_PER_DAY,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    Keyed,
    network_names,
    outcome_names,
    to_micros,
    volume_names,
)
from features.tables import load_tables, table_path
from features.watchlist import Watchlist

_WINDOWS_US = tuple(d * US_PER_DAY for d in WINDOWS_DAYS)  # as the volume kernel's windows
# A query and its windows' starts, as the kernels count them: times before q and before q - w.
_VOLUME_OFFSETS_US = (0, *_WINDOWS_US)
_NETWORK_US = NETWORK_WINDOW_DAYS * US_PER_DAY
_ENTITY_INDEX = {entity: i for i, entity in enumerate(OUTCOME_KEYS)}
_VOLUME_INDEX = tuple((entity, _ENTITY_INDEX[entity]) for entity in VOLUME_KEYS)
_NETWORK_INDEX = tuple((entity, _ENTITY_INDEX[entity]) for entity in NETWORK_KEYS)
_NO_TIME = int(np.iinfo(np.int64).min)  # "no positive yet", as the outcome kernel marks it
_END = int(np.iinfo(np.int64).max)  # after every time: a sorted array's unused tail holds it
_NO_LEAVE = _END  # a row with no event of its own to leave out
_NAN = math.nan  # what the kernels give for "never" (np.nan: the same float)
# From how many queries of one key the batch's corrections are counted with numpy: a few
# numpy calls cost about what a Python binary search per query costs for this many.
_MANY_QUERIES = 16


def _column_layout() -> tuple[tuple[str, int, int], ...]:
    """Where :meth:`EntityState.history_for` puts each history column, in the order of the
    names (as the kernels give them): its name, its block (0: float64, 1: int32) and its row
    there, as the columns are computed: per volume entity its age (float) and counts (int), per
    outcome entity its two counts (int) and two rates (float), per network entity two ints."""
    layout: list[tuple[str, int, int]] = []
    rows = [0, 0]

    def put(names: list[str], block: int) -> None:
        for name in names:
            layout.append((name, block, rows[block]))
            rows[block] += 1

    for entity in VOLUME_KEYS:
        age, *counts = volume_names(entity)
        put([age], 0)
        put(counts, 1)
    for entity in OUTCOME_KEYS:
        names = outcome_names(entity)
        put(names[:2], 1)
        put(names[2:], 0)
    for entity in NETWORK_KEYS:
        put(network_names(entity), 1)
    return tuple(layout)


_LAYOUT = _column_layout()


class _Reading:
    """``with lock.reading():`` — a plain context manager rather than a generator one, which
    costs a few times more to enter and leave, on every read."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, *_: object) -> None:
        self._lock.release_read()


class ReadWriteLock:
    """Many readers at once or one writer; a waiting writer holds off readers that come after it.
    Not reentrant: a thread must not take it again while it holds it."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._reading = _Reading(self)  # holds no state of its own: shared by every reader

    def reading(self) -> _Reading:
        return self._reading

    def acquire_read(self) -> None:
        with self._changed:
            while self._writing or self._writers_waiting:
                self._changed.wait()
            self._readers += 1

    def release_read(self) -> None:
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


def _grown(array: np.ndarray, size: int, fill: int | None = None) -> np.ndarray:
    """``array`` at twice its capacity, holding its first ``size`` elements (the rest
    ``fill`` when given)."""
    if fill is None:
        grown = np.empty(2 * len(array), dtype=array.dtype)
    else:
        grown = np.full(2 * len(array), fill, dtype=array.dtype)
    grown[:size] = array[:size]
    return grown


class _Times:
    """A growable sorted int64 array of event times. Its unused tail holds :data:`_END`, so a
    search over the whole array counts the events before a time without slicing it; its first
    and last times are kept as Python ints (``earliest``, ``latest``: :data:`_END` and
    :data:`_NO_TIME` while it is empty). An append in time order is O(1) amortised; an event out
    of order, or one taken out, moves the later ones."""

    __slots__ = ("earliest", "latest", "size", "times")

    def __init__(self) -> None:
        self.times = np.full(8, _END, dtype=np.int64)
        self.size = 0
        self.earliest = _END
        self.latest = _NO_TIME

    def view(self) -> np.ndarray:
        return self.times[: self.size]

    def before(self, time: int) -> int:
        """How many events lie strictly before ``time``: all of them when it is after the last,
        else a binary search."""
        return self.size if time > self.latest else int(self.times.searchsorted(time))

    def recent(self, start: int, end: int) -> bool:
        """Whether an event lies in ``[start, end)``: the last one before ``end`` is at or
        after ``start``."""
        if end > self.latest:
            return self.latest >= start  # _NO_TIME when empty
        before = int(self.times.searchsorted(end))
        return before > 0 and self.times.item(before - 1) >= start

    def add(self, time: int) -> None:
        at = self._open(time)  # first: it may grow the array
        self.times[at] = time

    def remove(self, time: int) -> None:
        """Take out one event at ``time``; none there: nothing."""
        at = int(self.times.searchsorted(time, side="left"))
        if at < self.size and self.times.item(at) == time:
            self._close(at)

    def _grow(self) -> None:
        self.times = _grown(self.times, self.size, _END)

    def _shift(self, source: slice, target: slice) -> None:
        self.times[target] = self.times[source]

    def _open(self, time: int) -> int:
        """Make room for an event at ``time``, after any equal ones, and return where it goes."""
        size = self.size
        if size == len(self.times):
            self._grow()
        if time >= self.latest:  # in time order (or the first): it goes last
            at = size
            self.latest = time
        else:  # out of order: the later events move up
            at = int(self.times.searchsorted(time, side="right"))
            self._shift(slice(at, size), slice(at + 1, size + 1))
        if not at:
            self.earliest = time
        self.size = size + 1
        return at

    def _close(self, at: int) -> None:
        size = self.size - 1
        self._shift(slice(at + 1, size + 1), slice(at, size))
        self.times[size] = _END
        self.size = size
        if not size:
            self.earliest, self.latest = _END, _NO_TIME
            return
        if not at:
            self.earliest = self.times.item(0)
        if at == size:
            self.latest = self.times.item(size - 1)


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
            self.positives[at] = self.positives_before(at) + positive
            self.last[at] = time if positive else self.last_before(at)
        else:
            self._retotal(at)

    def remove_outcome(self, time: int, positive: bool) -> None:
        """Take out one outcome at ``time`` with result ``positive``; none there: nothing."""
        lo, hi = self.run(time)
        base = self.positives_before(lo)

        def passed(j: int) -> int:
            """Outcomes with that result in ``[lo, j]``."""
            positives = self.positives.item(j) - base
            return positives if positive else j + 1 - lo - positives

        found = bisect.bisect_right(range(lo, hi), 0, key=passed)  # the first of that result
        if found < hi - lo:
            self._close(lo + found)
            if lo + found < self.size:
                self._retotal(lo + found)

    def run(self, time: int) -> tuple[int, int]:
        """Where the outcomes reported at exactly ``time`` are: ``[lo, hi)``."""
        times = self.times
        return int(times.searchsorted(time, side="left")), int(
            times.searchsorted(time, side="right")
        )

    def positives_before(self, at: int) -> int:
        return self.positives.item(at - 1) if at else 0

    def last_before(self, at: int) -> int:
        return self.last.item(at - 1) if at else _NO_TIME

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


class _Record(NamedTuple):
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
            records, credits = self._records, self._credits
            for shipment_id, declared_at, families, keys in zip(
                rows.shipment_id, rows.declared_at.tolist(), rows.families, keys_by_row, strict=True
            ):
                record = _Record(declared_at, keys, tuple(families))
                old = records.get(shipment_id)
                if old is not None:
                    if old == record:
                        continue
                    self._index(old, add=False)
                    credit = credits.get(shipment_id)
                    if credit is not None and old.keys != record.keys:
                        self._index_outcome(old.keys, credit, add=False)
                        self._index_outcome(record.keys, credit, add=True)
                records[shipment_id] = record
                self._index(record, add=True)

    def _index(self, record: _Record, *, add: bool) -> None:
        """Add ``record``'s declared time to its entities' events, or take it out."""
        at, keys = record.at, record.keys
        for entity, index in _VOLUME_INDEX:
            by_key = self._volume[entity]
            store = by_key.get(keys[index])
            if store is None:
                store = by_key[keys[index]] = _Times()
            if add:
                store.add(at)
            else:
                store.remove(at)
        if not record.families:
            return
        for entity, index in _NETWORK_INDEX:
            by_family = self._network[entity].setdefault(keys[index], {})
            for family in record.families:
                store = by_family.get(family)
                if store is None:
                    store = by_family[family] = _Times()
                if add:
                    store.add(at)
                else:
                    store.remove(at)

    def _index_outcome(self, keys: tuple[str, ...], credit: _Credit, *, add: bool) -> None:
        for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
            events = self._outcomes[entity].get(key)
            if events is None:
                events = self._outcomes[entity][key] = _Outcomes()
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
        replaces plus the batch's staying rows (:meth:`_Batch.added`), less, for a row the
        batch repeats later, that later row (its leave): counts are binary searches on the
        stored arrays corrected by those few events, never copies of them.
        """
        floats: list[list[float]] = []  # float64 columns, as _LAYOUT places them
        ints: list[list[int]] = []  # int32 columns
        with self._lock.reading():
            batch = _Batch(targets, self._records, self._credits)
            for entity in VOLUME_KEYS:
                age, counts = self._volume_columns(entity, batch)
                floats.append(age)
                ints += counts
            smooth = _smoothing(prior_rate)
            for entity in OUTCOME_KEYS:
                inspections, positives, rate, since = self._outcome_columns(entity, batch, smooth)
                ints += (inspections, positives)
                floats += (rate, since)
            for entity in NETWORK_KEYS:
                ints += self._network_columns(entity, batch)
        # Two conversions for the whole batch; each column a row of one of them.
        blocks = (list(np.array(floats, dtype=np.float64)), list(np.array(ints, dtype=np.int32)))
        return {name: blocks[block][row] for name, block, row in _LAYOUT}

    def _volume_columns(self, entity: str, batch: _Batch) -> tuple[list[float], list[list[int]]]:
        """What :func:`~features.history.entity_volume` gives each row for its events of
        ``entity``: age in days, and count per window."""
        n, declared = batch.size, batch.declared
        age: list[float] = [_NAN] * n
        counts: list[list[int]] = [[0] * n for _ in _WINDOWS_US]
        stores = self._volume[entity]
        dropped = batch.dropped(entity)
        for key, rows in batch.rows_by_key(entity).items():
            store = stores.get(key)
            gone = dropped.get(key)
            if gone is None and len(rows) == 1:
                # One row and nothing replaced: its own event (if it stays) is neither before
                # it nor before its windows' starts, and not its first when any is before it.
                if store is None:
                    continue
                i = rows[0]
                q = declared[i]
                before = store.before(q)
                if not before:
                    continue
                starts = store.times.searchsorted([q - w for w in _WINDOWS_US]).tolist()
                age[i] = float(q - store.earliest) / US_PER_DAY
                for column, start in zip(counts, starts, strict=True):
                    column[i] = before - start
                continue
            gone_times = sorted(r.at for r in gone) if gone else []
            added, leaves = batch.added(entity, key, rows)
            queries = [declared[i] - offset for i in rows for offset in _VOLUME_OFFSETS_US]
            found = _corrected(store, queries, gone_times, added, leaves)
            first_kept = _first_kept(store, gone_times)
            width = len(_VOLUME_OFFSETS_US)
            for j, i in enumerate(rows):
                before, *starts = found[width * j : width * (j + 1)]
                if before > 0:
                    first = _first(first_kept, added, leaves[j])
                    assert first is not None  # an event lies before the query
                    age[i] = float(declared[i] - first) / US_PER_DAY
                for column, start in zip(counts, starts, strict=True):
                    column[i] = before - start
        return age, counts

    def _outcome_columns(
        self, entity: str, batch: _Batch, smooth: float
    ) -> tuple[list[int], list[int], list[float], list[float]]:
        """What :func:`~features.history.entity_outcomes` gives each row for the outcomes of
        its ``entity``, less its own credited one when it is re-scored."""
        n, declared = batch.size, batch.declared
        inspections, positives = [0] * n, [0] * n
        no_rate = _rate(0, 0, smooth)
        rate, since = [no_rate] * n, [_NAN] * n
        stores = self._outcomes[entity]
        index = _ENTITY_INDEX[entity]
        own = batch.own
        for i, key in enumerate(batch.keys[entity]):
            found = stores.get(key)
            if found is None:
                continue
            q = declared[i]
            if own and i in own:  # a re-scored id: its own outcome is not history of itself
                record, credited = own[i]
                credit = credited if record.keys[index] == key else None
                count, positive, last = _outcomes_before(found, q, credit)
            else:  # the common case: _outcomes_before with no outcome of its own
                count = found.before(q)
                if not count:
                    continue  # none before it: what the kernel gives for no outcomes at all
                positive, last = found.positives.item(count - 1), found.last.item(count - 1)
            inspections[i], positives[i], rate[i], since[i] = _outcome_values(
                count, positive, last, q, smooth
            )
        return inspections, positives, rate, since

    def _network_columns(self, entity: str, batch: _Batch) -> list[list[int]]:
        """What :func:`~features.history.entity_network` gives each row: its watched route
        families are its own plus those of its ``entity``'s events in the window before it
        (counted as :func:`_corrected` counts), which the kernel then counts and combines."""
        n, declared, families = batch.size, batch.declared, batch.families
        count, complementary = [0] * n, [0] * n
        stores = self._network[entity]
        dropped = batch.dropped(entity)
        for key, rows in batch.rows_by_key(entity).items():
            received = stores.get(key)
            gone = dropped.get(key)
            if gone is None and len(rows) == 1:  # as for volume: the stored events only
                i = rows[0]
                if not received:
                    if families[i]:
                        count[i], complementary[i] = _combined(set(families[i]))
                    continue
                q = declared[i]
                start = q - _NETWORK_US
                present = set(families[i])
                for family, events in received.items():
                    if family not in present and events.recent(start, q):
                        present.add(family)
                count[i], complementary[i] = _combined(present)
                continue
            presents = [set(families[i]) for i in rows]
            queries = [x for i in rows for x in (declared[i], declared[i] - _NETWORK_US)]
            in_batch = set().union(*(families[i] for i in batch.staying(rows)))
            for family in set(received or ()) | in_batch:
                store = received.get(family) if received else None
                gone_times = sorted(r.at for r in gone if family in r.families) if gone else []
                if store is not None and not gone_times and family not in in_batch:
                    # No event of the batch's to add or leave out: the stored ones alone.
                    for i, present in zip(rows, presents, strict=True):
                        if family not in present and store.recent(
                            declared[i] - _NETWORK_US, declared[i]
                        ):
                            present.add(family)
                    continue
                added, leaves = batch.added(entity, key, rows, family)
                found = _corrected(store, queries, gone_times, added, leaves)
                for j, present in enumerate(presents):
                    if found[2 * j] - found[2 * j + 1] > 0:
                        present.add(family)
            for i, present in zip(rows, presents, strict=True):
                count[i], complementary[i] = _combined(present)
        return [count, complementary]


class _Batch:
    """A batch of targets as history sees it: each row's id, time, keys and families, which
    rows stay (each id's last row becomes its record), the stored records the batch replaces
    and the outcomes credited to its re-scored ids."""

    __slots__ = ("declared", "families", "keys", "own", "replaced", "size", "stays")

    def __init__(
        self, targets: Keyed, records: dict[str, _Record], credits: dict[str, _Credit]
    ) -> None:
        ids = targets.shipment_id
        self.size = len(ids)
        self.declared: list[int] = targets.declared_at.tolist()
        self.families = targets.families
        self.keys = targets.keys
        last = {shipment_id: i for i, shipment_id in enumerate(ids)}
        # The row that becomes each row's id's record; None when no id repeats (each row).
        self.stays = None if len(last) == len(ids) else [last[s] for s in ids]
        self.replaced = [records[s] for s in last if s in records]
        # Rows of a re-scored id with a credited outcome: its record and that credit.
        self.own = (
            {i: (records[s], credits[s]) for i, s in enumerate(ids) if s in credits}
            if self.replaced
            else {}
        )

    def rows_by_key(self, entity: str) -> dict[str, list[int]]:
        """Row indices of each key of ``entity``, in first-seen order."""
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys[entity]):
            found = rows.get(key)
            if found is None:
                rows[key] = [i]
            else:
                found.append(i)
        return rows

    def dropped(self, entity: str) -> dict[str, list[_Record]]:
        """The records the batch replaces, by their key of ``entity``."""
        by_key: dict[str, list[_Record]] = {}
        if not self.replaced:
            return by_key
        index = _ENTITY_INDEX[entity]
        for record in self.replaced:
            by_key.setdefault(record.keys[index], []).append(record)
        return by_key

    def staying(self, rows: list[int]) -> list[int]:
        """Those of ``rows`` that stay."""
        stays = self.stays
        return rows if stays is None else [i for i in rows if stays[i] == i]

    def added(
        self, entity: str, key: str, rows: list[int], family: str | None = None
    ) -> tuple[list[int], list[int]]:
        """The batch's events of ``key`` (all of ``rows``' key) with ``family`` when given:
        the sorted declared times of the rows that stay, which count as history of the
        others; and for each row, the time of the event to leave out of its history
        (:data:`_NO_LEAVE` when none): an earlier row of an id the batch repeats gets the
        history of its id's first scoring, so its id's staying row is not its past."""
        declared, families, stays = self.declared, self.families, self.stays
        added = sorted(
            declared[i] for i in self.staying(rows) if family is None or family in families[i]
        )
        if stays is None or not added:
            return added, [_NO_LEAVE] * len(rows)
        keys = self.keys[entity]
        leaves = []
        for i in rows:
            r = stays[i]
            mine = r != i and keys[r] == key and (family is None or family in families[r])
            leaves.append(declared[r] if mine else _NO_LEAVE)
        return added, leaves


def _corrected(
    store: _Times | None,
    queries: list[int],
    dropped: list[int],
    added: list[int],
    leaves: list[int],
) -> list[int]:
    """How many events lie strictly before each query: the stored ones (one search for all the
    queries) less ``dropped`` (some of them) plus ``added``, less the query's row's leave (one
    of ``added``); the queries come in equal runs per row, one leave each. Nothing of the
    stored events is copied. The corrections are binary searches on the few events, in Python
    for a few queries, with numpy (a few calls for them all) for many."""
    if (dropped or added) and len(queries) >= _MANY_QUERIES:
        return _corrected_many(store, queries, dropped, added, leaves)
    found = [0] * len(queries) if store is None else store.times.searchsorted(queries).tolist()
    if not dropped and not added:
        return found
    per_row = len(queries) // len(leaves)
    bisect_left = bisect.bisect_left
    for k, x in enumerate(queries):
        count = found[k]
        if dropped:
            count -= bisect_left(dropped, x)
        if added:
            count += bisect_left(added, x) - (leaves[k // per_row] < x)
        found[k] = count
    return found


def _corrected_many(
    store: _Times | None,
    queries: list[int],
    dropped: list[int],
    added: list[int],
    leaves: list[int],
) -> list[int]:
    """:func:`_corrected` for many queries, the same counts with numpy."""
    at = np.array(queries, dtype=np.int64)
    found = np.zeros(len(at), dtype=np.int64) if store is None else store.times.searchsorted(at)
    if dropped:
        found -= np.array(dropped, dtype=np.int64).searchsorted(at)
    if added:
        found += np.array(added, dtype=np.int64).searchsorted(at)
        per_row = len(queries) // len(leaves)
        found -= np.repeat(np.array(leaves, dtype=np.int64), per_row) < at
    counts: list[int] = found.tolist()
    return counts


def _first_kept(store: _Times | None, dropped: list[int]) -> int | None:
    """The first stored event less ``dropped`` (some of them), None when none is left: among
    the first ``len(dropped) + 1``."""
    if store is None or not store.size:
        return None
    if not dropped:
        return store.earliest
    head: list[int] = store.view()[: len(dropped) + 1].tolist()
    for time in dropped:
        if time in head:
            head.remove(time)  # one occurrence each
    return head[0] if head else None


def _first(kept: int | None, added: list[int], leave: int) -> int | None:
    """A row's first event: the first ``kept`` stored one or the first of ``added`` less the
    row's ``leave`` (one of them), whichever is earlier; None when there is none."""
    if not added:
        return kept
    if leave != added[0]:
        batch_first = added[0]
    elif len(added) > 1:
        batch_first = added[1]
    else:
        return kept
    return batch_first if kept is None else min(kept, batch_first)


def _outcomes_before(found: _Outcomes, query: int, own: _Credit | None) -> tuple[int, int, int]:
    """The outcomes of ``found`` reported before ``query``, less the row's ``own`` credited
    outcome when it was among them: how many, how many positive, the last positive's report
    time (:data:`_NO_TIME` when none). From the running totals at the query (a binary search,
    none when the query is after the last outcome), corrected for the outcome left out."""
    end = found.before(query)
    positives, last = found.positives_before(end), found.last_before(end)
    inspections = end
    if own is None or own.at >= query:
        return inspections, positives, last
    lo, hi = found.run(own.at)  # hi <= end: reported before the query
    in_run = found.positives_before(hi) - found.positives_before(lo)
    if (in_run if own.positive else hi - lo - in_run) == 0:
        return inspections, positives, last  # not among them: nothing to leave out
    inspections -= 1
    if own.positive:
        positives -= 1
        if found.positives_before(end) - found.positives_before(lo) == 1:
            last = found.last_before(lo)  # it was the last positive: the one before it
    return inspections, positives, last


def _smoothing(prior_rate: float) -> float:
    """``SMOOTHING_STRENGTH * prior_rate`` computed as the kernel computes it, once, before it
    is added to a float64 array (a float32 prior rounds there too), as a Python float."""
    return float(SMOOTHING_STRENGTH * prior_rate)


def _rate(inspections: int, positives: int, smooth: float) -> float:
    """The kernel's smoothed positive rate; ``smooth`` is ``SMOOTHING_STRENGTH * prior_rate``."""
    return (float(positives) + smooth) / (float(inspections) + SMOOTHING_STRENGTH)


def _outcome_values(
    inspections: int, positives: int, last: int, query: int, smooth: float
) -> tuple[int, int, float, float]:
    """:func:`~features.history.entity_outcomes`' values from the outcomes before a query (how
    many, how many positive, the last positive's report time): its formulas, operation for
    operation, so the floating point is the same to the bit."""
    since = float(query - last) / US_PER_DAY if last != _NO_TIME else _NAN
    return inspections, positives, _rate(inspections, positives, smooth), since


def _outcomes(
    found: _Outcomes, own: list[_Credit | None], queries: np.ndarray, prior_rate: float
) -> list[np.ndarray]:
    """What :func:`~features.history.entity_outcomes` gives for each query over ``found``, less
    the row's ``own`` credited outcome when it was reported before the query, as columns."""
    smooth = _smoothing(prior_rate)
    inspections, positives, rate, since = [], [], [], []
    for q, credit in zip(queries.tolist(), own, strict=True):
        values = _outcome_values(*_outcomes_before(found, q, credit), q, smooth)
        inspections.append(values[0])
        positives.append(values[1])
        rate.append(values[2])
        since.append(values[3])
    return [
        np.array(inspections, dtype=np.int32),
        np.array(positives, dtype=np.int32),
        np.array(rate, dtype=np.float64),
        np.array(since, dtype=np.float64),
    ]


def _combined(present: set[str]) -> tuple[int, int]:
    """:func:`~features.history.entity_network`'s values for a row's watched route families:
    how many, and 1 when they include a complementary combination."""
    if len(present) < 2:
        return len(present), 0
    complementary = any(
        not present.isdisjoint(left) and not present.isdisjoint(right)
        for left, right in COMPLEMENTARY_FAMILIES
    )
    return len(present), int(complementary)
