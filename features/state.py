"""Live entity state: the history the live path needs, kept in memory and updated as it runs.

It holds the same two frames the bulk path builds (:func:`features.build.context_rows` and
:func:`features.build.keyed_outcomes`), indexed by entity key. To compute a live shipment's
features it hands :func:`features.build.finalize` only the rows of that shipment's own entities;
because every history figure is computed per entity (see :mod:`features.history`), the result
is identical to the bulk computation over the whole world.

Appends are cheap (rows go to a pending list and are merged in batches); reads and appends are
serialised by one lock, so the state can be shared by the server's worker threads.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import polars as pl

from features.build import CONTEXT_COLUMNS, OUTCOME_COLUMNS, context_rows, keyed_outcomes
from features.history import KEY_COLUMNS
from features.tables import scan_table, table_path

_MERGE_EVERY = 256


class _Indexed:
    """A frame with a per-key-column index of row positions, appended to in batches."""

    def __init__(self, frame: pl.DataFrame, keys: Iterable[str]) -> None:
        self.schema = frame.schema
        self.frame = frame.rechunk()
        self.keys = tuple(keys)
        self.index: dict[str, defaultdict[str, list[int]]] = {k: defaultdict(list) for k in keys}
        self.pending: list[pl.DataFrame] = []
        self.size = 0
        self._index_rows(frame)

    def _index_rows(self, rows: pl.DataFrame) -> None:
        for key in self.keys:
            idx = self.index[key]
            for offset, value in enumerate(rows.get_column(key).to_list()):
                idx[value].append(self.size + offset)
        self.size += rows.height

    def append(self, rows: pl.DataFrame) -> None:
        rows = rows.select(list(self.schema)).cast(self.schema)
        self._index_rows(rows)
        self.pending.append(rows)
        if len(self.pending) >= _MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        if self.pending:
            self.frame = pl.concat([self.frame, *self.pending], how="vertical").rechunk()
            self.pending = []

    def rows_for(self, wanted: dict[str, set[str]]) -> pl.DataFrame:
        """Rows whose value in any key column is among ``wanted[column]``, in insertion order."""
        self._merge()
        positions: set[int] = set()
        for key, values in wanted.items():
            idx = self.index[key]
            for value in values:
                positions.update(idx.get(value, ()))
        if not positions:
            return self.frame.clear()
        return self.frame[sorted(positions)]


class EntityState:
    """Shipments seen and outcomes reported, for the entity history of live shipments."""

    def __init__(self, context: pl.DataFrame, outcomes: pl.DataFrame) -> None:
        self._lock = threading.Lock()
        self._context = _Indexed(context.select(CONTEXT_COLUMNS), KEY_COLUMNS.values())
        self._by_id = {sid: i for i, sid in enumerate(context.get_column("shipment_id").to_list())}
        self._outcomes = _Indexed(outcomes.select(OUTCOME_COLUMNS), KEY_COLUMNS.values())

    @classmethod
    def empty(cls) -> EntityState:
        context = pl.DataFrame(schema=_CONTEXT_SCHEMA)
        outcomes = pl.DataFrame(schema=_OUTCOME_SCHEMA)
        return cls(context, outcomes)

    @classmethod
    def from_tables(
        cls,
        shipments: pl.DataFrame | pl.LazyFrame,
        goods: pl.DataFrame | pl.LazyFrame,
        inspections: pl.DataFrame | pl.LazyFrame,
    ) -> EntityState:
        context = context_rows(shipments, goods)
        return cls(context, keyed_outcomes(context, inspections))

    @classmethod
    def from_data_dir(cls, data_dir: object) -> EntityState:
        """History from a directory of canonical tables; empty when it has none."""
        from pathlib import Path

        root = Path(str(data_dir))
        if not table_path(root, "shipments").exists():
            return cls.empty()
        return cls.from_tables(
            scan_table(root, "shipments"),
            scan_table(root, "goods"),
            scan_table(root, "inspections")
            if table_path(root, "inspections").exists()
            else pl.DataFrame(
                schema={
                    "shipment_id": pl.String,
                    "reported_at": pl.Datetime("us", "UTC"),
                    "positive": pl.Boolean,
                }
            ),
        )

    @property
    def shipments(self) -> int:
        return self._context.size

    @property
    def outcomes(self) -> int:
        return self._outcomes.size

    def slice_for(self, targets: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(context rows, outcome rows) of the entities of ``targets`` (stage-1 rows)."""
        wanted = {key: set(targets.get_column(key).to_list()) for key in KEY_COLUMNS.values()}
        with self._lock:
            return self._context.rows_for(wanted), self._outcomes.rows_for(wanted)

    def add_shipments(self, basics: pl.DataFrame) -> None:
        """Remember shipments just scored (stage-1 rows or context rows)."""
        rows = basics.select(CONTEXT_COLUMNS)
        with self._lock:
            # A replayed shipment is already history; counting it twice would skew later ones.
            known = self._by_id
            fresh = [sid not in known for sid in rows.get_column("shipment_id").to_list()]
            rows = rows.filter(pl.Series(fresh, dtype=pl.Boolean))
            start = self._context.size
            self._context.append(rows)
            for offset, sid in enumerate(rows.get_column("shipment_id").to_list()):
                self._by_id[sid] = start + offset

    def add_outcome(self, shipment_id: str, reported_at: datetime, positive: bool) -> bool:
        """Credit an outcome to the shipment's entities; False if the shipment is unknown."""
        with self._lock:
            position = self._by_id.get(shipment_id)
            if position is None:
                return False
            self._context._merge()
            keys = self._context.frame.row(position, named=True)
            row = {
                "shipment_id": shipment_id,
                "reported_at": reported_at,
                "positive": positive,
                **{k: keys[k] for k in KEY_COLUMNS.values()},
            }
            self._outcomes.append(pl.DataFrame([row], schema=_OUTCOME_SCHEMA))
            return True


_CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "declared_at": pl.Datetime("us", "UTC"),
    **{k: pl.String() for k in KEY_COLUMNS.values()},
}
_OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "reported_at": pl.Datetime("us", "UTC"),
    "positive": pl.Boolean(),
    **{k: pl.String() for k in KEY_COLUMNS.values()},
}
