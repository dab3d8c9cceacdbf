"""Periods of declared time named by calendar dates, as analysts give them on the command line.

``train --train-until DATE --valid-until DATE`` and ``evaluate --from DATE --until DATE`` take
whole days in UTC (the time zone every canonical table is stored in): ``--from 2021-01-01``
starts at midnight that day and ``--until 2021-03-31`` takes everything declared on that day
too. A :class:`Period` holds them as a half-open interval ``[start, end)`` of instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from features.errors import ConfigError, DataError


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(), tzinfo=UTC)


def day_end(day: date) -> datetime:
    """Midnight UTC after ``day``: the exclusive end of a period that takes ``day`` whole."""
    return day_start(day) + timedelta(days=1)


def as_date(value: date | datetime | None) -> date | None:
    """The calendar day of an option value (typer gives a ``datetime`` at midnight)."""
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class Period:
    """Shipments declared on or after the day ``first`` and on or before the day ``last``; an
    open side (``None``) takes everything on that side."""

    first: date | None = None
    last: date | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None and self.last < self.first:
            raise ConfigError(
                f"--until {self.last.isoformat()} is before --from {self.first.isoformat()}"
            )

    @property
    def start(self) -> datetime | None:
        return None if self.first is None else day_start(self.first)

    @property
    def end(self) -> datetime | None:
        return None if self.last is None else day_end(self.last)

    def contains(self, column: str = "declared_at") -> pl.Expr:
        """A polars predicate: ``column`` lies in the period."""
        predicate = pl.lit(True)
        if self.start is not None:
            predicate = predicate & (pl.col(column) >= self.start)
        if self.end is not None:
            predicate = predicate & (pl.col(column) < self.end)
        return predicate

    def describe(self) -> str:
        """``from 2021-01-01 until 2021-03-31`` (either side left out when open)."""
        parts = []
        if self.first is not None:
            parts.append(f"from {self.first.isoformat()}")
        if self.last is not None:
            parts.append(f"until {self.last.isoformat()}")
        return " ".join(parts) or "at any time"


def unseen_in_period(
    scores: pl.DataFrame, period: Period | None, after: datetime, model: str
) -> pl.DataFrame:
    """The rows of ``scores`` (already only those declared after ``after``, the end of model
    ``model``'s validation window) that lie in ``period``.

    A period starting inside the windows the model was fitted on is refused, not clipped: its
    figures would flatter the model. An empty period is refused naming its dates.
    """
    if period is None:
        return scores
    if period.start is not None and period.start <= after:
        raise DataError(
            f"--from {period.first} starts inside model {model}'s validation window, which ends "
            f"{after.isoformat()}: the model has seen those shipments; evaluate from "
            f"{(after.date() + timedelta(days=1)).isoformat()} on"
        )
    kept = scores.filter(period.contains())
    if kept.height == 0:
        seen = scores["declared_at"]
        ran = f"{_day(seen.min())} to {_day(seen.max())}" if seen.len() else "nothing"
        raise DataError(
            f"no shipments declared {period.describe()} (the unseen data runs {ran}): the "
            "evaluation window is empty"
        )
    return kept


def _day(value: object) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)
