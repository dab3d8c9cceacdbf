"""Drift: how far the traffic a server decides has moved from what its model was trained on.

The statistic, its bins and the reference stored in each bundle are defined here, once, for the
live monitor (:mod:`scoring.monitor`), ``centinela drift`` over the ledger, and training, which
builds the reference.

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
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
