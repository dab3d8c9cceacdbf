"""What a batch's decisions say beside the lane: watchlist hits, reasons, and the column-wise
form bulk runs write.

:class:`~scoring.scorer.Scorer` decides a batch in steps (scores, hard rules, lanes, SHAP
contributions for RED and YELLOW); the live path then makes one
:class:`~scoring.scorer.Scored` record per shipment (with its exam), the bulk path one
:class:`Decided` per batch, in which only the shipments something was found for carry more than
their lane: most are GREEN with no rule fired, no watchlist hit and no random pick, and their one
reason is :data:`~scoring.reasons.LOW_RISK_REASON`. Both read their hits and reasons from the
functions here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from features.declarations import Array, Declarations
from features.schema import FEATURE_NAMES
from features.watchlist import EVIDENCE_THRESHOLD
from scoring.lane_process import LaneColumns
from scoring.lanes import LANE_ORDER
from scoring.reasons import (
    EXPLORATION_REASON,
    LOW_RISK_REASON,
    Reason,
    model_reasons,
    watchlist_reason,
)
from scoring.rules import RuleHit

# The lanes whose decisions carry model reasons: the ones an inspector acts on.
EXPLAINED_LANES = frozenset({"red", "yellow"})

_EXPLAINED_RANKS = sorted(LANE_ORDER[lane] for lane in EXPLAINED_LANES)  # LaneColumns.lane

MODEL_REASONS = 3
"""The model's reasons a shipment is given at most: its strongest positive contributions."""

LOW_RISK_ONLY: tuple[Reason, ...] = (LOW_RISK_REASON,)
"""The reasons of a shipment released with nothing found: one tuple shared by all of them."""


@dataclass(frozen=True, slots=True)
class HitRef:
    """A watchlist identification located in a shipment's goods lines.

    Only hits at or above the matcher's evidence threshold become HitRefs: a broad HS line or
    "aniline dye" on a textile line is context for the model, not something to tell an
    inspector.
    """

    entry_id: str
    name: str
    match_type: str
    matched_text: str
    goods_index: int
    similarity: float


def watchlist_hits(declarations: Declarations) -> dict[int, tuple[HitRef, ...]]:
    """The hits at :data:`EVIDENCE_THRESHOLD` of each shipment that has any, by row, in line
    order (the matcher's order within a line). Only lines with a hit are visited."""
    lines = [j for j, line in enumerate(declarations.matches) if line.hits]
    owners = np.searchsorted(declarations.line_start, lines, side="right") - 1
    starts = declarations.line_start
    found: dict[int, list[HitRef]] = {}
    for j, row in zip(lines, owners.tolist(), strict=True):
        index = j - int(starts[row])
        refs = [
            HitRef(h.entry_id, h.name, h.match_type, h.matched_text, index, h.similarity)
            for h in declarations.matches[j].hits
            if h.strength >= EVIDENCE_THRESHOLD
        ]
        if refs:
            found.setdefault(row, []).extend(refs)
    return {row: tuple(refs) for row, refs in found.items()}


def explained_rows(decided: LaneColumns) -> list[int]:
    """The rows whose lane an inspector acts on (:data:`EXPLAINED_LANES`): those get model
    reasons."""
    rows: list[int] = np.flatnonzero(np.isin(decided.lane, _EXPLAINED_RANKS)).tolist()
    return rows


def strongest_contributions(contributions: Array) -> list[dict[str, float]]:
    """What :func:`~scoring.reasons.model_reasons` reads of each row of SHAP ``contributions``
    (one column per feature, schema order): its :data:`MODEL_REASONS` largest positive ones,
    largest first and ties in schema order, by feature name. Ranked for all rows at once
    instead of a dict of every feature per row; the reasons are the same."""
    if contributions.shape[1:] != (len(FEATURE_NAMES),):
        raise ValueError(
            f"contributions have shape {contributions.shape}: "
            f"expected one column per feature ({len(FEATURE_NAMES)})"
        )
    positive = np.where(contributions > 0, contributions, -np.inf)
    top = np.argsort(-positive, axis=1, kind="stable")[:, :MODEL_REASONS]
    strongest = np.take_along_axis(contributions, top, axis=1)
    return [
        {FEATURE_NAMES[j]: c for j, c in zip(columns, row, strict=True) if c > 0}
        for columns, row in zip(top.tolist(), strongest.tolist(), strict=True)
    ]


def reasons_for(
    fired: tuple[RuleHit, ...],
    hits: tuple[HitRef, ...],
    contributions: Mapping[str, float] | None,
    values: Mapping[str, float] | None,
    random_selection: bool,
) -> tuple[Reason, ...]:
    """A shipment's reasons: the rules', one per watchlist hit, the model's when
    ``contributions`` were computed (:func:`strongest_contributions`, worded from the feature
    ``values``), the exploration reason first when it was drawn at random, and the low-risk
    reason when there is no other."""
    if not (fired or hits or contributions is not None or random_selection):
        return LOW_RISK_ONLY  # most shipments: released with nothing found
    reasons = [hit.reason for hit in fired]
    reasons += [watchlist_reason(h.name, h.match_type, h.goods_index, h.matched_text) for h in hits]
    if contributions is not None:
        assert values is not None
        reasons += model_reasons(contributions, values, limit=MODEL_REASONS)
    if random_selection:
        reasons.insert(0, EXPLORATION_REASON)
    if not reasons:
        reasons.append(LOW_RISK_REASON)
    return tuple(reasons)


@dataclass(frozen=True)
class Decided:
    """A bulk batch's decisions column-wise, in batch order: every shipment's id, port, score
    and lane decision; rules fired, watchlist hits and reasons only for the rows that have
    something other than none, none and :data:`LOW_RISK_ONLY`. No exam is recommended."""

    shipment_id: Sequence[str]
    port_of_entry: Sequence[str]
    risk_score: Array  # float64
    decisions: LaneColumns
    rules_fired: Mapping[int, tuple[str, ...]]
    watchlist_hits: Mapping[int, tuple[HitRef, ...]]
    reasons: Mapping[int, tuple[Reason, ...]]

    def __len__(self) -> int:
        return len(self.shipment_id)
