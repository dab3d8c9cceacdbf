"""The live entity state's API: remember shipments and outcomes, answer history for a batch.

:class:`EntityState` keeps, per entity key, the sorted events of :mod:`features.state.events`:
each shipper's, consignee's and broker's declared times (volume), each outcome entity's
inspection outcomes, and each consignee's and broker's declared times per watched route family
(network). It holds one :class:`~features.state.batch.Record` per shipment id and the one
outcome credited for it, and puts every read and write under one
:class:`~features.state.lock.ReadWriteLock`. :meth:`EntityState.history_for` answers with
:func:`features.state.columns.history_columns`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from features.build import context_rows
from features.history import (
    NETWORK_KEYS,
    OUTCOME_KEYS,
    SMOOTHING_STRENGTH,
    VOLUME_KEYS,
    Keyed,
    to_micros,
)
from features.state.batch import ENTITY_INDEX, Batch, Credit, Record
from features.state.columns import history_columns, named
from features.state.events import Outcomes, Times
from features.state.lock import ReadWriteLock
from features.tables import load_tables, table_path
from features.watchlist import Watchlist

_VOLUME_INDEX = tuple((entity, ENTITY_INDEX[entity]) for entity in VOLUME_KEYS)
_NETWORK_INDEX = tuple((entity, ENTITY_INDEX[entity]) for entity in NETWORK_KEYS)


class EntityState:
    """Shipments seen and outcomes reported, for the entity history of live shipments."""

    def __init__(self) -> None:
        self._lock = ReadWriteLock()
        self._volume: dict[str, dict[str, Times]] = {e: {} for e in VOLUME_KEYS}
        self._outcomes: dict[str, dict[str, Outcomes]] = {e: {} for e in OUTCOME_KEYS}
        # entity -> key -> route family -> declared times of shipments where it was identified
        self._network: dict[str, dict[str, dict[str, Times]]] = {e: {} for e in NETWORK_KEYS}
        self._records: dict[str, Record] = {}  # shipment id -> its one record
        self._credits: dict[str, Credit] = {}  # shipment id -> the outcome credited for it

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
                record = Record(declared_at, keys, tuple(families))
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

    def _index(self, record: Record, *, add: bool) -> None:
        """Add ``record``'s declared time to its entities' events, or take it out."""
        at, keys = record.at, record.keys
        for entity, index in _VOLUME_INDEX:
            by_key = self._volume[entity]
            store = by_key.get(keys[index])
            if store is None:
                store = by_key[keys[index]] = Times()
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
                    store = by_family[family] = Times()
                if add:
                    store.add(at)
                else:
                    store.remove(at)

    def _index_outcome(self, keys: tuple[str, ...], credit: Credit, *, add: bool) -> None:
        for entity, key in zip(OUTCOME_KEYS, keys, strict=True):
            events = self._outcomes[entity].get(key)
            if events is None:
                events = self._outcomes[entity][key] = Outcomes()
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
            credit = Credit(to_micros(reported_at), positive)
            self._credits[shipment_id] = credit
            self._index_outcome(record.keys, credit, add=True)
            return True

    def history_for(
        self, targets: Keyed, prior_rate: float, strength: float = SMOOTHING_STRENGTH
    ) -> dict[str, np.ndarray]:
        """History features of ``targets``, in their order, positive rates smoothed by
        ``strength`` pseudo-inspections at ``prior_rate`` (the bundle's feature reference).

        Earlier shipments of the same batch count as history, as they would in bulk. Each row
        gets the history it would have had as its id's first scoring: the record the state
        holds for the same id (which the batch's last row of that id replaces), the outcome
        credited for it and the batch's other rows of that id are not history of itself.

        Per entity key, every row's events are the stored ones less the records the batch
        replaces plus the batch's staying rows (:meth:`~features.state.batch.Batch.added`),
        less, for a row the batch repeats later, that later row (its leave): counts are binary
        searches on the stored arrays corrected by those few events, never copies of them.
        """
        with self._lock.reading():
            batch = Batch(targets, self._records, self._credits)
            floats, ints = history_columns(
                self._volume, self._outcomes, self._network, batch, prior_rate, strength
            )
        return named(floats, ints)
