"""The evaluation's figures over a frame of scored, labelled shipments.

Precision and recall of every selector at every inspection budget (:func:`budget_metrics`),
average precision of its whole ranking (:func:`pr_auc`) and the model's calibration
(:func:`calibration`). ``frame`` is :attr:`training.evaluation_record.Evaluation.frame` or any
part of it: the scores, the ``tiebreak``, ``inspected`` and one column per label source.

``random`` has no ranking: its figures are expected values computed exactly, not one draw
(precision is the base rate, recall is the share selected, average precision is the
expectation over all orderings).

Every precision and recall carries its bootstrap interval (:mod:`training.evaluation_intervals`);
``random``'s precision carries the interval of the base rate and its recall, fixed by design,
a point. Precision is None where there are no positives to find.

:func:`average_precision` and :func:`brier_score` are also the test figures of
:func:`training.train.train`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

from training.evaluation_baselines import EVIDENCE_COLUMNS
from training.evaluation_intervals import (
    Interval,
    brier_skill_interval,
    selection_intervals,
    share_interval,
)
from training.evaluation_record import (
    BUDGET_KEYS,
    BUDGETS,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    Calibration,
    CalibrationBin,
    LabelSource,
    PatternRecall,
    PatternTable,
    PrAucTable,
    Selector,
    ratio,
)

CALIBRATION_BINS: Final[int] = 10
"""Quantile bins of the reliability table: each holds a tenth of the inspected shipments."""

# --------------------------------------------------------------------------- rankings and budgets


def budget_size(share: float, shipments: int) -> int:
    """How many of ``shipments`` a budget of ``share`` opens: rounded up, so a small port with
    any budget opens at least one."""
    return math.ceil(round(share * shipments, 9)) if shipments else 0


def ranking(frame: pl.DataFrame, selector: Selector) -> np.ndarray:
    """Row indices of ``frame`` from first to last pick of ``selector`` (not ``random``)."""
    tie = frame["tiebreak"].to_numpy()
    keys: list[np.ndarray]
    if selector == "model":
        keys = [-frame["risk_score"].to_numpy().astype(np.float64)]
    elif selector == "rules":
        keys = [-frame["rule_score"].to_numpy().astype(np.int64)]
    elif selector == "watchlist":
        keys = [-frame[c].to_numpy().astype(np.int64) for c in EVIDENCE_COLUMNS]
    else:
        raise ValueError(f"{selector!r} has no ranking; its figures are expectations")
    return np.lexsort([tie, *reversed(keys)])


def labels(frame: pl.DataFrame, source: LabelSource) -> np.ndarray:
    """The labels of ``source`` as 0/1 integers, in row order."""
    return frame[source].to_numpy().astype(np.int64)


def positive_counts(
    frame: pl.DataFrame, label_sources: Sequence[LabelSource]
) -> dict[LabelSource, int]:
    """How many positives ``frame`` holds by each label source."""
    return {src: int(frame[src].sum()) for src in label_sources}


def budget_metrics(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> BudgetTable:
    """Every selector at every budget of ``frame``'s shipments, against each label source."""
    n = frame.height
    inspected = frame["inspected"].to_numpy().astype(np.int64)
    orders = {s: ranking(frame, s) for s in SELECTORS if s != "random"}
    table: BudgetTable = {key: {} for key in BUDGET_KEYS}
    for share, key in zip(BUDGETS, BUDGET_KEYS, strict=True):
        k = budget_size(share, n)
        for selector in SELECTORS:
            table[key][selector] = {
                src: (
                    _random_metrics(labels(frame, src), inspected, k, src)
                    if selector == "random"
                    else chosen_metrics(labels(frame, src), inspected, orders[selector][:k], src)
                )
                for src in label_sources
            }
    return table


def chosen_metrics(
    y: np.ndarray, inspected: np.ndarray, chosen: np.ndarray, source: LabelSource
) -> BudgetMetrics:
    """Metrics of opening the rows ``chosen`` (indices, or a boolean mask), with intervals."""
    if chosen.dtype == np.bool_:
        chosen = np.flatnonzero(chosen)
    k = len(chosen)
    positives = int(y.sum())
    found = int(y[chosen].sum())
    precision_interval, recall_interval = selection_intervals(found, k, positives)
    extra: dict[str, float | Interval | None] = {}
    if source == "observed":
        opened = int(inspected[chosen].sum())
        extra = {
            "inspected_selected": float(opened),
            "precision_inspected": ratio(found, opened) if positives else None,
            "precision_inspected_interval": (
                share_interval(found, opened - found) if positives else None
            ),
        }
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=float(found),
        precision=ratio(found, k) if positives else None,
        recall=ratio(found, positives),
        precision_interval=precision_interval if positives else None,
        recall_interval=recall_interval,
        **extra,  # type: ignore[arg-type]
    )


def _random_metrics(
    y: np.ndarray, inspected: np.ndarray, k: int, source: LabelSource
) -> BudgetMetrics:
    """The expected metrics of opening ``k`` rows drawn at random."""
    n, positives = len(y), int(y.sum())
    found = k * positives / n if n else 0.0
    recall = ratio(k, n) if positives else None
    extra: dict[str, float | Interval | None] = {}
    if source == "observed":
        opened = int(inspected.sum())
        inspected_positives = int(y[inspected.astype(np.bool_)].sum())
        extra = {
            "inspected_selected": k * opened / n if n else 0.0,
            "precision_inspected": ratio(inspected_positives, opened) if positives else None,
            "precision_inspected_interval": (
                share_interval(inspected_positives, opened - inspected_positives)
                if positives
                else None
            ),
        }
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=found,
        precision=ratio(positives, n) if k and positives else None,
        recall=recall,
        precision_interval=share_interval(positives, n - positives) if k and positives else None,
        recall_interval=(recall, recall) if recall is not None else None,
        **extra,  # type: ignore[arg-type]
    )


def pattern_recall(frame: pl.DataFrame) -> PatternTable | None:
    """Every selector's recall of each illicit pattern at every budget, against ground truth.

    A pattern's positives are the true positives whose ``pattern`` it is; the budgets and
    selections are those of :func:`budget_metrics` over the whole frame. None when the frame
    has no ``pattern`` column (the data names no patterns).
    """
    if "pattern" not in frame.columns or "truth" not in frame.columns:
        return None
    n = frame.height
    truth = labels(frame, "truth").astype(np.bool_)
    pattern = frame["pattern"].fill_null("").to_numpy()
    names = sorted({str(p) for p in pattern[truth]} - {""})
    members = {name: truth & (pattern == name) for name in names}
    orders = {s: ranking(frame, s) for s in SELECTORS if s != "random"}
    table: PatternTable = {name: {key: {} for key in BUDGET_KEYS} for name in names}
    for share, key in zip(BUDGETS, BUDGET_KEYS, strict=True):
        k = budget_size(share, n)
        for name, rows in members.items():
            positives = int(rows.sum())
            for selector in SELECTORS:
                if selector == "random":
                    recall = ratio(k, n)
                    spread = (recall, recall) if recall is not None else None
                    table[name][key][selector] = PatternRecall(
                        positives, k * positives / n, recall, spread
                    )
                    continue
                found = int(rows[orders[selector][:k]].sum())
                table[name][key][selector] = PatternRecall(
                    positives,
                    float(found),
                    ratio(found, positives),
                    selection_intervals(found, k, positives)[1],
                )
    return table


# --------------------------------------------------------------------------- whole rankings


def average_precision(hits_in_order: np.ndarray) -> float | None:
    """Average precision of a ranking, given its labels from first pick to last.

    Equal to scikit-learn's ``average_precision_score`` when no scores tie; ties are already
    broken by the ranking. None when there are no positives.
    """
    hits = np.asarray(hits_in_order, dtype=np.float64)
    total = hits.sum()
    if total == 0:
        return None
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / total)


def expected_random_average_precision(n: int, positives: int) -> float | None:
    """Average precision of a uniformly random ordering, in expectation, exactly.

    With ``y`` a random permutation, ``E[y_k · Σ_{j≤k} y_j] = P/n + (k-1)·P(P-1)/(n(n-1))``;
    dividing by ``k`` and summing gives ``H_n/n + (P-1)(n-H_n)/(n(n-1))``. It tends to the base
    rate ``P/n`` for large ``n``.
    """
    if positives == 0 or n == 0:
        return None
    if n == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return harmonic / n + (positives - 1) * (n - harmonic) / (n * (n - 1))


def pr_auc(frame: pl.DataFrame, label_sources: Sequence[LabelSource]) -> PrAucTable:
    """Average precision of each selector's full ranking against each label source."""
    out: PrAucTable = {}
    for selector in SELECTORS:
        out[selector] = {}
        for src in label_sources:
            y = labels(frame, src)
            out[selector][src] = (
                expected_random_average_precision(len(y), int(y.sum()))
                if selector == "random"
                else average_precision(y[ranking(frame, selector)])
            )
    return out


def precision_recall_curve(hits_in_order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each positive of a ranking, the corners of its PR curve.

    Drawn as steps (precision ``p_i`` over recall ``(r_{i-1}, r_i]``) the area is exactly
    :func:`average_precision`; a million-shipment ranking gives as many points as positives.
    Empty arrays without positives.
    """
    hits = np.asarray(hits_in_order, dtype=np.float64)
    total = hits.sum()
    if total == 0:
        return np.empty(0), np.empty(0)
    at = np.flatnonzero(hits)
    found = np.arange(1, len(at) + 1, dtype=np.float64)
    return found / (at + 1), found / total


# --------------------------------------------------------------------------- probabilities


def brier_score(predicted: np.ndarray, outcomes: np.ndarray) -> float | None:
    """Mean squared error of probabilities against 0/1 outcomes; None without any."""
    return float(np.mean((predicted - outcomes) ** 2)) if len(predicted) else None


def calibration(frame: pl.DataFrame, bins: int = CALIBRATION_BINS) -> Calibration:
    """Brier score, its skill over the base rate, and a quantile reliability table of the model
    on inspected shipments.

    Shipments are sorted by score (ties by the frame's order) and cut into ``bins`` runs of
    equal size (sizes differ by one at most); a bin's bounds are its lowest and highest score.
    """
    inspected = frame.filter(pl.col("inspected"))
    p = inspected["risk_score"].to_numpy().astype(np.float64)
    y = inspected["observed"].to_numpy().astype(np.float64)
    order = np.argsort(p, kind="stable")
    table = []
    for rows in np.array_split(order, min(bins, len(p))) if len(p) else []:
        count, positives = len(rows), int(y[rows].sum())
        table.append(
            CalibrationBin(
                lower=float(p[rows].min()),
                upper=float(p[rows].max()),
                count=count,
                positives=positives,
                mean_predicted=float(p[rows].mean()),
                observed_rate=positives / count,
                observed_interval=share_interval(positives, count - positives),
            )
        )
    brier = brier_score(p, y)
    base_rate = float(y.mean()) if len(y) else None
    brier_base = None if base_rate is None else base_rate * (1 - base_rate)
    return Calibration(
        brier=brier,
        brier_base=brier_base,
        brier_skill=1 - brier / brier_base if brier is not None and brier_base else None,
        brier_skill_interval=brier_skill_interval(p, y),
        inspected=len(p),
        positives=int(y.sum()),
        binning="quantile",
        bins=tuple(table),
    )
