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
  its report (:meth:`Decay.weights`, a table look-up). A weight is below 2**36, so an int64 sum
  of up to :data:`MAX_OUTCOMES` of them cannot overflow, and integer sums are exact in any order:
  a running total less another is the sum between them, and one outcome taken out is one weight
  subtracted.
* At a query in epoch ``k``, the integer sums of the outcomes before it in epochs ``k - 1`` and
  ``k`` are scaled to the query: ``earlier * 2 ** ((start(k - 1) - q) / H - FRACTION_BITS) +
  current * 2 ** ((start(k) - q) / H - FRACTION_BITS)`` (:meth:`Decay.scales`,
  :func:`decayed`), both scales in (2**-52, 2**-20]. Outcomes of older epochs are left out: they are
  at least :data:`EPOCH_HALF_LIVES` half-lives old, a weight below 2**-16 each.

The scales are computed with :func:`math.exp2` in both paths (never numpy's ``exp2``, whose
vector code may round differently from the C library's), and the two products and their sum
are the same IEEE operations in numpy and in Python floats, so the same integer sums give the
same bits. Age is resolved to a whole day in the weight (a weight changes by about 0.4% a day
with a 180-day half-life) and exactly in the scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray

EPOCH_HALF_LIVES = 16  # an epoch's length, in half-lives: what is left out weighs < 2**-16
FRACTION_BITS = 20  # a weight's resolution: 2**-20 of the weight at its epoch's start
MAX_OUTCOMES = 2**63 // 2 ** (EPOCH_HALF_LIVES + FRACTION_BITS)  # 2**27: int64 sums stay exact


@dataclass(frozen=True)
class Decay:
    """Exact decayed sums for one half-life (whole days) and one time unit (``day_us``
    microseconds a day, as times are counted)."""

    half_life_days: int
    day_us: int
    table: Array = field(init=False, repr=False)  # weight of each whole day into an epoch

    def __post_init__(self) -> None:
        days = EPOCH_HALF_LIVES * self.half_life_days
        table = [
            int(math.ldexp(math.exp2(d / self.half_life_days), FRACTION_BITS)) for d in range(days)
        ]
        object.__setattr__(self, "table", np.array(table, dtype=np.int64))

    @property
    def epoch_us(self) -> int:
        """An epoch's length in microseconds."""
        return EPOCH_HALF_LIVES * self.half_life_days * self.day_us

    @property
    def half_life_us(self) -> float:
        return float(self.half_life_days * self.day_us)

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
        start = (query // self.epoch_us) * self.epoch_us
        half_life = self.half_life_us
        current = math.ldexp(math.exp2(float(start - query) / half_life), -FRACTION_BITS)
        earlier = math.ldexp(
            math.exp2(float(start - self.epoch_us - query) / half_life), -FRACTION_BITS
        )
        return start, earlier, current

    def scales_of(self, queries: Array) -> tuple[Array, Array, Array]:
        """:meth:`scales` of each query (int64 µs) as three arrays (int64, float64,
        float64)."""
        found = [self.scales(q) for q in queries.tolist()]
        starts, earlier, current = zip(*found, strict=True) if found else ((), (), ())
        return (
            np.array(starts, dtype=np.int64),
            np.array(earlier, dtype=np.float64),
            np.array(current, dtype=np.float64),
        )


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
