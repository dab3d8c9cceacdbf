"""Illicit behaviour: the patterns, their rates over time, and the event each one places.

Each event takes over one skeleton row (a network takes several), keeping its time, flow group
and port, and replaces the parties, route and goods lines with the pattern's
(:mod:`training.simulate.planner` places them, :mod:`training.simulate.contraband` writes their
goods lines). The substance mixes and the calendar of tactic shifts (:class:`TimeRules`) live
here with the patterns they drive.

Rates are events per million shipments. Small worlds get a floor of one event per pattern per
half-year, so a 5,000-shipment test world still contains every pattern in every period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from features.records import GoodsLine
from training.simulate import reference
from training.simulate.catalogue import G_AIR, G_LAND_NORTH, G_LAND_SOUTH, G_POSTAL, G_SEA


@dataclass
class Event:
    """An illicit shipment: the row it takes over, what it carries and how it is declared.

    Party fields are indices into the roster; ``None`` keeps the licit value of the row.
    ``goods`` of ``None`` keeps the row's licit goods (concealment inside ordinary freight).
    """

    row: int
    pattern: str
    substances: tuple[str, ...]
    detection: float
    origin: int | None = None
    export: int | None = None
    route: int | None = None
    consignee: int | None = None
    shipper: int | None = None
    broker: int | None = None
    truck_carrier: int | None = None
    goods: list[GoodsLine] | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    per_million: float
    groups: dict[int, float]
    detection: float
    summary: str


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "open_declared_precursor",
        350,
        {G_SEA: 0.55, G_AIR: 0.3, G_POSTAL: 0.15},
        0.95,
        "watched precursor declared by name, HS and CAS to an unlicensed or new consignee",
    ),
    Pattern(
        "misdeclared_precursor",
        600,
        {G_SEA: 0.7, G_AIR: 0.18, G_POSTAL: 0.12},
        0.7,
        "precursor declared as calcium chloride, resin, vitamin C or antacid under the cover's HS",
    ),
    Pattern(
        "designer_precursor",
        200,
        {G_SEA: 0.6, G_AIR: 0.3, G_POSTAL: 0.1},
        0.45,
        "unscheduled designer analogue or pre-precursor under HS 'other' headings",
    ),
    Pattern(
        "tablet_press",
        150,
        {G_SEA: 0.7, G_AIR: 0.2, G_LAND_SOUTH: 0.1},
        0.85,
        "tablet press or punches and dies declared as other machinery",
    ),
    Pattern(
        "split_network",
        120,
        {G_SEA: 0.6, G_AIR: 0.3, G_POSTAL: 0.1},
        0.8,
        "complementary precursors split across consignees of one network over weeks",
    ),
    Pattern(
        "northbound_concealment",
        900,
        {G_LAND_NORTH: 1.0},
        0.55,
        "finished fentanyl concealed in ordinary northbound land freight",
    ),
)
PATTERN_NAMES: tuple[str, ...] = tuple(p.name for p in PATTERNS)

SUBSTITUTION_MULTIPLIER = 3.0
"""assumption: designer precursors triple once 4-piperidone is scheduled (ref §1a, 3 Dec 2024)."""
OPEN_DECLARED_AFTER_SCHEDULING = 0.6
"""assumption: open declarations drop when the piperidones can no longer be declared openly."""
INDIA_SHARE_START, INDIA_SHARE_END = 0.1, 0.4
"""assumption: India's share of illicit precursor origins rises linearly (ref §6: 'followed by
India', 'an emerging one')."""
LZC_SHARE_BEFORE, LZC_SHARE_AFTER = 0.4, 0.7
"""assumption: share of illicit sea events entering at Lázaro Cárdenas before and after the
displacement that follows Manzanillo's enforcement rise."""
ENFORCEMENT_AT = 0.5
"""assumption: Manzanillo's inspections intensify halfway through the window."""
DISPLACEMENT_AT = 0.92
"""assumption: the traffickers' answer, re-routing sea cargo to Lázaro Cárdenas, comes late in
the window (months after the enforcement rise). At 92% of the window it falls inside the newest
15% of shipments, the window ``centinela train`` leaves unseen, for any window of 12 months or
more, so evaluation always has a shift inside what it measures."""
CONCEALMENT_PORTS: dict[str, float] = {
    "MXTIJ": 0.3,
    "MXNOG": 0.3,
    "MXMXL": 0.1,
    "MXCJS": 0.1,
    "MXNLD": 0.1,
    "MXREX": 0.04,
    "MXPIE": 0.03,
    "MX5CL": 0.03,
}
"""assumption (unsourced): fentanyl crossings concentrate at the Arizona and California ports."""


def period_of(day: date) -> str:
    """Half-year label (``2024H2``): the unit the floor and the report use."""
    return f"{day.year}H{1 if day.month <= 6 else 2}"


def period_expr(when: pl.Expr) -> pl.Expr:
    """:func:`period_of` as a polars expression over a date or datetime column."""
    return pl.concat_str(
        when.dt.year().cast(pl.String),
        pl.lit("H"),
        pl.when(when.dt.month() <= 6).then(pl.lit("1")).otherwise(pl.lit("2")),
    )


@dataclass(frozen=True)
class TimeRules:
    """Everything in the window that depends on calendar time."""

    month_starts: list[date]
    enforcement_month: int
    displacement_month: int

    @property
    def months(self) -> int:
        return len(self.month_starts) - 1

    def scheduled(self, month: int) -> bool:
        return self.month_starts[month] >= reference.SCHEDULING_4_PIPERIDONE

    def multiplier(self, pattern: str, month: int) -> float:
        if pattern == "designer_precursor" and self.scheduled(month):
            return SUBSTITUTION_MULTIPLIER
        if pattern == "open_declared_precursor" and self.scheduled(month):
            return OPEN_DECLARED_AFTER_SCHEDULING
        return 1.0

    def india_share(self, month: int) -> float:
        t = month / max(1, self.months - 1)
        return INDIA_SHARE_START + (INDIA_SHARE_END - INDIA_SHARE_START) * t

    def lzc_share(self, month: int) -> float:
        return LZC_SHARE_AFTER if month >= self.displacement_month else LZC_SHARE_BEFORE

    @staticmethod
    def for_window(month_starts: list[date]) -> TimeRules:
        """The calendar of a window whose months start on ``month_starts`` (one more than the
        months): enforcement at :data:`ENFORCEMENT_AT`, displacement at :data:`DISPLACEMENT_AT`
        of the window (in whole months, displacement after enforcement when the window allows)."""
        months = len(month_starts) - 1
        enforcement = int(months * ENFORCEMENT_AT)
        displacement = min(max(round(months * DISPLACEMENT_AT), enforcement + 1), months - 1)
        return TimeRules(month_starts, enforcement, max(displacement, enforcement))


OPEN_SUBSTANCES_BEFORE: dict[str, float] = {
    "4-piperidone": 0.3,
    "boc-4-piperidone": 0.25,
    "piperidine": 0.1,
    "propionyl-chloride": 0.1,
    "phenethyl-bromide": 0.1,
    "methylamine": 0.1,
    "aniline": 0.05,
}
OPEN_SUBSTANCES_AFTER: dict[str, float] = {
    "piperidine": 0.2,
    "propionyl-chloride": 0.25,
    "phenethyl-bromide": 0.25,
    "methylamine": 0.15,
    "aniline": 0.15,
}
MISDECLARED_SUBSTANCES: dict[str, float] = {
    "npp": 0.14,
    "4-ap": 0.14,
    "boc-4-ap": 0.08,
    "anpp": 0.06,
    "norfentanyl": 0.04,
    "4-piperidone": 0.07,
    "boc-4-piperidone": 0.07,
    "p2p": 0.1,
    "paa": 0.12,
    "apaan": 0.08,
    "methylamine": 0.1,
}
DESIGNER_BEFORE: dict[str, float] = {
    "1-benzyl-4-piperidone": 0.35,
    "benzylfentanyl": 0.1,
    "depapd": 0.3,
    "bmk-glycidic-acid": 0.25,
}
DESIGNER_AFTER: dict[str, float] = {
    "1-benzyl-4-piperidone": 0.55,
    "benzylfentanyl": 0.15,
    "depapd": 0.3,
}
NETWORK_RECIPES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("npp",), ("aniline",), ("propionyl-chloride",)),
    (("4-ap",), ("phenethyl-bromide",), ("propionic-anhydride",)),
    (("4-piperidone",), ("phenethyl-bromide", "aniline"), ("propionyl-chloride",)),
    (("npp",), ("aniline", "propionic-anhydride")),
)
"""Complementary sets for the Siegfried, 4-AP and Gupta routes (ref §1–§2: NPP/4-AP/4-piperidone
with aniline, phenethyl bromide and propionyl chloride or anhydride)."""
