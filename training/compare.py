"""``models compare``: how a challenger would have done on the live traffic the champion decided,
estimated off-policy from the ledger (issue 17).

The **judged traffic** is the ledger's shipments (one per shipment id, its latest decision)
declared after both bundles' fitted windows (their ``train`` and ``valid`` windows): traffic
neither model learnt from, so neither is judged on what it memorised. ``--from``/``--until``
narrow it further (a period starting inside a fitted window is refused, as in ``evaluate``).

Both bundles score that traffic through the bulk feature path (:func:`scoring.bulk.risk_scores`)
over the historical tables plus the ledger's (:func:`training.retrain.ledger_tables`), the same
tables ``retrain`` trains on, each shipment with only the history declared and reported before
it. Each port's capacity is its RED share in the lane budgets of the settings; a bundle selects
its highest scores up to it. The log gives what was inspected (an outcome reported as
inspected), what was found, and the propensity the deciding policy recorded (the probability
that it sent the shipment RED or YELLOW, which is when outcomes are reported): the estimators of
:mod:`training.offpolicy` turn it into what each selection would have caught. DR's prediction
is the champion's logged score, fixed before any outcome.

RED and YELLOW decisions with no outcome yet are counted (``pending``): the estimators read them
as not inspected, which hides what they held, so the gate refuses a window with many of them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.errors import FailedPrecondition
from features.tables import load_tables, table_path
from features.watchlist import Watchlist
from scoring.bulk import risk_scores
from scoring.bundle import ModelBundle
from scoring.lanes import Budget
from scoring.ledger.contents import LedgerContents, latest_decisions
from scoring.settings import CoreSettings
from training.offpolicy import compare, realised, select_at_capacity
from training.offpolicy_log import Logged
from training.offpolicy_record import Comparisons, Estimate
from training.periods import Period, unseen_in_period
from training.retrain import EXPORT_DIR, ledger_tables

INSPECTED_LANES = ("red", "yellow")
"""The lanes whose propensity the ledger records and whose outcomes are reported."""


@dataclass(frozen=True)
class JudgedTraffic:
    """The judged ledger traffic, one row per shipment: ``shipment_id``, ``port``,
    ``declared_at``, ``lane``, ``propensity``, ``explored``, ``inspected``, ``positive``,
    ``logged_score`` (the champion's live score) and each bundle's bulk score
    (``challenger_score``, ``champion_score``)."""

    frame: pl.DataFrame
    after: datetime | None  # declared after this: the later fitted window's end
    period: Period | None
    pending: int  # RED or YELLOW decisions in the window with no outcome reported

    def logged(self) -> Logged:
        f = self.frame
        return Logged(
            port=f["port"].to_numpy(),
            inspected=f["inspected"].to_numpy(),
            positive=f["positive"].to_numpy(),
            propensity=f["propensity"].to_numpy(),
            explored=f["explored"].to_numpy(),
            predicted=f["logged_score"].to_numpy(),
        )


@dataclass(frozen=True)
class Judgement:
    """What ``models compare`` measured: the traffic, both selections and the estimates."""

    traffic: JudgedTraffic
    shares: dict[str, float]
    challenger_selected: np.ndarray
    champion_selected: np.ndarray
    comparisons: Comparisons
    realised: Estimate  # what the champion's live RED decisions found

    def selections(self) -> pl.DataFrame:
        """The judged traffic with what each bundle would have opened: for analysts to audit
        (``--selections FILE``) and for tests to measure against ground truth."""
        return self.traffic.frame.with_columns(
            challenger_selected=pl.Series(self.challenger_selected),
            champion_selected=pl.Series(self.champion_selected),
        )

    def to_json(self) -> dict[str, Any]:
        t = self.traffic
        return {
            "traffic": {
                "shipments": t.frame.height,
                "declared_after": t.after.isoformat() if t.after else None,
                "period": t.period.describe() if t.period else "at any time",
                "inspected": int(t.frame["inspected"].sum()),
                "inspected_positives": int(t.frame["positive"].sum()),
                "explored": int(t.frame["explored"].sum()),
                "explored_positives": int((t.frame["explored"] & t.frame["positive"]).sum()),
                "outcomes_pending": t.pending,
            },
            "capacity_shares": self.shares,
            "comparisons": self.comparisons.to_json(),
            "champion_realised": self.realised.to_json(),
        }


def red_shares(settings: CoreSettings) -> dict[str, float]:
    """Each port's RED share of the lane budgets; ``default`` covers every other port, a
    :class:`~scoring.lanes.Budget` with its defaults when the settings name none (as
    :class:`~scoring.lanes.LanePolicy` reads them)."""
    budgets = settings.lane_budgets
    return {port: budget.red for port, budget in budgets.items()} | {
        "default": budgets.get("default", Budget()).red
    }


def fitted_until(bundle: ModelBundle) -> datetime | None:
    """The end of the last window ``bundle`` was fitted on (train, or valid when it has one)."""
    ends = [
        datetime.fromisoformat(bundle.meta.windows[w][1])
        for w in ("train", "valid")
        if w in bundle.meta.windows
    ]
    return max(ends) if ends else None


def judge(
    challenger: ModelBundle,
    champion: ModelBundle,
    *,
    data_dir: Path,
    ledger: str | Path,
    watchlist: Watchlist,
    settings: CoreSettings,
    period: Period | None = None,
    replicates: int = 1_000,
    seed: int = 0,
) -> Judgement:
    """Score the judged traffic with both bundles and estimate what each would have caught."""
    fitted = [t for t in (fitted_until(challenger), fitted_until(champion)) if t is not None]
    after = max(fitted, default=None)
    with tempfile.TemporaryDirectory(prefix="centinela-compare-") as scratch:
        tables_written = ledger_tables(data_dir, ledger, Path(scratch))
        merged = tables_written.out_dir
        log = _logged_frame(
            ledger, tables_written.contents, merged, after, period, challenger.version
        )
        tables = load_tables(merged)
        scored = {
            name: risk_scores(
                bundle, tables.shipments, tables.goods, tables.inspections, watchlist
            ).select("shipment_id", pl.col("risk_score").alias(f"{name}_score"))
            for name, bundle in (("challenger", challenger), ("champion", champion))
        }
    frame = log.join(scored["challenger"], on="shipment_id").join(
        scored["champion"], on="shipment_id"
    )
    pending = int((frame["lane"].is_in(INSPECTED_LANES) & ~frame["inspected"]).sum())
    traffic = JudgedTraffic(frame, after, period, pending)
    logged = traffic.logged()
    shares = red_shares(settings)
    ports = frame["port"].to_numpy()
    chosen = {
        name: select_at_capacity(frame[f"{name}_score"].to_numpy(), ports, shares)
        for name in ("challenger", "champion")
    }
    red = (frame["lane"] == "red").to_numpy() & logged.inspected
    return Judgement(
        traffic,
        shares,
        chosen["challenger"],
        chosen["champion"],
        compare(logged, chosen["challenger"], chosen["champion"], replicates=replicates, seed=seed),
        realised(logged, red, replicates=replicates, seed=seed),
    )


def _logged_frame(
    ledger: str | Path,
    contents: LedgerContents,
    merged: Path,
    after: datetime | None,
    period: Period | None,
    challenger: str,
) -> pl.DataFrame:
    """The ledger's latest decision per shipment id in the window, with its outcome (from the
    export's inspections: the propensity of the decision it was reported against)."""
    rows = [
        {
            "shipment_id": d["shipment"]["shipment_id"],
            "port": d["shipment"]["port_of_entry"],
            "declared_at": datetime.fromisoformat(d["shipment"]["declared_at"]),
            "lane": d["lane"],
            "decided_propensity": float(d["propensity"]),
            "logged_score": float(d["risk_score"]),
        }
        for d in latest_decisions(contents).values()
    ]
    if not rows:
        raise FailedPrecondition(f"{ledger}: the ledger holds no decisions to judge on")
    frame = pl.DataFrame(rows)
    if after is not None:
        frame = frame.filter(pl.col("declared_at") > after)
        frame = unseen_in_period(frame, period, after, challenger)
    elif period is not None:
        frame = frame.filter(period.contains())
    if frame.is_empty():
        raise FailedPrecondition(
            f"{ledger}: no decision in the ledger was declared after "
            f"{after.isoformat() if after else '-'}, the end of the windows the bundles were "
            "fitted on: judge them on newer traffic"
        )
    outcomes = pl.read_parquet(table_path(merged / EXPORT_DIR, "inspections")).select(
        "shipment_id",
        pl.lit(True).alias("inspected"),
        "positive",
        pl.col("selection_probability").alias("reported_propensity"),
        pl.col("random_selection").alias("explored"),
    )
    # An outcome on a GREEN decision (a tip-off, a spot check) was not the policy's draw: its
    # propensity says nothing of why it was opened, so the estimators leave it out.
    return (
        frame.join(outcomes, on="shipment_id", how="left")
        .with_columns(
            pl.col("inspected").fill_null(False) & pl.col("lane").is_in(INSPECTED_LANES),
            pl.col("positive").fill_null(False),
            pl.col("explored").fill_null(False),
            propensity=pl.coalesce("reported_propensity", "decided_propensity"),
        )
        .with_columns(pl.col("positive") & pl.col("inspected"))
        .drop("reported_propensity", "decided_propensity")
        .sort("declared_at", "shipment_id")
    )
