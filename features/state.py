"""Live entity state: each entity's events, kept sorted in memory and updated as the server runs.

For every shipper, consignee and broker the state holds its shipments' declared times; for every
entity of :data:`features.history.OUTCOME_KEYS` the report times and results of its inspections.
A live shipment's history features come from the same kernels the bulk path uses
(:func:`features.history.entity_volume`, :func:`features.history.entity_outcomes`), applied to
the arrays of its own entities, so they are bit-identical to the bulk computation and cost the
same whether an entity has ten shipments or a hundred thousand.

Reads and appends are serialised by one lock, so the server's worker threads can share it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from features.build import context_rows, keyed_outcomes
from features.history import (
    FAMILIES_COLUMN,
    KEY_COLUMNS,
    NETWORK_KEYS,
    OUTCOME_KEYS,
    VOLUME_KEYS,
    entity_network,
    entity_outcomes,
    entity_volume,
    network_names,
    outcome_names,
    volume_names,
)
from features.tables import INSPECTIONS_SCHEMA, scan_table, table_path
from features.watchlist import Watchlist


def _to_us(when: datetime) -> int:
    """Microseconds since the epoch, exactly as polars' ``dt.timestamp("us")`` counts them."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.times[: self.size], self.flags[: self.size]


_EMPTY = _Sorted()


class EntityState:
    """Shipments seen and outcomes reported, for the entity history of live shipments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._volume: dict[str, dict[str, _Sorted]] = {e: {} for e in VOLUME_KEYS}
        self._outcomes: dict[str, dict[str, _Sorted]] = {e: {} for e in OUTCOME_KEYS}
        # entity -> key -> route family -> declared times of shipments where it was identified
        self._network: dict[str, dict[str, dict[str, _Sorted]]] = {e: {} for e in NETWORK_KEYS}
        self._keys: dict[str, tuple[str, ...]] = {}  # shipment id -> its key values
        self.outcome_count = 0

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
        state = cls()
        context = context_rows(shipments, goods, watchlist).sort("declared_at")
        state.add_shipments(context)
        outcomes = keyed_outcomes(context, inspections).sort("reported_at")
        for row in outcomes.iter_rows(named=True):
            state._add_outcome_keys(
                [row[KEY_COLUMNS[e]] for e in OUTCOME_KEYS], row["reported_at"], row["positive"]
            )
        return state

    @classmethod
    def from_data_dir(cls, data_dir: Path, watchlist: Watchlist) -> EntityState:
        """History from a directory of canonical tables; empty when it has none."""
        root = Path(data_dir)
        if not table_path(root, "shipments").exists():
            return cls.empty()
        inspections = (
            scan_table(root, "inspections")
            if table_path(root, "inspections").exists()
            else pl.DataFrame(schema=INSPECTIONS_SCHEMA)
        )
        shipments, goods = scan_table(root, "shipments"), scan_table(root, "goods")
        return cls.from_tables(shipments, goods, inspections, watchlist)

    @property
    def shipments(self) -> int:
        return len(self._keys)

    @property
    def outcomes(self) -> int:
        return self.outcome_count

    def add_shipments(self, rows: pl.DataFrame) -> None:
        """Remember shipments (stage-1 rows or context rows); a replayed id is not added twice."""
        columns = [KEY_COLUMNS[e] for e in OUTCOME_KEYS]
        with self._lock:
            selected = rows.select("shipment_id", "declared_at", FAMILIES_COLUMN, *columns)
            for row in selected.iter_rows():
                shipment_id, declared_at, families, *keys = row
                if shipment_id in self._keys:
                    continue
                self._keys[shipment_id] = tuple(keys)
                at = _to_us(declared_at)
                for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
                    if entity in self._volume:
                        self._volume[entity].setdefault(key, _Sorted()).add(at)
                    if entity in self._network and families:
                        by_family = self._network[entity].setdefault(key, {})
                        for family in families:
                            by_family.setdefault(family, _Sorted()).add(at)

    def add_outcome(self, shipment_id: str, reported_at: datetime, positive: bool) -> bool:
        """Credit an outcome to the shipment's entities; False if the shipment is unknown."""
        with self._lock:
            keys = self._keys.get(shipment_id)
        if keys is None:
            return False
        self._add_outcome_keys(list(keys), reported_at, positive)
        return True

    def _add_outcome_keys(self, keys: list[str], reported_at: datetime, positive: bool) -> None:
        at = _to_us(reported_at)
        with self._lock:
            for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
                self._outcomes[entity].setdefault(key, _Sorted()).add(at, positive)
            self.outcome_count += 1

    def history_for(self, targets: pl.DataFrame, prior_rate: float) -> pl.DataFrame:
        """History features of ``targets`` (stage-1 rows), in their order.

        Earlier shipments of the same batch count as history, as they would in bulk.
        """
        n = targets.height
        declared = targets["declared_at"].dt.timestamp("us").to_numpy().astype(np.int64)
        columns: dict[str, np.ndarray] = {}
        with self._lock:
            for entity in VOLUME_KEYS:
                keys = targets[KEY_COLUMNS[entity]].to_list()
                out = entity_volume(np.zeros(0, dtype=np.int64), np.zeros(n, dtype=np.int64))
                for key in dict.fromkeys(keys):
                    rows = np.array([i for i, k in enumerate(keys) if k == key])
                    known, _ = self._volume[entity].get(key, _EMPTY).view()
                    times = np.sort(np.concatenate([known, declared[rows]]), kind="stable")
                    for target, values in zip(
                        out, entity_volume(times, declared[rows]), strict=True
                    ):
                        target[rows] = values
                columns.update(zip(volume_names(entity), out, strict=True))
            for entity in OUTCOME_KEYS:
                keys = targets[KEY_COLUMNS[entity]].to_list()
                out = entity_outcomes(
                    np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=bool),
                    np.zeros(n, dtype=np.int64),
                    prior_rate,
                )
                for key in dict.fromkeys(keys):
                    found = self._outcomes[entity].get(key)
                    if found is None:
                        continue
                    rows = np.array([i for i, k in enumerate(keys) if k == key])
                    reported, positive = found.view()
                    computed = entity_outcomes(reported, positive, declared[rows], prior_rate)
                    for target, value in zip(out, computed, strict=True):
                        target[rows] = value
                columns.update(zip(outcome_names(entity), out, strict=True))
            families = targets[FAMILIES_COLUMN].to_list()
            for entity in NETWORK_KEYS:
                keys = targets[KEY_COLUMNS[entity]].to_list()
                out = entity_network({}, np.zeros(n, dtype=np.int64), [[] for _ in range(n)])
                for key in dict.fromkeys(keys):
                    rows = np.array([i for i, k in enumerate(keys) if k == key])
                    row_families = [families[i] for i in rows]
                    received = self._network[entity].get(key, {})
                    batch: dict[str, list[int]] = {}
                    for t, fams in zip(declared[rows].tolist(), row_families, strict=True):
                        for family in fams:
                            batch.setdefault(family, []).append(t)
                    family_times = {
                        f: np.sort(
                            np.concatenate(
                                [
                                    received.get(f, _EMPTY).view()[0],
                                    np.array(batch.get(f, []), dtype=np.int64),
                                ]
                            ),
                            kind="stable",
                        )
                        for f in set(received) | set(batch)
                    }
                    computed = entity_network(family_times, declared[rows], row_families)
                    for target, value in zip(out, computed, strict=True):
                        target[rows] = value
                columns.update(zip(network_names(entity), out, strict=True))
        return pl.DataFrame(columns)
