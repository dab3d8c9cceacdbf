"""Score a batch of validated shipments with one model bundle and one watchlist.

A :class:`Scorer` is immutable: reloading the model or the watchlist builds a new one and swaps
it in whole, so a request is always scored by one consistent pair. One shipment is a batch of
one. Entity history comes from the live :class:`~features.state.EntityState` through the same
feature code the bulk path runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from features.build import (
    bulk_history,
    feature_matrix,
    finalize,
    keyed_outcomes,
    shipment_basics,
)
from features.history import Keyed, history_frame
from features.live import shipment_frames, shipments_from_frames
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.state import EntityState
from features.watchlist import EVIDENCE_THRESHOLD, Watchlist
from scoring.bundle import ModelBundle
from scoring.exams import ExamContext, ExamHit, ExamPlanner
from scoring.lanes import LanePolicy
from scoring.reasons import (
    EXPLORATION_REASON,
    LOW_RISK_REASON,
    Reason,
    model_reasons,
    watchlist_reason,
)
from scoring.rules import (
    RuleContext,
    RuleSet,
    evidence_from_hits,
    mismatch_evidence,
    strongest_lane,
)
from scoring.settings import Settings


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


@dataclass(frozen=True, slots=True)
class Scored:
    shipment_id: str
    port_of_entry: str
    risk_score: float
    lane: str
    random_selection: bool
    propensity: float
    reasons: tuple[Reason, ...]
    watchlist_hits: tuple[HitRef, ...]
    features: dict[str, float]
    rules_fired: tuple[str, ...] = ()
    exam: str = ""  # recommended exam (scoring.exams.EXAMS); "" when GREEN
    exam_reason: Reason | None = None
    thresholds: tuple[float, float] = (1.0, 1.0)  # the model's (RED, YELLOW) thresholds used


@dataclass(frozen=True)
class ScoredBatch:
    scored: list[Scored]
    basics: pl.DataFrame  # stage-1 rows, for remembering the batch in the entity state
    features: pl.DataFrame


@dataclass(frozen=True)
class Scorer:
    """One consistent serving snapshot: model, watchlist, hard rules and lane policy."""

    bundle: ModelBundle
    watchlist: Watchlist
    rules: RuleSet
    policy: LanePolicy
    exams: ExamPlanner = field(default_factory=ExamPlanner)  # stateful: capacity per port

    @classmethod
    def create(
        cls,
        bundle: ModelBundle,
        watchlist: Watchlist,
        rules: RuleSet,
        settings: Settings,
        policy: LanePolicy | None = None,
        *,
        exams: ExamPlanner | None = None,
    ) -> Scorer:
        """A scorer with the lane budgets and exploration seed of ``settings``.

        ``policy`` is the serving lane policy to keep (its windows restart from this bundle's
        reference distribution); without one, a fresh policy (a bulk run's own)."""
        if policy is None:
            policy = LanePolicy(
                bundle.meta.score_quantiles, settings.lane_budgets, settings.exploration_seed
            )
        else:
            policy.rebase(bundle.meta.score_quantiles)
        if exams is None:  # the serving planner is kept across reloads (ScoringService.exams)
            exams = ExamPlanner(settings.exam_capacity)
        return cls(bundle, watchlist, rules, policy, exams)

    @property
    def model_version(self) -> str:
        return self.bundle.version

    @property
    def watchlist_version(self) -> str:
        return str(self.watchlist.version)

    @property
    def rules_version(self) -> str:
        return self.rules.version

    def features(self, shipments: Sequence[Shipment], state: EntityState) -> ScoredFeatures:
        """Live features: entity history from ``state``."""
        ship, goods = shipment_frames(shipments)
        matches = self.watchlist.match_goods_full(goods)
        basics = shipment_basics(ship, goods, self.watchlist, matches)
        reference = self.bundle.meta.reference
        history = history_frame(state.history_for(Keyed.from_frame(basics), reference.prior_rate))
        features = finalize(basics, history, reference)
        return ScoredFeatures(features, basics, matches.hits, matches.mismatches)

    def score_batch(self, shipments: Sequence[Shipment], state: EntityState) -> ScoredBatch:
        """Score live shipments; the caller remembers ``basics`` in the state afterwards."""
        if not shipments:
            return ScoredBatch([], pl.DataFrame(), pl.DataFrame())
        computed = self.features(shipments, state)
        scored = self.decide(shipments, computed)
        return ScoredBatch(scored, computed.basics, computed.features)

    def score_tables(
        self, shipments: pl.DataFrame, goods: pl.DataFrame, inspections: pl.DataFrame
    ) -> list[Scored]:
        """Bulk: every shipment of canonical tables, each with the history the tables hold
        before it, through the same decision code (rules and lanes) as live scoring."""
        matches = self.watchlist.match_goods_full(goods)
        basics = shipment_basics(shipments, goods, self.watchlist, matches)
        reference = self.bundle.meta.reference
        history = bulk_history(basics, keyed_outcomes(basics, inspections), reference)
        computed = ScoredFeatures(
            finalize(basics, history, reference), basics, matches.hits, matches.mismatches
        )
        return self.decide(shipments_from_frames(shipments, goods), computed)

    def decide(self, shipments: Sequence[Shipment], computed: ScoredFeatures) -> list[Scored]:
        """Scores, hard rules, lanes and reasons for shipments whose features are computed
        (``computed`` rows in the order of ``shipments``)."""
        matrix = feature_matrix(computed.features)
        booster = self.bundle.booster
        scores = self.bundle.predict(matrix)
        contributions = np.asarray(
            booster.predict(matrix, pred_contrib=True, num_threads=1), dtype=np.float64
        )
        all_hits = _by_shipment(computed.hits)
        all_mismatches = _by_shipment(computed.mismatches)
        out = []
        for row, shipment in enumerate(shipments):
            values = dict(zip(FEATURE_NAMES, matrix[row].tolist(), strict=True))
            contrib = dict(zip(FEATURE_NAMES, contributions[row, :-1].tolist(), strict=True))
            rows = all_hits.get(shipment.shipment_id, [])
            hits = tuple(
                HitRef(
                    h["entry_id"],
                    h["name"],
                    h["match_type"],
                    h["matched_text"],
                    h["line_no"],
                    h["similarity"],
                )
                for h in rows
                if h["strength"] >= EVIDENCE_THRESHOLD
            )
            fired = self.rules.evaluate(
                RuleContext(
                    shipment,
                    evidence_from_hits(rows, self.watchlist),
                    mismatch_evidence(all_mismatches.get(shipment.shipment_id, [])),
                    values,
                )
            )
            reasons = [hit.reason for hit in fired]
            reasons += [
                watchlist_reason(h.name, h.match_type, h.goods_index, h.matched_text) for h in hits
            ]
            reasons += model_reasons(contrib, values)
            score = float(scores[row])
            decided = self.policy.decide(
                shipment.port_of_entry,
                score,
                shipment.shipment_id,
                strongest_lane("green", fired),
                shipment.declared_at,
            )
            if decided.random_selection:
                reasons.insert(0, EXPLORATION_REASON)
            if not reasons:
                reasons.append(LOW_RISK_REASON)
            exam = self.exams.recommend(
                ExamContext(
                    port=shipment.port_of_entry,
                    mode=shipment.mode,
                    lane=decided.lane,
                    rules_fired=tuple(hit.rule_id for hit in fired),
                    hits=tuple(
                        ExamHit(self.watchlist.entry(h.entry_id).kind, h.match_type) for h in hits
                    ),
                    mismatch_kinds=tuple(
                        m["kind"] for m in all_mismatches.get(shipment.shipment_id, [])
                    ),
                    random_selection=decided.random_selection,
                    features=values,
                )
            )
            out.append(
                Scored(
                    shipment_id=shipment.shipment_id,
                    port_of_entry=shipment.port_of_entry,
                    risk_score=score,
                    lane=decided.lane,
                    random_selection=decided.random_selection,
                    propensity=decided.propensity,
                    reasons=tuple(reasons),
                    watchlist_hits=hits,
                    features=values,
                    rules_fired=tuple(hit.rule_id for hit in fired),
                    exam=exam.exam if exam else "",
                    exam_reason=exam.reason if exam else None,
                    thresholds=(decided.red_threshold, decided.yellow_threshold),
                )
            )
        return out


@dataclass(frozen=True)
class ScoredFeatures:
    features: pl.DataFrame
    basics: pl.DataFrame
    hits: pl.DataFrame
    mismatches: pl.DataFrame


def _by_shipment(frame: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault(row["shipment_id"], []).append(row)
    return out
