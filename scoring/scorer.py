"""Score a batch of validated shipments with one model bundle and one watchlist.

A :class:`Scorer` is immutable: reloading the model or the watchlist builds a new one and swaps
it in whole, so a request is always scored by one consistent pair. One shipment is a batch of
one. Entity history comes from the live :class:`~features.state.EntityState` through the same
feature code the bulk path runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl

from features.build import (
    Basics,
    Declarations,
    FeatureBlock,
    FeatureReference,
    FeatureRow,
    finish,
    keyed_outcomes,
    stage_one,
    table_features,
)
from features.declarations import Array
from features.history import Keyed, history_features
from features.live import shipments_from_frames
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.state import EntityState
from features.tables import TableStream
from features.watchlist import EVIDENCE_THRESHOLD, Watchlist
from scoring.bundle import ModelBundle
from scoring.exams import ExamChoice, ExamContext, ExamHit, ExamPlanner
from scoring.lanes import LaneDecision, LanePolicy
from scoring.reasons import (
    EXPLORATION_REASON,
    LOW_RISK_REASON,
    Reason,
    model_reasons,
    watchlist_reason,
)
from scoring.rules import RuleHit, RuleSet, strongest_lane
from scoring.settings import CoreSettings
from scoring.shadow import Shadow, ShadowScore, ShadowScores

# The lanes whose decisions carry model reasons: the ones an inspector acts on.
EXPLAINED_LANES = frozenset({"red", "yellow"})


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
    """What the scorer made of one shipment: its calibrated score, the lane the port's policy
    gave it (with the propensity of that choice), the reasons and hits an inspector reads,
    the features it was scored on, the rules that fired and the exam recommended; and, when a
    shadow model is scored beside the serving one, what it made of the shipment."""

    shipment_id: str
    port_of_entry: str
    risk_score: float
    lane: str
    random_selection: bool
    propensity: float
    reasons: tuple[Reason, ...]
    watchlist_hits: tuple[HitRef, ...]
    features: Mapping[str, float]  # by name, schema order (features.build.FeatureRow)
    rules_fired: tuple[str, ...] = ()
    exam: str = ""  # recommended exam (scoring.exams.EXAMS); "" when GREEN
    exam_reason: Reason | None = None
    thresholds: tuple[float, float] = (1.0, 1.0)  # the model's (RED, YELLOW) thresholds used
    shadow: ShadowScore | None = None  # the shadow model's score and lane (scoring.shadow)


@dataclass(frozen=True)
class ScoredBatch:
    scored: list[Scored]
    keyed: Keyed  # what the entity state remembers of the batch
    features: FeatureBlock


@dataclass(frozen=True)
class Scorer:
    """One consistent serving snapshot: model, watchlist, hard rules and lane policy, and the
    shadow model scored beside the model, if any (live batches only)."""

    bundle: ModelBundle
    watchlist: Watchlist
    rules: RuleSet
    policy: LanePolicy
    exams: ExamPlanner = field(default_factory=ExamPlanner)  # stateful: capacity per port
    shadow: Shadow | None = None

    @classmethod
    def create(
        cls,
        bundle: ModelBundle,
        watchlist: Watchlist,
        rules: RuleSet,
        settings: CoreSettings,
        policy: LanePolicy | None = None,
        *,
        exams: ExamPlanner | None = None,
        shadow: ModelBundle | None = None,
    ) -> Scorer:
        """A scorer with the lane budgets and exploration seed of ``settings``.

        ``policy`` is the serving lane policy to keep (its windows restart from this bundle's
        reference distribution); without one, a fresh policy (a bulk run's own). ``shadow``:
        a bundle to score live batches with beside ``bundle`` (:mod:`scoring.shadow`)."""
        if policy is None:
            policy = LanePolicy(
                bundle.meta.score_quantiles, settings.lane_budgets, settings.exploration_seed
            )
        else:
            policy.rebase(bundle.meta.score_quantiles)
        if exams is None:  # the serving planner is kept across reloads (ScoringService.exams)
            exams = ExamPlanner(settings.exam_capacity)
        beside = Shadow.beside(shadow, bundle.meta) if shadow is not None else None
        return cls(bundle, watchlist, rules, policy, exams, beside)

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
        """Live features: the kernels of :mod:`features.build` on the batch's records, entity
        history from ``state``; no polars plan on the way."""
        declarations = Declarations.from_shipments(shipments, self.watchlist)
        basics = stage_one(declarations, self.watchlist)
        block = _live_block(basics, state, self.bundle.meta.reference)
        return ScoredFeatures(declarations, block, basics)

    def score_batch(self, shipments: Sequence[Shipment], state: EntityState) -> ScoredBatch:
        """Score live shipments; the caller remembers ``keyed`` in the state afterwards.
        With a shadow, each decision carries its score too (decided by the model alone)."""
        computed = self.features(shipments, state)
        shadow = self._shadow_features(computed, state)
        scored = self.decide(shipments, computed, shadow=shadow) if shipments else []
        return ScoredBatch(scored, computed.keyed, computed.block)

    def _shadow_features(self, computed: ScoredFeatures, state: EntityState) -> Array | None:
        """The shadow's feature matrix of a live batch (None without a shadow): stage one is
        the batch's, history and the last stage are measured against the shadow's own
        reference (the serving matrix itself when the two references are equal)."""
        if self.shadow is None:
            return None
        reference = self.shadow.reference
        if reference == self.bundle.meta.reference:
            return computed.block.matrix
        return _live_block(computed.basics, state, reference).matrix

    def score_tables(
        self, shipments: pl.DataFrame, goods: pl.DataFrame, inspections: pl.DataFrame
    ) -> list[Scored]:
        """Bulk: every shipment of canonical tables, each with the history the tables hold
        before it, through the same decision code (rules and lanes) as live scoring."""
        computed = table_features(
            shipments, goods, inspections, self.watchlist, self.bundle.meta.reference
        )
        return self.decide(
            shipments_from_frames(shipments, goods),
            ScoredFeatures(computed.declarations, computed.block, computed.basics),
        )

    def score_stream(self, stream: TableStream) -> Iterator[list[Scored]]:
        """Bulk with bounded memory: the decisions of each chunk of ``stream`` in turn, each
        shipment with the history the whole tables hold before it, as :meth:`score_tables`.

        Two passes over the stream: the first keeps only what history needs of every shipment
        (ids, times, entity keys, route families: :class:`Keyed`) and runs the bulk history
        kernels once over all of it; the second computes the rest of each chunk's features
        again, joins its slice of the history and decides. Memory holds the keys and history
        of the table, and one chunk of everything else.
        """
        reference = self.bundle.meta.reference
        keyed = Keyed.concat(
            [
                stage_one(
                    Declarations.from_tables(c.shipments, c.goods, self.watchlist), self.watchlist
                ).keyed
                for c in stream.chunks()
            ]
        )
        outcomes = keyed_outcomes(keyed.keys_frame(), stream.inspections)
        history = history_features(
            keyed, outcomes, reference.prior_rate, reference.smoothing_strength
        )
        del keyed, outcomes
        start = 0
        for chunk in stream.chunks():
            declarations = Declarations.from_tables(chunk.shipments, chunk.goods, self.watchlist)
            basics = stage_one(declarations, self.watchlist)
            end = start + len(basics)
            block = finish(basics, {k: v[start:end] for k, v in history.items()}, reference)
            start = end
            yield self.decide(
                shipments_from_frames(chunk.shipments, chunk.goods),
                ScoredFeatures(declarations, block, basics),
                threads=0,
            )

    def decide(
        self,
        shipments: Sequence[Shipment],
        computed: ScoredFeatures,
        *,
        threads: int = 1,
        shadow: Array | None = None,
    ) -> list[Scored]:
        """Scores, hard rules, lanes and reasons for shipments whose features are computed
        (``computed`` rows in the order of ``shipments``); LightGBM uses ``threads`` threads
        (0: all cores, for bulk runs). ``shadow``: the shadow model's features of the same rows,
        to score with it beside (this scorer's :attr:`shadow`); it changes no decision.

        Model reasons (SHAP contributions) are computed only for the shipments an inspector
        acts on, RED and YELLOW: a GREEN one is released, and its reasons say so (with any
        rule or watchlist finding). Its features are in the ledger to explain it later."""
        matrix = computed.block.matrix
        scores = self.bundle.predict(matrix, threads=threads)
        beside = self._beside(shipments, shadow, threads)
        fired = self.rules.evaluate_batch(
            shipments, computed.declarations, computed.block, self.watchlist
        )
        rule_lanes = [strongest_lane("green", f) for f in fired]
        score_list: list[float] = scores.tolist()  # the floats float(scores[row]) gives
        decided = (
            self.policy.decide_many(
                [s.port_of_entry for s in shipments],
                score_list,
                [s.shipment_id for s in shipments],
                rule_lanes,
                [s.declared_at for s in shipments],
            )
            if beside is None
            else [None] * len(shipments)
        )
        judged = [
            self._judge(shipment, computed, row, score_list[row], fired[row], decided[row], beside)
            for row, shipment in enumerate(shipments)
        ]
        explained = [row for row, j in enumerate(judged) if j.decided.lane in EXPLAINED_LANES]
        contributions = self.bundle.contributions(matrix[explained], threads=threads)
        contribution_of = dict(zip(explained, contributions.tolist(), strict=True))
        return [
            _scored(shipment, j, contribution_of.get(row))
            for row, (shipment, j) in enumerate(zip(shipments, judged, strict=True))
        ]

    def _beside(
        self, shipments: Sequence[Shipment], shadow: Array | None, threads: int
    ) -> ShadowScores | None:
        """The shadow's scores of the batch from its features ``shadow`` (None: no shadow)."""
        if shadow is None or self.shadow is None:
            return None
        ports = [s.port_of_entry for s in shipments]
        return self.shadow.score(shadow, ports, threads=threads)

    def _judge(
        self,
        shipment: Shipment,
        computed: ScoredFeatures,
        row: int,
        score: float,
        fired: tuple[RuleHit, ...],
        decided: LaneDecision | None,
        beside: ShadowScores | None = None,
    ) -> _Judged:
        """Watchlist hits and the exam for one shipment whose rules fired and (without a
        shadow) whose lane is ``decided``; with the shadow's scores ``beside``, the lane is
        decided here beside the shadow's score and lane."""
        values = computed.block.row(row)
        lines = computed.declarations.lines_of(row)
        hits = tuple(
            HitRef(h.entry_id, h.name, h.match_type, h.matched_text, index, h.similarity)
            for index, line in enumerate(lines)
            for h in line.hits
            if h.strength >= EVIDENCE_THRESHOLD
        )
        shadow = None
        if decided is None:
            assert beside is not None
            decided, would = self.policy.decide_beside(
                shipment.port_of_entry,
                score,
                float(beside.serving[row]),
                shipment.shipment_id,
                strongest_lane("green", fired),
                shipment.declared_at,
            )
            shadow = ShadowScore(beside.version, float(beside.scores[row]), would.lane)
        exam = self.exams.recommend(
            ExamContext(
                port=shipment.port_of_entry,
                mode=shipment.mode,
                lane=decided.lane,
                rules_fired=tuple(hit.rule_id for hit in fired),
                hits=tuple(
                    ExamHit(self.watchlist.entry(h.entry_id).kind, h.match_type) for h in hits
                ),
                mismatch_kinds=tuple(m.kind for line in lines for m in line.mismatches),
                random_selection=decided.random_selection,
                features=values,
            )
        )
        return _Judged(score, values, hits, fired, decided, exam, shadow)


class _Judged(NamedTuple):
    """What :meth:`Scorer.decide` found for one shipment before its reasons are written."""

    score: float
    values: FeatureRow
    hits: tuple[HitRef, ...]
    fired: tuple[RuleHit, ...]
    decided: LaneDecision
    exam: ExamChoice | None
    shadow: ShadowScore | None = None


def _scored(shipment: Shipment, j: _Judged, contributions: list[float] | None) -> Scored:
    """The scored record of one shipment: its reasons (rules, watchlist hits, and the model's
    when ``contributions`` were computed for it), lane, exam and thresholds."""
    if j.fired or j.hits or contributions is not None or j.decided.random_selection:
        reasons = _reasons(j, contributions)
    else:  # most shipments: released with nothing found, the one reason shared by all
        reasons = _LOW_RISK_ONLY
    return Scored(
        shipment_id=shipment.shipment_id,
        port_of_entry=shipment.port_of_entry,
        risk_score=j.score,
        lane=j.decided.lane,
        random_selection=j.decided.random_selection,
        propensity=j.decided.propensity,
        reasons=reasons,
        watchlist_hits=j.hits,
        features=j.values,
        rules_fired=tuple([hit.rule_id for hit in j.fired]) if j.fired else (),
        exam=j.exam.exam if j.exam else "",
        exam_reason=j.exam.reason if j.exam else None,
        thresholds=(j.decided.red_threshold, j.decided.yellow_threshold),
        shadow=j.shadow,
    )


_LOW_RISK_ONLY: tuple[Reason, ...] = (LOW_RISK_REASON,)


def _reasons(j: _Judged, contributions: list[float] | None) -> tuple[Reason, ...]:
    """A shipment's reasons: the rules', one per watchlist hit, the model's when
    ``contributions`` were computed, the exploration reason first when it was drawn at
    random, and the low-risk reason when there is no other."""
    reasons = [hit.reason for hit in j.fired]
    reasons += [
        watchlist_reason(h.name, h.match_type, h.goods_index, h.matched_text) for h in j.hits
    ]
    if contributions is not None:
        reasons += model_reasons(dict(zip(FEATURE_NAMES, contributions, strict=True)), j.values)
    if j.decided.random_selection:
        reasons.insert(0, EXPLORATION_REASON)
    if not reasons:
        reasons.append(LOW_RISK_REASON)
    return tuple(reasons)


def _live_block(basics: Basics, state: EntityState, reference: FeatureReference) -> FeatureBlock:
    """The last two stages live: the history of ``basics``' rows from ``state`` and the
    comparison with ``reference``, whose prior rate and smoothing the history uses too."""
    history = state.history_for(basics.keyed, reference.prior_rate, reference.smoothing_strength)
    return finish(basics, history, reference)


@dataclass(frozen=True)
class ScoredFeatures:
    declarations: Declarations  # the batch as the kernels read it, watchlist readings included
    block: FeatureBlock
    basics: Basics  # stage one of the batch, its entity keys included

    @property
    def keyed(self) -> Keyed:
        return self.basics.keyed
