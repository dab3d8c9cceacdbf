"""``centinela evaluate``: how much of what is hidden a model finds at a port's inspection budget.

A port can open a small share of what arrives, so the figure that matters is precision and
recall among the few shipments a selector would open: 0.5, 1, 2, 5 and 10% of the shipments of
the window, overall and per port (a port's budget is that share of *its* shipments). The model
is compared with three baselines an inspection service could run without it: ``random``
(exact expectations, not one draw), a legacy ``rules`` score and the ``watchlist`` matcher alone
(:mod:`training.evaluation_baselines`). Every selector breaks ties by a hash of
``shipment_id``, so rankings and all figures are deterministic.

Labels come from two sources. ``observed`` is what an inspection service knows: a positive
inspection outcome; shipments never inspected count as negative, which understates precision
for any selector that picks shipments the legacy policy never opened, so precision among the
inspected ones is reported beside it. ``truth`` (``illicit`` in ``truth.parquet``) exists only
for simulated worlds and is used only when that table is present.

Only shipments declared after the end of the model's validation window are evaluated: early
stopping saw the validation window, so anything earlier flatters the model.

Beside the rankings, the whole decision policy runs as the server would and is measured at
each port's capacity (:mod:`training.evaluation_policy`).

:func:`evaluate` runs the steps and returns an :class:`~training.evaluation_record.Evaluation`;
it writes nothing. :func:`training.evaluation_report.write_report` turns one into a report. The
pieces live by concern: the record and its JSON (:mod:`training.evaluation_record`), the figures
(:mod:`training.evaluation_metrics`), the baselines, the policy, and the window and its shift
(:mod:`training.evaluation_window`); their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from features.errors import DataError
from features.tables import Folded, Tables, load_tables, scan_table, table_path
from features.watchlist import Watchlist, load_watchlist
from scoring.bulk import risk_scores
from scoring.bundle import ModelBundle
from scoring.rules import RuleSet, load_rules
from scoring.scorer import Scorer
from scoring.settings import CoreSettings, load_settings
from training.evaluation_baselines import (
    EVIDENCE_COLUMNS,
    RULE_CHAPTERS,
    RULE_ORIGINS,
    WATCHLIST_EVIDENCE,
    rule_scores,
    tiebreak_keys,
    watchlist_evidence,
)
from training.evaluation_metrics import (
    CALIBRATION_BINS,
    average_precision,
    budget_metrics,
    budget_size,
    calibration,
    expected_random_average_precision,
    pattern_recall,
    positive_counts,
    pr_auc,
    precision_recall_curve,
    ranking,
)
from training.evaluation_policy import policy_decisions, policy_metrics, port_budget, red_source
from training.evaluation_record import (
    BASELINES,
    BUDGET_KEYS,
    BUDGETS,
    FRAME_COLUMNS,
    LABEL_SOURCES,
    LANES,
    MIN_POSITIVES,
    POLICY_OVERALL,
    RED_SOURCES,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    Calibration,
    CalibrationBin,
    Evaluation,
    LabelSource,
    PolicyEvaluation,
    PolicyMetrics,
    PrAucTable,
    Segment,
    Selector,
    Shift,
    iso,
)
from training.evaluation_window import SHIFT_KEY, shift_date, validation_end, window_shift
from training.periods import Period, unseen_in_period

__all__ = [
    "BASELINES",
    "BUDGETS",
    "BUDGET_KEYS",
    "CALIBRATION_BINS",
    "FRAME_COLUMNS",
    "LABEL_SOURCES",
    "LANES",
    "MIN_POSITIVES",
    "POLICY_OVERALL",
    "RED_SOURCES",
    "RULE_CHAPTERS",
    "RULE_ORIGINS",
    "SELECTORS",
    "SHIFT_KEY",
    "WATCHLIST_EVIDENCE",
    "BudgetMetrics",
    "BudgetTable",
    "Calibration",
    "CalibrationBin",
    "Evaluation",
    "LabelSource",
    "PolicyEvaluation",
    "PolicyMetrics",
    "PrAucTable",
    "Segment",
    "Selector",
    "Shift",
    "average_precision",
    "budget_metrics",
    "budget_size",
    "calibration",
    "evaluate",
    "expected_random_average_precision",
    "pattern_recall",
    "policy_decisions",
    "policy_metrics",
    "port_budget",
    "pr_auc",
    "precision_recall_curve",
    "ranking",
    "red_source",
    "rule_scores",
    "shift_date",
    "tiebreak_keys",
    "watchlist_evidence",
    "window_shift",
]

T = TypeVar("T")


def evaluate(
    data_dir: Path,
    bundle: ModelBundle,
    *,
    watchlist: Watchlist | None = None,
    settings: CoreSettings | None = None,
    rules: RuleSet | None = None,
    on_stage: Callable[[str], None] | None = None,
    period: Period | None = None,
) -> Evaluation:
    """Evaluate ``bundle`` on the shipments of ``data_dir`` it never saw.

    ``watchlist`` feeds the model's watchlist features and the ``watchlist`` baseline (default:
    the packaged one). Every shipment is scored, so history features see the whole past, and
    only the unseen window is kept.
    ``settings`` give the decision policy its lane budgets and exploration seed (default:
    :func:`~scoring.settings.load_settings` without a file); ``rules`` are its hard rules
    (default: ``settings.rules_file``, checked against ``watchlist``).
    ``on_stage(message)`` is told what is being done, for a status line.
    ``period`` (``--from``/``--until``) narrows the unseen window to those days
    (:func:`training.periods.unseen_in_period`).
    """
    stage = on_stage or (lambda _message: None)
    data_dir = Path(data_dir)
    after = validation_end(bundle)

    stage("scoring shipments")
    wl = watchlist or load_watchlist(None)
    # One shipment per shipment id, as train reads them: a repeated id is neither scored,
    # labelled nor counted in its parties' history twice.
    tables = load_tables(data_dir)
    scores = unseen_in_period(
        _unseen_scores(data_dir, bundle, tables, wl, after), period, after, bundle.version
    )

    stage("deciding lanes with the full policy")
    settings = settings if settings is not None else load_settings(None)
    rule_set = rules if rules is not None else load_rules(settings.rules_file, wl)
    scorer = Scorer.create(bundle, wl, rule_set, settings)
    decisions = policy_decisions(
        scorer, rule_set, tables.shipments, tables.goods, tables.inspections
    )

    stage("applying baselines")
    frame = _evaluation_frame(data_dir, scores, tables, wl, decisions)
    label_sources: tuple[LabelSource, ...] = (
        ("observed", "truth") if "truth" in frame.columns else ("observed",)
    )

    stage("computing metrics")
    shift = window_shift(data_dir, frame, label_sources)
    ports = sorted(frame["port_of_entry"].unique().to_list())
    return Evaluation(
        model=_model_record(bundle, wl),
        window=_window_record(frame, after, label_sources, ports, tables.folded),
        label_sources=label_sources,
        budgets=budget_metrics(frame, label_sources),
        per_port=_by_port(frame, ports, lambda part: budget_metrics(part, label_sources)),
        policy=PolicyEvaluation(
            rules_version=rule_set.version,
            watchlist_version=str(wl.version),
            exploration_seed=settings.exploration_seed,
            overall=policy_metrics(frame, label_sources, settings.lane_budgets),
            per_port=_by_port(
                frame,
                ports,
                lambda part: policy_metrics(part, label_sources, settings.lane_budgets),
            ),
        ),
        pr_auc=pr_auc(frame, label_sources),
        calibration=calibration(frame),
        shift=shift,
        patterns=pattern_recall(frame),
        frame=frame,
    )


# --------------------------------------------------------------------------- steps


def _unseen_scores(
    data_dir: Path, bundle: ModelBundle, tables: Tables, watchlist: Watchlist, after: datetime
) -> pl.DataFrame:
    """The model's scores of every shipment declared after ``after``, each scored with the whole
    past of the tables as history."""
    shipments = tables.shipments
    scores = risk_scores(bundle, shipments, tables.goods, tables.inspections, watchlist).filter(
        pl.col("declared_at") > after
    )
    if scores.height == 0:
        last = shipments["declared_at"].max()
        raise DataError(
            f"{data_dir}: no shipments declared after {after.isoformat()}, the end of model "
            f"{bundle.version}'s validation window (the data ends {iso(last)}); evaluate on data "
            "newer than the model's training window"
        )
    return scores


def _evaluation_frame(
    data_dir: Path,
    scores: pl.DataFrame,
    tables: Tables,
    watchlist: Watchlist,
    decisions: pl.DataFrame,
) -> pl.DataFrame:
    """:data:`FRAME_COLUMNS` of the scored window: the model's score beside the baselines', the
    tie-break, the observed labels, the policy's decisions, and ``truth`` where the data has it.
    """
    ids = scores.select("shipment_id")
    window_ships = tables.shipments.join(ids, on="shipment_id", how="semi")
    window_goods = tables.goods.join(ids, on="shipment_id", how="semi")
    frame = (
        scores.select("shipment_id", "declared_at", "port_of_entry", "risk_score")
        .join(rule_scores(window_ships, window_goods), on="shipment_id", how="left")
        .join(watchlist_evidence(watchlist.match_goods(window_goods)), on="shipment_id", how="left")
        .with_columns(
            pl.col("rule_score").fill_null(0), *(pl.col(c).fill_null(0) for c in EVIDENCE_COLUMNS)
        )
    )
    frame = frame.with_columns(tiebreak=tiebreak_keys(frame["shipment_id"]))
    frame = frame.join(
        _observed_labels(tables.inspections), on="shipment_id", how="left"
    ).with_columns(pl.col("inspected").fill_null(False), pl.col("observed").fill_null(False))
    frame = frame.join(decisions, on="shipment_id", how="left")
    undecided = frame["lane"].null_count()
    if undecided:
        raise DataError(f"{data_dir}: the policy decided no lane for {undecided} shipments")
    if table_path(data_dir, "truth").exists():
        frame = join_truth(frame, data_dir)
    extra = [c for c in ("truth", "pattern") if c in frame.columns]
    return frame.sort("declared_at", "shipment_id").select(*FRAME_COLUMNS, *extra)


def _observed_labels(inspections: pl.DataFrame) -> pl.DataFrame:
    """``inspected`` and ``observed`` (positive) per shipment id, from the folded inspections."""
    return inspections.select(
        "shipment_id",
        pl.lit(True).alias("inspected"),
        pl.col("positive").fill_null(False).alias("observed"),
    )


def join_truth(frame: pl.DataFrame, data_dir: Path) -> pl.DataFrame:
    """``frame`` with the ground truth of ``truth.parquet``, which must cover every shipment, and
    each true positive's illicit ``pattern`` when the table names patterns."""
    scan = scan_table(data_dir, "truth")
    named = "pattern" in scan.collect_schema().names()
    truth = (
        scan.group_by("shipment_id")
        .agg(
            pl.col("illicit").fill_null(False).any().alias("truth"),
            *([pl.col("pattern").drop_nulls().sort().first()] if named else []),
        )
        .collect()
    )
    joined = frame.join(truth, on="shipment_id", how="left")
    missing = joined["truth"].null_count()
    if missing:
        raise DataError(
            f"{table_path(data_dir, 'truth')}: no ground truth for {missing} of the "
            f"{frame.height} evaluated shipments"
        )
    if named:
        joined = joined.with_columns(
            pattern=pl.when(pl.col("truth")).then(pl.col("pattern")).otherwise(None)
        )
    return joined


def _by_port(
    frame: pl.DataFrame, ports: list[str], measure: Callable[[pl.DataFrame], T]
) -> dict[str, T]:
    """``measure`` of each port's shipments, by port."""
    return {p: measure(frame.filter(pl.col("port_of_entry") == p)) for p in ports}


def _model_record(bundle: ModelBundle, watchlist: Watchlist) -> dict[str, Any]:
    """The ``model`` key of the evaluation: which bundle, trained when, on which windows."""
    return {
        "version": bundle.version,
        "trainedAt": bundle.meta.trained_at.isoformat(),
        "watchlistVersion": bundle.meta.watchlist_version,
        "evaluatedWithWatchlist": watchlist.version,
        "windows": {k: list(v) for k, v in bundle.meta.windows.items()},
    }


def _window_record(
    frame: pl.DataFrame,
    after: datetime,
    label_sources: tuple[LabelSource, ...],
    ports: list[str],
    folded: Folded,
) -> dict[str, Any]:
    """The ``window`` key of the evaluation: what was evaluated, and what was folded."""
    return {
        "after": after.isoformat(),
        "start": iso(frame["declared_at"].min()),
        "end": iso(frame["declared_at"].max()),
        "shipments": frame.height,
        "inspected": int(frame["inspected"].sum()),
        "positives": positive_counts(frame, label_sources),
        "minPositives": MIN_POSITIVES,
        "fewPositives": {
            src: n < MIN_POSITIVES for src, n in positive_counts(frame, label_sources).items()
        },
        "labelSources": list(label_sources),
        "ports": {p: int((frame["port_of_entry"] == p).sum()) for p in ports},
        "folded": folded.to_json(),
    }
