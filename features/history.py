"""Entity history, point in time: what was known about a shipment's parties before it arrived.

For each shipment and each entity (shipper, consignee, broker, route, HS heading) this computes
only from events strictly before the shipment's ``declared_at``:

* volume: days since the entity was first seen, and its shipment counts over each window of
  :data:`WINDOWS_DAYS` (shipper, consignee and broker; routes and headings are too coarse for
  volume to mean much);
* outcomes: inspections and positive results *reported* before ``declared_at`` (an outcome
  known only later is invisible), the positive rate smoothed toward the prior rate, and the
  days since the last positive;
* network (consignee and broker): the distinct watched route families the entity received over
  the prior :data:`NETWORK_WINDOW_DAYS` days together with the shipment's own, and whether they
  include a complementary combination (:data:`COMPLEMENTARY_FAMILIES`).

The features' names are :func:`volume_names`, :func:`outcome_names` and :func:`network_names` of
each entity, in :func:`history_feature_names`' order; :mod:`features.schema` defines each
feature under that name.

The arithmetic lives in three kernels, :func:`entity_volume`, :func:`entity_outcomes` and
:func:`entity_network`, that take one entity's event times and the query times. The bulk path
(:func:`history_features`) groups a whole table's rows (:class:`Keyed`) and outcomes by entity
key and calls them once per key. The live path (:class:`features.state.EntityState`) does not
call them: it keeps each entity's events sorted in memory, counts events before a time by binary
search on them (never copying or scanning them), and applies the kernels' own formulas,
operation for operation, to those counts, so both paths give bit-identical features at a cost
that does not grow with how busy an entity is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

VOLUME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker")
OUTCOME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker", "route", "heading")
WINDOWS_DAYS: tuple[int, ...] = (30, 90, 365)
NETWORK_KEYS: tuple[str, ...] = ("consignee", "broker")
NETWORK_WINDOW_DAYS = 90
FAMILIES_COLUMN = "watchlist_family_list"  # identified route families of a shipment, sorted
# Route families that together make a synthesis possible: a core precursor and its reagent,
# or any drug precursor and tableting equipment. Split across shipments, they are the
# "complementary precursors" pattern.
COMPLEMENTARY_FAMILIES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"fentanyl-npp-anpp", "fentanyl-4ap-piperidone"}), frozenset({"fentanyl-reagent"})),
    (
        frozenset(
            {
                "fentanyl-npp-anpp",
                "fentanyl-4ap-piperidone",
                "fentanyl-reagent",
                "fentanyl-product",
                "meth-p2p",
                "meth-ephedrine",
            }
        ),
        frozenset({"pill-press"}),
    ),
)
# Pseudo-inspections at the prior rate in an entity's smoothed positive rate: the value of
# bundles that do not record their own. ``train`` tunes it on the validation window
# (:data:`SMOOTHING_CANDIDATES`) and stores it in the bundle's feature reference.
SMOOTHING_STRENGTH = 20.0
SMOOTHING_CANDIDATES: tuple[float, ...] = (1.0, 3.0, 10.0, 20.0, 50.0)

# Entity key columns, as frames hold them: stage one's (features.build.basics_frame), the keyed
# outcomes' and Keyed.keys_frame.
KEY_COLUMNS: dict[str, str] = {
    "shipper": "shipper_id",
    "consignee": "consignee_id",
    "broker": "broker_id",
    "route": "route_key",
    "heading": "heading_key",
}
US_PER_DAY = 86_400_000_000
_WINDOWS_US = tuple(d * US_PER_DAY for d in WINDOWS_DAYS)

Array = np.ndarray


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(when: datetime | None) -> int:
    """Microseconds since the epoch, exactly as polars' ``dt.timestamp("us")`` counts them
    (a naive time is UTC)."""
    if when is None:
        raise ValueError("a shipment without declared_at has no place in history")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Keyed:
    """Shipments as history sees them, one per row: id, declared time, entity keys, and the
    route families identified in its goods. What :func:`history_features` reads, what the live
    state remembers of a shipment and what it is asked about."""

    shipment_id: list[str]
    declared_at: np.ndarray  # int64 µs since the epoch (polars' ``dt.timestamp("us")``)
    keys: dict[str, list[str]]  # entity of OUTCOME_KEYS -> each row's key
    families: list[tuple[str, ...]]  # each row's identified route families, sorted

    def __len__(self) -> int:
        return len(self.shipment_id)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Keyed:
        """From a frame with ``shipment_id``, ``declared_at``, every key column of
        :data:`KEY_COLUMNS` and :data:`FAMILIES_COLUMN`."""
        return cls(
            shipment_id=frame["shipment_id"].to_list(),
            declared_at=_micros(frame["declared_at"]),
            keys={e: frame[KEY_COLUMNS[e]].to_list() for e in OUTCOME_KEYS},
            families=[tuple(f or ()) for f in frame[FAMILIES_COLUMN].to_list()],
        )

    def take(self, rows: Sequence[int]) -> Keyed:
        """The rows at ``rows``, in that order."""
        at = list(rows)
        return Keyed(
            shipment_id=[self.shipment_id[i] for i in at],
            declared_at=self.declared_at[np.asarray(at, dtype=np.int64)],
            keys={e: [keys[i] for i in at] for e, keys in self.keys.items()},
            families=[self.families[i] for i in at],
        )

    def slice(self, start: int, end: int) -> Keyed:
        """Rows ``start`` to ``end`` (exclusive)."""
        return Keyed(
            shipment_id=self.shipment_id[start:end],
            declared_at=self.declared_at[start:end],
            keys={e: keys[start:end] for e, keys in self.keys.items()},
            families=self.families[start:end],
        )

    @classmethod
    def concat(cls, parts: Sequence[Keyed]) -> Keyed:
        """The rows of ``parts``, one after the other."""
        return cls(
            shipment_id=[s for p in parts for s in p.shipment_id],
            declared_at=np.concatenate([p.declared_at for p in parts])
            if parts
            else np.zeros(0, dtype=np.int64),
            keys={e: [k for p in parts for k in p.keys[e]] for e in OUTCOME_KEYS},
            families=[f for p in parts for f in p.families],
        )

    def keys_frame(self) -> pl.DataFrame:
        """``shipment_id`` and every key column of :data:`KEY_COLUMNS`, one row per row."""
        return pl.DataFrame(
            [
                pl.Series("shipment_id", self.shipment_id, dtype=pl.String),
                *(pl.Series(KEY_COLUMNS[e], self.keys[e], dtype=pl.String) for e in OUTCOME_KEYS),
            ]
        )

    def order_by_time(self) -> Keyed:
        """The rows sorted by declared time (stable: ties keep their order)."""
        return self.take(np.argsort(self.declared_at, kind="stable").tolist())


def volume_names(entity: str) -> list[str]:
    return [f"{entity}_age_days", *(f"{entity}_count_{d}d" for d in WINDOWS_DAYS)]


def outcome_names(entity: str) -> list[str]:
    return [
        f"{entity}_inspections",
        f"{entity}_positives",
        f"{entity}_positive_rate",
        f"{entity}_days_since_positive",
    ]


def network_names(entity: str) -> list[str]:
    return [
        f"{entity}_route_families_{NETWORK_WINDOW_DAYS}d",
        f"{entity}_complementary_{NETWORK_WINDOW_DAYS}d",
    ]


def history_feature_names() -> list[str]:
    names = [n for e in VOLUME_KEYS for n in volume_names(e)]
    names += [n for e in OUTCOME_KEYS for n in outcome_names(e)]
    return names + [n for e in NETWORK_KEYS for n in network_names(e)]


def entity_network(
    family_times: dict[str, Array], queries: Array, query_families: list[list[str]]
) -> list[Array]:
    """Watched route families one entity received in the prior :data:`NETWORK_WINDOW_DAYS` days
    plus the query's own.

    ``family_times``: per route family, the entity's declared times of shipments where it was
    identified (int64 µs, sorted). Returns [distinct families, 1 when they include a
    complementary combination (:data:`COMPLEMENTARY_FAMILIES`)].
    """
    n = len(queries)
    window = NETWORK_WINDOW_DAYS * US_PER_DAY
    present: dict[str, Array] = {}
    for family in sorted(set(family_times) | {f for fams in query_families for f in fams}):
        own = np.array([family in fams for fams in query_families], dtype=bool)
        times = family_times.get(family)
        if times is not None and len(times):
            recent = np.searchsorted(times, queries, side="left") - np.searchsorted(
                times, queries - window, side="left"
            )
            own |= recent > 0
        present[family] = own
    count = np.zeros(n, dtype=np.int32)
    for flags in present.values():
        count += flags
    complementary = np.zeros(n, dtype=bool)
    for left, right in COMPLEMENTARY_FAMILIES:
        has_left = np.zeros(n, dtype=bool)
        has_right = np.zeros(n, dtype=bool)
        for family, flags in present.items():
            if family in left:
                has_left |= flags
            if family in right:
                has_right |= flags
        complementary |= has_left & has_right
    return [count, complementary.astype(np.int32)]


def entity_volume(times: Array, queries: Array) -> list[Array]:
    """Age in days and windowed counts of one entity's shipments, for each query time.

    ``times``: the entity's declared times, int64 microseconds, sorted. Only times strictly
    before a query count. Returns [age_days (NaN when never seen), count per window].
    """
    before = np.searchsorted(times, queries, side="left")
    if len(times):
        age = np.where(before > 0, (queries - times[0]).astype(np.float64) / US_PER_DAY, np.nan)
    else:
        age = np.full(len(queries), np.nan)
    counts = [
        (before - np.searchsorted(times, queries - w, side="left")).astype(np.int32)
        for w in _WINDOWS_US
    ]
    return [age, *counts]


def smoothed_rate(
    positives: Array, inspections: Array, prior_rate: float, strength: float = SMOOTHING_STRENGTH
) -> Array:
    """The positive rate of counts (int arrays) smoothed toward ``prior_rate`` by ``strength``
    pseudo-inspections, as float64 (the live path applies the same operations)."""
    return (positives.astype(np.float64) + strength * prior_rate) / (
        inspections.astype(np.float64) + strength
    )


def entity_outcomes(
    reported: Array,
    positive: Array,
    queries: Array,
    prior_rate: float,
    strength: float = SMOOTHING_STRENGTH,
) -> list[Array]:
    """Outcome history of one entity for each query time.

    ``reported``: report times (int64 µs) sorted; ``positive``: bool, same order. Only outcomes
    reported strictly before a query count. Returns [inspections, positives, positive rate
    smoothed by ``strength`` pseudo-inspections, days since the last positive (NaN if none)].
    """
    cum_inspections = np.arange(1, len(reported) + 1, dtype=np.int64)
    cum_positives = np.cumsum(positive, dtype=np.int64)
    last_positive = np.maximum.accumulate(np.where(positive, reported, np.iinfo(np.int64).min))
    idx = np.searchsorted(reported, queries, side="left") - 1
    seen = idx >= 0
    safe = np.where(seen, idx, 0)
    inspections = np.where(seen, cum_inspections[safe] if len(reported) else 0, 0)
    positives = np.where(seen, cum_positives[safe] if len(reported) else 0, 0)
    last = np.where(seen, last_positive[safe] if len(reported) else 0, np.iinfo(np.int64).min)
    rate = smoothed_rate(positives, inspections, prior_rate, strength)
    has_positive = last != np.iinfo(np.int64).min
    since = np.where(
        has_positive,
        (queries - np.where(has_positive, last, 0)).astype(np.float64) / US_PER_DAY,
        np.nan,
    )
    return [inspections.astype(np.int32), positives.astype(np.int32), rate, since]


def _groups(keys: pl.Series, times: Array) -> Iterator[tuple[object, Array]]:
    """Row indices of each key value, each group ordered by time (ties by position)."""
    codes = keys.rank("dense").to_numpy()
    order = np.lexsort((np.arange(len(codes)), times, codes))
    bounds = np.flatnonzero(codes[order][1:] != codes[order][:-1]) + 1
    values = keys.to_list()
    for rows in np.split(order, bounds):
        if len(rows):
            yield values[rows[0]], rows


def _micros(column: pl.Series) -> Array:
    return column.dt.timestamp("us").to_numpy().astype(np.int64)


def history_frame(columns: dict[str, Array]) -> pl.DataFrame:
    """History features (from :func:`history_features` or the live state) as a frame."""
    return pl.DataFrame(columns)


def history_features(
    keyed: Keyed,
    outcomes: pl.DataFrame,
    prior_rate: float,
    strength: float = SMOOTHING_STRENGTH,
) -> dict[str, Array]:
    """Every history feature for every row of ``keyed``, in its order (the bulk path).

    ``outcomes``: ``reported_at``, ``positive`` and every key column, one row per reported
    inspection (the inspected shipment's keys copied onto it). Positive rates are smoothed by
    ``strength`` pseudo-inspections at ``prior_rate``.
    """
    n = len(keyed)
    declared = keyed.declared_at
    columns: dict[str, Array] = {}
    for entity in VOLUME_KEYS:
        out = entity_volume(np.zeros(0, dtype=np.int64), np.zeros(n, dtype=np.int64))
        for _, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            times = declared[rows]
            for target, values in zip(out, entity_volume(times, times), strict=True):
                target[rows] = values
        columns.update(zip(volume_names(entity), out, strict=True))
    reported = _micros(outcomes["reported_at"])
    positive = outcomes["positive"].to_numpy().astype(bool)
    no_outcomes = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    for entity in OUTCOME_KEYS:
        column = KEY_COLUMNS[entity]
        # Rows of entities never inspected get exactly what the kernel says for no outcomes.
        out = entity_outcomes(*no_outcomes, np.zeros(n, dtype=np.int64), prior_rate, strength)
        by_key = dict(_groups(outcomes[column], reported))
        for key, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            found = by_key.get(key)
            if found is None:
                continue
            computed = entity_outcomes(
                reported[found], positive[found], declared[rows], prior_rate, strength
            )
            for target, value in zip(out, computed, strict=True):
                target[rows] = value
        columns.update(zip(outcome_names(entity), out, strict=True))
    families = keyed.families
    for entity in NETWORK_KEYS:
        no_families: list[list[str]] = [[]] * n  # one empty list, only read
        out = entity_network({}, np.zeros(n, dtype=np.int64), no_families)
        for _, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            times = declared[rows]
            fams = [list(families[i]) for i in rows]
            by_family: dict[str, list[int]] = {}
            for t, row_families in zip(times.tolist(), fams, strict=True):
                for family in row_families:
                    by_family.setdefault(family, []).append(t)
            if not by_family:
                continue
            family_times = {f: np.array(ts, dtype=np.int64) for f, ts in by_family.items()}
            computed = entity_network(family_times, times, fams)
            for target, value in zip(out, computed, strict=True):
                target[rows] = value
        columns.update(zip(network_names(entity), out, strict=True))
    return columns
