"""Score a batch of validated shipments with one model bundle and one watchlist.

A :class:`Scorer` is immutable: reloading the model or the watchlist builds a new one and swaps
it in whole, so a request is always scored by one consistent pair. One shipment is a batch of
one. Entity history comes from the live :class:`~features.state.EntityState` through the same
feature code the bulk path runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import numpy as np
import polars as pl

from features.build import (
    Basics,
    Declarations,
    FeatureBlock,
    FeatureReference,
    finish,
    keyed_outcomes,
    stage_one,
    table_features,
)
from features.declarations import Array
from features.history import Keyed, history_features
from features.kept import load_stage_one
from features.live import shipments_from_frames
from features.records import Shipment
from features.state import EntityState
from features.tables import TableChunk, TableStream
from features.watchlist import Watchlist
from scoring.bulk import FirstPass, first_pass, read_ahead
from scoring.bundle import ModelBundle
from scoring.exams import ExamContext, ExamHit, ExamPlanner
from scoring.lane_process import LaneColumns, LaneProcess, LaneRequest
from scoring.lanes import LaneDecision, LanePolicy
from scoring.reasons import Reason
from scoring.rules import RuleHit, RuleSet, strongest_lane
from scoring.settings import CoreSettings
from scoring.shadow import Shadow, ShadowScore, ShadowScores
from scoring.verdicts import (
    EXPLAINED_LANES,
    Decided,
    HitRef,
    explained_rows,
    reasons_for,
    strongest_contributions,
    watchlist_hits,
)

_BOOSTER = threading.Lock()
"""Held around each LightGBM call of a bulk run (:meth:`Scorer.decide_stream` predicts the next
chunk in a thread): one call at a time on the booster, which is not safe to share between
concurrent predictions of different kinds."""

__all__ = [
    "EXPLAINED_LANES",
    "HitRef",
    "Scored",
    "ScoredBatch",
    "ScoredFeatures",
    "Scorer",
]


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

    def score_stream(
        self, stream: TableStream, first: FirstPass | None = None
    ) -> Iterator[list[Scored]]:
        """Bulk with bounded memory: the decisions of each chunk of ``stream`` in turn, each
        shipment with the history the whole tables hold before it, as :meth:`score_tables`
        (features from :meth:`stream_features`)."""
        features = self.stream_features(stream, first)
        del first  # the first pass's keys: freed once history is computed from them
        for chunk, computed in features:
            yield self.decide(
                shipments_from_frames(chunk.shipments, chunk.goods), computed, threads=0
            )

    def decide_stream(
        self, stream: TableStream, first: FirstPass | None = None
    ) -> Iterator[Decided]:
        """:meth:`score_stream` column-wise (:meth:`decide_table`): what ``centinela score``
        writes, without a record per shipment."""
        features = self.stream_features(stream, first)
        del first

        def predicted(item: tuple[TableChunk, ScoredFeatures]) -> _Predicted:
            with _BOOSTER:
                return _Predicted(*item, self.bundle.predict(item[1].block.matrix, threads=0))

        # Each chunk's features and scores are made while the one before is decided; its lanes
        # are decided in the lane process, then its SHAP contributions computed in a thread,
        # while this thread finishes the chunk before and fires the rules of the next.
        with ThreadPoolExecutor(1, "explain") as explain, LaneProcess(self.policy) as lanes:
            waiting: tuple[ScoredFeatures, _Ruled, Future[_Explained]] | None = None
            for chunk, computed, scores in read_ahead(map(predicted, features)):
                ruled = self._rules_of(chunk.shipments, chunk.goods, computed, 0, scores)
                deciding = lanes.decide_at(ruled.lane_inputs())
                explaining = explain.submit(self._explained, computed, deciding)
                if waiting is not None:
                    yield self._after_lanes(waiting[0], waiting[1], *waiting[2].result())
                waiting = (computed, ruled, explaining)
            if waiting is not None:
                yield self._after_lanes(waiting[0], waiting[1], *waiting[2].result())

    def _explained(self, computed: ScoredFeatures, deciding: Future[LaneColumns]) -> _Explained:
        """A bulk chunk's lanes once decided, and the contributions of its RED and YELLOW rows."""
        decided = deciding.result()
        with _BOOSTER:  # the next chunk may be predicted meanwhile
            return _Explained(decided, self._contributions(computed.block.matrix, decided, 0))

    def stream_features(
        self, stream: TableStream, first: FirstPass | None = None
    ) -> Iterator[tuple[TableChunk, ScoredFeatures]]:
        """Each chunk of ``stream`` with its features, each shipment with the history the whole
        tables hold before it.

        Two passes over the stream: the first (:func:`first_pass`; ``first``, when given, is
        what it gave for this stream and this scorer's watchlist) keeps what history needs of
        every shipment, and the bulk history kernels run once over all of it; the second joins
        each chunk's slice of the history to the chunk's declarations and stage one, which the
        first pass kept in files or else are computed again. Memory holds the keys and history
        of the table, and one chunk of everything else.
        """
        reference = self.bundle.meta.reference
        if first is None:
            first = first_pass(stream, self.watchlist)
        keyed, kept = first.keyed, first.kept
        del first
        outcomes = keyed_outcomes(keyed.keys_frame(), stream.inspections)
        history = history_features(
            keyed, outcomes, reference.prior_rate, reference.smoothing_strength
        )
        del keyed, outcomes
        start = 0
        for index, chunk in enumerate(read_ahead(stream.chunks())):
            if kept:
                declarations, basics = load_stage_one(kept[index])
            else:
                declarations = Declarations.from_tables(
                    chunk.shipments, chunk.goods, self.watchlist
                )
                basics = stage_one(declarations, self.watchlist)
            end = start + len(basics)
            block = finish(basics, {k: v[start:end] for k, v in history.items()}, reference)
            start = end
            yield chunk, ScoredFeatures(declarations, block, basics)

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
        rows = self.rules.candidate_rows(computed.declarations, computed.block.matrix)
        scores, fired = self._score_and_fire(
            rows, [shipments[row] for row in rows], computed, threads
        )
        rule_lanes = [strongest_lane("green", f) for f in fired]
        beside = self._beside(shipments, shadow, threads)
        shadows: list[ShadowScore | None] = [None] * len(shipments)
        if beside is None:
            decided = self.policy.decide_many(
                [s.port_of_entry for s in shipments],
                scores,
                [s.shipment_id for s in shipments],
                rule_lanes,
                [s.declared_at for s in shipments],
            )
        else:
            decided = []
            for row, shipment in enumerate(shipments):
                lane, would = self.policy.decide_beside(
                    shipment.port_of_entry,
                    scores[row],
                    float(beside.serving[row]),
                    shipment.shipment_id,
                    rule_lanes[row],
                    shipment.declared_at,
                )
                decided.append(lane)
                shadows[row] = ShadowScore(beside.version, float(beside.scores[row]), would.lane)
        hits = watchlist_hits(computed.declarations)
        columns = LaneColumns.of(decided)
        contribution_of = self._contributions(computed.block.matrix, columns, threads)
        return [
            self._scored(
                shipment,
                computed,
                row,
                _Judged(scores[row], fired[row], decided[row], hits.get(row, ()), shadows[row]),
                contribution_of.get(row),
            )
            for row, shipment in enumerate(shipments)
        ]

    def decide_table(
        self,
        shipments: pl.DataFrame,
        goods: pl.DataFrame,
        computed: ScoredFeatures,
        *,
        threads: int = 0,
        scores: Array | None = None,
    ) -> Decided:
        """:meth:`decide` for canonical rows (``computed`` from these tables, in their order)
        without a record per shipment: the same scores, rules, lanes and reasons, column-wise
        (:class:`~scoring.verdicts.Decided`). Shipment records are built only for the rows a
        hard rule may fire on, reasons only for the rows with more than the low-risk one, and
        no exam is recommended (a bulk run writes none). ``scores``: the model's scores of these
        rows when already predicted (:meth:`decide_stream` predicts the next chunk ahead)."""
        ruled = self._rules_of(shipments, goods, computed, threads, scores)
        decided = LaneColumns.of(self.policy.decide_at(*ruled.lane_inputs()))
        with _BOOSTER:  # the next chunk may be predicted meanwhile
            contribution_of = self._contributions(computed.block.matrix, decided, threads)
        return self._after_lanes(computed, ruled, decided, contribution_of)

    def _rules_of(
        self,
        shipments: pl.DataFrame,
        goods: pl.DataFrame,
        computed: ScoredFeatures,
        threads: int,
        scores: Array | None,
    ) -> _Ruled:
        """:meth:`decide_table` up to the lanes: scores and the hard rules fired. Shipment
        records are built only for the rows a hard rule may fire on."""
        d = computed.declarations
        rows = self.rules.candidate_rows(d, computed.block.matrix)
        chosen = shipments[rows]
        records = shipments_from_frames(
            chosen, goods.filter(pl.col("shipment_id").is_in(chosen["shipment_id"].implode()))
        )
        listed, fired = self._score_and_fire(rows, records, computed, threads, scores)
        return _Ruled(
            cast(list[str], d.port_of_entry),
            listed,
            d.shipment_id,
            fired,
            (d.declared_at / 1e6).tolist(),  # exactly datetime.timestamp() of each time
        )

    def _after_lanes(
        self,
        computed: ScoredFeatures,
        ruled: _Ruled,
        decided: LaneColumns,
        contribution_of: dict[int, dict[str, float]],
    ) -> Decided:
        """:meth:`decide_table` from the lanes and the contributions of the RED and YELLOW rows
        on: watchlist hits, and reasons only for the rows with more than the low-risk one."""
        fired = ruled.fired
        hits = watchlist_hits(computed.declarations)
        special = {row for row, f in enumerate(fired) if f} | hits.keys() | contribution_of.keys()
        special.update(np.flatnonzero(decided.random_selection).tolist())
        reasons = {
            row: reasons_for(
                fired[row],
                hits.get(row, ()),
                contribution_of.get(row),
                computed.block.row(row),
                bool(decided.random_selection[row]),
            )
            for row in sorted(special)
        }
        return Decided(
            shipment_id=ruled.shipment_ids,
            port_of_entry=ruled.ports,
            risk_score=np.asarray(ruled.scores, dtype=np.float64),
            decisions=decided,
            rules_fired={row: tuple(h.rule_id for h in f) for row, f in enumerate(fired) if f},
            watchlist_hits=hits,
            reasons=reasons,
        )

    def _score_and_fire(
        self,
        rows: Sequence[int],
        records: Sequence[Shipment],
        computed: ScoredFeatures,
        threads: int,
        scores: Array | None = None,
    ) -> tuple[list[float], list[tuple[RuleHit, ...]]]:
        """The batch's calibrated scores (the floats ``float(scores[row])`` gives; predicted
        unless given) and the hard rules fired for each row; ``records`` are the shipments of
        the rules' candidate ``rows`` (:meth:`~scoring.rules.RuleSet.candidate_rows`)."""
        if scores is None:
            scores = self.bundle.predict(computed.block.matrix, threads=threads)
        fired = self.rules.evaluate_rows(
            rows, records, computed.declarations, computed.block, self.watchlist
        )
        return scores.tolist(), fired

    def _contributions(
        self, matrix: Array, decided: LaneColumns, threads: int
    ) -> dict[int, dict[str, float]]:
        """The strongest SHAP contributions of the RED and YELLOW rows
        (:func:`~scoring.verdicts.strongest_contributions`), by row: one call for the batch."""
        explained = explained_rows(decided)
        contributions = self.bundle.contributions(matrix[explained], threads=threads)
        return dict(zip(explained, strongest_contributions(contributions), strict=True))

    def _beside(
        self, shipments: Sequence[Shipment], shadow: Array | None, threads: int
    ) -> ShadowScores | None:
        """The shadow's scores of the batch from its features ``shadow`` (None: no shadow)."""
        if shadow is None or self.shadow is None:
            return None
        ports = [s.port_of_entry for s in shipments]
        return self.shadow.score(shadow, ports, threads=threads)

    def _scored(
        self,
        shipment: Shipment,
        computed: ScoredFeatures,
        row: int,
        j: _Judged,
        contributions: dict[str, float] | None,
    ) -> Scored:
        """The scored record of one shipment: the exam for its lane, its reasons (rules,
        watchlist hits, and the model's when ``contributions`` were computed for it), lane and
        thresholds."""
        values = computed.block.row(row)
        lines = computed.declarations.lines_of(row)
        decided = j.decided
        exam = self.exams.recommend(
            ExamContext(
                port=shipment.port_of_entry,
                mode=shipment.mode,
                lane=decided.lane,
                rules_fired=tuple(hit.rule_id for hit in j.fired),
                hits=tuple(
                    ExamHit(self.watchlist.entry(h.entry_id).kind, h.match_type) for h in j.hits
                ),
                mismatch_kinds=tuple(m.kind for line in lines for m in line.mismatches),
                random_selection=decided.random_selection,
                features=values,
            )
        )
        return Scored(
            shipment_id=shipment.shipment_id,
            port_of_entry=shipment.port_of_entry,
            risk_score=j.score,
            lane=decided.lane,
            random_selection=decided.random_selection,
            propensity=decided.propensity,
            reasons=reasons_for(j.fired, j.hits, contributions, values, decided.random_selection),
            watchlist_hits=j.hits,
            features=values,
            rules_fired=tuple([hit.rule_id for hit in j.fired]) if j.fired else (),
            exam=exam.exam if exam else "",
            exam_reason=exam.reason if exam else None,
            thresholds=(decided.red_threshold, decided.yellow_threshold),
            shadow=j.shadow,
        )


class _Predicted(NamedTuple):
    """A chunk of a bulk run with its features and the model's scores of its rows."""

    chunk: TableChunk
    computed: ScoredFeatures
    scores: Array


class _Explained(NamedTuple):
    """A bulk chunk's lanes and the strongest contributions of its RED and YELLOW rows."""

    decided: LaneColumns
    contribution_of: dict[int, dict[str, float]]


class _Ruled(NamedTuple):
    """A chunk of a bulk run up to its lanes (:meth:`Scorer.decide_table`): each row's port,
    score, id, the hard rules fired and its declared time in seconds since the epoch."""

    ports: list[str]
    scores: list[float]
    shipment_ids: list[str]
    fired: list[tuple[RuleHit, ...]]
    seconds: list[float]

    def lane_inputs(self) -> LaneRequest:
        """The arguments of :meth:`LanePolicy.decide_at` for these rows."""
        rule_lanes = ["green"] * len(self.fired)
        for row, fired in enumerate(self.fired):
            if fired:  # most rows: none fired, and the lane is the model's
                rule_lanes[row] = strongest_lane("green", fired)
        return self.ports, self.scores, self.shipment_ids, rule_lanes, self.seconds


class _Judged(NamedTuple):
    """What :meth:`Scorer.decide` found for one shipment before its exam and reasons."""

    score: float
    fired: tuple[RuleHit, ...]
    decided: LaneDecision
    hits: tuple[HitRef, ...]
    shadow: ShadowScore | None = None


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
