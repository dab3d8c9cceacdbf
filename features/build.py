"""Feature computation, one definition for training in bulk and for live shipments.

Every feature is computed by the kernels of this module over :class:`Declarations`: shipments
laid out column-wise (one entry per shipment) with their goods lines flat beside them (the lines
of shipment ``i`` are ``line_start[i]:line_start[i + 1]``, in line order) and each line's
watchlist :class:`~features.watchlist.LineMatch`. Both paths build that layout and run the same
kernels on it:

* in bulk, :meth:`Declarations.from_tables` reads canonical tables (a million shipments at once);
* live, :meth:`Declarations.from_shipments` reads the validated records of one batch, with no
  polars plan in between: a one-row frame costs milliseconds of planning, the kernels
  microseconds.

Three stages:

1. :func:`stage_one` — per-shipment features that need nothing but the shipment itself (port,
   mode, countries, goods aggregates, watchlist evidence) plus its entity keys (:class:`Keyed`);
2. history features (:mod:`features.history`): in bulk from the tables' own earlier rows and
   outcomes (:func:`features.history.history_features`), live from the entity state
   (:meth:`features.state.EntityState.history_for`), the same kernels either way;
3. :func:`finish` — the comparison with the training reference, and the schema's column order.

Sums over a shipment's lines are taken in line order by one numpy reduction over the flat lines,
so a shipment's features are bit-identical whether it is computed alone or among a million
others. The polars frames of :func:`build_features` and :func:`shipment_basics` are views of
the same columns, for training and analysis.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from features.history import (
    FAMILIES_COLUMN,
    KEY_COLUMNS,
    OUTCOME_KEYS,
    Keyed,
    history_features,
    history_frame,
    to_micros,
)
from features.records import MODES, Shipment
from features.schema import FEATURE_NAMES, FEATURES
from features.vocab import PORTS
from features.watchlist import EVIDENCE_THRESHOLD, LineMatch, Watchlist

KEY_COLUMNS_OUT: tuple[str, ...] = ("shipment_id", "declared_at", "port_of_entry")
# polars' default engine choice costs ~4x on small frames; whole tables fit in memory here.
ENGINE: Literal["in-memory"] = "in-memory"
CONTEXT_COLUMNS: tuple[str, ...] = (
    "shipment_id",
    "declared_at",
    *KEY_COLUMNS.values(),
    FAMILIES_COLUMN,
)
OUTCOME_COLUMNS: tuple[str, ...] = ("shipment_id", "reported_at", "positive", *KEY_COLUMNS.values())

Array = np.ndarray
_COUNTRY_CODES = {chr(65 + a) + chr(65 + b): a * 26 + b for a in range(26) for b in range(26)}
_PORT_CODES = {p: i for i, p in enumerate(PORTS)}
_MODE_CODES: dict[str, int] = {m: i for i, m in enumerate(MODES)}
_CHEMICAL_CHAPTERS = frozenset({28, 29, 38})
_DTYPES: dict[str, type[pl.DataType]] = {"float64": pl.Float64, "int32": pl.Int32}
_SPEC = {f.name: f for f in FEATURES}
_UTC = pl.Datetime("us", "UTC")

# Lines with a hit of each match type, by feature.
_KIND_BY_TYPE = {
    "cas": "watchlist_cas_lines",
    "hs_specific": "watchlist_hs_specific_lines",
    "hs_broad": "watchlist_hs_broad_lines",
    "name_exact": "watchlist_name_lines",
    "name_fuzzy": "watchlist_name_lines",
}
_KINDS = tuple(sorted(set(_KIND_BY_TYPE.values())))
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "watchlist_max_strength",
    "watchlist_strength_sum",
    "watchlist_identified_lines",
    "watchlist_route_families",
    *_KINDS,
    "watchlist_mismatches",
)
STAGE_ONE_COLUMNS: tuple[str, ...] = (
    "port_code",
    "mode_code",
    "origin_code",
    "export_code",
    "export_differs",
    "transshipment_count",
    "goods_line_count",
    "principal_hs_chapter",
    "principal_hs_heading",
    "hs_chapter_count",
    "chemical_line_share",
    "cas_line_count",
    "total_weight_kg",
    "total_value_usd",
    "value_per_kg",
    "consignee_is_foreign",
    "consignee_has_tax_id",
    *EVIDENCE_COLUMNS,
    "invalid_cas_lines",
)


@dataclass(frozen=True)
class FeatureReference:
    """Figures learned from the training window that features are measured against.

    Stored in every model bundle so live scoring measures against exactly the same values.
    """

    prior_rate: float = 0.01
    heading_log_value_per_kg: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "prior_rate": self.prior_rate,
            "heading_log_value_per_kg": self.heading_log_value_per_kg,
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> FeatureReference:
        norms = doc.get("heading_log_value_per_kg", {})
        assert isinstance(norms, dict)
        return cls(
            prior_rate=float(doc.get("prior_rate", 0.01)),  # type: ignore[arg-type]
            heading_log_value_per_kg={str(k): float(v) for k, v in norms.items()},
        )


# --------------------------------------------------------------------------- the input layout


@dataclass(frozen=True)
class Declarations:
    """Shipments as the kernels read them: one entry per shipment, goods lines flat.

    Text fields are lists (``None`` where a table holds null); numbers are numpy arrays
    (``NaN`` where null). ``matches[j]`` is the watchlist's reading of line ``j``.
    """

    shipment_id: list[str]
    declared_at: Array  # int64 µs since the epoch
    port_of_entry: list[str | None]
    mode: list[str | None]
    origin_country: list[str | None]
    export_country: list[str | None]
    consignee_country: list[str | None]
    consignee_tax_id: list[str | None]
    transshipment_count: Array  # float64, NaN when the list is null
    shipper_id: list[str | None]
    consignee_id: list[str | None]
    broker_id: list[str | None]
    line_start: Array  # int64, n + 1 offsets into the line columns
    hs_code: list[str | None]
    cas_count: Array  # int64: CAS numbers declared on the line
    gross_weight_kg: Array  # float64
    declared_value_usd: Array  # float64
    matches: list[LineMatch]

    def __len__(self) -> int:
        return len(self.shipment_id)

    def lines_of(self, row: int) -> list[LineMatch]:
        """The watchlist readings of shipment ``row``'s lines, in line order."""
        return self.matches[int(self.line_start[row]) : int(self.line_start[row + 1])]

    @classmethod
    def from_shipments(cls, shipments: Sequence[Shipment], watchlist: Watchlist) -> Declarations:
        """The layout of validated shipment records (the live path)."""
        starts = [0]
        hs: list[str | None] = []
        cas: list[int] = []
        weights: list[float] = []
        values: list[float] = []
        matches: list[LineMatch] = []
        match_line = watchlist.match_line
        for s in shipments:
            for g in s.goods:
                hs.append(g.hs_code)
                cas.append(len(g.cas_numbers))
                weights.append(g.gross_weight_kg)
                values.append(g.declared_value_usd)
                matches.append(match_line(g.hs_code, g.description, g.cas_numbers))
            starts.append(len(hs))
        return cls(
            shipment_id=[s.shipment_id for s in shipments],
            declared_at=np.array([to_micros(s.declared_at) for s in shipments], dtype=np.int64),
            port_of_entry=[s.port_of_entry for s in shipments],
            mode=[s.mode for s in shipments],
            origin_country=[s.origin_country for s in shipments],
            export_country=[s.export_country for s in shipments],
            consignee_country=[s.consignee.country for s in shipments],
            consignee_tax_id=[s.consignee.tax_id for s in shipments],
            transshipment_count=np.array(
                [len(s.transshipment_ports) for s in shipments], dtype=np.float64
            ),
            shipper_id=[s.shipper.id for s in shipments],
            consignee_id=[s.consignee.id for s in shipments],
            broker_id=[s.broker_id for s in shipments],
            line_start=np.array(starts, dtype=np.int64),
            hs_code=hs,
            cas_count=np.array(cas, dtype=np.int64),
            gross_weight_kg=np.array(weights, dtype=np.float64),
            declared_value_usd=np.array(values, dtype=np.float64),
            matches=matches,
        )

    @classmethod
    def from_tables(
        cls,
        shipments: pl.DataFrame | pl.LazyFrame,
        goods: pl.DataFrame | pl.LazyFrame,
        watchlist: Watchlist,
    ) -> Declarations:
        """The layout of canonical tables (the bulk path), shipments in their table order.

        Goods lines of a shipment the table does not hold are left out; lines are in
        ``line_no`` order.
        """
        ships = shipments.lazy().collect(engine=ENGINE)
        rows = ships.select("shipment_id").with_row_index("_row")
        lines = (
            goods.lazy()
            .select(
                "shipment_id",
                "line_no",
                "hs_code",
                "description",
                "cas_numbers",
                "gross_weight_kg",
                "declared_value_usd",
            )
            .join(rows.lazy(), on="shipment_id", how="inner")
            .sort("_row", "line_no")
            .collect(engine=ENGINE)
        )
        owner = lines["_row"].to_numpy().astype(np.int64)
        hs = lines["hs_code"].to_list()
        descriptions = lines["description"].to_list()
        cas_lists = lines["cas_numbers"].to_list()
        match_line = watchlist.match_line
        matches = [
            match_line(h or "", d or "", tuple(c) if c else ())
            for h, d, c in zip(hs, descriptions, cas_lists, strict=True)
        ]
        return cls(
            shipment_id=ships["shipment_id"].to_list(),
            declared_at=ships["declared_at"].dt.timestamp("us").to_numpy().astype(np.int64),
            port_of_entry=_shared(ships["port_of_entry"]),
            mode=_shared(ships["mode"]),
            origin_country=_shared(ships["origin_country"]),
            export_country=_shared(ships["export_country"]),
            consignee_country=_shared(ships["consignee_country"]),
            consignee_tax_id=ships["consignee_tax_id"].to_list(),
            transshipment_count=_floats(ships["transshipment_ports"].list.len()),
            shipper_id=_shared(ships["shipper_id"]),
            consignee_id=_shared(ships["consignee_id"]),
            broker_id=_shared(ships["broker_id"]),
            line_start=np.searchsorted(owner, np.arange(ships.height + 1), side="left").astype(
                np.int64
            ),
            hs_code=hs,
            cas_count=_floats(lines["cas_numbers"].list.len()).astype(np.int64),
            gross_weight_kg=_floats(lines["gross_weight_kg"]),
            declared_value_usd=_floats(lines["declared_value_usd"]),
            matches=matches,
        )


def _shared(series: pl.Series) -> list[str | None]:
    """A text column as a list in which equal values are one object: entity keys repeat
    across a table, and a million copies of a shipper id would cost a million strings."""
    return [None if v is None else sys.intern(v) for v in series.to_list()]


def _floats(series: pl.Series) -> Array:
    """A numeric column as float64, null as NaN."""
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)


# --------------------------------------------------------------------------- stage 1 kernels


@dataclass(frozen=True)
class Basics:
    """Stage 1 of a batch: per-shipment features (float64, NaN for null) and entity keys."""

    columns: dict[str, Array]
    keyed: Keyed
    port_of_entry: list[str | None]

    def __len__(self) -> int:
        return len(self.keyed)


def _code(values: Sequence[str | None], table: dict[str, int]) -> Array:
    """Codes of ``values`` in a frozen vocabulary; unknown or null values are NaN."""
    nan = math.nan
    return np.array([table.get(v, nan) if v is not None else nan for v in values], np.float64)


def _differs(left: Sequence[str | None], right: Sequence[str | None]) -> Array:
    return np.array(
        [
            math.nan if a is None or b is None else float(a != b)
            for a, b in zip(left, right, strict=True)
        ],
        dtype=np.float64,
    )


def _hs_int(code: str | None, digits: int) -> float:
    """The number formed by the first ``digits`` characters of an HS code, NaN if they are not
    all ASCII digits (canonical codes always are)."""
    if code is None:
        return math.nan
    head = code[:digits]
    return float(int(head)) if head.isascii() and head.isdigit() else math.nan


def _goods_aggregates(d: Declarations) -> dict[str, Array]:
    """Per-shipment aggregates of the goods lines; NaN for a shipment without lines."""
    n = len(d)
    starts = d.line_start
    counts = np.diff(starts)
    has = counts > 0
    firsts = starts[:-1][has]
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    chapter = np.array([_hs_int(c, 2) for c in d.hs_code], dtype=np.float64)
    heading = np.array([_hs_int(c, 4) for c in d.hs_code], dtype=np.float64)

    def per_shipment(values: Array) -> Array:
        out = np.full(n, np.nan)
        out[has] = values
        return out

    def line_sum(values: Array) -> Array:  # null lines count 0, as a polars sum skips them
        return per_shipment(np.add.reduceat(np.nan_to_num(values, nan=0.0), firsts))

    # The principal line: the highest declared value, the first one on ties.
    value = np.where(np.isnan(d.declared_value_usd), -np.inf, d.declared_value_usd)
    by_value = np.lexsort((np.arange(len(owner)), -value, owner))
    principal = by_value[firsts]
    # Distinct chapters per shipment (an unreadable chapter is one value of its own).
    chapter_key = np.where(np.isnan(chapter), 100, chapter).astype(np.int64)  # chapters < 100
    pairs = np.unique(owner * 128 + chapter_key)
    distinct = np.bincount(pairs // 128, minlength=n).astype(np.float64)
    readable = ~np.isnan(chapter)
    chemical = np.array([c in _CHEMICAL_CHAPTERS for c in chapter.tolist()], dtype=np.float64)
    read_lines: Array = np.zeros(0)
    chemical_lines: Array = np.zeros(0)
    if len(firsts):
        read_lines = np.add.reduceat(readable.astype(np.float64), firsts)
        chemical_lines = np.add.reduceat(chemical * readable, firsts)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(read_lines > 0, chemical_lines / read_lines, np.nan)
    total_weight = line_sum(d.gross_weight_kg)
    total_value = line_sum(d.declared_value_usd)
    return {
        "goods_line_count": per_shipment(counts[has].astype(np.float64)),
        "principal_hs_chapter": per_shipment(chapter[principal]),
        "principal_hs_heading": per_shipment(heading[principal]),
        "hs_chapter_count": per_shipment(distinct[has]),
        "chemical_line_share": per_shipment(share),
        "cas_line_count": line_sum((d.cas_count > 0).astype(np.float64)),
        "total_weight_kg": total_weight,
        "total_value_usd": total_value,
        "value_per_kg": total_value / np.maximum(total_weight, 0.001),
    }


def _evidence(
    lines: Sequence[LineMatch], families: dict[str, str]
) -> tuple[list[float], tuple[str, ...]]:
    """One shipment's watchlist evidence (:data:`EVIDENCE_COLUMNS` in order, then
    ``invalid_cas_lines``) and its identified route families, sorted."""
    strengths = sorted(max(h.strength for h in line.hits) for line in lines if line.hits)
    identified = {
        families.get(h.entry_id, "")
        for line in lines
        for h in line.hits
        if h.strength >= EVIDENCE_THRESHOLD
    }
    kinds = dict.fromkeys(_KINDS, 0.0)
    for line in lines:
        for kind in {_KIND_BY_TYPE[h.match_type] for h in line.hits}:
            kinds[kind] += 1.0
    values = [
        max(strengths, default=0.0),
        float(sum(strengths)),
        float(sum(1 for s in strengths if s >= EVIDENCE_THRESHOLD)),
        float(len(identified)),
        *kinds.values(),
        float(sum(len(line.mismatches) for line in lines)),
        float(sum(1 for line in lines if line.invalid_cas)),
    ]
    return values, tuple(sorted(f for f in identified if f))


def _evidence_columns(
    d: Declarations, watchlist: Watchlist
) -> tuple[dict[str, Array], list[tuple[str, ...]]]:
    n = len(d)
    names = [*EVIDENCE_COLUMNS, "invalid_cas_lines"]
    out = np.zeros((len(names), n))
    counts = np.diff(d.line_start)
    out[-1][counts == 0] = np.nan  # like the goods aggregates: null without goods lines
    families: list[tuple[str, ...]] = [()] * n
    route = watchlist.route_families
    # Only shipments with a line the watchlist said anything about: most have none.
    flagged = [j for j, m in enumerate(d.matches) if m.hits or m.mismatches or m.invalid_cas]
    owners = np.unique(np.searchsorted(d.line_start, flagged, side="right") - 1)
    for row in owners.tolist():
        values, families[row] = _evidence(d.lines_of(row), route)
        out[:, row] = values
    return dict(zip(names, out, strict=True)), families


@functools.lru_cache(maxsize=65_536)
def _route(origin: str, port: str) -> str:
    """The route key (origin > port), one object per route."""
    return f"{origin}>{port}"


@functools.lru_cache(maxsize=65_536)
def _heading(heading: float) -> str:
    """The HS heading key, one object per heading."""
    return str(int(heading))


def stage_one(d: Declarations, watchlist: Watchlist) -> Basics:
    """Stage 1 for every shipment of ``d``, in its order."""
    goods = _goods_aggregates(d)
    evidence, families = _evidence_columns(d, watchlist)
    columns = {
        "port_code": _code(d.port_of_entry, _PORT_CODES),
        "mode_code": _code(d.mode, _MODE_CODES),
        "origin_code": _code(d.origin_country, _COUNTRY_CODES),
        "export_code": _code(d.export_country, _COUNTRY_CODES),
        "export_differs": _differs(d.origin_country, d.export_country),
        "transshipment_count": d.transshipment_count,
        **goods,
        "consignee_is_foreign": np.array(
            [math.nan if c is None else float(c != "MX") for c in d.consignee_country]
        ),
        "consignee_has_tax_id": np.array(
            [math.nan if t is None else float(len(t) > 0) for t in d.consignee_tax_id]
        ),
        **evidence,
    }
    headings = columns["principal_hs_heading"].tolist()
    keys = {
        "shipper": d.shipper_id,
        "consignee": d.consignee_id,
        "broker": d.broker_id,
        "route": [
            None if o is None or p is None else _route(o, p)
            for o, p in zip(d.origin_country, d.port_of_entry, strict=True)
        ],
        "heading": ["" if math.isnan(h) else _heading(h) for h in headings],
    }
    keyed = Keyed(
        shipment_id=d.shipment_id,
        declared_at=d.declared_at,
        keys={e: keys[e] for e in OUTCOME_KEYS},  # type: ignore[misc]
        families=families,
    )
    return Basics({c: columns[c] for c in STAGE_ONE_COLUMNS}, keyed, d.port_of_entry)


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
        columns: list[pl.Series] = [
            pl.Series("shipment_id", self.shipment_id, dtype=pl.String),
            pl.Series("declared_at", self.declared_at, dtype=pl.Int64).cast(_UTC),
            pl.Series("port_of_entry", self.port_of_entry, dtype=pl.String),
        ]
        for i, spec in enumerate(FEATURES):
            series = pl.Series(spec.name, self.matrix[:, i], dtype=pl.Float64)
            if spec.dtype == "int32":
                series = series.fill_nan(None).cast(pl.Int32)
            columns.append(series)
        return pl.DataFrame(columns)


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
    """Stage 3: the schema's features of every row of ``basics``, with its ``history``."""
    norms = reference.heading_log_value_per_kg
    nan = math.nan
    heading_norm = np.array([norms.get(h, nan) for h in basics.keyed.keys["heading"]], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.maximum(basics.columns["value_per_kg"], 1e-6)) - heading_norm
    columns = {**basics.columns, **history, "value_per_kg_log_ratio": ratio}
    matrix = np.empty((len(basics), len(FEATURE_NAMES)), dtype=np.float64)
    for i, name in enumerate(FEATURE_NAMES):
        matrix[:, i] = columns[name]
    return FeatureBlock(
        matrix, basics.keyed.shipment_id, basics.keyed.declared_at, basics.port_of_entry
    )


# --------------------------------------------------------------------------- frames, in bulk


def basics_frame(basics: Basics) -> pl.DataFrame:
    """Stage 1 as a frame: ``KEY_COLUMNS_OUT``, the stage-1 features, the entity keys and the
    identified route families (what :func:`keyed_outcomes`, :func:`heading_norms` and the
    training split read)."""
    keyed = basics.keyed
    frame = pl.DataFrame(
        [
            pl.Series("shipment_id", keyed.shipment_id, dtype=pl.String),
            pl.Series("declared_at", keyed.declared_at, dtype=pl.Int64).cast(_UTC),
            pl.Series("port_of_entry", basics.port_of_entry, dtype=pl.String),
            *(_typed(name, values) for name, values in basics.columns.items()),
            *(pl.Series(KEY_COLUMNS[e], keyed.keys[e], dtype=pl.String) for e in OUTCOME_KEYS),
            pl.Series(FAMILIES_COLUMN, [list(f) for f in keyed.families], pl.List(pl.String)),
        ]
    )
    return frame


def _typed(name: str, values: Array) -> pl.Series:
    series = pl.Series(name, values, dtype=pl.Float64)
    spec = _SPEC.get(name)
    return series.fill_nan(None).cast(pl.Int32) if spec and spec.dtype == "int32" else series


def _basics_of(frame: pl.DataFrame) -> Basics:
    """The inverse of :func:`basics_frame`."""
    return Basics(
        {c: _floats(frame[c]) for c in STAGE_ONE_COLUMNS},
        Keyed.from_frame(frame),
        frame["port_of_entry"].to_list(),
    )


def shipment_basics(
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """Stage 1 of canonical tables as a frame (see :func:`basics_frame`), in table order."""
    return basics_frame(stage_one(Declarations.from_tables(shipments, goods, watchlist), watchlist))


def context_rows(
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
) -> pl.DataFrame:
    """Shipment id, time, entity keys and identified route families: what the history of
    later shipments needs."""
    return shipment_basics(shipments, goods, watchlist).select(CONTEXT_COLUMNS)


def keyed_outcomes(basics: pl.DataFrame, inspections: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
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
    columns = {name: _floats(history[name]) for name in history.columns}
    return finish(_basics_of(targets), columns, reference).frame()


def bulk_history(
    basics: pl.DataFrame, outcomes: pl.DataFrame, reference: FeatureReference
) -> pl.DataFrame:
    """History features of every row of ``basics``, from the rows and outcomes given."""
    return history_frame(history_features(Keyed.from_frame(basics), outcomes, reference.prior_rate))


def build_features(
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
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
    shipments: pl.DataFrame | pl.LazyFrame,
    goods: pl.DataFrame | pl.LazyFrame,
    inspections: pl.DataFrame | pl.LazyFrame,
    watchlist: Watchlist,
    reference: FeatureReference,
) -> TableFeatures:
    """Every stage over canonical tables, each shipment with the history the tables hold
    before it."""
    declarations = Declarations.from_tables(shipments, goods, watchlist)
    basics = stage_one(declarations, watchlist)
    outcomes = keyed_outcomes(basics.keyed.keys_frame(), inspections)
    history = history_features(basics.keyed, outcomes, reference.prior_rate)
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
