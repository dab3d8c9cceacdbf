"""Recency-weighted outcome sums, exact enough that the bulk and live paths agree to the bit.

An outcome reported at ``t`` weighs ``2 ** -((q - t) / H)`` at a later query time ``q`` (``H``
the half-life: :data:`features.history.RECENCY_HALF_LIFE_DAYS`, for which
:data:`features.history.RECENCY` is the one :class:`Decay`). Summing those floats in a different
order, or taking one of them out again, changes the last bits, and the live state must take a
re-scored shipment's own outcome out in O(1). So the sums are kept in integers:

* Time is cut into *epochs* of :data:`EPOCH_HALF_LIVES` half-lives, counted from the Unix epoch
  (``epoch = t // epoch_us``; times before 1970 fall in negative epochs).
* An outcome's *weight* is an integer relative to the start of its epoch:
  ``floor(2 ** (day / H + FRACTION_BITS))``, ``day`` the whole UTC days from the epoch's start to
  its report (:meth:`Decay.weights`). A weight is below 2**36, so an int64 sum of up to
  :data:`MAX_OUTCOMES` of them cannot overflow, and integer sums are exact in any order: a
  running total less another is the sum between them, and one outcome taken out is one weight
  subtracted.
* At a query on day ``d`` of epoch ``k``, the integer sums of the outcomes before it in epochs
  ``k`` and ``k - 1`` are scaled to it: ``current * 2 ** (-d / H - FRACTION_BITS) + earlier *
  2 ** (-d / H - FRACTION_BITS - EPOCH_HALF_LIVES)`` (:meth:`Decay.scales`, :func:`decayed`).
  Outcomes of older epochs are left out: they are at least :data:`EPOCH_HALF_LIVES` half-lives
  old, a weight below 2**-16 each.

Ages are thus counted in whole UTC days (an outcome reported the day of the query weighs 1, one
reported the day before about 0.4% less with a 180-day half-life), while "before the query"
stays exact to the microsecond. Weights and scales are looked up in two tables of one epoch's
days, computed once with :func:`math.exp2`, so both paths read the same numbers (no numpy
``exp2``, whose vector code may round differently from the C library's); the two products and
their sum are the same IEEE operations in numpy and in Python floats, so the same integer sums
give the same bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray

EPOCH_HALF_LIVES = 16  # an epoch's length, in half-lives: what is left out weighs < 2**-16
FRACTION_BITS = 20  # a weight's resolution: 2**-20 of the weight at its epoch's start
MAX_OUTCOMES = 2**63 // 2 ** (EPOCH_HALF_LIVES + FRACTION_BITS)  # 2**27: int64 sums stay exact
_EARLIER = 2.0**-EPOCH_HALF_LIVES  # the epoch before's scale, relative to the query's own: exact


@dataclass(frozen=True)
class Decay:
    """Exact decayed sums for one half-life (whole days) and one time unit (``day_us``
    microseconds a day, as times are counted)."""

    half_life_days: int
    day_us: int
    table: Array = field(init=False, repr=False)  # weight of each whole day into an epoch
    scale_table: Array = field(init=False, repr=False)  # a query's scale on each day of one

    def __post_init__(self) -> None:
        days = range(EPOCH_HALF_LIVES * self.half_life_days)
        h = self.half_life_days
        weights = [int(math.ldexp(math.exp2(d / h), FRACTION_BITS)) for d in days]
        scales = [math.ldexp(math.exp2(-d / h), -FRACTION_BITS) for d in days]
        object.__setattr__(self, "table", np.array(weights, dtype=np.int64))
        object.__setattr__(self, "scale_table", np.array(scales, dtype=np.float64))

    @property
    def epoch_us(self) -> int:
        """An epoch's length in microseconds."""
        return EPOCH_HALF_LIVES * self.half_life_days * self.day_us

    def weights(self, times: Array) -> Array:
        """The integer weight of an outcome reported at each of ``times`` (int64 µs), int64."""
        found: Array = self.table[(times % self.epoch_us) // self.day_us]
        return found

    def weight(self, time: int) -> int:
        """:meth:`weights` of one time, as a Python int."""
        return int(self.table.item((time % self.epoch_us) // self.day_us))

    def scales(self, query: int) -> tuple[int, float, float]:
        """For a query at ``query`` (µs): the start of its epoch, and the scales of the
        integer sums of the epoch before it and of its own (:func:`decayed`)."""
        into = query % self.epoch_us
        current = self.scale_table.item(into // self.day_us)
        return query - into, current * _EARLIER, current

    def scales_of(self, queries: Array) -> tuple[Array, Array, Array]:
        """:meth:`scales` of each query (int64 µs) as three arrays (int64, float64,
        float64)."""
        into = queries % self.epoch_us
        current = self.scale_table[into // self.day_us]
        return queries - into, current * _EARLIER, current


def decayed(earlier: Array, current: Array, earlier_scale: Array, current_scale: Array) -> Array:
    """The decayed sum at each query from the integer sums of the epoch before its own
    (``earlier``) and of its own (``current``), int64, and :meth:`Decay.scales_of`' scales."""
    summed: Array = (
        earlier.astype(np.float64) * earlier_scale + current.astype(np.float64) * current_scale
    )
    return summed


def decayed_one(earlier: int, current: int, earlier_scale: float, current_scale: float) -> float:
    """:func:`decayed` of one query in Python floats: the same operations, the same bits."""
    return float(earlier) * earlier_scale + float(current) * current_scale
