"""Bootstrap intervals: how far each figure of the evaluation could move on another sample.

Every precision and recall of the evaluation is a share of counts over fixed sets of the
window's shipments: of the selected ones, the share that are positive; of the positives, the
share selected. Its interval is the central :data:`CONFIDENCE` percentile interval of
:data:`RESAMPLES` bootstrap resamples over shipments, with a fixed seed.

The resampling is Rubin's Bayesian bootstrap, the smooth form of drawing the window's shipments
again with replacement: each shipment carries an independent Exp(1) weight per resample. A sum
of ``m`` independent Exp(1) weights is Gamma(``m``), so each resample's weighted counts are drawn
directly for the disjoint parts of a figure (selected positives, selected negatives, missed
positives): exact for that bootstrap, and as fast for a million shipments as for forty. Each
part also carries half a pseudo-shipment (the Jeffreys prior), because a plain bootstrap cannot
widen a share that is 0% or 100% in the sample: 9 found of 9 positives would get
``[100%, 100%]``. With it, one share's interval is the Jeffreys interval of a binomial
proportion, which keeps its coverage at the edges; an interval always contains its figure.

The selection is held fixed: an interval is the sampling uncertainty of what this selection
found, not of where a re-ranked budget would have cut. Draws are seeded by the counts
themselves, so the same figure always gets the same interval, and by a ``stream`` where two
figures must be independent (the two sides of a shift).
"""

from __future__ import annotations

from typing import Final

import numpy as np

RESAMPLES: Final[int] = 500
SEED: Final[int] = 15
CONFIDENCE: Final[float] = 0.95
PRIOR: Final[float] = 0.5
"""Pseudo-shipments added to every part of a figure (Jeffreys)."""

Interval = tuple[float, float]
"""A percentile interval ``(lower, upper)`` of a share."""


def draws(*counts: float, stream: int = 0) -> tuple[np.ndarray, ...]:
    """Resampled weights of disjoint counts of shipments: one Gamma(count + :data:`PRIOR`) draw
    per resample each, the Bayesian bootstrap's weight of that many shipments.

    Non-integer counts (the expectations of ``random``) are drawn the same way.
    """
    rng = np.random.default_rng([SEED, stream, *(_seed_part(c) for c in counts)])
    return tuple(rng.gamma(max(float(c), 0.0) + PRIOR, size=RESAMPLES) for c in counts)


def share_draws(part: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """``part / (part + rest)`` per resample; NaN where a resample has neither (never, with the
    prior, but a caller may pass plain counts)."""
    total = part + rest
    out = np.full(total.shape, np.nan)
    np.divide(part, total, out=out, where=total > 0)
    return out


def percentile_interval(values: np.ndarray) -> Interval | None:
    """The central :data:`CONFIDENCE` interval of ``values``, ignoring NaN; None if all are."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    tail = (1 - CONFIDENCE) / 2
    lower, upper = np.quantile(finite, [tail, 1 - tail])
    return float(lower), float(upper)


def share_interval(hits: float, misses: float, *, stream: int = 0) -> Interval | None:
    """The interval of ``hits / (hits + misses)``; None when both are zero."""
    if hits + misses <= 0:
        return None
    h, m = draws(hits, misses, stream=stream)
    return containing(percentile_interval(share_draws(h, m)), hits / (hits + misses))


def containing(interval: Interval | None, value: float | None) -> Interval | None:
    """``interval`` stretched to hold ``value``: at 0% or 100% the percentile interval of the
    smoothed draws stops just short of the figure itself."""
    if interval is None or value is None:
        return interval
    return min(interval[0], value), max(interval[1], value)


def selection_draws(
    found: float, selected: float, positives: float, *, stream: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Resampled precision and recall of a selection that found ``found`` of ``positives`` in
    ``selected`` shipments (both from the same resamples)."""
    hit, false_alarm, missed = draws(found, selected - found, positives - found, stream=stream)
    return share_draws(hit, false_alarm), share_draws(hit, missed)


def selection_intervals(
    found: float, selected: float, positives: float
) -> tuple[Interval | None, Interval | None]:
    """Intervals of a selection's precision and recall; None where the figure has no
    denominator (nothing selected, no positives)."""
    precision, recall = selection_draws(found, selected, positives)
    return (
        containing(percentile_interval(precision), found / selected) if selected > 0 else None,
        containing(percentile_interval(recall), found / positives) if positives > 0 else None,
    )


def difference_interval(before: tuple[float, float], after: tuple[float, float]) -> Interval | None:
    """The interval of ``found/positives`` before minus after: two recalls of disjoint shipments,
    drawn independently. Each side is ``(found, positives)``; None if a side has no positives."""
    if before[1] <= 0 or after[1] <= 0:
        return None
    b_hit, b_missed = draws(before[0], before[1] - before[0], stream=1)
    a_hit, a_missed = draws(after[0], after[1] - after[0], stream=2)
    difference = share_draws(b_hit, b_missed) - share_draws(a_hit, a_missed)
    return containing(percentile_interval(difference), before[0] / before[1] - after[0] / after[1])


def brier_skill_interval(predicted: np.ndarray, outcomes: np.ndarray) -> Interval | None:
    """The interval of the Brier skill ``1 - Brier / (r (1 - r))`` of ``predicted`` against 0/1
    ``outcomes`` (``r`` their positive rate): the same Bayesian bootstrap, one Exp(1) weight per
    shipment per resample, since every shipment has its own error. None without both a positive
    and a negative; resamples whose weighted base rate is 0 or 1 are left out."""
    y = np.asarray(outcomes, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    positives = float(y.sum())
    if not len(y) or positives in (0.0, float(len(y))):
        return None
    error = (p - y) ** 2
    rng = np.random.default_rng([SEED, 3, len(y), _seed_part(positives)])
    skills = np.empty(RESAMPLES)
    chunk = max(1, 2_000_000 // len(y))  # weights of at most ~16 MB at a time
    for start in range(0, RESAMPLES, chunk):
        weights = rng.exponential(size=(min(chunk, RESAMPLES - start), len(y)))
        total = weights.sum(axis=1)
        rate = weights @ y / total
        base = rate * (1 - rate)
        brier = weights @ error / total
        with np.errstate(divide="ignore", invalid="ignore"):
            skills[start : start + len(total)] = np.where(base > 0, 1 - brier / base, np.nan)
    rate = positives / len(y)
    return containing(percentile_interval(skills), 1 - float(error.mean()) / (rate * (1 - rate)))


def _seed_part(count: float) -> int:
    """A count as seed material: integers as they are, expectations by their rounded millionths."""
    return round(float(count) * 1_000_000) if count >= 0 else 0
