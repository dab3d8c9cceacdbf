"""The world's skeleton: when each shipment arrives, by which flow group and at which port.

Drawn once for the whole world (a few bytes per shipment) so the illicit planner can place its
events on real rows before the chunked generator fills in the details; port shares are then exact
draws from the reference volumes whatever the illicit events do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from training.simulate import reference
from training.simulate.catalogue import GROUP_MODE, GROUPS
from training.simulate.types import BoolArray, FloatArray, IntArray

ANNUAL_GROWTH = 0.05
"""assumption: yearly growth of trade volume (Manzanillo grew 12.6% in 2024, ref §5c)."""
SEASONALITY: tuple[float, ...] = (
    0.95,
    0.9,
    1.0,
    0.98,
    1.0,
    1.0,
    1.02,
    1.06,
    1.08,
    1.08,
    1.03,
    0.97,
)
"""assumption: monthly volume factors, January first (peak season late summer and autumn)."""


def add_months(start: date, months: int) -> date:
    total = start.year * 12 + start.month - 1 + months
    return date(total // 12, total % 12 + 1, min(start.day, 28))


def to_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


@dataclass(frozen=True)
class Slot:
    """A (flow group, port) pair: the unit port shares are defined over."""

    group: int
    port: str


def build_slots() -> list[Slot]:
    shares = reference.port_shares_within_mode()
    return [
        Slot(g, port) for g, name in enumerate(GROUPS) for port in sorted(shares[GROUP_MODE[g]])
    ]


SLOTS: list[Slot] = build_slots()
PORTS: list[str] = sorted({slot.port for slot in SLOTS})


def group_shares() -> FloatArray:
    modes = reference.mode_shares()
    north = reference.LAND_NORTHBOUND_SHARE
    return np.array(
        [
            modes["sea"],
            modes["land"] * (1 - north),
            modes["land"] * north,
            modes["air"],
            modes["postal"],
        ]
    )


@dataclass(frozen=True)
class Skeleton:
    """Per-shipment month, group, slot and transit flag, plus month boundaries (µs, UTC)."""

    month: IntArray
    group: IntArray
    slot: IntArray
    transit: BoolArray
    month_first_row: IntArray
    month_counts: IntArray
    month_start_us: IntArray
    month_starts: list[date]

    @property
    def size(self) -> int:
        return len(self.month)

    def declared_us(self, rows: IntArray, u: FloatArray) -> IntArray:
        """Stratified times: rows stay in time order, each jittered inside its own stratum."""
        month = self.month[rows]
        rank = rows - self.month_first_row[month]
        span = self.month_start_us[month + 1] - self.month_start_us[month]
        offset = (rank + u) / self.month_counts[month] * span
        return self.month_start_us[month] + offset.astype(np.int64)


def build_skeleton(rng: np.random.Generator, shipments: int, months: int, start: date) -> Skeleton:
    starts = [add_months(start, i) for i in range(months + 1)]
    days = np.array([(starts[i + 1] - starts[i]).days for i in range(months)], dtype=np.float64)
    trend = (1 + ANNUAL_GROWTH) ** (np.arange(months) / 12.0)
    season = np.array([SEASONALITY[d.month - 1] for d in starts[:months]])
    weights = days * trend * season
    counts = rng.multinomial(shipments, weights / weights.sum()).astype(np.int64)
    month = np.repeat(np.arange(months, dtype=np.int64), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    group = rng.choice(len(GROUPS), size=shipments, p=group_shares()).astype(np.int64)
    slot = np.zeros(shipments, dtype=np.int64)
    shares = reference.port_shares_within_mode()
    for g in range(len(GROUPS)):
        rows = np.flatnonzero(group == g)
        slot_ids = [i for i, s in enumerate(SLOTS) if s.group == g]
        probs = np.array([shares[GROUP_MODE[g]][SLOTS[i].port] for i in slot_ids])
        slot[rows] = np.asarray(slot_ids)[
            rng.choice(len(slot_ids), size=len(rows), p=probs / probs.sum())
        ]
    transit_p = np.array(
        [reference.SEA_TRANSIT_SHARE.get(s.port, 0.0) if s.group == 0 else 0.0 for s in SLOTS]
    )
    transit = rng.random(shipments) < transit_p[slot]
    return Skeleton(
        month=month,
        group=group,
        slot=slot,
        transit=transit,
        month_first_row=first,
        month_counts=np.maximum(counts, 1),
        month_start_us=np.array([to_us(d) for d in starts], dtype=np.int64),
        month_starts=starts,
    )
