"""Entity risk in training: the smoothing of entity positive rates, tuned on the validation
window, and the share of the model's gain the entity history carries.

An entity's positive rate is (positives + m * prior) / (inspections + m), with m
pseudo-inspections at the prior rate (:func:`features.history.smoothed_rate`). How large m should
be depends on the data: on the customs declarations the median party has three earlier rows, and
m = 20 pulls every such party back to the prior. :func:`tune_smoothing` picks m among
:data:`~features.history.SMOOTHING_CANDIDATES` by the log loss of the party rates alone on the
validation window's labelled shipments (each rate, point in time, as a prediction of the
shipment's outcome), and :func:`with_strength` recomputes the rate columns from the counts with
that m, exactly as the kernel would have. The chosen m is stored in the bundle's feature
reference, so live scoring smooths the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from features.history import (
    OUTCOME_KEYS,
    SMOOTHING_CANDIDATES,
    VOLUME_KEYS,
    history_feature_names,
    outcome_names,
    smoothed_rate,
    volume_names,
)
from features.schema import FEATURE_NAMES
from scoring.lgbm import lgb

# The parties whose rates choose the smoothing: the entities with volume history (routes and
# HS headings are few and busy, and barely move with m).
TUNED_ENTITIES: tuple[str, ...] = VOLUME_KEYS


def _rate(history: pl.DataFrame, entity: str, prior_rate: float, strength: float) -> np.ndarray:
    inspections, positives, _, _ = outcome_names(entity)
    return smoothed_rate(
        history[positives].to_numpy(), history[inspections].to_numpy(), prior_rate, strength
    )


def validation_log_loss(
    history: pl.DataFrame, labels: np.ndarray, prior_rate: float, strength: float
) -> float:
    """Mean over :data:`TUNED_ENTITIES` of the log loss of each entity's rate, smoothed by
    ``strength``, as the prediction of ``labels`` (``history``'s rows, 0 or 1)."""
    y = labels.astype(np.float64)
    losses = []
    for entity in TUNED_ENTITIES:
        p = np.clip(_rate(history, entity, prior_rate, strength), 1e-9, 1 - 1e-9)
        losses.append(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))))
    return float(np.mean(losses))


def tune_smoothing(
    valid_history: pl.DataFrame,
    labels: np.ndarray,
    prior_rate: float,
    candidates: Sequence[float] = SMOOTHING_CANDIDATES,
) -> float:
    """The candidate strength whose rates best predict ``labels`` (lowest
    :func:`validation_log_loss`; the first on a tie). ``valid_history``: the history features
    of the validation window's labelled shipments, in ``labels``' order."""
    if len(labels) == 0:
        return float(candidates[0])
    scores = [validation_log_loss(valid_history, labels, prior_rate, m) for m in candidates]
    return float(candidates[int(np.argmin(scores))])


def with_strength(history: pl.DataFrame, prior_rate: float, strength: float) -> pl.DataFrame:
    """``history`` (every feature of :func:`features.history.history_features`) with each
    entity's positive rate smoothed by ``strength``: the same function of the same counts as
    the kernel's, so the same bits as computing the history with ``strength``."""
    rates = []
    for entity in OUTCOME_KEYS:
        rate_name = outcome_names(entity)[2]
        rates.append(pl.Series(rate_name, _rate(history, entity, prior_rate, strength)))
    return history.with_columns(rates)


def entity_feature_names() -> list[str]:
    """The features that describe a shipment's parties from their history: volume and outcome
    features of the parties (:data:`TUNED_ENTITIES`)."""
    return [n for e in TUNED_ENTITIES for n in (*volume_names(e), *outcome_names(e))]


def gain_shares(names: Sequence[str], gains: Sequence[float]) -> dict[str, float]:
    """Shares of the booster's total split gain: ``party_history_gain_share`` (the parties'
    volume and outcome features), ``party_rate_gain_share`` (their outcome features alone) and
    ``history_gain_share`` (every history feature, routes, headings and networks included)."""
    total = float(sum(gains)) or 1.0
    gain = dict(zip(names, (float(g) for g in gains), strict=True))
    party = set(entity_feature_names())
    rates = {n for e in TUNED_ENTITIES for n in outcome_names(e)}
    history = set(history_feature_names())
    return {
        "party_history_gain_share": sum(g for n, g in gain.items() if n in party) / total,
        "party_rate_gain_share": sum(g for n, g in gain.items() if n in rates) / total,
        "history_gain_share": sum(g for n, g in gain.items() if n in history) / total,
    }


def entity_metrics(booster: lgb.Booster, smoothing_strength: float) -> dict[str, float]:
    """What a bundle's metrics report of entity risk: the gain shares of :func:`gain_shares`
    and the smoothing strength tuned on the validation window."""
    gains = booster.feature_importance(importance_type="gain").tolist()
    return {**gain_shares(FEATURE_NAMES, gains), "smoothing_strength": smoothing_strength}
