"""A straightforward lane policy for tests: one decision at a time, the window as objects, each
step written out as the module docstring of :mod:`scoring.lanes` states it. The policy's
per-port routine (:meth:`scoring.lanes._Port.decide`) must give exactly its decisions."""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from features.vocab import PORTS
from scoring.lanes import MAX_WINDOW, OTHER_PORTS, Budget, drawer, raise_lane


@dataclass
class Entry:
    at: float | None  # None: a reference prior
    score: float | None  # None: a rule's RED
    forced: str  # "red", "yellow" or ""
    lane: str
    random: bool


@dataclass
class Window:
    budget: Budget
    entries: deque[Entry] = field(default_factory=deque)
    pool: list[float] = field(default_factory=list)

    def forced(self, lane: str) -> int:
        return sum(e.forced == lane for e in self.entries)

    def live(self, lane: str | None = None) -> int:
        return sum(e.at is not None and lane in (None, e.lane) for e in self.entries)

    def push(self, entry: Entry) -> None:
        self.entries.append(entry)
        if entry.score is not None:
            bisect.insort(self.pool, entry.score)

    def pop(self) -> None:
        entry = self.entries.popleft()
        if entry.score is not None:
            self.pool.remove(entry.score)


def threshold(pool: list[float], slots: float) -> float:
    if slots <= 0 or not pool:
        return 1.0
    at = len(pool) - math.ceil(slots)
    return pool[at] if at >= 0 else 0.0


class ReferencePolicy:
    def __init__(self, quantiles: dict[str, list[float]], budgets: dict[str, Budget], seed: int):
        self.quantiles, self.budgets = quantiles, budgets
        self.draw_explore, self.draw_tie = drawer(seed), drawer(seed + 1)
        self.windows: dict[str, Window] = {}

    def window(self, port: str) -> Window:
        known = port in self.budgets or port in self.quantiles or port in PORTS
        key = port if known else OTHER_PORTS
        if key not in self.windows:
            budget = self.budgets.get(key, self.budgets.get("default", Budget()))
            grid = np.asarray(self.quantiles.get(key, self.quantiles["default"]))
            size = min(budget.window, 2_000)
            levels = (np.arange(size) + 0.5) / size
            prior = np.interp(levels, np.linspace(0.0, 1.0, len(grid)), grid)
            window = Window(budget)
            for score in sorted(float(p) for p in prior):
                window.push(Entry(None, score, "", "green", False))
            self.windows[key] = window
        return self.windows[key]

    def decide(
        self, port: str, score: float, shipment_id: str, rule: str, when: float
    ) -> tuple[str, bool, float, float, float]:
        w = self.window(port)
        b, pool = w.budget, w.pool
        n, live = len(w.entries) + 1, w.live()
        red, yellow = w.live("red"), w.live("yellow")
        red_capacity = b.red * n
        room = max(red_capacity - w.forced("red"), 0.0)
        explore = min(b.exploration * red_capacity, room)
        model_red = room - explore
        model_selected = model_red + max(b.yellow * n - w.forced("yellow"), 0.0)
        red_slots = max(model_red + (b.red * live - red), 0.0)
        selected = max(model_selected + ((b.red + b.yellow) * live - (red + yellow)), red_slots)
        red_at, yellow_at = threshold(pool, red_slots), threshold(pool, selected)
        if rule == "red":
            decided = ("red", False, 1.0, red_at, yellow_at)
        else:
            p_red = p_selected = 0.0
            no_exam_left = red + yellow >= math.ceil((b.red + b.yellow) * (live + 1) - 1e-9)
            above = len(pool) - bisect.bisect_right(pool, score)
            if not no_exam_left and selected > 0 and above < selected:
                tied = pool.count(score) + 1
                p_selected = min((selected - above) / tied, 1.0)
                full = red >= math.ceil(b.red * (live + 1) - 1e-9)
                if not full and red_slots > 0 and above < red_slots:
                    p_red = min((red_slots - above) / tied, 1.0)
                    p_selected = max(p_selected, p_red)
            fractional = 0.0 < p_red < 1.0 or 0.0 < p_selected < 1.0
            u = self.draw_tie(shipment_id) if fractional else 0.0
            lane = "red" if u < p_red else "yellow" if u < p_selected else "green"
            lane = raise_lane(lane, rule)
            if lane != "green":
                decided = (lane, False, 1.0 if rule == "yellow" else p_selected, red_at, yellow_at)
            else:
                p_explore = min(explore / max(len(pool) + 1 - selected, 1.0), 1.0)
                chosen = p_explore > 0 and self.draw_explore(shipment_id) < p_explore
                propensity = p_selected + (1.0 - p_selected) * p_explore
                decided = ("red" if chosen else "green", chosen, propensity, red_at, yellow_at)
        self.count(
            w,
            Entry(
                when,
                None if rule == "red" else score,
                "" if rule == "green" else rule,
                decided[0],
                decided[1],
            ),
        )
        return decided

    @staticmethod
    def count(w: Window, entry: Entry) -> None:
        hours = w.budget.window_hours
        assert entry.at is not None  # a decision, not a prior
        if hours is not None and w.entries and w.entries[0].at is None:
            w.pop()
        w.push(entry)
        while len(w.entries) > (MAX_WINDOW if hours is not None else w.budget.window):
            w.pop()
        if hours is not None:
            horizon = entry.at - hours * 3600.0
            while w.entries and w.entries[0].at is not None and w.entries[0].at < horizon:
                w.pop()
