"""The legacy inspection policy whose choices decide which shipments have labels.

It is deliberately the kind of rule set customs runs before a model: HS and origin rules, a
small random share, and per-port capacity. Its selection probability (propensity) is exact and
recorded, so later models can be evaluated without bias. Inspections miss some contraband.

:func:`selection_probability` is the policy; :func:`inspect` applies it to one chunk and draws
who was picked, when the examination and its report happened, and whether it found anything.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from training.simulate.illicit import Event, TimeRules
from training.simulate.skeleton import SLOTS
from training.simulate.types import BoolArray, FloatArray, IntArray

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
RULE_NEW_TRADER = 0.2
"""assumption: northbound freight whose US consignee or Mexican exporter is in its first
NEW_TRADER_MONTHS of trading. Northbound loads carry ordinary goods, so no HS rule applies to
them; a legacy policy targets the parties instead: a first-time importer or exporter is the
classic risk indicator of customs risk management, and on the export side the party customs
knows best is the exporter, by its RFC. As strong as the broadest import rule (RULE_CHEM_ASIA)."""
NEW_TRADER_MONTHS = 3
"""A party counts as a new trader in the month it starts trading and the two after."""
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
    new_trader: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """Rule probability ``q`` and overall propensity ``1 - (1 - r)(1 - q)`` per shipment."""
    q = np.asarray(CAPACITY_RATE)[group]
    q = np.where(new_trader, np.maximum(q, RULE_NEW_TRADER), q)
    q = np.where(chem_asia, np.maximum(q, RULE_CHEM_ASIA), q)
    q = np.where(press, np.maximum(q, RULE_PRESS), q)
    q = np.where(watched, np.maximum(q, RULE_WATCHED_HEADING), q)
    factor = np.where(is_zlo, np.where(zlo_enforced, ZLO_FACTOR_AFTER, ZLO_FACTOR_BEFORE), 1.0)
    q = np.minimum(q * factor, 0.95)
    return q, 1.0 - (1.0 - RANDOM_SHARE) * (1.0 - q)


def _rule_inputs(
    shipments: pl.DataFrame, goods: pl.DataFrame, slot: IntArray, lo: int
) -> tuple[BoolArray, BoolArray, BoolArray, BoolArray]:
    """What the rules look at, per row: entry at Manzanillo, a chapter 28/29 line from Asia, a
    tablet-press heading from Asia, and a heading on the legacy watch list."""
    n = len(slot)
    flags = goods.select(
        pl.col("row") - lo,
        chem=pl.col("hs_code").str.slice(0, 2).is_in(["28", "29"]),
        watched=pl.col("hs_code").str.slice(0, 6).is_in(list(LEGACY_WATCHED_HS6)),
        press=pl.col("hs_code").str.slice(0, 6).is_in(list(PRESS_HS6)),
    )
    at = flags["row"].to_numpy()

    def any_line(column: str) -> BoolArray:
        return np.bincount(at, weights=flags[column].to_numpy().astype(np.float64), minlength=n) > 0

    asia = (
        shipments.select(
            pl.col("origin_country").is_in(list(ASIA)) | pl.col("export_country").is_in(list(ASIA))
        )
        .to_series()
        .to_numpy()
    )
    is_zlo = np.array([s.port == "MXZLO" for s in SLOTS])[slot]
    return is_zlo, any_line("chem") & asia, any_line("press") & asia, any_line("watched")


def inspect(
    rng: np.random.Generator,
    shipments: pl.DataFrame,
    goods: pl.DataFrame,
    truth: pl.DataFrame,
    group: IntArray,
    slot: IntArray,
    month: IntArray,
    rules: TimeRules,
    by_row: dict[int, Event],
    lo: int,
    new_trader: BoolArray,
) -> pl.DataFrame:
    """The inspections of chunk rows ``lo`` onwards: picked at random or by the rules, examined
    after a delay, found positive with the event's detection probability, reported later.
    ``new_trader`` marks the northbound rows the new-trader rule applies to."""
    n = len(group)
    is_zlo, chem_asia, press_asia, watched = _rule_inputs(shipments, goods, slot, lo)
    q, propensity = selection_probability(
        group, is_zlo, month >= rules.enforcement_month, chem_asia, press_asia, watched, new_trader
    )
    random_pick = rng.random(n) < RANDOM_SHARE
    rule_pick = rng.random(n) < q
    inspected = random_pick | rule_pick
    detected_u = rng.random(n)
    delay_lo = np.asarray([d[0] for d in INSPECT_DELAY_HOURS])[group]
    delay_hi = np.asarray([d[1] for d in INSPECT_DELAY_HOURS])[group]
    inspect_delay = rng.uniform(delay_lo, delay_hi) * 3_600_000_000
    report_neg = rng.uniform(*REPORT_DELAY_DAYS_NEGATIVE, size=n)
    report_pos = rng.uniform(*REPORT_DELAY_DAYS_POSITIVE, size=n)

    detection = np.zeros(n)
    for row, event in by_row.items():
        detection[row - lo] = event.detection
    positive = inspected & (detected_u < detection)
    report_delay = np.where(positive, report_pos, report_neg) * 86_400_000_000

    idx = np.flatnonzero(inspected)
    declared = shipments["declared_at"].dt.epoch("us").to_numpy()[idx]
    inspected_at = declared + inspect_delay[idx].astype(np.int64)
    reported_at = inspected_at + report_delay[idx].astype(np.int64)
    return (
        pl.DataFrame(
            {
                "row": idx + lo,
                "inspected_at": inspected_at,
                "reported_at": reported_at,
                "positive": positive[idx],
                "substances": truth["substances"].gather(idx),
                "selection_probability": propensity[idx],
                "random_selection": random_pick[idx],
            }
        )
        .with_columns(
            pl.from_epoch(c, time_unit="us").dt.replace_time_zone("UTC")
            for c in ("inspected_at", "reported_at")
        )
        .with_columns(
            substances=pl.when(pl.col("positive"))
            .then(pl.col("substances"))
            .otherwise(pl.lit([], dtype=pl.List(pl.String())))
        )
    )
