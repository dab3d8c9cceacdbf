"""Entity history, point in time: what was known about a shipment's parties before it arrived.

For each shipment and each entity (shipper, consignee, broker, route, HS heading, and the
watched item its goods identify) this computes only from events strictly before the shipment's
``declared_at``:

* volume: days since the entity was first seen, and its shipment counts over each window of
  :data:`WINDOWS_DAYS` (shipper, consignee and broker; routes and headings are too coarse for
  volume to mean much, and an item's volume added nothing measurable);
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
key and applies the same arithmetic to every key at once, on the rows sorted by key and time
(one binary search over the whole table where a kernel makes one per key); the kernels stay
the definition, and a test holds the two equal. The live path
(:class:`features.state.EntityState`) does not call them either: it keeps each entity's events
sorted in memory, counts events before a time by binary search on them (never copying or
scanning them), and applies the kernels' own formulas, operation for operation, to those
counts, so both paths give bit-identical features at a cost that does not grow with how busy
an entity is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

VOLUME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker")
# "item": the watchlist entry a shipment's strongest identification names ("" when none), so
# an item's own findings count: an analogue with no licit trade is not aniline.
OUTCOME_KEYS: tuple[str, ...] = ("shipper", "consignee", "broker", "route", "heading", "item")
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
    "item": "item_key",
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

    The kernels' arithmetic runs over every entity at once, on the rows sorted by entity and
    time (:class:`_Rows`): what :func:`entity_volume`, :func:`entity_outcomes` and
    :func:`entity_network` give each entity's rows, bit for bit. A row without a key is an
    entity of its own; the rows without one see the outcome without one reported last.
    """
    table = _Table(keyed, outcomes)
    volume: dict[str, Array] = {}
    found: dict[str, Array] = {}
    network: dict[str, Array] = {}
    for entity in OUTCOME_KEYS:  # every entity: VOLUME_KEYS and NETWORK_KEYS are among them
        codes, outcome_codes = _codes(
            pl.Series(keyed.keys[entity], dtype=pl.String), outcomes[KEY_COLUMNS[entity]]
        )
        rows = _Rows(codes, table.at, table.timeline.span)
        if entity in VOLUME_KEYS:
            volume.update(zip(volume_names(entity), table.volume(rows), strict=True))
        counts = table.outcomes(rows, outcome_codes)
        inspections, positives, since = table.keyless_outcomes(codes, outcome_codes, counts)
        rate = smoothed_rate(positives, inspections, prior_rate, strength)
        computed = [inspections.astype(np.int32), positives.astype(np.int32), rate, since]
        found.update(zip(outcome_names(entity), computed, strict=True))
        if entity in NETWORK_KEYS:
            network.update(zip(network_names(entity), table.network(rows), strict=True))
    return {**volume, **found, **network}


class _Timeline:
    """Times (int64 µs) as ranks among the distinct ``times``: :meth:`before` counts the
    distinct times strictly before each time asked about, so an event at ``t`` lies strictly
    before ``x`` exactly when ``before(t) < before(x)``."""

    def __init__(self, times: Array) -> None:
        ordered = np.sort(times)  # np.unique hashes int64: several times slower than this
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        self.times = ordered[first]
        self.span = len(self.times) + 1  # ranks run from 0 to len(times)

    def before(self, at: Array) -> Array:
        return np.searchsorted(self.times, at, side="left")


class _Rows:
    """A table's rows sorted by (entity code, time rank), the two in one int64 key: each
    entity's rows in time order, one entity after another. Queries made in this order are
    sorted too, so every binary search below walks its array once."""

    def __init__(self, codes: Array, at: Array, span: int) -> None:
        key = codes * span + at
        self.order = np.argsort(key, kind="stable")
        self.codes = codes[self.order]
        self.keys = key[self.order]
        self.base = self.codes * span  # the key of each row's entity at rank 0

    def unsorted(self, values: Array) -> Array:
        """``values`` given in sorted order, back in table order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


class _Table:
    """What every entity's history reads of a table: its rows' times as ranks, the windows'
    starts, and its outcomes' report times and results."""

    def __init__(self, keyed: Keyed, outcomes: pl.DataFrame) -> None:
        self.declared = keyed.declared_at
        self.timeline = _Timeline(self.declared)
        self.at = self.timeline.before(self.declared)
        self.reported = _micros(outcomes["reported_at"])
        self.positive = outcomes["positive"].to_numpy().astype(bool)
        self.reports = _Timeline(self.reported)
        self.reported_before = self.reports.before(self.declared)  # outcomes a row may see
        self.family_rows = _family_rows(keyed.families)
        self._since: dict[int, Array] = {}

    def since(self, days_us: int) -> Array:
        """Each row's time less ``days_us``, as a rank."""
        found = self._since.get(days_us)
        if found is None:
            found = self._since[days_us] = self.timeline.before(self.declared - days_us)
        return found

    def volume(self, rows: _Rows) -> list[Array]:
        """:func:`entity_volume` of every row among its entity's rows: age in days and
        windowed counts."""
        keys, base = rows.keys, rows.base
        first = np.searchsorted(keys, base)  # the entity's first row
        now = np.searchsorted(keys, keys)  # its first row at this row's time
        first_time = self.timeline.times[keys[first] - base]
        declared = self.declared[rows.order]
        age = np.where(now > first, (declared - first_time).astype(np.float64) / US_PER_DAY, np.nan)
        counts = [
            (now - np.searchsorted(keys, base + self.since(w)[rows.order])).astype(np.int32)
            for w in _WINDOWS_US
        ]
        return [rows.unsorted(age), *(rows.unsorted(c) for c in counts)]

    def outcomes(self, rows: _Rows, outcome_codes: Array) -> tuple[Array, Array, Array]:
        """:func:`entity_outcomes` of every row before smoothing: inspections and positives
        reported strictly before it (int64), and days since the last positive (NaN if none)."""
        span = self.reports.span
        key = outcome_codes * span + self.reports.before(self.reported)
        order = np.argsort(key, kind="stable")
        events = key[order]
        start = np.searchsorted(events, rows.codes * span)
        end = np.searchsorted(events, rows.codes * span + self.reported_before[rows.order])
        inspections = end - start
        flags = self.positive[order]
        cum_positives = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
        positives = cum_positives[end] - cum_positives[start]
        # Each event's last positive so far, by position: the latest one, as an entity's
        # events are in time order; shifted by one, so that [end] is the one before ``end``.
        last = np.concatenate(
            [[-1], np.maximum.accumulate(np.where(flags, np.arange(len(flags)), -1))]
        )
        last = last[end]
        has_positive = (inspections > 0) & (last >= start)
        times = self.reported[order]
        last_time = np.where(has_positive, times[np.maximum(last, 0)] if len(times) else 0, 0)
        declared = self.declared[rows.order]
        since = np.where(
            has_positive, (declared - last_time).astype(np.float64) / US_PER_DAY, np.nan
        )
        return rows.unsorted(inspections), rows.unsorted(positives), rows.unsorted(since)

    def keyless_outcomes(
        self, codes: Array, outcome_codes: Array, found: tuple[Array, Array, Array]
    ) -> tuple[Array, Array, Array]:
        """``found`` (inspections, positives, days since a positive) with the rows without a
        key seeing what the per-key grouping gave them: the one outcome without a key reported
        last (last in time, then in table order), if any."""
        rows = np.flatnonzero(codes < 0)
        missing = np.flatnonzero(outcome_codes < 0)
        if not len(rows) or not len(missing):
            return found
        last = missing[np.lexsort((missing, self.reported[missing]))[-1:]]
        inspections, positives, _, since = entity_outcomes(
            self.reported[last], self.positive[last], self.declared[rows], 0.0
        )
        for target, values in zip(found, (inspections, positives, since), strict=True):
            target[rows] = values
        return found

    def network(self, rows: _Rows) -> list[Array]:
        """:func:`entity_network` of every row: the watched route families its entity
        received in the prior :data:`NETWORK_WINDOW_DAYS` days plus its own, and whether they
        include a complementary combination."""
        n = len(rows.keys)
        since = rows.base + self.since(NETWORK_WINDOW_DAYS * US_PER_DAY)[rows.order]
        position = rows.unsorted(np.arange(n))  # each table row's place in sorted order
        count = np.zeros(n, dtype=np.int32)
        left = [np.zeros(n, dtype=bool) for _ in COMPLEMENTARY_FAMILIES]
        right = [np.zeros(n, dtype=bool) for _ in COMPLEMENTARY_FAMILIES]
        for family, table_rows in self.family_rows.items():
            own = position[table_rows]
            events = np.sort(rows.keys[own])
            asked = np.flatnonzero(np.isin(rows.codes, rows.codes[own]))  # the entities' rows
            recent = np.searchsorted(events, rows.keys[asked]) - np.searchsorted(
                events, since[asked]
            )
            present = np.zeros(n, dtype=bool)
            present[asked] = recent > 0
            present[own] = True
            count += present
            for k, (lefts, rights) in enumerate(COMPLEMENTARY_FAMILIES):
                if family in lefts:
                    left[k] |= present
                if family in rights:
                    right[k] |= present
        complementary = np.zeros(n, dtype=bool)
        for has_left, has_right in zip(left, right, strict=True):
            complementary |= has_left & has_right
        return [rows.unsorted(count), rows.unsorted(complementary.astype(np.int32))]


def _family_rows(families: list[tuple[str, ...]]) -> dict[str, Array]:
    """The rows each watched route family was identified on, by family (sorted)."""
    rows_of: dict[str, list[int]] = {}
    for row, row_families in enumerate(families):
        for family in row_families:
            rows_of.setdefault(family, []).append(row)
    return {f: np.asarray(rows_of[f], dtype=np.int64) for f in sorted(rows_of)}


def _codes(keys: pl.Series, outcome_keys: pl.Series) -> tuple[Array, Array]:
    """Codes of the rows' keys and of the outcomes' in one space (int64, equal for equal
    keys); a missing key gets a negative code of its own, equal to no other."""
    n = len(keys)
    both = pl.concat([keys, outcome_keys.cast(pl.String)])
    codes = both.cast(pl.Categorical).to_physical().fill_null(-1).to_numpy().astype(np.int64)
    missing = np.flatnonzero(codes < 0)
    codes[missing] = -1 - np.arange(len(missing))
    return codes[:n], codes[n:]
