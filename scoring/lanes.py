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

import hashlib
import logging
import threading
import time
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from math import ceil
from operator import itemgetter
from typing import NamedTuple, cast

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

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    red: float = Field(0.02, ge=0, le=1)
    """Share of shipments the port can send RED, everything in."""
    yellow: float = Field(0.05, ge=0, le=1)
    """Share it can send YELLOW."""
    exploration: float = Field(0.10, ge=0, le=1)
    """Share of the RED capacity spent on random selection (not an extra)."""
    window: int = Field(2_000, ge=20, le=MAX_WINDOW)
    """Decisions the shares are held over."""
    window_hours: float | None = Field(None, gt=0)
    """Hold the shares over this many hours of declared time instead of a count."""

    @model_validator(mode="after")
    def _fits(self) -> Budget:
        if self.red + self.yellow > 1:
            raise ValueError("red + yellow must not exceed 1")
        return self


class LaneDecision(NamedTuple):
    """A lane, whether it was a random pick, the policy's propensity and the thresholds in
    force. A named tuple: one is made per decision, and it is immutable."""

    lane: str
    random_selection: bool
    propensity: float  # probability that the policy in force selected a shipment like this one
    red_threshold: float = 1.0  # the model's RED threshold at that moment
    yellow_threshold: float = 1.0  # its YELLOW threshold


_decision = tuple.__new__  # LaneDecision from a tuple of all five, without the keyword handling


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
    at = len(pool) - ceil(slots)
    return pool[at] if at >= 0 else 0.0


def _chances(
    pool: list[float], score: float, right: int, red_slots: float, selected: float, red_room: bool
) -> tuple[float, float]:
    """The chances the model sends ``score`` RED, and RED or YELLOW: that it is among the top
    ``red_slots`` (``selected`` slots) of ``pool`` plus itself, ties at the boundary sharing
    what is left; ``right`` is where ``score`` would go in ``pool`` after its equals, and
    fewer than ``selected`` scores of the pool are above it. ``red_room``: the window has a
    RED left (otherwise the model sends nothing RED)."""
    above = len(pool) - right
    tied = right - bisect_left(pool, score) + 1
    p_selected = (selected - above) / tied
    p_selected = p_selected if p_selected < 1.0 else 1.0
    if not red_room or red_slots <= 0 or above >= red_slots:
        return 0.0, p_selected
    p_red = (red_slots - above) / tied
    p_red = p_red if p_red < 1.0 else 1.0
    return p_red, p_red if p_red > p_selected else p_selected


@dataclass(slots=True)
class _Port:
    """A port's window of decisions and the counts every decision reads from it.

    :meth:`decide` is the one definition of a decision: the live path calls it with one
    shipment, bulk runs with a chunk's shipments at this port, holding the window's counts in
    local variables meanwhile. Over the window's ``n`` entries and the shipment being decided,
    the model's RED slots are what the RED capacity leaves after rules and exploration,
    corrected by how far everything sent RED over the live part of the window falls short of
    or exceeds the budget (feedback: under a drifting score distribution a pure quantile lags,
    and the window starts from a reference that knows nothing of the port's rules); selected
    slots (RED or YELLOW) likewise. Hard caps under the controller: the model never takes a
    RED, nor an exam of any lane, the window has no room for (rules still do; exploration's
    small share is left to the feedback)."""

    key: str  # the window's name: a port code, or OTHER_PORTS
    budget: Budget
    prior: list[float]  # reference scores the window starts from, sorted
    entries: deque[_Entry] = field(init=False)
    pool: list[float] = field(init=False)  # sorted scores of the unforced entries
    forced: dict[str, int] = field(init=False)  # entries by rule lane ("" for none)
    lanes: dict[str, int] = field(init=False)  # entries by lane (reference priors: "green")
    live: int = 0  # entries that are decisions, not reference priors
    explored: int = 0
    over_capacity_events: int = 0
    over: bool = False  # rules alone exceed the capacity right now
    thresholds: tuple[float, float] = (1.0, 1.0)
    capacities: dict[tuple[int, ...], tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries = deque((None, score, "", "green", False) for score in self.prior)
        self.pool = list(self.prior)
        self.forced = {"": len(self.prior), "red": 0, "yellow": 0}
        self.lanes = {"green": len(self.prior), "red": 0, "yellow": 0}

    @property
    def forced_red(self) -> int:
        return self.forced["red"]

    def decide(
        self,
        scores: Iterable[float],
        shipment_ids: Iterable[str],
        rule_lanes: Iterable[str],
        seconds: Iterable[float],
        draws: tuple[Callable[[str], float], Callable[[str], float]],
        count: bool = True,
    ) -> list[LaneDecision]:
        """The lanes of shipments at this port in arrival order (the i-th of each iterable),
        each decision counted in the window before the next (``count`` False: decided in the
        window as it stands, counting nowhere); ``draws``: the tie and exploration draws."""
        draw_tie, draw_explore = draws
        entries, pool, forced_n, lanes_n = self.entries, self.pool, self.forced, self.lanes
        capacities = self.capacities
        live, explored, limit, b = self.live, self.explored, self.limit, self.budget
        red_share, selected_share, hours = b.red, b.red + b.yellow, b.window_hours
        out: list[LaneDecision] = []
        for score, shipment_id, rule, when in zip(
            scores, shipment_ids, rule_lanes, seconds, strict=True
        ):
            forced_red, red, yellow, size = (
                forced_n["red"],
                lanes_n["red"],
                lanes_n["yellow"],
                len(pool),
            )
            n = len(entries) + 1  # the shipment being decided counts in the window
            counts = (n, live, forced_red, forced_n["yellow"], red, yellow)
            capacity = capacities.get(counts) or self._capacity(counts)
            red_capacity, explore, red_slots, selected = capacity
            red_at, yellow_at = _threshold(pool, red_slots), _threshold(pool, selected)
            lane, random, propensity = "red", False, 1.0  # a rule's RED
            if rule != "red":
                p_red = p_selected = 0.0
                if selected > 0 and red + yellow < ceil(selected_share * (live + 1) - 1e-9):
                    right = bisect_right(pool, score)
                    if size - right < selected:  # among the top selected slots
                        red_room = red < ceil(red_share * (live + 1) - 1e-9)
                        p_red, p_selected = _chances(
                            pool, score, right, red_slots, selected, red_room
                        )
                fractional = 0.0 < p_red < 1.0 or 0.0 < p_selected < 1.0
                u = draw_tie(shipment_id) if fractional else 0.0
                lane = "red" if u < p_red else "yellow" if u < p_selected else "green"
                lane = lane if rule == "green" else raise_lane(lane, rule)
                propensity = 1.0 if rule == "yellow" else p_selected
                if lane == "green":
                    rest = size + 1 - selected
                    p_explore = explore / (1.0 if rest < 1.0 else rest)
                    p_explore = p_explore if p_explore < 1.0 else 1.0
                    propensity = p_selected + (1.0 - p_selected) * p_explore
                    random = p_explore > 0 and draw_explore(shipment_id) < p_explore
                    lane = "red" if random else "green"
            out.append(_decision(LaneDecision, (lane, random, propensity, red_at, yellow_at)))
            if not count:
                continue
            if rule == "red":
                self._note_capacity(forced_red - red_capacity, forced_red, n)
                pooled = None  # a rule's RED is not the model's
            else:
                pooled = score
                insort(pool, score)
            forced = "" if rule == "green" else rule
            give_way = hours is not None and bool(entries) and entries[0][0] is None
            entries.append((when, pooled, forced, lane, random))
            forced_n[forced], lanes_n[lane] = forced_n[forced] + 1, lanes_n[lane] + 1
            live, explored = live + 1, explored + random
            if give_way or len(entries) > limit or hours is not None:
                gone_live, gone_explored = self._let_go(when, give_way)
                live, explored = live - gone_live, explored - gone_explored
        if count and out:
            self.live, self.explored = live, explored
            self.thresholds = (out[-1].red_threshold, out[-1].yellow_threshold)
        return out

    def _capacity(self, counts: tuple[int, int, int, int, int, int]) -> tuple[float, ...]:
        """(RED capacity, exploration slots, model RED slots, model selected slots) of the
        window for ``counts``: its entries plus the shipment being decided, live decisions,
        rule REDs and YELLOWs, and REDs and YELLOWs; remembered (a few thousand at most)."""
        n, live, forced_red, forced_yellow, red, yellow = counts
        b = self.budget
        red_capacity = b.red * n
        room = red_capacity - forced_red
        room = 0.0 if room < 0.0 else room
        explore = b.exploration * red_capacity
        explore = room if room < explore else explore
        model_red = room - explore
        yellow_room = b.yellow * n - forced_yellow
        selected = model_red + (0.0 if yellow_room < 0.0 else yellow_room)
        red_slots = model_red + (b.red * live - red)
        red_slots = 0.0 if red_slots < 0.0 else red_slots
        selected = selected + ((b.red + b.yellow) * live - (red + yellow))
        selected = red_slots if red_slots > selected else selected
        if len(self.capacities) >= 4_096:
            self.capacities.clear()
        self.capacities[counts] = capacity = (red_capacity, explore, red_slots, selected)
        return capacity

    def _let_go(self, now: float, give_way: bool) -> tuple[int, int]:
        """Let go of what the window no longer holds: entries over its limit and, with
        ``window_hours``, a reference prior when ``give_way`` (they give way to live decisions
        one for one) and decisions declared before its horizon from ``now``. Returns the live
        decisions and random picks let go."""
        entries, pool, forced_n, lanes_n = self.entries, self.pool, self.forced, self.lanes
        limit, hours = self.limit, self.budget.window_hours
        horizon = 0.0 if hours is None else now - hours * 3600.0
        live = explored = 0
        while (
            give_way
            or len(entries) > limit
            or (hours is not None and (first := entries[0][0]) is not None and first < horizon)
        ):
            give_way = False
            at, score, forced, lane, random = entries.popleft()
            if score is not None:
                del pool[bisect_left(pool, score)]
            forced_n[forced], lanes_n[lane] = forced_n[forced] - 1, lanes_n[lane] - 1
            live, explored = live + (at is not None), explored + random
        return live, explored

    @property
    def limit(self) -> int:
        """Entries kept: the count window, or a memory bound for an hours window."""
        return MAX_WINDOW if self.budget.window_hours is not None else self.budget.window

    def _note_capacity(self, excess: float, forced_red: int, n: int) -> None:
        """Count a rule RED decided over capacity (``excess`` > 0: how far rules alone exceed
        the RED capacity of the window's ``n``); log when the port goes over and comes back."""
        if excess > 0:
            self.over_capacity_events += 1
            if not self.over:
                self.over = True
                log.warning(
                    "port over RED capacity: hard rules alone exceed the budget",
                    extra={
                        "port": self.key,
                        "rule_red_share": round((forced_red + 1) / n, 4),
                        "red_budget": self.budget.red,
                        "over_by_share": round(excess / n, 4),
                        "window": n - 1,
                    },
                )
        elif self.over:
            self.over = False
            log.info("port back within RED capacity", extra={"port": self.key})


class LanePolicy:
    """Turns calibrated scores and rule lanes into lanes within each port's capacity.

    Stateful and thread-safe: one policy serves a whole server (or one bulk run), deciding in
    arrival order at each port (ports are independent: each has its own window). :meth:`rebase`
    starts every port's score window afresh from a new model's reference distribution.
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

    def __getstate__(self) -> dict[str, object]:
        """Budgets, seed, reference distributions and every port's window, without the lock
        and the draw functions (remade from the seed): a copy decides what this one would."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if k not in ("_lock", "_draws")}

    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()
        self.seed = cast(int, state["_seed"])

    def adopt(self, other: LanePolicy) -> None:
        """Take ``other``'s port windows (a copy of this policy that went on deciding
        elsewhere, :mod:`scoring.lane_process`), as if this one had made its decisions."""
        with self._lock:
            self._ports = other._ports

    @property
    def seed(self) -> int:
        """The draws' seed: exploration draws with it, a tie at a threshold with ``seed + 1``."""
        return self._seed

    @seed.setter
    def seed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._draws = (drawer(seed + 1), drawer(seed))  # (tie, exploration)

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
            (d,) = state.decide([0.0], [""], ["red"], [time.time()], self._draws, count=False)
            return d.red_threshold, d.yellow_threshold

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
            state = self._port(port)
            (decided,) = state.decide(
                [score], [shipment_id], [rule_lane], [_seconds(at)], self._draws
            )
            return decided

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
        return self.decide_at(ports, scores, shipment_ids, rule_lanes, [_seconds(a) for a in ats])

    def decide_at(
        self,
        ports: Sequence[str],
        scores: Sequence[float],
        shipment_ids: Sequence[str],
        rule_lanes: Sequence[str],
        seconds: Sequence[float],
    ) -> list[LaneDecision]:
        """:meth:`decide_many` with each declared time as seconds since the epoch (what
        ``datetime.timestamp`` gives): bulk runs read times as numbers, not datetimes.

        Each port's shipments are decided together in their order (:meth:`_Port.decide`),
        which gives what one loop over all of them would: a port's window sees only its own."""
        with self._lock:
            windows = {port: self._port(port) for port in dict.fromkeys(ports)}
            if len({id(w) for w in windows.values()}) == 1:  # one window: no grouping
                state = next(iter(windows.values()))
                return state.decide(scores, shipment_ids, rule_lanes, seconds, self._draws)
            rows_of: dict[str, list[int]] = {}
            for row, port in enumerate(ports):
                rows_of.setdefault(windows[port].key, []).append(row)
            decided = np.empty(len(ports), dtype=object)
            for key, rows in rows_of.items():
                pick = itemgetter(*rows) if len(rows) > 1 else lambda s, r=rows[0]: (s[r],)
                decided[rows] = self._ports[key].decide(
                    pick(scores), pick(shipment_ids), pick(rule_lanes), pick(seconds), self._draws
                )
            return cast(list[LaneDecision], decided.tolist())

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
            state, when = self._port(port), _seconds(at)
            ask = ([shipment_id], [rule_lane], [when], self._draws)
            (shadow,) = state.decide([shadow_score], *ask, count=False)
            (decided,) = state.decide([score], *ask)
            return decided, shadow

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
                        red=s.lanes["red"] / live,
                        yellow=s.lanes["yellow"] / live,
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
