"""Drift and label lag, watched live: how far the traffic a server decides has moved from what its
model was trained on, and how far the outcomes that would tell are behind. Transport-free:
:class:`~scoring.service.ScoringService` feeds it each delivered decision and each recorded
outcome, and :mod:`server.metrics` exports what it holds at scrape time.

Drift is measured as :mod:`scoring.drift` defines it.

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
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from features.vocab import port_label
from scoring.drift import DriftReference, PortDrift, Window, window_drift

log = logging.getLogger(__name__)

AGES = ("lt_1d", "1d_7d", "7d_30d", "gt_30d")
AGE_LIMITS_S = (86_400.0, 7 * 86_400.0, 30 * 86_400.0)
EXAM_LANES = frozenset({"red", "yellow"})
HOUR_S = 3600


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

    def seed(self, location: Path | str) -> None:
        """Read the label-lag counts back from the ledger at ``location`` (a SQLite file's path
        or a ledger URL, read through the ledger's own reader): its decisions of the last
        ``label_max_age_days`` and their first outcomes. Call before any live decision or
        outcome is counted (the service does, holding its outcome lock). Two passes over the
        rows, decoding only the decisions in the age cap and the outcomes against them, with
        memory for the ids of decisions that have outcomes only."""
        from scoring.ledger import open_store

        try:
            if not open_store(location).exists():
                return
            self._seed(location)
        except Exception as error:  # figures are not worth refusing to serve
            log.error("label-lag counts could not be read from the ledger", exc_info=error)

    def _seed(self, location: Path | str) -> None:
        from scoring.ledger import reading

        now = self.clock()
        lag = LabelLag(self._lag.window_s, self._lag.max_age_s, self._lag.started)
        cutoff = now - lag.max_age_s - 86_400.0  # a row is recorded after its decision
        with reading(location) as view, view.snapshot():  # one snapshot for both passes
            answered = {r.decision_id for r in view.rows() if r.kind == "outcome"}
            known: dict[str, tuple[str, str, float]] = {}
            for row in view.rows():
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
