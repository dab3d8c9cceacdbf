"""Shadow scoring: a candidate bundle scored beside the serving one, deciding nothing.

With ``shadow_model`` set, :class:`~scoring.service.ScoringService` loads that bundle with the
serving one and the :class:`~scoring.scorer.Scorer` scores every live batch with both: one more
predict per batch, on the batch's features measured against the shadow's own
:class:`~features.build.FeatureReference` (its prior rate, heading norms and party-rate
smoothing), from the same entity history. The serving model decides; the shadow changes no
lane, threshold, window, exam or history. What it leaves is a :class:`ShadowScore` on each
decision: its calibrated score, and the lane the shipment would have had with it.

**The shadow's lane.** Lane thresholds follow each model's own score distribution (a model's
scores are ranked within its port's window), so the shadow's score is first put on the serving
model's scale by matching the two bundles' reference distributions for the port (the score at
the shadow's 99th percentile becomes the serving model's 99th percentile score; ``default`` for
a port without its own), then given to the serving lane policy as it stood for that decision
(:meth:`~scoring.lanes.LanePolicy.decide_beside`): the same thresholds and capacity caps, the
same hard rules (as they fired on the serving features) and the same exploration draw. So the
shadow's lane differs from the decided one only where the two models rank the shipment
differently, and a shadow that is the serving bundle itself agrees on every lane. Where the
two reference distributions are the same, the scales are one and the score is used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from features.build import FeatureReference
from features.declarations import Array
from scoring.bundle import BundleMeta, ModelBundle

DEFAULT = "default"  # the reference distribution of every port without its own

Scale = tuple[Array, Array] | None
"""``np.interp``'s (xp, fp) from a shadow's scores to the serving model's; None: the same."""


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """What the shadow made of one decided shipment: its bundle version, its calibrated score
    and the lane the shipment would have had with that score (see the module documentation)."""

    model_version: str
    risk_score: float
    lane: str


class ShadowScores(NamedTuple):
    """The shadow's scores of a batch: calibrated, and on the serving model's scale."""

    version: str  # the shadow bundle's
    scores: Array
    serving: Array


@dataclass(frozen=True)
class Shadow:
    """A shadow bundle with the map of its scores to the serving model's, port by port."""

    bundle: ModelBundle
    scales: Mapping[str, Scale]  # by port code, DEFAULT for the others

    @classmethod
    def beside(cls, bundle: ModelBundle, serving: BundleMeta) -> Shadow:
        """``bundle`` as the shadow of the serving bundle described by ``serving``."""
        own, theirs = bundle.meta.score_quantiles, serving.score_quantiles
        ports = set(own) | set(theirs)
        return cls(
            bundle,
            {p: _scale(own.get(p, own[DEFAULT]), theirs.get(p, theirs[DEFAULT])) for p in ports},
        )

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def reference(self) -> FeatureReference:
        return self.bundle.meta.reference

    def score(self, matrix: Array, ports: Sequence[str], *, threads: int = 1) -> ShadowScores:
        """Calibrated scores of the feature ``matrix`` (the shadow's own features; one row per
        shipment, at ``ports``), one predict for the batch, and each on the serving scale."""
        scores = self.bundle.predict(matrix, threads=threads)
        serving = np.array(scores, dtype=np.float64)
        for port in set(ports):
            scale = self.scales.get(port, self.scales[DEFAULT])
            if scale is not None:
                rows = np.fromiter((p == port for p in ports), dtype=bool, count=len(ports))
                serving[rows] = np.interp(scores[rows], *scale)
        return ShadowScores(self.version, scores, serving)


def _scale(own: Sequence[float], serving: Sequence[float]) -> Scale:
    """The map from scores of a model whose reference quantiles are ``own`` to the score at the
    same level of ``serving`` (piecewise linear between quantiles, flat beyond the ends); None
    when the two are the same distribution. A score the grid repeats (a plateau of the
    calibration) maps from the highest level it holds."""
    mine = np.asarray(own, dtype=np.float64)
    theirs = np.asarray(serving, dtype=np.float64)
    if np.array_equal(mine, theirs):
        return None
    values, first_from_top = np.unique(mine[::-1], return_index=True)
    levels = (len(mine) - 1 - first_from_top) / (len(mine) - 1)
    return values, np.interp(levels, np.linspace(0.0, 1.0, len(theirs)), theirs)
