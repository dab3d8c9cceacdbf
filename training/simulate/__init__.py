"""The simulated world: inbound cargo at Mexican ports, its inspections and its ground truth.

``simulate_world`` writes the four canonical tables of :mod:`features.tables` plus a manifest;
``training.simulate.report.calibration_report`` checks them against the reference figures.
Assumptions and sources: ``docs/simulated-world.md``.
"""

from __future__ import annotations

from training.simulate.illicit import PATTERN_NAMES, PATTERNS, period_of
from training.simulate.reference import WATCHLIST_IDS
from training.simulate.world import SIMULATOR_VERSION, SimulationSummary, simulate_world

__all__ = [
    "PATTERNS",
    "PATTERN_NAMES",
    "SIMULATOR_VERSION",
    "WATCHLIST_IDS",
    "SimulationSummary",
    "period_of",
    "simulate_world",
]
