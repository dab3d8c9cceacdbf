"""Calibration: how a bundle turns the booster's raw probability into a calibrated one.

:meth:`Calibration.apply` is the one function the live server and bulk scoring share, so both
give the same doubles, bit for bit. Each method is stored in ``bundle.json``'s ``calibration``
object (:meth:`Calibration.to_json`) and fitted on the validation window by
:mod:`training.calibrate`:

* ``isotonic``: a table of knots, raw score → probability, raw scores increasing and
  probabilities never decreasing. A raw score between two knots is interpolated linearly
  (``numpy.interp``); one outside them takes the end knot's probability. The knots are the
  centres of the blocks isotonic regression pools shipments into, so neighbouring raw scores
  keep their order instead of tying on one step; beyond the end knots (and along a flat part of
  the table) ``tie_break × raw`` orders them, at most ``tie_break`` (1e-6) added, far below the
  floor. Two different raw scores therefore never tie, and lane thresholds on calibrated scores
  select what thresholds on raw scores would.
* ``beta``: beta calibration, ``sigmoid(a · ln(raw) - b · ln(1 - raw) + c)`` with ``a > 0`` and
  ``b ≥ 0`` (so it never reverses the order), squeezed into ``[floor, 1 - floor]`` (below):
  Platt scaling
  is its special case ``a = b``, and the two separate slopes fit the skewed scores of rare
  positives better.
* ``platt``: ``sigmoid(a · logit(raw) + b)``, squeezed into ``[floor, 1 - floor]``. Bundles written
  before the method was recorded hold only ``a`` and ``b`` (no floor) and score exactly as they
  always did.
* ``identity``: the raw probability itself, squeezed into ``[floor, 1 - floor]``: what is left
  when the validation window holds no positive (or no negative) outcome to fit on.

The squeeze is linear, ``floor + (1 - 2 floor) · q``, plus ``tie_break × raw``: a clip would tie
every shipment a steep fit puts below the floor, and the lane policy and the drift bins need
their order.

No probability of a bundle with a floor is below it: a score such as ``7.6e-50`` claims a
certainty that a few thousand inspections cannot give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from features.errors import ModelError

Method = Literal["isotonic", "beta", "platt", "identity"]
METHODS: Final[tuple[Method, ...]] = ("isotonic", "beta", "platt", "identity")

PROBABILITY_FLOOR: Final[float] = 1e-4
"""The lowest probability a new bundle gives (lower still when the validation window's positive
rate is below twice this: half that rate). One in ten thousand: what a validation window of a
few thousand inspections can tell apart from zero, and well below any base rate of interest."""

TIE_BREAK: Final[float] = 1e-6
"""``tie_break × raw`` is added to an isotonic table's probability (stored with its table), and
this much times raw to a floored beta, Platt or identity probability (see the module text)."""

LOGIT_CLIP: Final[float] = 1e-9
BETA_SLOPE_MAX: Final[float] = 10.0


def logit(raw: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities kept inside [1e-9, 1 - 1e-9]: what Platt scaling is
    fitted (training) and applied (here) on."""
    p = np.clip(raw, LOGIT_CLIP, 1 - LOGIT_CLIP)
    out: np.ndarray = np.log(p / (1 - p))
    return out


def platt(raw: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """Platt scaling: sigmoid(a * logit(raw) + b). An overflow of the exponential is a
    probability of 0, as it always was; it is not reported as a warning."""
    a, b = calibration
    with np.errstate(over="ignore"):
        calibrated: np.ndarray = 1.0 / (1.0 + np.exp(-(a * logit(raw) + b)))
    return calibrated


@dataclass(frozen=True)
class Calibration:
    """One calibration (see the module text); build it with :meth:`isotonic`, :meth:`platt_of`
    or :meth:`identity`, or read it with :meth:`from_json`."""

    method: Method = "platt"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0  # beta only
    knots_raw: tuple[float, ...] = ()
    knots_probability: tuple[float, ...] = ()
    floor: float = 0.0
    tie_break: float = 0.0

    @classmethod
    def isotonic(
        cls, raw: np.ndarray, probability: np.ndarray, floor: float, tie_break: float = TIE_BREAK
    ) -> Calibration:
        made = cls(
            method="isotonic",
            knots_raw=tuple(float(x) for x in raw),
            knots_probability=tuple(float(p) for p in probability),
            floor=float(floor),
            tie_break=float(tie_break),
        )
        made._check()
        return made

    @classmethod
    def beta_of(cls, a: float, b: float, c: float, floor: float) -> Calibration:
        made = cls(method="beta", a=float(a), b=float(b), c=float(c), floor=float(floor))
        made._check()
        return made

    @classmethod
    def platt_of(cls, a: float, b: float, floor: float) -> Calibration:
        return cls(method="platt", a=float(a), b=float(b), floor=float(floor))

    @classmethod
    def identity(cls, floor: float) -> Calibration:
        return cls(method="identity", floor=float(floor))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the booster's raw probabilities ``raw``."""
        raw = np.asarray(raw, dtype=np.float64)
        out: np.ndarray
        if self.method == "isotonic":
            xs = np.asarray(self.knots_raw, dtype=np.float64)
            ps = np.asarray(self.knots_probability, dtype=np.float64)
            out = np.interp(raw, xs, ps) + self.tie_break * raw
            return out
        if self.method == "identity":
            return self._floored(raw, raw)
        if self.method == "beta":
            p = np.clip(raw, LOGIT_CLIP, 1 - LOGIT_CLIP)
            z = self.a * np.log(p) - self.b * np.log1p(-p) + self.c
            return self._floored(1.0 / (1.0 + np.exp(-z)), raw)
        out = platt(raw, (self.a, self.b))
        return self._floored(out, raw) if self.floor else out

    def _floored(self, q: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """``q`` squeezed linearly into ``[floor, 1 - floor]``, plus ``tie_break × raw``:
        never below the floor, and still in the order of the raw scores. Clipping at the floor
        would tie every shipment below it (most of them, under a steep fit): lane thresholds
        would then split one huge tie at random and drift bins could not see the score move."""
        room = 1.0 - 2.0 * self.floor - TIE_BREAK  # so that raw = 1 gives at most 1 - floor
        out: np.ndarray = self.floor + room * q + TIE_BREAK * raw
        return out

    def describe(self) -> str:
        """One line for people: the method and its size or parameters, and the floor."""
        if self.method == "isotonic":
            what = f"isotonic, {len(self.knots_raw)} knots"
        elif self.method == "beta":
            what = f"beta, a={self.a:.4g} b={self.b:.4g} c={self.c:.4g}"
        elif self.method == "platt":
            what = f"Platt, a={self.a:.4g} b={self.b:.4g}"
        else:
            what = "identity"
        return f"{what}, floor {self.floor:.3g}" if self.floor else what

    def to_json(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {
                "method": "isotonic",
                "raw": list(self.knots_raw),
                "probability": list(self.knots_probability),
                "floor": self.floor,
                "tie_break": self.tie_break,
            }
        if self.method == "identity":
            return {"method": "identity", "floor": self.floor}
        if self.method == "beta":
            return {"method": "beta", "a": self.a, "b": self.b, "c": self.c, "floor": self.floor}
        return {"method": "platt", "a": self.a, "b": self.b, "floor": self.floor}

    @classmethod
    def from_json(cls, doc: Any) -> Calibration:
        """Read a ``calibration`` object; one without ``method`` is Platt with no floor (the
        bundles written before the method was recorded). Raises :class:`ModelError`."""
        if not isinstance(doc, dict):
            raise ModelError("the calibration is not a JSON object")
        method = doc.get("method", "platt")
        if method not in METHODS:
            raise ModelError(f"unknown calibration method {method!r}")
        floor = float(doc.get("floor", 0.0))
        if method == "platt":
            return cls(
                method="platt", a=float(doc.get("a", 1.0)), b=float(doc.get("b", 0.0)), floor=floor
            )
        if method == "identity":
            made = cls(method="identity", floor=floor)
        elif method == "beta":
            made = cls(
                method="beta",
                a=float(doc["a"]),
                b=float(doc["b"]),
                c=float(doc["c"]),
                floor=floor,
            )
        else:
            made = cls(
                method="isotonic",
                knots_raw=tuple(float(x) for x in doc["raw"]),
                knots_probability=tuple(float(p) for p in doc["probability"]),
                floor=floor,
                tie_break=float(doc.get("tie_break", 0.0)),
            )
        made._check()
        return made

    def _check(self) -> None:
        """Refuse a table that would not give probabilities in order (hand-edited, damaged)."""
        if not (0.0 <= self.floor < 0.5):
            raise ModelError(f"calibration floor {self.floor!r} is not in [0, 0.5)")
        if self.method == "beta" and not (
            0 < self.a <= BETA_SLOPE_MAX and 0 <= self.b <= BETA_SLOPE_MAX and abs(self.c) < 1e3
        ):
            raise ModelError(
                f"beta calibration a={self.a!r} b={self.b!r} c={self.c!r} is out of bounds "
                f"(0 < a ≤ {BETA_SLOPE_MAX:g}, 0 ≤ b ≤ {BETA_SLOPE_MAX:g}, |c| < 1000)"
            )
        if self.method != "isotonic":
            return
        xs, ps = np.array(self.knots_raw), np.array(self.knots_probability)
        problem = None
        if not len(xs) or len(xs) != len(ps):
            problem = f"{len(xs)} raw scores and {len(ps)} probabilities"
        elif not (np.isfinite(xs).all() and np.isfinite(ps).all()):
            problem = "values that are not finite numbers"
        elif (np.diff(xs) <= 0).any() or (np.diff(ps) < 0).any():
            problem = "knots out of order (raw scores must increase, probabilities never fall)"
        elif ps[0] < self.floor or ps[-1] + self.tie_break > 1.0:
            problem = f"probabilities outside [{self.floor:g}, 1]"
        elif not (0.0 <= self.tie_break <= 1e-3) or math.isnan(self.tie_break):
            problem = f"a tie-break of {self.tie_break!r}"
        if problem:
            raise ModelError(f"the isotonic calibration table has {problem}")
