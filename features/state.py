"""Live entity state: each entity's events, kept sorted in memory and updated as the server runs.

For every shipper, consignee and broker the state holds its shipments' declared times; for every
entity of :data:`features.history.OUTCOME_KEYS` the report times and results of its inspections.
A live shipment's history features come from the same kernels the bulk path uses
(:func:`features.history.entity_volume`, :func:`features.history.entity_outcomes`), applied to
the arrays of its own entities, so they are bit-identical to the bulk computation. Only the
events a kernel can see are copied (an entity's first shipment and those of the last year), so
the cost does not grow with how long an entity has been busy.

A shipment id is one shipment however often it is scored: the state keeps one record per id
(the latest scoring's), a re-scored id's history leaves out its own earlier record and outcome,
and an id's entities are credited with one inspection outcome at most, the first definite one.
Scoring one shipment six times therefore makes none of its parties look more established.

Reads and appends are serialised by one lock, so the server's worker threads can share it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from features.build import context_rows
from features.history import (
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    US_PER_DAY,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    Keyed,
    entity_network,
    entity_outcomes,
    entity_volume,
    network_names,
    outcome_names,
    volume_names,
)
from features.tables import load_tables, table_path
from features.watchlist import Watchlist


def _to_us(when: datetime) -> int:
    """Microseconds since the epoch, exactly as polars' ``dt.timestamp("us")`` counts them."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VOLUME_REACH_US = max(WINDOWS_DAYS) * US_PER_DAY  # the oldest event a volume count can see
_NETWORK_REACH_US = NETWORK_WINDOW_DAYS * US_PER_DAY
_ENTITY_INDEX = {entity: i for i, entity in enumerate(OUTCOME_KEYS)}


class _Sorted:
    """A growable sorted int64 array (with an optional parallel bool array), zero-copy views."""

    __slots__ = ("flags", "size", "times")

    def __init__(self) -> None:
        self.times = np.empty(8, dtype=np.int64)
        self.flags = np.empty(8, dtype=bool)
        self.size = 0

    def add(self, time: int, flag: bool = False) -> None:
        if self.size == len(self.times):
            self.times = np.resize(self.times, 2 * self.size)
            self.flags = np.resize(self.flags, 2 * self.size)
        at = self.size
        if at and self.times[at - 1] > time:  # out of order: keep sorted, ties after equals
            at = int(np.searchsorted(self.times[: self.size], time, side="right"))
            self.times[at + 1 : self.size + 1] = self.times[at : self.size]
            self.flags[at + 1 : self.size + 1] = self.flags[at : self.size]
        self.times[at] = time
        self.flags[at] = flag
        self.size += 1

    def remove(self, time: int, flag: bool | None = None) -> None:
        """Take out one event at ``time`` (with ``flag``, when given); none there: nothing."""
        times, flags = self.view()
        lo = int(np.searchsorted(times, time, side="left"))
        hi = int(np.searchsorted(times, time, side="right"))
        for at in range(lo, hi):
            if flag is None or bool(flags[at]) == flag:
                self.times[at : self.size - 1] = self.times[at + 1 : self.size]
                self.flags[at : self.size - 1] = self.flags[at + 1 : self.size]
                self.size -= 1
                return

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.times[: self.size], self.flags[: self.size]


_EMPTY = _Sorted()


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


def _reach(times: np.ndarray, queries: np.ndarray, reach: int, head: int) -> np.ndarray:
    """The part of sorted ``times`` the kernels can see for ``queries``: events from ``reach``
    before the earliest query up to the latest one, and the first ``head`` events (a first-seen
    time). Events older than that count alike before every query, so leaving them out changes
    no count; events at or after the latest query count for none."""
    lo = int(np.searchsorted(times, queries.min() - reach, side="left"))
    hi = int(np.searchsorted(times, queries.max(), side="left"))
    if lo <= head:
        return times[:hi]
    return np.concatenate([times[:head], times[lo:hi]])


class EntityState:
    """Shipments seen and outcomes reported, for the entity history of live shipments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._volume: dict[str, dict[str, _Sorted]] = {e: {} for e in VOLUME_KEYS}
        self._outcomes: dict[str, dict[str, _Sorted]] = {e: {} for e in OUTCOME_KEYS}
        # entity -> key -> route family -> declared times of shipments where it was identified
        self._network: dict[str, dict[str, dict[str, _Sorted]]] = {e: {} for e in NETWORK_KEYS}
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
        with self._lock:
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
                [self._volume[entity].setdefault(key, _Sorted())] if entity in VOLUME_KEYS else []
            )
            if entity in self._network and record.families:
                by_family = self._network[entity].setdefault(key, {})
                events += [by_family.setdefault(f, _Sorted()) for f in record.families]
            for sorted_events in events:
                if add:
                    sorted_events.add(record.at)
                else:
                    sorted_events.remove(record.at)

    def _index_outcome(self, keys: tuple[str, ...], credit: _Credit, *, add: bool) -> None:
        for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
            events = self._outcomes[entity].setdefault(key, _Sorted())
            if add:
                events.add(credit.at, credit.positive)
            else:
                events.remove(credit.at, credit.positive)

    def add_outcome(self, shipment_id: str, reported_at: datetime, positive: bool) -> bool:
        """Credit an outcome to the shipment's entities, once per shipment id: False (and
        nothing credited) if the shipment is unknown or its entities were credited before."""
        with self._lock:
            record = self._records.get(shipment_id)
            if record is None or shipment_id in self._credits:
                return False
            credit = _Credit(_to_us(reported_at), positive)
            self._credits[shipment_id] = credit
            self._index_outcome(record.keys, credit, add=True)
            return True

    def history_for(self, targets: Keyed, prior_rate: float) -> dict[str, np.ndarray]:
        """History features of ``targets``, in their order.

        Earlier shipments of the same batch count as history, as they would in bulk. Each row
        gets the history it would have had as its id's first scoring: the record the state
        holds for the same id (which the batch's last row of that id replaces), the outcome
        credited for it and the batch's other rows of that id are not history of itself.
        """
        n = len(targets)
        ids = targets.shipment_id
        declared = targets.declared_at
        families = targets.families
        last = {shipment_id: i for i, shipment_id in enumerate(ids)}
        stays = [last[shipment_id] for shipment_id in ids]  # the row that becomes id's record
        columns: dict[str, np.ndarray] = {}
        with self._lock:
            replaced = {s: self._records[s] for s in last if s in self._records}
            for entity in VOLUME_KEYS:
                at = _ENTITY_INDEX[entity]
                keys = targets.keys[entity]
                out = entity_volume(np.zeros(0, dtype=np.int64), np.zeros(n, dtype=np.int64))
                for key, rows in _rows_by_key(keys).items():
                    drop = [r.at for r in replaced.values() if r.keys[at] == key]
                    known, _ = self._volume[entity].get(key, _EMPTY).view()
                    reach = _reach(known, declared[rows], _VOLUME_REACH_US, len(drop) + 1)
                    staying = [i for i in rows if stays[i] == i]
                    times = np.sort(
                        np.concatenate([_without(reach, drop), declared[staying]]), kind="stable"
                    )
                    for group, leave in _batch_groups(rows, stays, keys):
                        group_times = times if leave is None else _without(times, [declared[leave]])
                        computed = entity_volume(group_times, declared[group])
                        for target, values in zip(out, computed, strict=True):
                            target[group] = values
                columns.update(zip(volume_names(entity), out, strict=True))
            for entity in OUTCOME_KEYS:
                at = _ENTITY_INDEX[entity]
                keys = targets.keys[entity]
                out = entity_outcomes(
                    np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=bool),
                    np.zeros(n, dtype=np.int64),
                    prior_rate,
                )
                for key, rows in _rows_by_key(keys).items():
                    found = self._outcomes[entity].get(key)
                    if found is None:
                        continue
                    reported, positive = found.view()
                    shared = []
                    groups = []
                    for i in rows:
                        record, credit = replaced.get(ids[i]), self._credits.get(ids[i])
                        if record is None or credit is None or record.keys[at] != key:
                            shared.append(i)
                            continue
                        # A re-scored id: its own outcome is not history of itself. Only the
                        # outcomes before the row are copied, to leave that one out.
                        end = int(np.searchsorted(reported, declared[i], side="left"))
                        keep = np.ones(end, dtype=bool)
                        own = (reported[:end] == credit.at) & (positive[:end] == credit.positive)
                        keep[np.flatnonzero(own)[:1]] = False
                        groups.append(([i], reported[:end][keep], positive[:end][keep]))
                    if shared:
                        groups.append((shared, reported, positive))
                    for group, group_reported, group_positive in groups:
                        computed = entity_outcomes(
                            group_reported, group_positive, declared[group], prior_rate
                        )
                        for target, value in zip(out, computed, strict=True):
                            target[group] = value
                columns.update(zip(outcome_names(entity), out, strict=True))
            for entity in NETWORK_KEYS:
                at = _ENTITY_INDEX[entity]
                keys = targets.keys[entity]
                out = entity_network({}, np.zeros(n, dtype=np.int64), [[] for _ in range(n)])
                for key, rows in _rows_by_key(keys).items():
                    received = self._network[entity].get(key, {})
                    dropped: dict[str, list[int]] = {}
                    for record in replaced.values():
                        if record.keys[at] == key:
                            for family in record.families:
                                dropped.setdefault(family, []).append(record.at)
                    batch: dict[str, list[int]] = {}
                    for i in rows:
                        if stays[i] == i:
                            for family in families[i]:
                                batch.setdefault(family, []).append(int(declared[i]))
                    family_times = {
                        family: np.sort(
                            np.concatenate(
                                [
                                    _without(
                                        _reach(
                                            received.get(family, _EMPTY).view()[0],
                                            declared[rows],
                                            _NETWORK_REACH_US,
                                            0,
                                        ),
                                        dropped.get(family, []),
                                    ),
                                    np.array(batch.get(family, []), dtype=np.int64),
                                ]
                            ),
                            kind="stable",
                        )
                        for family in set(received) | set(batch)
                    }
                    for group, leave in _batch_groups(rows, stays, keys):
                        group_family_times = family_times
                        if leave is not None:
                            group_family_times = {
                                f: _without(t, [declared[leave]] if f in families[leave] else [])
                                for f, t in family_times.items()
                            }
                        computed = entity_network(
                            group_family_times, declared[group], [list(families[i]) for i in group]
                        )
                        for target, value in zip(out, computed, strict=True):
                            target[group] = value
                columns.update(zip(network_names(entity), out, strict=True))
        return columns


def _rows_by_key(keys: list[str]) -> dict[str, np.ndarray]:
    """Row indices of each key value, in first-seen order."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return {key: np.array(found) for key, found in rows.items()}


def _batch_groups(
    rows: np.ndarray, stays: list[int], keys: list[str]
) -> list[tuple[list[int], int | None]]:
    """Rows of one key that share one computation, and each earlier row of an id the batch
    repeats on its own, with the id's staying row to leave out of its history (None when that
    row is of another key, hence not in these times)."""
    rows_list = [int(i) for i in rows]
    shared = [i for i in rows_list if stays[i] == i]
    groups: list[tuple[list[int], int | None]] = [(shared, None)] if shared else []
    for i in rows_list:
        if stays[i] != i:
            groups.append(([i], stays[i] if keys[stays[i]] == keys[i] else None))
    return groups
