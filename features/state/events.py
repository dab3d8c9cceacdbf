"""One entity's events in sorted arrays: counts before a time in O(log n), appends in O(1).

:class:`Times` holds event times (an entity's shipments, or those of one watched route family);
:class:`Outcomes` adds each inspection's result and the running totals the outcome kernel
accumulates, so an outcome query is a binary search and a look-up. Both keep their first and
last time as Python ints, so a query after the last event (the live case) needs no search, and
both are read element by element (``ndarray.item``, ``searchsorted`` with a Python int): the
arrays are never copied or scanned to answer.
"""

from __future__ import annotations

import bisect

import numpy as np

NO_TIME = int(np.iinfo(np.int64).min)  # "no positive yet", as the outcome kernel marks it
END = int(np.iinfo(np.int64).max)  # after every time: a sorted array's unused tail holds it


def _grown(array: np.ndarray, size: int, fill: int | None = None) -> np.ndarray:
    """``array`` at twice its capacity, holding its first ``size`` elements (the rest
    ``fill`` when given)."""
    if fill is None:
        grown = np.empty(2 * len(array), dtype=array.dtype)
    else:
        grown = np.full(2 * len(array), fill, dtype=array.dtype)
    grown[:size] = array[:size]
    return grown


class Times:
    """A growable sorted int64 array of event times. Its unused tail holds :data:`END`, so a
    search over the whole array counts the events before a time without slicing it; its first
    and last times are kept as Python ints (``earliest``, ``latest``: :data:`END` and
    :data:`NO_TIME` while it is empty). An append in time order is O(1) amortised; an event out
    of order, or one taken out, moves the later ones."""

    __slots__ = ("earliest", "latest", "size", "times")

    def __init__(self) -> None:
        self.times = np.full(8, END, dtype=np.int64)
        self.size = 0
        self.earliest = END
        self.latest = NO_TIME

    def view(self) -> np.ndarray:
        return self.times[: self.size]

    def before(self, time: int) -> int:
        """How many events lie strictly before ``time``: all of them when it is after the last,
        else a binary search."""
        return self.size if time > self.latest else int(self.times.searchsorted(time))

    def recent(self, start: int, end: int) -> bool:
        """Whether an event lies in ``[start, end)``: the last one before ``end`` is at or
        after ``start``."""
        if end > self.latest:
            return self.latest >= start  # NO_TIME when empty
        before = int(self.times.searchsorted(end))
        return before > 0 and self.times.item(before - 1) >= start

    def add(self, time: int) -> None:
        at = self._open(time)  # first: it may grow the array
        self.times[at] = time

    def remove(self, time: int) -> None:
        """Take out one event at ``time``; none there: nothing."""
        at = int(self.times.searchsorted(time, side="left"))
        if at < self.size and self.times.item(at) == time:
            self._close(at)

    def _grow(self) -> None:
        self.times = _grown(self.times, self.size, END)

    def _shift(self, source: slice, target: slice) -> None:
        self.times[target] = self.times[source]

    def _open(self, time: int) -> int:
        """Make room for an event at ``time``, after any equal ones, and return where it goes."""
        size = self.size
        if size == len(self.times):
            self._grow()
        if time >= self.latest:  # in time order (or the first): it goes last
            at = size
            self.latest = time
        else:  # out of order: the later events move up
            at = int(self.times.searchsorted(time, side="right"))
            self._shift(slice(at, size), slice(at + 1, size + 1))
        if not at:
            self.earliest = time
        self.size = size + 1
        return at

    def _close(self, at: int) -> None:
        size = self.size - 1
        self._shift(slice(at + 1, size + 1), slice(at, size))
        self.times[size] = END
        self.size = size
        if not size:
            self.earliest, self.latest = END, NO_TIME
            return
        if not at:
            self.earliest = self.times.item(0)
        if at == size:
            self.latest = self.times.item(size - 1)


class Outcomes(Times):
    """One entity's outcomes: report times (sorted), results, and running totals: ``positives``
    up to and including each outcome, and ``last``, the report time of the last positive up to
    it (:data:`NO_TIME` when none), what :func:`~features.history.entity_outcomes` accumulates
    over the whole array, kept as outcomes come in."""

    __slots__ = ("flags", "last", "positives")

    def __init__(self) -> None:
        super().__init__()
        self.flags = np.empty(8, dtype=bool)
        self.positives = np.empty(8, dtype=np.int64)
        self.last = np.empty(8, dtype=np.int64)

    def add_outcome(self, time: int, positive: bool) -> None:
        at = self._open(time)
        self.times[at] = time
        self.flags[at] = positive
        if at == self.size - 1:  # in time order: the totals so far, plus this one
            self.positives[at] = self.positives_before(at) + positive
            self.last[at] = time if positive else self.last_before(at)
        else:
            self._retotal(at)

    def remove_outcome(self, time: int, positive: bool) -> None:
        """Take out one outcome at ``time`` with result ``positive``; none there: nothing."""
        lo, hi = self.run(time)
        base = self.positives_before(lo)

        def passed(j: int) -> int:
            """Outcomes with that result in ``[lo, j]``."""
            positives = self.positives.item(j) - base
            return positives if positive else j + 1 - lo - positives

        found = bisect.bisect_right(range(lo, hi), 0, key=passed)  # the first of that result
        if found < hi - lo:
            self._close(lo + found)
            if lo + found < self.size:
                self._retotal(lo + found)

    def run(self, time: int) -> tuple[int, int]:
        """Where the outcomes reported at exactly ``time`` are: ``[lo, hi)``."""
        times = self.times
        return int(times.searchsorted(time, side="left")), int(
            times.searchsorted(time, side="right")
        )

    def positives_before(self, at: int) -> int:
        return self.positives.item(at - 1) if at else 0

    def last_before(self, at: int) -> int:
        return self.last.item(at - 1) if at else NO_TIME

    def _grow(self) -> None:
        super()._grow()
        self.flags = _grown(self.flags, self.size)
        self.positives = _grown(self.positives, self.size)
        self.last = _grown(self.last, self.size)

    def _shift(self, source: slice, target: slice) -> None:
        super()._shift(source, target)
        self.flags[target] = self.flags[source]  # the totals are recomputed from there

    def _retotal(self, at: int) -> None:
        """Recompute the running totals from ``at`` on."""
        flags = self.flags[at : self.size]
        self.positives[at : self.size] = self.positives_before(at) + np.cumsum(
            flags, dtype=np.int64
        )
        last = np.where(flags, self.times[at : self.size], NO_TIME)
        last[0] = max(int(last[0]), self.last_before(at))
        np.maximum.accumulate(last, out=self.last[at : self.size])
