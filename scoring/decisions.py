"""What a decision and an outcome are: the records the service returns and the ledger keeps.

A :class:`~scoring.scorer.Scored` shipment is what the scorer made of it (score, lane, reasons,
features); a :class:`Decision` is that plus the identity callers report outcomes against and the
versions that decided it. The ledger payloads are built here, from these records alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from features.build import FeatureRow
from features.errors import FieldViolation, InvalidInput
from features.live import goods_rows, shipment_row
from features.records import Shipment
from features.schema import FEATURE_NAMES
from scoring.caller import Caller
from scoring.reasons import Reason
from scoring.scorer import Scored
from scoring.shadow import ShadowScore


@dataclass(frozen=True, slots=True)
class Decision:
    """A scored shipment with the id outcomes are reported against and the versions that
    decided it: model, watchlist and hard rules."""

    decision_id: str
    """A random UUID, hex: what callers report outcomes against and the ledger keys on."""
    scored: Scored
    model_version: str
    """The bundle version (v0003) that scored it; then the watchlist's and hard rules'."""
    watchlist_version: str
    rules_version: str = ""


@dataclass(frozen=True, slots=True)
class Declared:
    """A shipment in the canonical form the core reads, and as the caller declared it."""

    canonical: Shipment
    declared: Shipment


RESULTS = ("positive", "negative", "inconclusive")


@dataclass(frozen=True, slots=True)
class Outcome:
    """An inspection result reported against a decision."""

    decision_id: str
    inspected: bool
    result: str
    substances: tuple[str, ...] = ()
    lab_confirmed: bool = False
    notes: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeReceipt:
    """What recording an outcome did: the outcome's ``version`` for its decision (1 for the
    first report, then one more for each different report), and whether it was a
    ``duplicate`` of the latest one (then nothing was stored)."""

    decision_id: str
    version: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What serves, as ``GetModelInfo`` tells it: the bundle, its features and test metrics,
    the watchlist and rules beside it, and the shadow model scored beside it (its version and
    test metrics; empty when there is none)."""

    model_version: str
    trained_at: datetime
    feature_names: tuple[str, ...]
    watchlist_version: str
    metrics: dict[str, float]
    code_version: str
    rules_version: str
    shadow_model_version: str = ""
    shadow_metrics: dict[str, float] = field(default_factory=dict)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shipment_json(shipment: Shipment) -> dict[str, Any]:
    return {
        "shipment": {k: _json_value(v) for k, v in shipment_row(shipment).items()},
        "goods": goods_rows(shipment),
    }


def _feature_values(features: Mapping[str, float]) -> list[float]:
    if isinstance(features, FeatureRow):
        return features.values_list()
    return [float(features[name]) for name in FEATURE_NAMES]


def _reason_json(reason: Reason) -> dict[str, Any]:
    return {
        "code": reason.code,
        "message_es": reason.message_es,
        "message_en": reason.message_en,
        "contribution": reason.contribution,
    }


def decision_payload(
    decision: Decision, admitted: Declared, caller: Caller | None = None
) -> dict[str, Any]:
    """Everything needed to audit a decision and to retrain on it, as stored in the ledger.

    ``shipment`` and ``goods`` are the canonical form every stage used; ``declared`` holds the
    shipment exactly as the caller wrote it when that differs (``null`` when it was already
    canonical), so an auditor sees both what was declared and what it was read as. ``caller``
    is who asked for the decision and how it was authenticated (``null`` outside the server).
    ``shadow`` is there only when a shadow model was scored beside the serving one: its
    version, calibrated score and the lane the shipment would have had with it
    (:mod:`scoring.shadow`); records without it (no shadow, or written before shadows
    existed) read the same everywhere.
    """
    canonical = _shipment_json(admitted.canonical)
    same = admitted.declared == admitted.canonical  # the usual case: one form, written once
    declared = None if same else _shipment_json(admitted.declared)
    scored = decision.scored
    return {
        "decision_id": decision.decision_id,
        "decided_at": datetime.now(UTC).isoformat(),
        "caller": caller.to_json() if caller else None,
        **canonical,
        "declared": declared,
        "risk_score": scored.risk_score,
        "lane": scored.lane,
        "random_selection": scored.random_selection,
        "propensity": scored.propensity,
        "reasons": [_reason_json(r) for r in scored.reasons],
        "watchlist_hits": [
            {
                "entry_id": h.entry_id,
                "name": h.name,
                "match_type": h.match_type,
                "matched_text": h.matched_text,
                "goods_index": h.goods_index,
                "similarity": h.similarity,
            }
            for h in scored.watchlist_hits
        ],
        "features": {
            k: v if math.isfinite(v) else None
            for k, v in zip(FEATURE_NAMES, _feature_values(scored.features), strict=True)
        },
        "model_version": decision.model_version,
        "watchlist_version": decision.watchlist_version,
        "rules_version": decision.rules_version,
        "rules_fired": list(scored.rules_fired),
        "exam": scored.exam,
        "exam_reason": _reason_json(scored.exam_reason) if scored.exam_reason else None,
        # The policy in force: the thresholds this decision faced (propensity is above).
        "thresholds": {"red": scored.thresholds[0], "yellow": scored.thresholds[1]},
        **_shadow_json(scored.shadow),
    }


def _shadow_json(shadow: ShadowScore | None) -> dict[str, Any]:
    """The payload's ``shadow`` key, or nothing when no shadow was scored."""
    if shadow is None:
        return {}
    return {
        "shadow": {
            "model_version": shadow.model_version,
            "risk_score": shadow.risk_score,
            "lane": shadow.lane,
        }
    }


def validate_outcome(outcome: Outcome) -> None:
    out: list[FieldViolation] = []
    if not outcome.decision_id:
        out.append(FieldViolation("decision_id", "required"))
    if outcome.inspected and outcome.result not in RESULTS:
        out.append(FieldViolation("result", f"must be one of {', '.join(RESULTS)}"))
    if not outcome.inspected and outcome.result:
        out.append(FieldViolation("result", "must be empty when the shipment was not inspected"))
    if len(outcome.substances) > 50:
        out.append(FieldViolation("substances", "at most 50 substances"))
    for i, substance in enumerate(outcome.substances):
        if not substance.strip() or len(substance) > 128:
            out.append(FieldViolation(f"substances[{i}]", "must be 1-128 characters"))
    if len(outcome.notes) > 4000:
        out.append(FieldViolation("notes", "longer than 4000 characters"))
    if out:
        raise InvalidInput("invalid outcome", out)


def outcome_payload(outcome: Outcome) -> dict[str, Any]:
    return {
        "decision_id": outcome.decision_id,
        "inspected": outcome.inspected,
        "result": outcome.result,
        "substances": sorted(outcome.substances),
        "lab_confirmed": outcome.lab_confirmed,
        "notes": outcome.notes,
    }


def same_outcome(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    return all(stored.get(k) == v for k, v in new.items())
