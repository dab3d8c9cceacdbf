"""The evaluation's figures over a frame of scored, labelled shipments.

Precision and recall of every selector at every inspection budget (:func:`budget_metrics`),
average precision of its whole ranking (:func:`pr_auc`) and the model's calibration
(:func:`calibration`). ``frame`` is :attr:`training.evaluation_record.Evaluation.frame` or any
part of it: the scores, the ``tiebreak``, ``inspected`` and one column per label source.

``random`` has no ranking: its figures are expected values computed exactly, not one draw
(precision is the base rate, recall is the share selected, average precision is the
expectation over all orderings).

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
from training.evaluation_record import (
    BUDGET_KEYS,
    BUDGETS,
    SELECTORS,
    BudgetMetrics,
    BudgetTable,
    Calibration,
    CalibrationBin,
    LabelSource,
    PrAucTable,
    Selector,
    ratio,
)

CALIBRATION_BINS: Final[int] = 10

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
    """Metrics of opening the rows ``chosen`` (indices, or a boolean mask)."""
    if chosen.dtype == np.bool_:
        chosen = np.flatnonzero(chosen)
    k = len(chosen)
    positives = int(y.sum())
    found = int(y[chosen].sum())
    extra: dict[str, float | None] = {}
    if source == "observed":
        opened = int(inspected[chosen].sum())
        extra = {"inspected_selected": float(opened), "precision_inspected": ratio(found, opened)}
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=float(found),
        precision=ratio(found, k),
        recall=ratio(found, positives),
        **extra,
    )


def _random_metrics(
    y: np.ndarray, inspected: np.ndarray, k: int, source: LabelSource
) -> BudgetMetrics:
    """The expected metrics of opening ``k`` rows drawn at random."""
    n, positives = len(y), int(y.sum())
    found = k * positives / n if n else 0.0
    extra: dict[str, float | None] = {}
    if source == "observed":
        opened = k * int(inspected.sum()) / n if n else 0.0
        extra = {
            "inspected_selected": opened,
            "precision_inspected": ratio(positives, int(inspected.sum())),
        }
    return BudgetMetrics(
        selected=k,
        positives=positives,
        positives_found=found,
        precision=ratio(positives, n) if k else None,
        recall=ratio(k, n) if positives else None,
        **extra,
    )


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
    """Brier score and an equal-width reliability table of the model on inspected shipments."""
    inspected = frame.filter(pl.col("inspected"))
    p = inspected["risk_score"].to_numpy().astype(np.float64)
    y = inspected["observed"].to_numpy().astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        table.append(
            CalibrationBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                mean_predicted=float(p[mask].mean()) if count else None,
                observed_rate=float(y[mask].mean()) if count else None,
            )
        )
    return Calibration(
        brier=brier_score(p, y),
        inspected=len(p),
        positives=int(y.sum()),
        bins=tuple(table),
    )
