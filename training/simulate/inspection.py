"""The legacy inspection policy whose choices decide which shipments have labels.

It is deliberately the kind of rule set customs runs before a model: HS and origin rules, a
small random share, and per-port capacity. Its selection probability (propensity) is exact and
recorded, so later models can be evaluated without bias. Inspections miss some contraband.
"""

from __future__ import annotations

import numpy as np

from training.simulate.types import BoolArray, FloatArray

RANDOM_SHARE = 0.01
"""assumption: share picked at random, whatever the rules say (PRODUCT.md: a random share)."""
CAPACITY_RATE: tuple[float, ...] = (0.03, 0.02, 0.015, 0.04, 0.01)
"""assumption: baseline rule-free selection rate per flow group (sea, land south, land north,
air, postal), standing for each port's physical-examination capacity."""
ZLO_FACTOR_BEFORE, ZLO_FACTOR_AFTER = 0.8, 2.0
"""assumption: Manzanillo is stretched at first, then its enforcement rises (displacement)."""
RULE_CHEM_ASIA = 0.2
"""assumption: chapter 28/29 goods from China, India or Hong Kong."""
RULE_PRESS = 0.35
"""assumption: tablet-press headings (8479.89, 8422.30, 8207.30) from China or India."""
RULE_WATCHED_HEADING = 0.45
"""assumption: headings the legacy list knows (2933.36/.37, 2939.4x, 2914.31, 2916.34, 2926.40);
2933.39 'other' is left out because it is too broad (ref §8)."""
LEGACY_WATCHED_HS6: tuple[str, ...] = (
    "293336",
    "293337",
    "293333",
    "293941",
    "293942",
    "293944",
    "291431",
    "291634",
    "292640",
)
PRESS_HS6: tuple[str, ...] = ("847989", "842230", "820730")
ASIA: tuple[str, ...] = ("CN", "IN", "HK")

INSPECT_DELAY_HOURS: tuple[tuple[float, float], ...] = (
    (24, 96),
    (0.5, 6),
    (0.5, 6),
    (6, 48),
    (24, 240),
)
"""assumption: hours from declaration to examination, per flow group."""
REPORT_DELAY_DAYS_NEGATIVE = (0.5, 5.0)
REPORT_DELAY_DAYS_POSITIVE = (3.0, 30.0)
"""assumption: days from examination until the result is known (lab work when positive)."""


def selection_probability(
    group: np.ndarray,
    is_zlo: BoolArray,
    zlo_enforced: BoolArray,
    chem_asia: BoolArray,
    press: BoolArray,
    watched: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """Rule probability ``q`` and overall propensity ``1 - (1 - r)(1 - q)`` per shipment."""
    q = np.asarray(CAPACITY_RATE)[group]
    q = np.where(chem_asia, np.maximum(q, RULE_CHEM_ASIA), q)
    q = np.where(press, np.maximum(q, RULE_PRESS), q)
    q = np.where(watched, np.maximum(q, RULE_WATCHED_HEADING), q)
    factor = np.where(is_zlo, np.where(zlo_enforced, ZLO_FACTOR_AFTER, ZLO_FACTOR_BEFORE), 1.0)
    q = np.minimum(q * factor, 0.95)
    return q, 1.0 - (1.0 - RANDOM_SHARE) * (1.0 - q)
