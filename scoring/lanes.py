"""Lanes by port capacity: everything RED counts, thresholds follow the live scores.

A port can open only so many containers. Each port has a budget: the share of its shipments it
can send RED (physical exam) and YELLOW (documentary review or scan), held over a rolling window
of its last decisions (``window``, by count, or ``window_hours``, by declared time). Everything
RED comes out of the one RED capacity, in this order:

1. **hard rules** (a Table I identification is always RED, never dropped);
2. **exploration**: a share of the RED capacity (``exploration``, 10% by default, as published
   customs work uses) spent on randomly chosen shipments, so future models see what this one
   would never select;
3. **the model's highest scores** fill what is left.

Over the window, with ``N`` decisions of which ``R`` were forced RED by rules, the capacity is
``C = red * N``; exploration gets ``E = min(exploration * C, C - R)`` and the model
``M = C - R - E``: the model's RED threshold is the score of the ``M``-th highest of the
window's other shipments. YELLOW works the same way with the YELLOW capacity. Thresholds
therefore follow each port's live score distribution (a streaming quantile over the window,
started from the bundle's reference distribution), so realised shares converge to the budget
on any traffic mix and after any model reload. When rules alone exceed the capacity those
shipments still go RED, nothing else does, and :meth:`LanePolicy.shares` reports the port over
capacity and by how much (the server turns it into a metric and a log line).

Propensity stays honest: each decision records the probability that the policy *in force at
that moment* selects a shipment with its score (1 for a rule or a score clearly above the
threshold, a fraction for a tie at the threshold, the exploration probability otherwise) and
the thresholds it used, so inverse-propensity estimates on the ledger stay unbiased while the
thresholds move. Draws are a hash of the shipment id and a seed, so replaying a shipment draws
the same number.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.vocab import PORTS

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
LANES: tuple[str, ...] = ("green", "yellow", "red")
"""The lanes, weakest first: the one vocabulary rules, lanes and reports use."""
LANE_ORDER = {lane: rank for rank, lane in enumerate(LANES)}
MAX_WINDOW = 200_000  # entries kept per port whatever the window, a memory bound
OTHER_PORTS = "other"  # the one window of every port code without its own
log = logging.getLogger(__name__)


class Budget(BaseModel):
    """A port's inspection capacity as shares of its shipments (a settings value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red: float = Field(
        0.02, ge=0, le=1, description="Share of shipments the port can send RED, everything in."
    )
    yellow: float = Field(0.05, ge=0, le=1, description="Share it can send YELLOW.")
    exploration: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Share of the RED capacity spent on random selection (not an extra).",
    )
    window: int = Field(
        2_000, ge=20, le=MAX_WINDOW, description="Decisions the shares are held over."
    )
    window_hours: float | None = Field(
        None,
        gt=0,
        description="Hold the shares over this many hours of declared time instead of a count.",
    )

    @model_validator(mode="after")
    def _fits(self) -> Budget:
        if self.red + self.yellow > 1:
            raise ValueError("red + yellow must not exceed 1")
        return self


@dataclass(frozen=True, slots=True)
class LaneDecision:
    lane: str
    random_selection: bool
    propensity: float  # probability that the policy in force selected a shipment like this one
    red_threshold: float = 1.0  # the model's RED threshold at that moment
    yellow_threshold: float = 1.0  # its YELLOW threshold


@dataclass(frozen=True, slots=True)
class PortShares:
    """A port's realised lanes over its window (live decisions only) beside its budget."""

    port: str
    decisions: int
    red: float
    yellow: float
    rule_red: float  # share of decisions forced RED by hard rules
    explored: float  # share sent RED at random
    budget_red: float
    budget_yellow: float
    over_capacity: float  # how far rules alone exceed the RED budget (share of decisions)
    over_capacity_events: int  # rule-forced REDs decided while over capacity, since start
    red_threshold: float
    yellow_threshold: float


def score_quantiles(scores: np.ndarray) -> list[float]:
    """The reference distribution stored in a bundle: scores at 1001 evenly spaced levels."""
    return [float(q) for q in np.quantile(scores, QUANTILE_LEVELS)]


def uniform_draw(shipment_id: str, seed: int) -> float:
    """A number in [0, 1) fixed by the shipment id and seed: replays draw the same."""
    return drawer(seed)(shipment_id)


def drawer(seed: int) -> Callable[[str], float]:
    """:func:`uniform_draw` with ``seed`` fixed: the blake2b hash of ``"{seed}:{shipment_id}"``,
    its seed prefix hashed once (a copy of that state then hashes each shipment id)."""
    start = hashlib.blake2b(f"{seed}:".encode(), digest_size=8).copy
    from_bytes = int.from_bytes

    def draw(shipment_id: str) -> float:
        hasher = start()
        hasher.update(shipment_id.encode())
        return from_bytes(hasher.digest(), "big") / 2**64

    return draw


def _seconds(at: datetime | None) -> float:
    """A decision's time in seconds since the epoch: when it was declared, else now."""
    return at.timestamp() if at is not None else time.time()


def raise_lane(lane: str, other: str) -> str:
    """The stronger of two lanes in :data:`LANES` order: a lane is only ever raised."""
    return other if LANE_ORDER[other] > LANE_ORDER[lane] else lane


_Entry = tuple[float | None, float | None, str, str, bool]
"""One decision in a port's window: (declared time in seconds since the epoch, None for a
reference prior; score in the model's pool, None when a rule forced RED; the rule's lane,
"red", "yellow" or ""; the lane; whether it was a random pick). A plain tuple: one is made and
dropped per decision."""


def _threshold(pool: list[float], slots: float) -> float:
    """The score a shipment must exceed to be among the top ``slots`` of ``pool``."""
    if slots <= 0 or not pool:
        return 1.0
    at = len(pool) - math.ceil(slots)
    return pool[at] if at >= 0 else 0.0


@dataclass(slots=True)  # its counters are read and written a few times every decision
class _Port:
    key: str  # the window's name: a port code, or OTHER_PORTS
    budget: Budget
    prior: list[float]  # reference scores the window starts from
    entries: deque[_Entry] = field(default_factory=deque)
    pool: list[float] = field(default_factory=list)  # sorted scores of the unforced entries
    forced_red: int = 0
    forced_yellow: int = 0
    live: int = 0
    red: int = 0
    yellow: int = 0
    explored: int = 0
    over_capacity_events: int = 0
    over: bool = False  # rules alone exceed the capacity right now
    thresholds: tuple[float, float] = (1.0, 1.0)
    # The budget as every decision reads it (set from ``budget``).
    red_share: float = field(init=False)
    yellow_share: float = field(init=False)
    selected_share: float = field(init=False)  # red + yellow
    explore_share: float = field(init=False)
    hours: float | None = field(init=False)  # budget.window_hours
    limit: int = field(init=False)  # entries kept

    def __post_init__(self) -> None:
        b = self.budget
        self.red_share, self.yellow_share, self.explore_share = b.red, b.yellow, b.exploration
        self.selected_share = b.red + b.yellow
        self.hours = b.window_hours
        self.limit = MAX_WINDOW if b.window_hours is not None else b.window
        for score in self.prior:
            self._push((None, score, "", "green", False))

    # ------------------------------------------------------------------ the window

    def _push(self, entry: _Entry) -> None:
        at, score, forced, lane, random = entry
        self.entries.append(entry)
        if score is not None:
            bisect.insort(self.pool, score)
        if forced == "red":
            self.forced_red += 1
        elif forced == "yellow":
            self.forced_yellow += 1
        if at is not None:
            self.live += 1
            if lane == "red":
                self.red += 1
            elif lane == "yellow":
                self.yellow += 1
            if random:
                self.explored += 1

    def _pop(self) -> None:
        at, score, forced, lane, random = self.entries.popleft()
        if score is not None:
            del self.pool[bisect.bisect_left(self.pool, score)]
        if forced == "red":
            self.forced_red -= 1
        elif forced == "yellow":
            self.forced_yellow -= 1
        if at is not None:
            self.live -= 1
            if lane == "red":
                self.red -= 1
            elif lane == "yellow":
                self.yellow -= 1
            if random:
                self.explored -= 1

    def add(self, entry: _Entry, now: float) -> None:
        """Count ``entry`` in the window, and let go of what the window no longer holds."""
        entries = self.entries
        if self.hours is not None and entries and entries[0][0] is None:
            self._pop()  # reference priors give way to live decisions one for one
        self._push(entry)
        while len(entries) > self.limit:
            self._pop()
        if self.hours is not None:
            horizon = now - self.hours * 3600.0
            while entries and (first := entries[0][0]) is not None and first < horizon:
                self._pop()

    # ------------------------------------------------------------------ capacity

    def capacity(self) -> tuple[float, float, float, float]:
        """(model RED slots, model selected slots, exploration slots, rules' excess) of the
        window, in shipments.

        The slots are what the window's capacity leaves the model (feed-forward: the top
        ``slots`` scores of the window), corrected by how far everything sent RED (or
        selected) over the live part of the window falls short of or exceeds the budget
        (feedback): under a drifting score distribution a pure quantile lags, and the window
        starts from a reference that knows nothing of the port's rules.
        """
        # max and min written out (a builtin call each otherwise) with the comparisons they
        # make: max(x, y) is ``y if y > x else x``, min(x, y) ``y if y < x else x``.
        n = len(self.entries) + 1  # the shipment being decided counts in the window
        red_capacity = self.red_share * n
        room = red_capacity - self.forced_red
        room = 0.0 if room < 0.0 else room
        explore = self.explore_share * red_capacity
        explore = room if room < explore else explore
        model_red = room - explore
        yellow_room = self.yellow_share * n - self.forced_yellow
        model_selected = model_red + (0.0 if yellow_room < 0.0 else yellow_room)
        red_short = self.red_share * self.live - self.red
        selected_short = self.selected_share * self.live - (self.red + self.yellow)
        red_slots = model_red + red_short
        red_slots = 0.0 if red_slots < 0.0 else red_slots
        selected_slots = model_selected + selected_short
        selected_slots = red_slots if red_slots > selected_slots else selected_slots
        excess = self.forced_red - red_capacity
        return red_slots, selected_slots, explore, 0.0 if excess < 0.0 else excess

    def chances(self, score: float, red_slots: float, selected_slots: float) -> tuple[float, float]:
        """The chances the model sends ``score`` RED, and RED or YELLOW: that it is among the
        top ``red_slots`` (``selected_slots``) of the pool plus itself, ties at the boundary
        sharing what is left.

        Hard caps under the controller: the model never takes a RED, nor an exam of any lane,
        the window has no room for (rules still do; exploration's small share is left to the
        feedback). A drifting score distribution moves the thresholds only as fast as the
        window; the caps hold the port's capacity meanwhile.
        """
        n = self.live + 1
        if self.red + self.yellow >= math.ceil(self.selected_share * n - 1e-9):
            return 0.0, 0.0  # no exam left in the window
        # red_slots <= selected_slots: a score outside the selected slots is outside both
        if selected_slots <= 0:
            return 0.0, 0.0
        pool = self.pool
        right = bisect.bisect_right(pool, score)
        above = len(pool) - right
        if above >= selected_slots:
            return 0.0, 0.0
        tied = right - bisect.bisect_left(pool, score) + 1
        p_selected = (selected_slots - above) / tied
        p_selected = p_selected if p_selected < 1.0 else 1.0
        full = self.red >= math.ceil(self.red_share * n - 1e-9)
        if full or red_slots <= 0 or above >= red_slots:
            return 0.0, p_selected
        p_red = (red_slots - above) / tied
        p_red = p_red if p_red < 1.0 else 1.0
        return p_red, p_red if p_red > p_selected else p_selected


class LanePolicy:
    """Turns calibrated scores and rule lanes into lanes within each port's capacity.

    Stateful and thread-safe: one policy serves a whole server (or one bulk run), deciding in
    arrival order. :meth:`rebase` starts every port's score window afresh from a new model's
    reference distribution.
    """

    def __init__(
        self,
        quantiles: Mapping[str, Sequence[float]],
        budgets: Mapping[str, Budget],
        seed: int = 0,
    ) -> None:
        if "default" not in quantiles:
            raise ValueError("reference quantiles need a 'default' distribution")
        self.budgets = dict(budgets)
        self.default_budget = self.budgets.get("default", Budget())
        self._lock = threading.Lock()
        self.seed = seed
        self._quantiles: dict[str, np.ndarray] = {}
        self._ports: dict[str, _Port] = {}
        self.rebase(quantiles)

    @property
    def seed(self) -> int:
        """The draws' seed: exploration draws with it, a tie at a threshold with ``seed + 1``."""
        return self._seed

    @seed.setter
    def seed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._draw_explore, self._draw_tie = drawer(seed), drawer(seed + 1)

    def budget(self, port: str) -> Budget:
        return self.budgets.get(port, self.default_budget)

    def rebase(self, quantiles: Mapping[str, Sequence[float]]) -> None:
        """A new model: every port's window restarts from its reference distribution."""
        with self._lock:
            self._quantiles = {p: np.asarray(q, dtype=np.float64) for p, q in quantiles.items()}
            self._ports = {}

    def _key(self, port: str) -> str:
        """Ports with a budget, a reference distribution or a place in the vocabulary keep a
        window of their own; any other code shares one, so arbitrary codes cannot grow it."""
        if port in self.budgets or port in self._quantiles or port in PORTS:
            return port
        return OTHER_PORTS

    def _port(self, port: str) -> _Port:
        state = self._ports.get(port)  # a port with a window of its own, already open
        if state is not None:
            return state
        port = self._key(port)
        state = self._ports.get(port)
        if state is None:
            grid = self._quantiles.get(port, self._quantiles["default"])
            budget = self.budget(port)
            size = min(budget.window, 2_000)
            levels = (np.arange(size) + 0.5) / size
            prior = np.interp(levels, np.linspace(0.0, 1.0, len(grid)), grid)
            state = _Port(port, budget, sorted(float(p) for p in prior))
            self._ports[port] = state
        return state

    def thresholds(self, port: str) -> tuple[float, float]:
        """(red, yellow) score thresholds the next shipment at ``port`` would face."""
        with self._lock:
            state = self._port(port)
            model_red, selected, _, _ = state.capacity()
            return _threshold(state.pool, model_red), _threshold(state.pool, selected)

    def decide(
        self,
        port: str,
        score: float,
        shipment_id: str,
        rule_lane: str = "green",
        at: datetime | None = None,
    ) -> LaneDecision:
        """The lane at ``port``, whether it was a random pick, and the policy's propensity;
        the decision then counts in the port's window."""
        with self._lock:
            return self._decide(port, score, shipment_id, rule_lane, _seconds(at))

    def decide_many(
        self,
        ports: Sequence[str],
        scores: Sequence[float],
        shipment_ids: Sequence[str],
        rule_lanes: Sequence[str],
        ats: Sequence[datetime | None],
    ) -> list[LaneDecision]:
        """:meth:`decide` for each shipment in turn (the i-th of every sequence), taking the
        lock once: the decisions a loop of :meth:`decide` would make, in the same order."""
        sizes = {len(ports), len(scores), len(shipment_ids), len(rule_lanes), len(ats)}
        if len(sizes) > 1:
            raise ValueError(
                f"decide_many needs one of each per shipment: {len(ports)} ports, "
                f"{len(scores)} scores, {len(shipment_ids)} shipment ids, "
                f"{len(rule_lanes)} rule lanes, {len(ats)} times"
            )
        with self._lock:
            decide = self._decide
            return [
                decide(port, score, shipment_id, rule_lane, _seconds(at))
                for port, score, shipment_id, rule_lane, at in zip(
                    ports, scores, shipment_ids, rule_lanes, ats, strict=True
                )
            ]

    def decide_at(
        self,
        ports: Sequence[str],
        scores: Sequence[float],
        shipment_ids: Sequence[str],
        rule_lanes: Sequence[str],
        seconds: Sequence[float],
    ) -> list[LaneDecision]:
        """:meth:`decide_many` with each declared time as seconds since the epoch (what
        ``datetime.timestamp`` gives): bulk runs read times as numbers, not datetimes."""
        with self._lock:
            decide, opened, port_of = self._decide_in, self._ports, self._port
            return [
                decide(opened.get(port) or port_of(port), score, shipment_id, rule_lane, when)
                for port, score, shipment_id, rule_lane, when in zip(
                    ports, scores, shipment_ids, rule_lanes, seconds, strict=True
                )
            ]

    def decide_beside(
        self,
        port: str,
        score: float,
        shadow_score: float,
        shipment_id: str,
        rule_lane: str = "green",
        at: datetime | None = None,
    ) -> tuple[LaneDecision, LaneDecision]:
        """:meth:`decide` for ``score``, and what the policy would have answered for
        ``shadow_score`` (another model's score of the same shipment) in the state it was in
        for this decision, with the same rule lane and draws. The second answer counts
        nowhere: windows, thresholds and counts are what :meth:`decide` alone leaves."""
        with self._lock:
            shadow, _ = self._choose(self._port(port), shadow_score, shipment_id, rule_lane)
            return self._decide(port, score, shipment_id, rule_lane, _seconds(at)), shadow

    def _decide(
        self, port: str, score: float, shipment_id: str, rule_lane: str, when: float
    ) -> LaneDecision:
        """:meth:`decide` under the lock, declared at ``when`` (seconds since the epoch):
        choose, then count the decision in the window."""
        return self._decide_in(self._port(port), score, shipment_id, rule_lane, when)

    def _decide_in(
        self, state: _Port, score: float, shipment_id: str, rule_lane: str, when: float
    ) -> LaneDecision:
        """:meth:`_decide` in the window ``state`` of the shipment's port."""
        decided, excess = self._choose(state, score, shipment_id, rule_lane)
        state.thresholds = (decided.red_threshold, decided.yellow_threshold)
        if rule_lane == "red":
            self._note_capacity(state, excess)
            pooled = None  # a rule's RED is not the model's
        else:
            pooled = score
        forced = "" if rule_lane == "green" else rule_lane
        state.add((when, pooled, forced, decided.lane, decided.random_selection), when)
        return decided

    def _choose(
        self, state: _Port, score: float, shipment_id: str, rule_lane: str
    ) -> tuple[LaneDecision, float]:
        """The decision for ``score`` in the window as it stands, and how far rules alone
        exceed the port's RED capacity; changes nothing."""
        model_red, selected, explore, excess = state.capacity()
        pool = state.pool
        red_at, yellow_at = _threshold(pool, model_red), _threshold(pool, selected)
        if rule_lane == "red":
            return LaneDecision("red", False, 1.0, red_at, yellow_at), excess
        p_red, p_selected = state.chances(score, model_red, selected)
        fractional = 0.0 < p_red < 1.0 or 0.0 < p_selected < 1.0
        u = self._draw_tie(shipment_id) if fractional else 0.0
        model_lane = "red" if u < p_red else "yellow" if u < p_selected else "green"
        lane = model_lane if rule_lane == "green" else raise_lane(model_lane, rule_lane)
        if lane != "green":
            propensity = 1.0 if rule_lane == "yellow" else p_selected
            return LaneDecision(lane, False, propensity, red_at, yellow_at), excess
        rest = len(pool) + 1 - selected
        p_explore = explore / (1.0 if rest < 1.0 else rest)
        p_explore = p_explore if p_explore < 1.0 else 1.0
        propensity = p_selected + (1.0 - p_selected) * p_explore
        chosen = p_explore > 0 and self._draw_explore(shipment_id) < p_explore
        decided = LaneDecision("red" if chosen else "green", chosen, propensity, red_at, yellow_at)
        return decided, excess

    @staticmethod
    def _note_capacity(state: _Port, excess: float) -> None:
        """Count a rule RED decided over capacity; log when a port goes over and comes back."""
        n = len(state.entries) + 1
        if excess > 0:
            state.over_capacity_events += 1
            if not state.over:
                state.over = True
                log.warning(
                    "port over RED capacity: hard rules alone exceed the budget",
                    extra={
                        "port": state.key,
                        "rule_red_share": round((state.forced_red + 1) / n, 4),
                        "red_budget": state.budget.red,
                        "over_by_share": round(excess / n, 4),
                        "window": len(state.entries),
                    },
                )
        elif state.over:
            state.over = False
            log.info("port back within RED capacity", extra={"port": state.key})

    def shares(self) -> list[PortShares]:
        """Every port's realised shares over its window beside its budget (for metrics)."""
        with self._lock:
            out = []
            for port, s in sorted(self._ports.items()):
                live = max(s.live, 1)
                n = len(s.entries)
                out.append(
                    PortShares(
                        port=port,
                        decisions=s.live,
                        red=s.red / live,
                        yellow=s.yellow / live,
                        rule_red=s.forced_red / max(n, 1),
                        explored=s.explored / live,
                        budget_red=s.budget.red,
                        budget_yellow=s.budget.yellow,
                        over_capacity=max(s.forced_red - s.budget.red * n, 0.0) / max(n, 1),
                        over_capacity_events=s.over_capacity_events,
                        red_threshold=s.thresholds[0],
                        yellow_threshold=s.thresholds[1],
                    )
                )
            return out
