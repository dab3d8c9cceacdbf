"""Lanes by inspection budget, with a seeded random exploration share.

Each port has a budget: the share of its shipments that should go RED (physical exam) and
YELLOW (documentary review or scan). The model bundle carries each port's reference score
distribution (quantiles of calibrated scores on its validation window), so a budget becomes a
score threshold without retraining: RED when the score is in the top ``red`` share, YELLOW in
the next ``yellow`` share. Hard rules can only raise a lane.

Exploration sends a configured share of otherwise-GREEN shipments to RED at random, so future
models see what this one would never select. The draw is a hash of the shipment id and a seed,
so replaying a shipment gives the same decision. Every decision records its propensity: the
probability that this policy selects a shipment like it (1 when the score or a rule selects
it, the exploration share otherwise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
LANE_ORDER = {"green": 0, "yellow": 1, "red": 2}


class Budget(BaseModel):
    """A port's inspection budget as shares of its shipments (a settings value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red: float = Field(0.02, ge=0, le=1, description="Share sent to physical exam (RED).")
    yellow: float = Field(0.05, ge=0, le=1, description="Share sent to documentary review.")
    explore: float = Field(
        0.01, ge=0, le=1, description="Share of otherwise-GREEN shipments sent RED at random."
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
    propensity: float


def score_quantiles(scores: np.ndarray) -> list[float]:
    """The reference distribution stored in a bundle: scores at 1001 evenly spaced levels."""
    return [float(q) for q in np.quantile(scores, QUANTILE_LEVELS)]


def uniform_draw(shipment_id: str, seed: int) -> float:
    """A number in [0, 1) fixed by the shipment id and seed: replays draw the same."""
    digest = hashlib.blake2b(f"{seed}:{shipment_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def raise_lane(lane: str, other: str) -> str:
    return other if LANE_ORDER[other] > LANE_ORDER[lane] else lane


class LanePolicy:
    """Turns calibrated scores into lanes for each port's budget."""

    def __init__(
        self,
        quantiles: Mapping[str, Sequence[float]],
        budgets: Mapping[str, Budget],
        seed: int = 0,
    ) -> None:
        if "default" not in quantiles:
            raise ValueError("reference quantiles need a 'default' distribution")
        self.quantiles = {p: np.asarray(q, dtype=np.float64) for p, q in quantiles.items()}
        self.budgets = dict(budgets)
        self.default_budget = self.budgets.get("default", Budget())
        self.seed = seed
        self._cuts: dict[str, _Cut] = {}

    def budget(self, port: str) -> Budget:
        return self.budgets.get(port, self.default_budget)

    def cut(self, port: str) -> _Cut:
        """The port's thresholds and how to split shipments tied exactly at one."""
        cut = self._cuts.get(port)
        if cut is None:
            grid = self.quantiles.get(port, self.quantiles["default"])
            levels = np.linspace(0.0, 1.0, len(grid))
            b = self.budget(port)
            red = float(np.interp(1.0 - b.red, levels, grid)) if b.red > 0 else np.inf
            yellow_level = 1.0 - b.red - b.yellow
            yellow = float(np.interp(yellow_level, levels, grid)) if b.yellow > 0 else red
            # A score equal to the top of the reference must still select; nothing above 1 can.
            red, yellow = float(min(red, 1.0)), float(min(yellow, red, 1.0))
            cut = _Cut(
                red,
                yellow,
                _tie_share(grid, red, b.red),
                _tie_share(grid, yellow, b.red + b.yellow),
            )
            self._cuts[port] = cut
        return cut

    def thresholds(self, port: str) -> tuple[float, float]:
        """(red, yellow) score thresholds at ``port``."""
        cut = self.cut(port)
        return cut.red, cut.yellow

    def decide(
        self, port: str, score: float, shipment_id: str, rule_lane: str = "green"
    ) -> LaneDecision:
        """The lane at ``port``, whether it was a random pick, and the policy's propensity.

        Small models give many equal scores; when the threshold falls on such a tie, only the
        share of tied shipments the budget still allows is selected, by a seeded draw, and
        their propensity is that share, so realised shares keep to the budget.
        """
        c = self.cut(port)
        p_red = 1.0 if score > c.red else c.tie_red if score == c.red else 0.0
        p_selected = 1.0 if score > c.yellow else c.tie_selected if score == c.yellow else 0.0
        p_selected = max(p_selected, p_red)
        fractional = 0.0 < p_red < 1.0 or 0.0 < p_selected < 1.0
        u = uniform_draw(shipment_id, self.seed + 1) if fractional else 0.0
        model_lane = "red" if u < p_red else "yellow" if u < p_selected else "green"
        lane = raise_lane(model_lane, rule_lane)
        explore = self.budget(port).explore
        if lane != "green":
            forced = LANE_ORDER[rule_lane] > LANE_ORDER[model_lane]
            return LaneDecision(lane, False, 1.0 if forced else p_selected)
        propensity = p_selected + (1.0 - p_selected) * explore
        if explore > 0 and uniform_draw(shipment_id, self.seed) < explore:
            return LaneDecision("red", True, propensity)
        return LaneDecision("green", False, propensity)


@dataclass(frozen=True, slots=True)
class _Cut:
    red: float
    yellow: float
    tie_red: float  # share of shipments scoring exactly ``red`` that go RED
    tie_selected: float  # share of shipments scoring exactly ``yellow`` that are selected


def _tie_share(grid: np.ndarray, threshold: float, budget: float) -> float:
    """Share of the reference mass at exactly ``threshold`` the budget leaves room for."""
    above = 1.0 - np.searchsorted(grid, threshold, side="right") / len(grid)
    at = (np.searchsorted(grid, threshold, side="right") - np.searchsorted(grid, threshold)) / len(
        grid
    )
    if at <= 0:
        return 1.0
    return float(np.clip((budget - above) / at, 0.0, 1.0))
