"""Drift and label lag, watched live: how far the traffic a server decides has moved from what its
model was trained on, and how far the outcomes that would tell are behind. Transport-free:
:class:`~scoring.service.ScoringService` feeds it each delivered decision and each recorded
outcome, and :mod:`server.metrics` exports what it holds at scrape time.

**Drift statistic.** The population stability index (PSI) with fixed bins:

    PSI = sum over bins i of (a_i - r_i) * ln(a_i / r_i)

where ``r_i`` is the share of the reference in bin ``i`` and ``a_i`` the share of the window,
each floored at :data:`EPSILON` (1e-4) so an empty bin adds a large but finite amount instead of
infinity. Rule of thumb: under 0.1 stable, 0.1-0.25 a moderate shift, over 0.25 a major one
(:data:`ALERT_PSI`, the alert rules' threshold).

**Bins and reference** are fixed when the model is trained (:func:`build_reference`, stored in
the bundle's ``bundle.json`` under ``drift``) from every shipment of the validation window,
inspected or not: the newest window the model was fitted on (it stops the boosting and fits
the calibration), the one the lanes' reference score distribution comes from too. The training
window is older by construction: in the tests' simulated world of 6,000 shipments the scores of
the window after validation are at PSI 0.11 (all ports) and 0.28 (Nuevo Laredo) from the
validation window, but 1.9-2.3 from the training window, so an alert against the training
window would fire the day a model is promoted. For a numeric
series the cut points are the reference's deciles with repeats dropped, bin ``i`` holding
``[cut_{i-1}, cut_i)``; a decile value that 1% or more of the reference holds exactly (a point
mass: 0 for a count that is mostly 0, a score a small model gives many shipments) gets a bin of
its own, so a share moving off or onto it shows; plus one bin for a missing value (NaN). For a
categorical feature (LightGBM category codes) there is one bin for each of the 10 most frequent
codes, one for any other code and one for missing. The series are the calibrated score
(``risk_score``) and the model's :data:`TOP_FEATURES` most important features by total gain,
leaving out those that grow with the calendar for every party that stays (days since first
seen, all outcomes ever reported, days since the last positive: :data:`CALENDAR_SUFFIXES`),
whose PSI rises with the model's age whatever the traffic does (``shipper_age_days`` is at
PSI about 3 in the window after validation); the no-history share watches new parties
instead. Each known port with :data:`MIN_REFERENCE_ROWS` or more reference shipments has a
reference of its own, bins included; other ports (and the ``other`` label) are compared with
the reference of all ports (``default``). A bundle trained before references existed has none:
the server exports no PSI for it, and says nothing else about it.

**Window.** Each port (:func:`features.vocab.port_label`: known ports, else ``other``) keeps its
last ``drift_window`` delivered decisions (a setting, default 2000) in a ring of bin indices,
with counts per bin kept up to date as decisions enter and leave, so a decision costs a few
bisections and integer updates (a few microseconds) and a scrape a few sums. PSI is exported
once a window holds ``drift_min_decisions`` (default 200): an unshifted sample of ``n`` has an
expected PSI of about ``(bins - 1) / n`` from sampling noise alone (0.05 at 200 decisions and
10 bins, 0.005 at 2000). The same window gives the share of shipments whose shipper has no
history (``shipper_age_days`` missing) and the share with at least one watchlist hit. A model
reload restarts every window against the new bundle's reference.

**Label lag.** Counts per port and per hour of decision, never per decision: decisions made,
decisions with an outcome, and decisions sent to an exam (lane RED or YELLOW) still awaiting
their first outcome; GREEN decisions are released and not expected to get one, so they count in
the outcome rate but never as awaiting. Memory is a few integers per port and hour, whatever the
traffic. Ages are measured to the hour, in buckets ``lt_1d``, ``1d_7d``, ``7d_30d`` and
``gt_30d``; a decision still awaiting after ``label_max_age_days`` (default 90) leaves the count
(``gt_30d`` is 30 to 90 days) and is counted once as expired. The outcome rate is the share of
the port's decisions of the last ``label_window_days`` (default 30) with an outcome, and the
positive share is positives among first outcomes saying inspected (inconclusive ones included)
reported in that window. Only a decision's first outcome counts: a corrected report changes the
record in the ledger, not these figures. At start the counts are read back from the ledger
(:meth:`Monitor.seed`: decisions of the last ``label_max_age_days`` and their first outcomes),
so they survive a restart, at a cost of about 0.1 ms per decision read (each is decoded; 10 s
for 100,000, before the server turns SERVING); with no outcome in the ledger yet, the time
since the last outcome
counts from the server's start.

Every method is thread-safe: one lock, held for a batch of decisions, an outcome, or a scrape
(about 0.1 ms for 13 ports).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from features.schema import CATEGORICAL_FEATURES, FEATURE_NAMES
from features.vocab import PORTS, port_label

log = logging.getLogger(__name__)

SCORE = "risk_score"
NO_HISTORY_FEATURE = "shipper_age_days"
BINS = 10
EPSILON = 1e-4
ALERT_PSI = 0.25
TOP_FEATURES = 5
MIN_REFERENCE_ROWS = 200
POINT_MASS = 0.01  # a decile value holding this share of the reference gets a bin of its own
DEFAULT_PORT = "default"
AGES = ("lt_1d", "1d_7d", "7d_30d", "gt_30d")
AGE_LIMITS_S = (86_400.0, 7 * 86_400.0, 30 * 86_400.0)
EXAM_LANES = frozenset({"red", "yellow"})
HOUR_S = 3600


class Binning:
    """Fixed bins of one series and the reference's share in each (the last bin: missing)."""

    __slots__ = ("_codes", "edges", "proportions", "values")

    def __init__(
        self,
        proportions: Sequence[float],
        edges: Sequence[float] = (),
        values: Sequence[float] | None = None,
    ) -> None:
        self.edges = tuple(float(e) for e in edges)
        self.values = None if values is None else tuple(float(v) for v in values)
        self.proportions = tuple(float(p) for p in proportions)
        self._codes = {v: i for i, v in enumerate(self.values or ())}
        expected = (len(self.values) + 2) if self.values is not None else (len(self.edges) + 2)
        if len(self.proportions) != expected:
            raise ValueError(f"{len(self.proportions)} proportions for {expected} bins")
        if list(self.edges) != sorted(set(self.edges)):
            raise ValueError("cut points are not strictly increasing")

    @property
    def size(self) -> int:
        return len(self.proportions)

    def index(self, x: float | None) -> int:
        """The bin of one value: its numeric bin or category, else the missing bin."""
        if x is None or math.isnan(x):
            return self.size - 1
        if self.values is None:
            return bisect_right(self.edges, x)
        return self._codes.get(x, self.size - 2)

    def indices(self, xs: np.ndarray) -> np.ndarray:
        """:meth:`index` of each of ``xs`` (float64, NaN for missing), vectorised."""
        xs = np.asarray(xs, dtype=np.float64)
        missing = np.isnan(xs)
        if self.values is None:
            out = np.searchsorted(np.asarray(self.edges, dtype=np.float64), xs, side="right")
        else:
            out = np.full(xs.shape, self.size - 2, dtype=np.int64)
            for i, v in enumerate(self.values):
                out[xs == v] = i
        out = np.asarray(out, dtype=np.int64)
        out[missing] = self.size - 1
        return out

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"proportions": list(self.proportions)}
        if self.values is None:
            doc["edges"] = list(self.edges)
        else:
            doc["values"] = list(self.values)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Binning:
        values = doc.get("values")
        return cls(
            [float(p) for p in doc["proportions"]],
            [float(e) for e in doc.get("edges", ())],
            None if values is None else [float(v) for v in values],
        )

    @classmethod
    def fit(cls, xs: np.ndarray, *, categorical: bool = False) -> Binning:
        """Bins of ``xs`` (the reference sample) and its share in each."""
        xs = np.asarray(xs, dtype=np.float64)
        present = xs[~np.isnan(xs)]
        if categorical:
            codes, counts = np.unique(present, return_counts=True)
            order = np.lexsort((codes, -counts))[:BINS]
            binning = cls([0.0] * (len(order) + 2), values=codes[order].tolist())
        else:
            cuts: set[float] = set()
            if len(present):
                deciles = np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1])
                for cut in np.unique(deciles[np.isfinite(deciles)]).tolist():
                    cuts.add(cut)
                    if np.count_nonzero(present == cut) >= POINT_MASS * len(xs):
                        cuts.add(float(np.nextafter(cut, math.inf)))  # [cut, cut] alone
            binning = cls([0.0] * (len(cuts) + 2), edges=sorted(cuts))
        counts = np.bincount(binning.indices(xs), minlength=binning.size)
        shares = counts / max(len(xs), 1)
        return cls(shares.tolist(), binning.edges, binning.values)


def psi(counts: Sequence[int], proportions: Sequence[float]) -> float:
    """Population stability index of a window's bin counts against reference shares (NaN for an
    empty window)."""
    n = sum(counts)
    if n == 0:
        return math.nan
    total = 0.0
    for count, share in zip(counts, proportions, strict=True):
        a, r = max(count / n, EPSILON), max(share, EPSILON)
        total += (a - r) * math.log(a / r)
    return total


@dataclass(frozen=True)
class DriftReference:
    """What a bundle's traffic looked like at training: per port, each series' bins."""

    features: tuple[str, ...]  # the model's most important features, most important first
    ports: dict[str, dict[str, Binning]]  # port (or "default") -> series -> bins

    @property
    def series(self) -> tuple[str, ...]:
        return (SCORE, *self.features)

    def for_port(self, port: str) -> dict[str, Binning]:
        return self.ports.get(port) or self.ports[DEFAULT_PORT]

    def to_json(self) -> dict[str, Any]:
        return {
            "statistic": "psi",
            "bins": BINS,
            "epsilon": EPSILON,
            "features": list(self.features),
            "ports": {
                port: {name: b.to_json() for name, b in series.items()}
                for port, series in self.ports.items()
            },
        }

    @classmethod
    def from_json(cls, doc: Any) -> DriftReference | None:
        """The reference stored in a bundle; None when there is none (an older bundle) or it
        cannot be read (logged once by the caller's choice: it is never an error)."""
        if not isinstance(doc, Mapping) or not doc:
            return None
        try:
            features = tuple(str(f) for f in doc["features"])
            if any(f not in FEATURE_NAMES for f in features):
                raise ValueError("a feature is not in the schema")
            ports = {
                str(port): {str(name): Binning.from_json(b) for name, b in series.items()}
                for port, series in doc["ports"].items()
            }
            wanted = {SCORE, *features}
            if DEFAULT_PORT not in ports or any(set(s) != wanted for s in ports.values()):
                raise ValueError("a port lacks a series")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("the bundle's drift reference is unreadable; no drift figures: %s", exc)
            return None
        return cls(features, ports)


CALENDAR_SUFFIXES = ("_age_days", "_inspections", "_positives", "_days_since_positive")
"""Features that grow with the calendar for every entity that stays (days since first seen, all
outcomes ever reported, days since the last positive): against a fixed reference their PSI
rises with the model's age whatever the traffic does, so they are not drift series."""


def top_features(gains: Sequence[float], names: Sequence[str] = FEATURE_NAMES) -> list[str]:
    """The :data:`TOP_FEATURES` features of largest total gain (ties in schema order), leaving out
    those that grow with the calendar (:data:`CALENDAR_SUFFIXES`) and any the model never split
    on."""
    order = sorted(range(len(names)), key=lambda i: (-gains[i], i))
    return [names[i] for i in order if gains[i] > 0 and not names[i].endswith(CALENDAR_SUFFIXES)][
        :TOP_FEATURES
    ]


def build_reference(
    matrix: np.ndarray, scores: np.ndarray, ports: np.ndarray, features: Sequence[str]
) -> DriftReference:
    """The drift reference of a training window: ``matrix`` its feature rows (schema order),
    ``scores`` their calibrated scores, ``ports`` their ports of entry; ``features`` the series
    besides the score (:func:`top_features`)."""
    columns = {name: i for i, name in enumerate(FEATURE_NAMES)}
    ports = np.asarray(ports).astype(str)

    def fitted(mask: np.ndarray) -> dict[str, Binning]:
        out = {SCORE: Binning.fit(scores[mask])}
        for name in features:
            out[name] = Binning.fit(
                matrix[mask, columns[name]], categorical=name in CATEGORICAL_FEATURES
            )
        return out

    by_port = {DEFAULT_PORT: fitted(np.ones(len(scores), dtype=bool))}
    for port in PORTS:
        mask = ports == port
        if int(mask.sum()) >= MIN_REFERENCE_ROWS:
            by_port[port] = fitted(mask)
    return DriftReference(tuple(features), by_port)


class DecisionLike(Protocol):
    """What the monitor reads of a decision (:class:`scoring.scorer.Scored`)."""

    @property
    def port_of_entry(self) -> str: ...
    @property
    def risk_score(self) -> float: ...
    @property
    def lane(self) -> str: ...
    @property
    def watchlist_hits(self) -> Sized: ...


def no_history(features: Mapping[str, float | None]) -> bool:
    value = features.get(NO_HISTORY_FEATURE)
    return value is None or math.isnan(value)


class Window:
    """One port's last ``size`` decisions as bin indices, with counts per bin."""

    __slots__ = ("binnings", "bins", "counts", "flags", "hits", "n", "no_history", "pos", "size")

    def __init__(self, binnings: Sequence[tuple[str, Binning]], size: int) -> None:
        self.binnings = tuple(binnings)
        self.size = size
        self.bins = [bytearray(size) for _ in self.binnings]
        self.counts = [[0] * b.size for _, b in self.binnings]
        self.flags = bytearray(size)  # bit 0: no history, bit 1: a watchlist hit
        self.n = self.pos = self.no_history = self.hits = 0

    def push(self, score: float, features: Mapping[str, float | None], hit: bool) -> None:
        pos, full = self.pos, self.n == self.size
        for (name, binning), column, counts in zip(
            self.binnings, self.bins, self.counts, strict=True
        ):
            b = binning.index(score if name == SCORE else features.get(name))
            if full:
                counts[column[pos]] -= 1
            column[pos] = b
            counts[b] += 1
        flag = no_history(features) | (hit << 1)
        if full:
            old = self.flags[pos]
            self.no_history -= old & 1
            self.hits -= old >> 1
        else:
            self.n += 1
        self.flags[pos] = flag
        self.no_history += flag & 1
        self.hits += flag >> 1
        self.pos = (pos + 1) % self.size


@dataclass(frozen=True)
class PortDrift:
    port: str
    decisions: int  # in the window
    psi: dict[str, float]  # series -> PSI; empty below the minimum or without a reference
    no_history_share: float
    watchlist_hit_rate: float


@dataclass(frozen=True)
class PortLabels:
    port: str
    awaiting: dict[str, int]  # age bucket -> exam decisions awaiting their first outcome
    outcome_rate: float | None  # None: no decision in the label window
    positive_share_inspected: float | None  # None: nothing inspected reported in it
    expired: int  # exam decisions dropped from the count after label_max_age_days


@dataclass(frozen=True)
class Snapshot:
    drift: list[PortDrift] = field(default_factory=list)
    labels: list[PortLabels] = field(default_factory=list)
    seconds_since_last_outcome: float = 0.0


def window_drift(port: str, window: Window, min_decisions: int) -> PortDrift:
    n = window.n
    values = {}
    if n >= min_decisions:
        values = {
            name: psi(counts, binning.proportions)
            for (name, binning), counts in zip(window.binnings, window.counts, strict=True)
        }
    return PortDrift(
        port, n, values, window.no_history / n if n else 0.0, window.hits / n if n else 0.0
    )


Buckets = dict[str, dict[int, int]]


def _add(buckets: Buckets, port: str, hour: int, n: int = 1) -> None:
    per = buckets.setdefault(port, {})
    per[hour] = per.get(hour, 0) + n


class LabelLag:
    """Counts per port and hour (see the module documentation); not locked itself."""

    def __init__(self, window_s: float, max_age_s: float, started: float) -> None:
        self.window_s, self.max_age_s = window_s, max_age_s
        self.decided: Buckets = {}  # by hour of decision
        self.answered: Buckets = {}  # by hour of decision: got a first outcome
        self.open: Buckets = {}  # by hour of decision: exam decisions awaiting one
        self.inspected: Buckets = {}  # by hour of report: first outcomes saying inspected
        self.positive: Buckets = {}  # by hour of report: ... and positive
        self.expired: dict[str, int] = {}
        self.last_outcome: float | None = None
        self.started = started

    def decision(self, port: str, lane: str, at: float) -> None:
        hour = int(at // HOUR_S)
        _add(self.decided, port, hour)
        if lane in EXAM_LANES:
            _add(self.open, port, hour)

    def outcome(
        self,
        port: str,
        lane: str,
        decided_at: float,
        first: bool,
        inspected: bool,
        positive: bool,
        at: float,
    ) -> None:
        self.last_outcome = at if self.last_outcome is None else max(self.last_outcome, at)
        if not first:
            return
        hour = int(decided_at // HOUR_S)
        if decided_at >= at - self.window_s:
            _add(self.answered, port, hour)
        if lane in EXAM_LANES and decided_at >= at - self.max_age_s:
            # The server counts a decision in the hour it delivers it, a moment after the time
            # its ledger row gives; the neighbouring hour absorbs that difference.
            per = self.open.get(port, {})
            for h in (hour, hour + 1, hour - 1):
                if per.get(h, 0) > 0:
                    per[h] -= 1
                    break
        if inspected:
            report = int(at // HOUR_S)
            _add(self.inspected, port, report)
            if positive:
                _add(self.positive, port, report)

    def merge(self, other: LabelLag) -> None:
        """Add ``other``'s counts (read from the ledger) to these."""
        for mine, theirs in (
            (self.decided, other.decided),
            (self.answered, other.answered),
            (self.open, other.open),
            (self.inspected, other.inspected),
            (self.positive, other.positive),
        ):
            for port, per in theirs.items():
                for hour, n in per.items():
                    _add(mine, port, hour, n)
        for port, n in other.expired.items():
            self.expired[port] = self.expired.get(port, 0) + n
        if other.last_outcome is not None:
            self.last_outcome = max(self.last_outcome or other.last_outcome, other.last_outcome)

    def prune(self, now: float) -> None:
        """Forget hours past their use; exam decisions still open past the age cap expire."""
        window = int((now - self.window_s) // HOUR_S)
        oldest = int((now - self.max_age_s) // HOUR_S)
        for buckets in (self.decided, self.answered, self.inspected, self.positive):
            for per in buckets.values():
                for h in [h for h in per if h < window]:
                    del per[h]
        for port, per in self.open.items():
            for h in [h for h in per if h < oldest]:
                self.expired[port] = self.expired.get(port, 0) + per.pop(h)

    def labels(self, now: float) -> list[PortLabels]:
        out = []
        ports = sorted(set(self.decided) | set(self.open) | set(self.inspected))
        window = int((now - self.window_s) // HOUR_S)
        for port in ports:
            awaiting = dict.fromkeys(AGES, 0)
            for hour, n in self.open.get(port, {}).items():
                age = now - hour * HOUR_S  # to the hour: from the start of its hour
                awaiting[AGES[sum(age >= limit for limit in AGE_LIMITS_S)]] += n
            decided = sum(n for h, n in self.decided.get(port, {}).items() if h >= window)
            answered = sum(n for h, n in self.answered.get(port, {}).items() if h >= window)
            inspected = sum(n for h, n in self.inspected.get(port, {}).items() if h >= window)
            positive = sum(n for h, n in self.positive.get(port, {}).items() if h >= window)
            out.append(
                PortLabels(
                    port,
                    awaiting,
                    min(answered / decided, 1.0) if decided else None,
                    positive / inspected if inspected else None,
                    self.expired.get(port, 0),
                )
            )
        return out


def _timestamp(value: Any, fallback: float) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return fallback


class Monitor:
    """Drift windows per port and label-lag counts, fed by the scoring service."""

    def __init__(
        self,
        *,
        window: int = 2000,
        min_decisions: int = 200,
        label_window_days: float = 30.0,
        label_max_age_days: float = 90.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window, self.min_decisions = window, min_decisions
        self.clock = clock
        self._lock = threading.Lock()
        self._meta: object | None = None  # the bundle meta the windows follow
        self.reference: DriftReference | None = None
        self._windows: dict[str, Window] = {}
        self._lag = LabelLag(label_window_days * 86_400.0, label_max_age_days * 86_400.0, clock())
        self._pruned_hour = 0

    def _rebase(self, meta: Any) -> None:
        self._meta = meta
        self.reference = DriftReference.from_json(getattr(meta, "drift", None))
        self._windows = {}

    def decided(
        self, meta: object, decided: Iterable[tuple[DecisionLike, Mapping[str, float]]]
    ) -> None:
        """Count delivered decisions, each with its features, made with the bundle of ``meta``
        (:class:`~scoring.bundle.BundleMeta`; a new one restarts the drift windows)."""
        now = self.clock()
        with self._lock:
            if meta is not self._meta:
                self._rebase(meta)
            reference = self.reference
            for decision, features in decided:
                port = port_label(decision.port_of_entry)
                window = self._windows.get(port)
                if window is None:
                    binnings = reference.for_port(port) if reference is not None else {}
                    window = self._windows[port] = Window(list(binnings.items()), self.window)
                window.push(decision.risk_score, features, len(decision.watchlist_hits) > 0)
                self._lag.decision(port, decision.lane, now)
            if int(now // HOUR_S) != self._pruned_hour:
                self._pruned_hour = int(now // HOUR_S)
                self._lag.prune(now)

    def outcome(self, decision: Mapping[str, Any], outcome: Mapping[str, Any]) -> None:
        """Count an outcome just recorded (not a repeat): ``decision`` and ``outcome`` are
        their ledger payloads, the outcome's with its ``version``."""
        now = self.clock()
        with self._lock:
            self._outcome(decision, outcome, now)

    def _outcome(self, decision: Mapping[str, Any], outcome: Mapping[str, Any], at: float) -> None:
        shipment = decision.get("shipment") or {}
        self._lag.outcome(
            port_label(str(shipment.get("port_of_entry", ""))),
            str(decision.get("lane", "")),
            _timestamp(decision.get("decided_at"), at),
            outcome.get("version", 1) == 1,
            bool(outcome.get("inspected")),
            outcome.get("result") == "positive",
            at,
        )

    def seed(self, path: Path) -> None:
        """Read the label-lag counts back from the ledger at ``path``: its decisions of the last
        ``label_max_age_days`` and their first outcomes. Call before any live decision or
        outcome is counted (the service does, holding its outcome lock). Two passes over the
        rows, decoding only the decisions in the age cap and the outcomes against them, with
        memory for the ids of decisions that have outcomes only."""
        path = Path(path)
        if not path.exists():
            return
        try:
            self._seed(path)
        except Exception as error:  # figures are not worth refusing to serve
            log.error("label-lag counts could not be read from the ledger", exc_info=error)

    def _seed(self, path: Path) -> None:
        from scoring.ledger import iter_rows

        now = self.clock()
        lag = LabelLag(self._lag.window_s, self._lag.max_age_s, self._lag.started)
        cutoff = now - lag.max_age_s - 86_400.0  # a row is recorded after its decision
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("BEGIN")  # one snapshot for both passes
            answered = {r.decision_id for r in iter_rows(conn) if r.kind == "outcome"}
            known: dict[str, tuple[str, str, float]] = {}
            for row in iter_rows(conn):
                recorded = _timestamp(row.recorded_at, now)
                if row.kind == "decision":
                    if recorded < cutoff:
                        continue
                    payload = json.loads(row.payload)
                    decided_at = _timestamp(payload.get("decided_at"), recorded)
                    if decided_at < now - lag.max_age_s:
                        continue
                    port = port_label(str(payload["shipment"]["port_of_entry"]))
                    lane = str(payload.get("lane", ""))
                    lag.decision(port, lane, decided_at)
                    if row.decision_id in answered:
                        known[row.decision_id] = (port, lane, decided_at)
                elif row.kind == "outcome":
                    decision = known.pop(row.decision_id, None)
                    if decision is None:  # a later version, or against an older decision
                        lag.last_outcome = max(lag.last_outcome or recorded, recorded)
                        continue
                    outcome = json.loads(row.payload)
                    port, lane, decided_at = decision
                    inspected = bool(outcome.get("inspected"))
                    positive = outcome.get("result") == "positive"
                    lag.outcome(port, lane, decided_at, True, inspected, positive, recorded)
        finally:
            conn.close()
        lag.prune(now)
        with self._lock:
            self._lag.merge(lag)

    def snapshot(self) -> Snapshot:
        now = self.clock()
        with self._lock:
            self._lag.prune(now)
            drift = [window_drift(p, w, self.min_decisions) for p, w in self._windows.items()]
            labels = self._lag.labels(now)
            last = self._lag.last_outcome
            since = now - (last if last is not None else self._lag.started)
        return Snapshot(sorted(drift, key=lambda d: d.port), labels, max(since, 0.0))


def payload_drift(
    decisions: Sequence[Mapping[str, Any]],
    reference: DriftReference | None,
    min_decisions: int = 1,
) -> tuple[list[PortDrift], PortDrift]:
    """The live figures for decisions read back from the ledger (their payloads): per port,
    and for all of them together against the reference of all ports (port ``all``). PSI from
    ``min_decisions`` decisions on."""

    def binnings(port: str) -> list[tuple[str, Binning]]:
        return list(reference.for_port(port).items()) if reference is not None else []

    by_port: dict[str, list[Mapping[str, Any]]] = {}
    for decision in decisions:
        by_port.setdefault(port_label(str(decision["shipment"]["port_of_entry"])), []).append(
            decision
        )

    def measured(port: str, group: Sequence[Mapping[str, Any]], series: str) -> PortDrift:
        window = Window(binnings(series), max(len(group), 1))
        for d in group:
            features = {k: math.nan if v is None else float(v) for k, v in d["features"].items()}
            window.push(float(d["risk_score"]), features, bool(d.get("watchlist_hits")))
        return window_drift(port, window, min_decisions)

    ports = [measured(port, group, port) for port, group in sorted(by_port.items())]
    return ports, measured("all", decisions, DEFAULT_PORT)
