"""The per-port figures of a model's model card, measured on its test window when it is trained.

``train`` keeps them in the bundle's ``card.json`` (beside the bundle's own files, so the bundle
format does not change) and :mod:`training.model_card` renders them. For every port of the test
window, and for all ports together: the shipments, how many were inspected and found positive,
precision and recall of the model's top :data:`CARD_BUDGET` of the port's shipments, and the
average precision (PR-AUC) of its whole ranking, each with a bootstrap interval.

The figures are the evaluation's own (:mod:`training.evaluation_metrics`), against observed
outcomes: a shipment never inspected counts as negative, so precision among the selected
shipments that were inspected is given beside it. Rankings break ties by the evaluation's hash
of the shipment id, so ``centinela evaluate`` over the same window agrees with the card.
Intervals of precision and recall are the evaluation's (:mod:`training.evaluation_intervals`);
PR-AUC's is the central interval of the same Bayesian bootstrap over the port's shipments, each
resample weighting every shipment by an Exp(1) draw with the ranking held fixed.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import polars as pl

from training.evaluation_baselines import tiebreak_keys
from training.evaluation_intervals import (
    RESAMPLES,
    SEED,
    Interval,
    containing,
    percentile_interval,
)
from training.evaluation_metrics import (
    average_precision,
    budget_size,
    chosen_metrics,
    labels,
    ranking,
)
from training.evaluation_record import json_value

CARD_DATA_FILE: Final[str] = "card.json"
CARD_DATA_FORMAT: Final[int] = 1
CARD_BUDGET: Final[float] = 0.02
"""The inspection budget of the card's per-port figures: 2% of each port's shipments."""


def card_figures(test: pl.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """``card.json``'s content: the figures of the test window's shipments (``test``: features
    with ``label``, null when not inspected) given the model's calibrated ``scores`` of them.
    ``overall`` is None and ``ports`` empty when the test window is empty."""
    frame = pl.DataFrame(
        {
            "port_of_entry": test["port_of_entry"],
            "risk_score": np.asarray(scores, dtype=np.float64),
            "tiebreak": tiebreak_keys(test["shipment_id"]),
            "inspected": test["label"].is_not_null(),
            "observed": test["label"].fill_null(False).cast(pl.Boolean),
        }
    )
    ports = sorted(frame["port_of_entry"].unique().to_list())
    return {
        "format": CARD_DATA_FORMAT,
        "window": "test",
        "budget": CARD_BUDGET,
        "overall": _figures(frame) if frame.height else None,
        "ports": {p: _figures(frame.filter(pl.col("port_of_entry") == p)) for p in ports},
    }


def _figures(part: pl.DataFrame) -> dict[str, Any]:
    """One port's (or all ports') figures, as JSON."""
    y = labels(part, "observed")
    order = ranking(part, "model")
    chosen = order[: budget_size(CARD_BUDGET, part.height)]
    at_budget = chosen_metrics(y, part["inspected"].to_numpy().astype(np.int64), chosen, "observed")
    hits = y[order]
    return {
        "shipments": part.height,
        "inspected": int(part["inspected"].sum()),
        **at_budget.to_json(),
        "prAuc": json_value(average_precision(hits)),
        "prAucInterval": json_value(average_precision_interval(hits)),
    }


def average_precision_interval(hits_in_order: np.ndarray) -> Interval | None:
    """The bootstrap interval of :func:`~training.evaluation_metrics.average_precision` of a
    ranking given its labels from first pick to last; None when there are no positives.

    Each resample weights every shipment by an Exp(1) draw; a positive's precision is the weight
    of positives at or above it over the weight of all shipments at or above it, and the average
    is weighted by the positives' own weights (with equal weights, the plain figure). Seeded by
    the counts, so the same ranking always gets the same interval.
    """
    hits = np.asarray(hits_in_order, dtype=np.float64)
    found = hits > 0
    if not found.any():
        return None
    rng = np.random.default_rng([SEED, len(hits), int(found.sum())])
    values = np.empty(RESAMPLES)
    for i in range(RESAMPLES):
        weight = rng.exponential(size=len(hits))
        precision = np.cumsum(weight * hits)[found] / np.cumsum(weight)[found]
        values[i] = float((weight[found] * precision).sum() / weight[found].sum())
    return containing(percentile_interval(values), average_precision(hits))
