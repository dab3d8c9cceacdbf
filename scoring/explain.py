"""Explain a ledgered decision after the fact, from what the ledger stored.

Live scoring computes model reasons only for RED and YELLOW decisions (the ones an inspector
acts on). Every decision's features are in the ledger, with the version of the model that
scored them, so any decision, GREEN included, can be explained later exactly as it would
have been then: the same model's SHAP contributions on the same feature row. The score is
computed again too, and compared with the one recorded, so an explanation never silently
describes a different model or row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.errors import DataError
from features.schema import FEATURE_NAMES
from scoring.bundle import ModelBundle
from scoring.reasons import Reason, model_reasons

SCORE_TOLERANCE = 1e-9
"""How far the recomputed score may sit from the recorded one (float noise only)."""


@dataclass(frozen=True)
class Explanation:
    decision_id: str
    shipment_id: str
    lane: str
    model_version: str
    recorded_score: float
    score: float  # computed again from the stored features with that model
    reasons: list[Reason]  # the features that pushed the score up most
    pushed_down: list[tuple[str, float]]  # the features that pulled it down most, by name

    @property
    def reproduced(self) -> bool:
        return abs(self.score - self.recorded_score) <= SCORE_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "shipment_id": self.shipment_id,
            "lane": self.lane,
            "model_version": self.model_version,
            "recorded_score": self.recorded_score,
            "score": self.score,
            "reproduced": self.reproduced,
            "reasons": [
                {
                    "code": r.code,
                    "message_es": r.message_es,
                    "message_en": r.message_en,
                    "contribution": r.contribution,
                }
                for r in self.reasons
            ],
            "pushed_down": [{"feature": f, "contribution": c} for f, c in self.pushed_down],
        }


def feature_row(payload: dict[str, Any]) -> np.ndarray:
    """The stored features of a decision payload as one model row (null as NaN)."""
    stored = payload.get("features")
    if not isinstance(stored, dict):
        raise DataError("the decision has no stored features to explain it by")
    missing = [name for name in FEATURE_NAMES if name not in stored]
    if missing:
        raise DataError(
            f"the decision's stored features lack {len(missing)} the code has "
            f"(first: {missing[0]!r}); it was scored by another feature schema"
        )
    values = [stored[name] for name in FEATURE_NAMES]
    return np.array([[math.nan if v is None else float(v) for v in values]], dtype=np.float64)


def explain(payload: dict[str, Any], bundle: ModelBundle, limit: int = 5) -> Explanation:
    """Why ``bundle`` (the model that made the decision) scored it as it did."""
    row = feature_row(payload)
    contributions = bundle.contributions(row)[0]
    by_name = dict(zip(FEATURE_NAMES, contributions.tolist(), strict=True))
    values = dict(zip(FEATURE_NAMES, row[0].tolist(), strict=True))
    down = sorted(((n, c) for n, c in by_name.items() if c < 0), key=lambda item: item[1])
    return Explanation(
        decision_id=str(payload.get("decision_id", "")),
        shipment_id=str(payload.get("shipment", {}).get("shipment_id", "")),
        lane=str(payload.get("lane", "")),
        model_version=str(payload.get("model_version", "")),
        recorded_score=float(payload.get("risk_score", math.nan)),
        score=float(bundle.predict(row)[0]),
        reasons=model_reasons(by_name, values, limit=limit),
        pushed_down=down[:limit],
    )
