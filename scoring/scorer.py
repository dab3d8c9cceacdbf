"""Score a batch of validated shipments with one model bundle and one watchlist.

A :class:`Scorer` is immutable: reloading the model or the watchlist builds a new one and swaps
it in whole, so a request is always scored by one consistent pair. One shipment is a batch of
one; the bulk ``centinela score`` command passes thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.build import build_features, feature_matrix
from features.live import shipment_frames
from features.records import Shipment
from features.schema import FEATURE_NAMES
from features.watchlist import Watchlist
from scoring.bundle import ModelBundle
from scoring.reasons import Reason, model_reasons, watchlist_reason

LANES = ("red", "yellow", "green")


@dataclass(frozen=True, slots=True)
class HitRef:
    """A watchlist hit located in a shipment's goods lines."""

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
    reasons: tuple[Reason, ...]
    watchlist_hits: tuple[HitRef, ...]
    features: dict[str, float]


@dataclass(frozen=True)
class Scorer:
    bundle: ModelBundle
    watchlist: Watchlist

    @property
    def model_version(self) -> str:
        return self.bundle.version

    @property
    def watchlist_version(self) -> str:
        return str(self.watchlist.version)

    def lane_for(self, port: str, score: float) -> str:
        t = self.bundle.meta.thresholds(port)
        if score >= t.red:
            return "red"
        if score >= t.yellow:
            return "yellow"
        return "green"

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """Risk scores for a feature frame from :func:`features.build.build_features`."""
        matrix = feature_matrix(features)
        return np.asarray(self.bundle.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def _hits(self, shipment: Shipment) -> tuple[HitRef, ...]:
        hits: list[HitRef] = []
        for i, line in enumerate(shipment.goods):
            found = self.watchlist.match_line(line.hs_code, line.description, line.cas_numbers)
            hits.extend(
                HitRef(h.entry_id, h.name, h.match_type, h.matched_text, i, h.similarity)
                for h in found.hits
            )
        return tuple(hits)

    def score_batch(self, shipments: Sequence[Shipment]) -> list[Scored]:
        if not shipments:
            return []
        ship, goods = shipment_frames(shipments)
        features = build_features(ship, goods)
        matrix = feature_matrix(features)
        booster = self.bundle.booster
        scores = np.asarray(booster.predict(matrix, num_threads=1), dtype=np.float64)
        contributions = np.asarray(
            booster.predict(matrix, pred_contrib=True, num_threads=1), dtype=np.float64
        )
        out = []
        for row, shipment in enumerate(shipments):
            values = dict(zip(FEATURE_NAMES, matrix[row].tolist(), strict=True))
            contrib = dict(zip(FEATURE_NAMES, contributions[row, :-1].tolist(), strict=True))
            hits = self._hits(shipment)
            reasons = [
                watchlist_reason(h.name, h.match_type, h.goods_index, h.matched_text) for h in hits
            ]
            reasons += model_reasons(contrib, values)
            score = float(scores[row])
            out.append(
                Scored(
                    shipment_id=shipment.shipment_id,
                    port_of_entry=shipment.port_of_entry,
                    risk_score=score,
                    lane=self.lane_for(shipment.port_of_entry, score),
                    reasons=tuple(reasons),
                    watchlist_hits=hits,
                    features=values,
                )
            )
        return out
