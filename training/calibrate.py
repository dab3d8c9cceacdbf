"""Fitting the bundle's calibration on the validation window's inspected shipments.

Positives are rare (a few per hundred inspections, or per thousand), and a calibration must not
turn that scarcity into certainty: Platt scaling fitted on a validation window its model
separates perfectly (a model of 5 rounds, 2 positives) found a ≈ 159 and gave probabilities of
1e-50. So :func:`fit_calibration`:

1. floors every probability (:data:`~scoring.calibration.PROBABILITY_FLOOR`, or half the
   window's positive rate when that is lower);
2. with no positive (or no negative) outcome, keeps the raw probability (``identity``);
3. with fewer than :data:`MIN_ISOTONIC_POSITIVES` positives, fits Platt scaling with its slope
   held to :data:`PLATT_SLOPE` and its intercept to :data:`PLATT_INTERCEPT`;
4. otherwise fits an isotonic table (:func:`fit_isotonic`), beta calibration
   (:func:`fit_beta`) and bounded Platt scaling on :data:`FOLDS` consecutive parts of the
   window, each measured on the part it did not see, and keeps the method with the lowest
   held-out Brier score, refitted on the whole window.

The figures behind the choice go in the bundle's metrics (:attr:`Fitted.metrics`): the positives
it rested on, each method's held-out Brier score, and whether a fallback (identity, or Platt for
too few positives) was taken; the method itself is in the bundle's ``calibration``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from scipy.optimize import isotonic_regression, minimize

from scoring.calibration import (
    BETA_SLOPE_MAX,
    LOGIT_CLIP,
    PROBABILITY_FLOOR,
    TIE_BREAK,
    Calibration,
    logit,
)

MIN_ISOTONIC_POSITIVES: Final[int] = 10
"""Fewer positives than this in the validation window and an isotonic table is not tried: a
handful of positives make a table of a handful of steps, each resting on one or two shipments."""
FOLDS: Final[int] = 5
PLATT_SLOPE: Final[tuple[float, float]] = (0.05, 10.0)
PLATT_INTERCEPT: Final[float] = 20.0
PSEUDO_SHIPMENTS: Final[float] = 1.0
"""Each isotonic block's rate counts one more shipment, positive at the window's rate: a block
of one positive shipment is not a probability of 1, nor 10,000 negatives one of 0."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A calibration and the figures of how it was chosen (for the bundle's metrics)."""

    calibration: Calibration
    metrics: dict[str, float] = field(default_factory=dict)


def probability_floor(y: np.ndarray) -> float:
    """:data:`PROBABILITY_FLOOR`, or half the positive rate of ``y`` when that is lower."""
    rate = float(np.mean(y)) if len(y) else 0.0
    return min(PROBABILITY_FLOOR, rate / 2) if rate > 0 else PROBABILITY_FLOOR


def fit_calibration(raw: np.ndarray, y: np.ndarray) -> Fitted:
    """The calibration of raw probabilities ``raw`` against 0/1 outcomes ``y`` (validation
    window, in declared order); see the module text for how it is chosen."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    positives = int(y.sum())
    floor = probability_floor(y)
    metrics = {"calibration_positives": float(positives), "calibration_fallback": 0.0}
    if positives == 0 or positives == len(y):
        return Fitted(Calibration.identity(floor), {**metrics, "calibration_fallback": 1.0})
    if positives < MIN_ISOTONIC_POSITIVES:
        a, b = fit_platt(raw, y)
        return Fitted(Calibration.platt_of(a, b, floor), {**metrics, "calibration_fallback": 1.0})

    candidates: dict[str, Callable[[np.ndarray, np.ndarray], Calibration]] = {
        "isotonic": lambda r, t: fit_isotonic(r, t, floor),
        "beta": lambda r, t: Calibration.beta_of(*fit_beta(r, t), floor),
        "platt": lambda r, t: Calibration.platt_of(*fit_platt(r, t), floor),
    }
    held_out = {name: held_out_brier(fit, raw, y) for name, fit in candidates.items()}
    best = min(held_out, key=lambda name: held_out[name])  # the first of equals: isotonic
    return Fitted(
        candidates[best](raw, y),
        {
            **metrics,
            **{f"calibration_heldout_brier_{name}": value for name, value in held_out.items()},
        },
    )


def held_out_brier(
    fit: Callable[[np.ndarray, np.ndarray], Calibration], raw: np.ndarray, y: np.ndarray
) -> float:
    """Brier score of ``fit`` over :data:`FOLDS` consecutive parts of the window, each part
    scored by the calibration fitted on the others."""
    parts = np.array_split(np.arange(len(y)), FOLDS)
    squared = 0.0
    for part in parts:
        rest = np.ones(len(y), dtype=np.bool_)
        rest[part] = False
        calibrated = fit(raw[rest], y[rest]).apply(raw[part])
        squared += float(np.sum((calibrated - y[part]) ** 2))
    return squared / len(y)


def fit_isotonic(raw: np.ndarray, y: np.ndarray, floor: float) -> Calibration:
    """Isotonic regression of ``y`` on ``raw`` as a table of knots: one per block of the fit,
    at the block's mean raw score, with its rate counted with :data:`PSEUDO_SHIPMENTS`, made
    monotone again, floored and kept below 1 - :data:`~scoring.calibration.TIE_BREAK`."""
    order = np.argsort(raw, kind="stable")
    values, starts, counts = np.unique(raw[order], return_index=True, return_counts=True)
    positives = np.add.reduceat(y[order], starts)
    blocks = isotonic_regression(positives / counts, weights=counts.astype(np.float64)).blocks
    firsts = np.asarray(blocks[:-1], dtype=np.int64)
    shipments = np.add.reduceat(counts, firsts).astype(np.float64)
    centres = np.add.reduceat(values * counts, firsts) / shipments
    rate = float(np.mean(y)) if len(y) else 0.0
    smoothed = (np.add.reduceat(positives, firsts) + PSEUDO_SHIPMENTS * rate) / (
        shipments + PSEUDO_SHIPMENTS
    )
    monotone = isotonic_regression(smoothed, weights=shipments).x
    probability = np.clip(monotone, floor, 1.0 - 2 * TIE_BREAK)
    # Block centres can coincide only when two blocks hold one raw score each and round alike.
    keep = np.concatenate([[True], np.diff(centres) > 0])
    return Calibration.isotonic(centres[keep], np.maximum.accumulate(probability[keep]), floor)


def fit_platt(raw: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling (a, b) on logit(raw): Newton's method, and when that leaves the bounds
    (:data:`PLATT_SLOPE`, :data:`PLATT_INTERCEPT`; a window the model separates perfectly sends
    ``a`` toward infinity) the best fit within them. Identity without both classes."""
    if len(y) == 0 or y.min() == y.max():
        return (1.0, 0.0)
    x = logit(raw)
    # Platt's own targets (Platt 1999): (N+ + 1) / (N+ + 2) for a positive, 1 / (N- + 2) for a
    # negative, not 1 and 0. With a handful of positives the 0/1 fit is as steep as the bounds
    # allow and puts nearly every shipment on the floor; these keep it to what the window shows.
    positives = float(y.sum())
    negatives = float(len(y)) - positives
    y = np.where(y > 0, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    a, b = _newton_platt(x, y, iterations)
    low, high = PLATT_SLOPE
    if np.isfinite(a) and np.isfinite(b) and low <= a <= high and abs(b) <= PLATT_INTERCEPT:
        return (float(a), float(b))
    return _bounded_platt(x, y)


def _newton_platt(x: np.ndarray, y: np.ndarray, iterations: int) -> tuple[float, float]:
    a, b = 1.0, 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            q = platt_of_logit(x, a, b)
            w = q * (1 - q) + 1e-12
            grad = np.array([np.sum((q - y) * x), np.sum(q - y)])
            hess = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
            hess += np.eye(2) * 1e-6
            try:
                step = np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                return (float("nan"), float("nan"))
            a, b = a - step[0], b - step[1]
            if not np.isfinite(step).all() or np.abs(step).max() < 1e-9:
                break
    return (float(a), float(b))


def platt_of_logit(x: np.ndarray, a: float, b: float) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-(a * x + b)))
    return out


def fit_beta(raw: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Beta calibration (a, b, c) by maximum likelihood, with ``0.05 ≤ a`` and ``0 ≤ b`` (so it
    never reverses the ranking) and both at most :data:`~scoring.calibration.BETA_SLOPE_MAX`,
    ``|c| ≤ 50``; from the identity (a = b = 1, c = 0)."""
    p = np.clip(raw, LOGIT_CLIP, 1 - LOGIT_CLIP)
    x = np.stack([np.log(p), -np.log1p(-p), np.ones_like(p)], axis=1)
    found = _logistic(x, y, [(0.05, BETA_SLOPE_MAX), (0.0, BETA_SLOPE_MAX), (-50.0, 50.0)])
    a, b, c = (float(v) for v in found)
    return (a, b, c) if np.isfinite(found).all() else (1.0, 1.0, 0.0)


def _logistic(x: np.ndarray, y: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """Coefficients of a logistic regression of ``y`` on the columns of ``x`` within
    ``bounds``, by L-BFGS-B from the start nearest (1, 1, ..., 0)."""

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ theta
        nll = float(np.sum(np.logaddexp(0.0, z) - y * z))
        residual = 0.5 * (1.0 + np.tanh(0.5 * z)) - y  # sigmoid(z) - y, without overflow
        return nll, x.T @ residual

    start = np.array([min(max(1.0, lo), hi) for lo, hi in bounds[:-1]] + [0.0])
    found: np.ndarray = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    return found


def _bounded_platt(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Maximum likelihood (a, b) within the bounds, by L-BFGS-B from the identity."""
    design = np.stack([x, np.ones_like(x)], axis=1)
    found = _logistic(design, y, [PLATT_SLOPE, (-PLATT_INTERCEPT, PLATT_INTERCEPT)])
    a, b = (float(v) for v in found)
    return (a, b) if np.isfinite(found).all() else (1.0, 0.0)


__all__ = [
    "Fitted",
    "fit_beta",
    "fit_calibration",
    "fit_isotonic",
    "fit_platt",
    "probability_floor",
]
