"""The transport-free scoring service: what the gRPC servicers call.

It owns the serving state (the current :class:`~scoring.scorer.Scorer`), validates shipments,
turns scores into decisions, and reloads the model or the watchlist atomically: a failed reload
raises and leaves the versions already serving in place.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from features.errors import Unavailable
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.state import EntityState
from features.watchlist import Watchlist, load_watchlist
from scoring.bundle import ModelBundle
from scoring.lanes import LanePolicy
from scoring.reasons import Reason
from scoring.registry import Registry
from scoring.scorer import HitRef, Scored, Scorer
from scoring.settings import Settings
from scoring.validation import validate_shipment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    shipment_id: str
    port_of_entry: str
    risk_score: float
    lane: str
    random_selection: bool
    propensity: float
    reasons: tuple[Reason, ...]
    watchlist_hits: tuple[HitRef, ...]
    model_version: str
    watchlist_version: str


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model_version: str
    trained_at: datetime
    feature_names: tuple[str, ...]
    watchlist_version: str
    metrics: dict[str, float]
    code_version: str


class ScoringService:
    """Serving state and the operations on it. Safe to call from several threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings.registry_dir)
        self._lock = threading.Lock()  # serialises reloads; scoring reads self._scorer lock-free
        self._scorer: Scorer | None = None
        self._watchlist: Watchlist | None = None
        self.state: EntityState | None = None

    @property
    def ready(self) -> bool:
        return self._scorer is not None

    def _require(self) -> Scorer:
        scorer = self._scorer
        if scorer is None:
            raise Unavailable("no model loaded yet; the service is starting")
        return scorer

    def load(self) -> Scorer:
        """Load the watchlist and the configured model; raises and keeps state on failure."""
        with self._lock:
            watchlist = self._watchlist or load_watchlist(self.settings.watchlist_file)
            bundle = self.registry.load(self.settings.model_version)
            if self.state is None:
                self.state = EntityState.from_data_dir(self.settings.data_dir)
                log.info(
                    "entity history loaded",
                    extra={"shipments": self.state.shipments, "outcomes": self.state.outcomes},
                )
            self._watchlist = watchlist
            self._scorer = Scorer(bundle, watchlist, self._policy(bundle))
            log.info(
                "model loaded",
                extra={"model_version": bundle.version, "watchlist_version": watchlist.version},
            )
            return self._scorer

    def reload_model(self) -> Scorer:
        return self.load()

    def reload_watchlist(self) -> Watchlist:
        with self._lock:
            watchlist = load_watchlist(self.settings.watchlist_file)
            self._watchlist = watchlist
            if self._scorer is not None:
                self._scorer = dataclasses.replace(self._scorer, watchlist=watchlist)
            log.info("watchlist loaded", extra={"watchlist_version": watchlist.version})
            return watchlist

    @property
    def versions(self) -> tuple[str, str]:
        """(model version, watchlist version); empty strings for what is not loaded."""
        scorer = self._scorer
        watchlist = self._watchlist
        return (
            scorer.model_version if scorer else "",
            watchlist.version if watchlist else "",
        )

    def score(self, shipments: Sequence[Shipment]) -> list[Decision]:
        """Validate and score a batch; any invalid shipment raises before anything is scored."""
        for shipment in shipments:
            validate_shipment(shipment, self.settings.max_goods_lines)
        scorer = self._require()
        state = self.state
        assert state is not None
        batch = scorer.score_batch(shipments, state)
        state.add_shipments(batch.basics)
        return [self._decide(scorer, s) for s in batch.scored]

    def _policy(self, bundle: ModelBundle) -> LanePolicy:
        return LanePolicy(
            bundle.meta.score_quantiles, self.settings.lane_budgets, self.settings.exploration_seed
        )

    def _decide(self, scorer: Scorer, scored: Scored) -> Decision:
        return Decision(
            decision_id=uuid.uuid4().hex,
            shipment_id=scored.shipment_id,
            port_of_entry=scored.port_of_entry,
            risk_score=scored.risk_score,
            lane=scored.lane,
            random_selection=scored.random_selection,
            propensity=scored.propensity,
            reasons=scored.reasons,
            watchlist_hits=scored.watchlist_hits,
            model_version=scorer.model_version,
            watchlist_version=scorer.watchlist_version,
        )

    def model_info(self) -> ModelInfo:
        scorer = self._require()
        meta = scorer.bundle.meta
        return ModelInfo(
            model_version=meta.version,
            trained_at=meta.trained_at,
            feature_names=FEATURE_NAMES,
            watchlist_version=scorer.watchlist_version,
            metrics=dict(meta.metrics),
            code_version=meta.code_version,
        )
