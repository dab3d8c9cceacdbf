"""Feature computation, one definition for training in bulk and for live shipments.

Every feature is computed by the same kernels over the same layout,
:class:`~features.declarations.Declarations` (read from canonical tables in bulk, from validated
records live), in three stages:

1. :func:`~features.stage_one.stage_one` — per-shipment features that need nothing but the
   shipment itself (port, mode, countries, goods aggregates, watchlist evidence) plus its entity
   keys (:class:`~features.history.Keyed`);
2. history features (:mod:`features.history`): in bulk from the tables' own earlier rows and
   outcomes (:func:`~features.history.history_features`), live from the entity state
   (:meth:`features.state.EntityState.history_for`), bit-identical either way;
3. :func:`finish` — the comparison with the training reference (:class:`FeatureReference`), and
   the schema's column order (:class:`FeatureBlock`).

This module runs the stages over whole tables (:func:`table_features`, :func:`build_features`)
and gives each stage as a polars frame, a view of the same columns, for training and analysis
(:func:`shipment_basics`, :func:`keyed_outcomes`, :func:`bulk_history`, :func:`finalize`). The
layout and stage 1 are re-exported from their modules, so ``features.build`` names them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from features.declarations import ENGINE, Array, Declarations, Table, float_column
from features.history import (
    FAMILIES_COLUMN,
    KEY_COLUMNS,
    OUTCOME_KEYS,
    SMOOTHING_STRENGTH,
    Keyed,
    history_features,
    history_frame,
    outcome_names,
)
from features.schema import FEATURE_NAMES, SPECS_BY_NAME
from features.stage_one import EVIDENCE_COLUMNS, STAGE_ONE_COLUMNS, Basics, stage_one
from features.watchlist import Watchlist

__all__ = [
    "CONTEXT_COLUMNS",
    "ENGINE",
    "EVIDENCE_COLUMNS",
    "KEY_COLUMNS_OUT",
    "OUTCOME_COLUMNS",
    "STAGE_ONE_COLUMNS",
    "Basics",
    "Declarations",
    "FeatureBlock",
    "FeatureReference",
    "FeatureRow",
    "TableFeatures",
    "basics_frame",
    "build_features",
    "bulk_history",
    "context_rows",
    "feature_matrix",
    "finalize",
    "finish",
    "heading_norms",
    "keyed_outcomes",
    "shipment_basics",
    "stage_one",
    "table_features",
]

KEY_COLUMNS_OUT: tuple[str, ...] = ("shipment_id", "declared_at", "port_of_entry")
CONTEXT_COLUMNS: tuple[str, ...] = (
    "shipment_id",
    "declared_at",
    *KEY_COLUMNS.values(),
    FAMILIES_COLUMN,
)
OUTCOME_COLUMNS: tuple[str, ...] = ("shipment_id", "reported_at", "positive", *KEY_COLUMNS.values())

_UTC = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class FeatureReference:
    """Figures learned from the training window that features are measured against.

    Stored in every model bundle so live scoring measures against exactly the same values.
    ``smoothing_strength`` is the pseudo-inspections at ``prior_rate`` in every entity's
    positive rate, tuned on the validation window by ``train``; a bundle written before it was
    tuned has none and keeps :data:`~features.history.SMOOTHING_STRENGTH`.
    """

    prior_rate: float = 0.01
    heading_log_value_per_kg: dict[str, float] = field(default_factory=dict)
    smoothing_strength: float = SMOOTHING_STRENGTH

    def to_json(self) -> dict[str, object]:
        return {
            "prior_rate": self.prior_rate,
            "heading_log_value_per_kg": self.heading_log_value_per_kg,
            "smoothing_strength": self.smoothing_strength,
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> FeatureReference:
        norms = doc.get("heading_log_value_per_kg", {})
        assert isinstance(norms, dict)
        return cls(
            prior_rate=float(doc.get("prior_rate", 0.01)),  # type: ignore[arg-type]
            heading_log_value_per_kg={str(k): float(v) for k, v in norms.items()},
            smoothing_strength=float(
                doc.get("smoothing_strength", SMOOTHING_STRENGTH)  # type: ignore[arg-type]
            ),
        )


# --------------------------------------------------------------------------- stage 3


@dataclass(frozen=True)
class FeatureBlock:
    """Features of a batch: the model's matrix (schema order, float64, NaN for null)."""

    matrix: Array
    shipment_id: list[str]
    declared_at: Array  # int64 µs
    port_of_entry: list[str | None]

    def __len__(self) -> int:
        return len(self.shipment_id)

    def row(self, i: int) -> FeatureRow:
        return FeatureRow(self.matrix, i)

    def frame(self) -> pl.DataFrame:
        """The features as a typed frame: key columns, then the schema's columns."""
        return pl.DataFrame(
            [
                *_key_series(self.shipment_id, self.declared_at, self.port_of_entry),
                *(_typed(name, self.matrix[:, i]) for i, name in enumerate(FEATURE_NAMES)),
            ]
        )


_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


class FeatureRow(Mapping[str, float]):
    """One row of a feature matrix read by name, without copying it into a dict (NaN for
    null). Holds the batch's matrix alive while it lives."""

    __slots__ = ("_matrix", "_row")

    def __init__(self, matrix: Array, row: int) -> None:
        self._matrix = matrix
        self._row = row

    def __getitem__(self, name: str) -> float:
        return float(self._matrix[self._row, _INDEX[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURE_NAMES)

    def __len__(self) -> int:
        return len(FEATURE_NAMES)

    def values_list(self) -> list[float]:
        """Every feature in schema order."""
        return list(self._matrix[self._row].tolist())


def finish(basics: Basics, history: dict[str, Array], reference: FeatureReference) -> FeatureBlock:
    """Stage 3: the schema's features of every row of ``basics``, with its ``history`` (the
    item history null where no watched item was identified)."""
    norms = reference.heading_log_value_per_kg
    nan = math.nan
    heading_norm = np.array([norms.get(h, nan) for h in basics.keyed.keys["heading"]], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.maximum(basics.columns["value_per_kg"], 1e-6)) - heading_norm
    columns = {
        **basics.columns,
        **history,
        **_item_history(history, basics.keyed.keys["item"]),
        "value_per_kg_log_ratio": ratio,
    }
    matrix = np.empty((len(basics), len(FEATURE_NAMES)), dtype=np.float64)
    for i, name in enumerate(FEATURE_NAMES):
        matrix[:, i] = columns[name]
    return FeatureBlock(
        matrix, basics.keyed.shipment_id, basics.keyed.declared_at, basics.port_of_entry
    )


_ITEM_HISTORY: tuple[str, ...] = tuple(outcome_names("item"))


def _item_history(history: dict[str, Array], items: list[str]) -> dict[str, Array]:
    """The item history features, null where no watched item was identified (key ""): the
    history of "nothing identified" would be the whole trade's, a clock rather than a risk."""
    none = np.array([not item for item in items], dtype=bool)
    out = {name: history[name].astype(np.float64) for name in _ITEM_HISTORY}
    for values in out.values():
        values[none] = math.nan
    return out


# --------------------------------------------------------------------------- frames, in bulk


def basics_frame(basics: Basics) -> pl.DataFrame:
    """Stage 1 as a frame: ``KEY_COLUMNS_OUT``, the stage-1 features, the entity keys and the
    identified route families (what :func:`keyed_outcomes`, :func:`heading_norms` and the
    training split read)."""
    keyed = basics.keyed
    return pl.DataFrame(
        [
            *_key_series(keyed.shipment_id, keyed.declared_at, basics.port_of_entry),
            *(_typed(name, values) for name, values in basics.columns.items()),
            *(pl.Series(KEY_COLUMNS[e], keyed.keys[e], dtype=pl.String) for e in OUTCOME_KEYS),
            pl.Series(FAMILIES_COLUMN, [list(f) for f in keyed.families], pl.List(pl.String)),
        ]
    )


def _key_series(
    shipment_id: list[str], declared_at: Array, port_of_entry: list[str | None]
) -> list[pl.Series]:
    """The columns of :data:`KEY_COLUMNS_OUT`, ``declared_at`` (µs) as a UTC time."""
    return [
        pl.Series("shipment_id", shipment_id, dtype=pl.String),
        pl.Series("declared_at", declared_at, dtype=pl.Int64).cast(_UTC),
        pl.Series("port_of_entry", port_of_entry, dtype=pl.String),
    ]


def _typed(name: str, values: Array) -> pl.Series:
    """``values`` (float64, NaN for null) as the schema types the feature: int32 with nulls,
    or float64 as they are."""
    series = pl.Series(name, values, dtype=pl.Float64)
    spec = SPECS_BY_NAME.get(name)
    return series.fill_nan(None).cast(pl.Int32) if spec and spec.dtype == "int32" else series


def _basics_of(frame: pl.DataFrame) -> Basics:
    """The inverse of :func:`basics_frame`."""
    return Basics(
        {c: float_column(frame[c]) for c in STAGE_ONE_COLUMNS},
        Keyed.from_frame(frame),
        frame["port_of_entry"].to_list(),
    )


def shipment_basics(
    shipments: Table,
    goods: Table,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """Stage 1 of canonical tables as a frame (see :func:`basics_frame`), in table order."""
    return basics_frame(stage_one(Declarations.from_tables(shipments, goods, watchlist), watchlist))


def context_rows(
    shipments: Table,
    goods: Table,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """Shipment id, time, entity keys and identified route families: what the history of
    later shipments needs."""
    return shipment_basics(shipments, goods, watchlist).select(CONTEXT_COLUMNS)


def keyed_outcomes(basics: pl.DataFrame, inspections: Table) -> pl.DataFrame:
    """Stage 2: reported inspections carrying the inspected shipment's entity keys.

    ``basics`` is stage-1 output (:func:`shipment_basics`); shipments absent from it are
    dropped, since an outcome without its shipment has no entities to credit.
    """
    keys = basics.select("shipment_id", *KEY_COLUMNS.values())
    return (
        inspections.lazy()
        .select("shipment_id", "reported_at", "positive")
        .collect(engine=ENGINE)
        .join(keys, on="shipment_id", how="inner", maintain_order="left")
        .select(OUTCOME_COLUMNS)
    )


def finalize(
    targets: pl.DataFrame, history: pl.DataFrame, reference: FeatureReference
) -> pl.DataFrame:
    """Stage 3 on frames: the schema's features for every row of ``targets`` (stage-1 rows),
    in its order, with their ``history`` features (same rows)."""
    columns = {name: float_column(history[name]) for name in history.columns}
    return finish(_basics_of(targets), columns, reference).frame()


def bulk_history(
    basics: pl.DataFrame, outcomes: pl.DataFrame, reference: FeatureReference
) -> pl.DataFrame:
    """History features of every row of ``basics``, from the rows and outcomes given."""
    return history_frame(
        history_features(
            Keyed.from_frame(basics), outcomes, reference.prior_rate, reference.smoothing_strength
        )
    )


def build_features(
    shipments: Table,
    goods: Table,
    inspections: Table,
    watchlist: Watchlist,
    reference: FeatureReference,
) -> pl.DataFrame:
    """Features of every shipment in ``shipments`` (in its order), point in time."""
    return table_features(shipments, goods, inspections, watchlist, reference).block.frame()


@dataclass(frozen=True)
class TableFeatures:
    """Features of whole tables with what they were computed from."""

    declarations: Declarations
    basics: Basics
    block: FeatureBlock


def table_features(
    shipments: Table,
    goods: Table,
    inspections: Table,
    watchlist: Watchlist,
    reference: FeatureReference,
) -> TableFeatures:
    """Every stage over canonical tables, each shipment with the history the tables hold
    before it."""
    declarations = Declarations.from_tables(shipments, goods, watchlist)
    basics = stage_one(declarations, watchlist)
    outcomes = keyed_outcomes(basics.keyed.keys_frame(), inspections)
    history = history_features(
        basics.keyed, outcomes, reference.prior_rate, reference.smoothing_strength
    )
    return TableFeatures(declarations, basics, finish(basics, history, reference))


def heading_norms(features: pl.DataFrame) -> dict[str, float]:
    """Median log value per kg by principal HS heading, for :class:`FeatureReference`."""
    stats = (
        features.filter(pl.col("value_per_kg") > 0)
        .with_columns(pl.col("principal_hs_heading").cast(pl.String).alias("_h"))
        .group_by("_h")
        .agg(pl.col("value_per_kg").log().median().alias("_m"), pl.len().alias("_n"))
        .filter(pl.col("_n") >= 5)
    )
    return {
        str(h): float(m)
        for h, m in zip(stats["_h"], stats["_m"], strict=True)
        if h is not None and math.isfinite(m)
    }


def feature_matrix(features: pl.DataFrame) -> np.ndarray:
    """The model's input from a features frame: schema columns in order as float64, nulls as
    NaN."""
    return features.select(FEATURE_NAMES).to_numpy().astype(np.float64, copy=False)
