"""Off-policy evaluation: what another selection would have caught, estimated from the log.

A logged shipment carries its port, whether it was inspected, what the inspection found, the
``propensity`` (the probability that the logging policy in force inspected it, recorded when it
was decided: :mod:`scoring.lanes`) and whether exploration picked it. A challenger's selection
``S`` (each port's top ``ceil(share * n_port)`` by its score: :func:`select_at_capacity`)
mostly holds shipments nobody inspected; weighting each inspected shipment by ``1/p`` stands it
in for the ``1/p`` shipments like it, so sums over ``S`` are estimated without bias wherever
``p > 0``. With ``I`` inspected, ``Y = I & positive`` and ``m`` a predicted probability:

- ``ips`` (Horvitz-Thompson): caught ``sum_S I*Y/p``, positives ``sum_all I*Y/p``.
- ``snips`` (self-normalised): caught ``|S| * sum_S I*Y/p / sum_S I/p``, positives
  ``n * sum_all I*Y/p / sum_all I/p``; biased by O(1/n) but steadier when weights vary.
- ``dr`` (doubly robust, when the log has ``predicted``): caught
  ``sum_S [m + I/p (Y - m)]``, positives the same over all rows. For one shipment with a
  right propensity, ``E[I/p] = 1`` over the logging policy's draw, so
  ``E[m + I/p (Y - m)] = m + (Y - m) = Y`` whatever ``m`` is, as long as ``m`` depends neither
  on that draw nor on the outcome: fixed before both, as the champion's logged calibrated score
  was (a model fitted on this log's outcomes would not be). ``m`` therefore cannot bias DR; it
  only moves the variance, ``sum (1 - p)/p (Y - m)^2`` against IPS's ``sum (1 - p)/p Y^2``,
  smaller the closer ``m`` is to the outcomes. Where ``p = 0`` DR's term is ``m`` alone and
  carries ``m``'s error; IPS and SNIPS miss those shipments entirely (:func:`overlap` counts
  them).

Recall is caught over positives, precision caught over ``|S|``, per port and overall (ports
summed: overall recall is the sum of caught over the sum of positives).

``inspected`` must be the event ``propensity`` is the probability of: with the lanes'
propensities, RED or YELLOW (:mod:`training.offpolicy_log`, where :class:`Logged` is checked).

**Intervals.** The figures are about the logged shipments: they and the selections are fixed,
and the only randomness is which shipments the logging policy drew for inspection (independent
draws with the recorded probabilities). Each interval is the central ``level`` percentile
interval over ``replicates`` generalised-bootstrap replicates for Poisson sampling (Beaumont and
Patak, 2012): inspected shipment ``i`` gets the weight ``1 + sqrt(1 - p_i) (P - 1)`` with
``P ~ Poisson(1)``, mean 1 and variance ``1 - p_i``, so the replicates' variance of a sum is the
Horvitz-Thompson variance estimate ``sum I (1 - p)/p^2 t^2``; ratios (recall, precision, the
self-normalised figures) are taken within each replicate. A shipment inspected for certain
(``p = 1``: a rule, a score clearly above the threshold) keeps weight 1: what it held is known,
not estimated. Only shipments inspected with ``p < 1`` draw weights, in chunks of
:data:`CHUNK_DRAWS`, and every quantity outside them (``|S|``, ``n``, ``sum m``) is fixed, so a
million-row log costs what its explored inspections cost. The intervals leave out how other
traffic (next month's) would differ from the logged shipments. Replicates depend on the seed
and the log alone, not on the selections: on one log a shipment draws the same weights in
every call, so two selections are compared on the same replicates (:func:`compare`, paired).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Final, Unpack

import numpy as np

from features.errors import DataError
from training.evaluation_metrics import budget_size
from training.offpolicy_log import Logged, check_flags, check_floats, check_ports, forbid
from training.offpolicy_record import (
    ESTIMATORS,
    OVERALL,
    Bootstrap,
    BootstrapOptions,
    Catch,
    Comparison,
    Comparisons,
    Difference,
    Estimate,
    Estimates,
    Figure,
)

__all__ = [
    "ESTIMATORS",
    "OVERALL",
    "Bootstrap",
    "BootstrapOptions",
    "Catch",
    "Comparison",
    "Comparisons",
    "Difference",
    "Estimate",
    "Estimates",
    "Figure",
    "Logged",
    "compare",
    "estimate",
    "overlap",
    "realised",
    "select_at_capacity",
]

DEFAULT_SHARE: Final[str] = "default"
"""The key of a share mapping that applies to every port without its own (as lane budgets)."""
CHUNK_DRAWS: Final[int] = 4_000_000
"""Bootstrap weights drawn at once (replicates x shipments inspected with p < 1), 32 MB as
float64: the memory bound of the bootstrap whatever the log's size."""

MIN_EXPLORED: Final[int] = 100
"""Fewer explored inspections than this and the weights rest on too few random draws."""
MIN_EXPLORED_POSITIVES: Final[int] = 10
"""Fewer explored positives than this and the positives outside the policy's picks are guessed
from a handful."""
MAX_WEIGHT: Final[float] = 1_000.0
"""An inspected shipment weighing more than this (propensity below 1/1000) stands in for so many
that one positive among such rows moves an estimate by more than this many positives."""
MIN_EFFECTIVE_POSITIVES: Final[float] = 10.0
"""Kish effective number of the weighted positive terms an estimate should rest on at least."""


# --------------------------------------------------------------------------- selections


def select_at_capacity(
    scores: np.ndarray, ports: np.ndarray, share: float | Mapping[str, float]
) -> np.ndarray:
    """Each port's top ``ceil(share * n_port)`` shipments by ``scores`` (a boolean mask).

    ``share`` is one share for every port or a mapping port -> share, whose
    :data:`DEFAULT_SHARE` entry covers ports without their own. Ties at the cut go to the
    earlier rows, so the same input always selects the same shipments.
    """
    port = check_ports("ports", ports)
    score = check_floats("scores", scores, len(port))
    names, index = np.unique(port, return_inverse=True)
    sizes = np.bincount(index, minlength=len(names))
    capacity = np.array(
        [budget_size(_share(share, str(p)), int(s)) for p, s in zip(names, sizes, strict=True)],
        dtype=np.int64,
    )
    order = np.lexsort((-score, index))  # by port, highest score first; stable on ties
    starts = np.cumsum(sizes) - sizes
    rank = np.empty(len(port), dtype=np.int64)
    rank[order] = np.arange(len(port)) - starts[index[order]]
    selected: np.ndarray = rank < capacity[index]
    return selected


def _share(share: float | Mapping[str, float], port: str) -> float:
    if isinstance(share, Mapping):
        if port in share:
            name, value = f"share[{port!r}]", share[port]
        elif DEFAULT_SHARE in share:
            name, value = f"share[{DEFAULT_SHARE!r}]", share[DEFAULT_SHARE]
        else:
            raise DataError(f"share: no share for port {port!r} and no {DEFAULT_SHARE!r} entry")
    else:
        name, value = "share", share
    if isinstance(value, bool) or not (isinstance(value, Real) and 0 <= value <= 1):
        raise DataError(f"{name}: a share must be a number in [0, 1], got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- sums and replicates

TERMS: Final[int] = 3
"""Weighted terms per inspected shipment: ``Y/p``, ``1/p``, ``(Y - m)/p``."""


@dataclass(frozen=True, slots=True)
class _Sums:
    """Sums over sets of shipments (the first set is the whole log) at each port."""

    count: np.ndarray  # (sets, ports): shipments
    predicted: np.ndarray  # (sets, ports): sum of m
    point: np.ndarray  # (terms, sets, ports): inspected rows' terms, every weight 1
    draws: np.ndarray  # (replicates, terms, sets, ports): under each replicate's weights


def _sums(logged: Logged, sets: Sequence[np.ndarray], bootstrap: Bootstrap) -> _Sums:
    ports, member = len(logged.port_names), np.stack(sets)
    m = logged.predicted if logged.predicted is not None else np.zeros(logged.n)
    rows = np.flatnonzero(logged.inspected)
    p = logged.propensity[rows]
    y = logged.positive[rows].astype(np.float64)
    terms = np.stack([y / p, 1 / p, (y - m[rows]) / p], axis=1)
    cells, inside = logged.port_index[rows], member[:, rows]
    point = _cell_sums(terms, inside, cells, ports)
    drawn = p < 1  # a shipment inspected for certain keeps weight 1 in every replicate
    scaled = terms[drawn] * np.sqrt(1 - p[drawn])[:, None]
    varying = _replicate_sums(scaled, inside[:, drawn], cells[drawn], ports, bootstrap)
    return _Sums(
        count=np.stack([np.bincount(logged.port_index[s], minlength=ports) for s in member]),
        predicted=np.stack(
            [np.bincount(logged.port_index[s], weights=m[s], minlength=ports) for s in member]
        ),
        point=point,
        draws=point[None] + varying,
    )


def _cell_sums(terms: np.ndarray, inside: np.ndarray, cells: np.ndarray, ports: int) -> np.ndarray:
    """(terms, sets, ports) sums of ``terms`` (rows x terms) over each set's rows by port."""
    return np.stack(
        [
            np.stack([np.bincount(cells[s], weights=t[s], minlength=ports) for s in inside])
            for t in terms.T
        ]
    )


def _poisson_noise() -> np.ndarray:
    """``P - 1`` for ``P ~ Poisson(1)`` by inverse CDF at the midpoints of 2^16 equal steps: a
    16-bit random number indexes a draw whose probabilities are within 2^-16 of Poisson's."""
    pmf = np.array([math.exp(-1) / math.factorial(k) for k in range(20)])
    steps = (np.arange(2**16) + 0.5) / 2**16
    return np.searchsorted(np.cumsum(pmf), steps).astype(np.float64) - 1


_NOISE: Final[np.ndarray] = _poisson_noise()


def _replicate_sums(
    scaled: np.ndarray,
    inside: np.ndarray,
    cells: np.ndarray,
    ports: int,
    bootstrap: Bootstrap,
) -> np.ndarray:
    """(replicates, terms, sets, ports) sums of ``(P - 1) * scaled`` (``scaled`` already
    carries ``sqrt(1 - p)``): the random part of each replicate's weighted sums.

    Rows are grouped by port and set membership (a pattern), each group's draws multiplied by
    its terms in one matrix product per chunk of replicates. The draws are made in row order
    whatever the grouping, so a row's weights do not depend on the sets."""
    sets, rows = inside.shape
    replicates = bootstrap.replicates
    out = np.zeros((replicates, TERMS, sets * ports))
    if rows == 0:
        return out.reshape(replicates, TERMS, sets, ports)
    bits = (inside.astype(np.int64) << np.arange(sets)[:, None]).sum(axis=0)
    pattern = cells.astype(np.int64) << sets | bits
    order = np.argsort(pattern, kind="stable")
    keys, starts = np.unique(pattern[order], return_index=True)
    layout = np.zeros((len(keys), sets * ports))  # pattern -> the (set, port) sums it feeds
    for j, key in enumerate(keys):
        for s in range(sets):
            if key >> s & 1:
                layout[j, s * ports + (key >> sets)] = 1.0
    groups = list(itertools.pairwise([*starts.tolist(), rows]))
    ordered = scaled[order]
    rng = np.random.default_rng(bootstrap.seed)
    chunk = max(1, CHUNK_DRAWS // rows)
    for lo in range(0, replicates, chunk):
        hi = min(replicates, lo + chunk)
        noise = _NOISE[rng.integers(0, 2**16, (rows, hi - lo), dtype=np.uint16)][order]
        parts = np.stack([noise[a:b].T @ ordered[a:b] for a, b in groups], axis=2)
        out[lo:hi] = parts @ layout  # (chunk, terms, patterns) -> (chunk, terms, sets x ports)
    return out.reshape(replicates, TERMS, sets, ports)


# --------------------------------------------------------------------------- the estimators


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0."""
    num, den = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _caught(
    estimator: str, sums: np.ndarray, count: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """Each set's estimated positives at each port, (..., sets, ports), from term sums
    (..., terms, sets, ports); the first set's are the log's positives."""
    positives, weight, residual = sums[..., 0, :, :], sums[..., 1, :, :], sums[..., 2, :, :]
    if estimator == "ips":
        return positives
    if estimator == "snips":
        snips: np.ndarray = np.where(count == 0, 0.0, count * _ratio(positives, weight))
        return snips
    dr: np.ndarray = predicted + residual
    return dr


def _interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile of ``draws`` over its first axis, ignoring NaN."""
    tail = (1 - level) / 2
    if not np.isnan(draws).any():
        lower, upper = np.quantile(draws, [tail, 1 - tail], axis=0)
        return lower, upper
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a figure NaN in every replicate
        lower, upper = np.nanquantile(draws, [tail, 1 - tail], axis=0)
    return lower, upper


def _figures(point: np.ndarray, draws: np.ndarray, level: float) -> list[Figure]:
    """One :class:`Figure` per element of ``point`` (flattened), with ``draws``'s interval."""
    lower, upper = _interval(draws, level)
    return [
        Figure.of(v, lo, hi)
        for v, lo, hi in zip(point.ravel(), lower.ravel(), upper.ravel(), strict=True)
    ]


@dataclass(frozen=True, slots=True)
class _Catches:
    """A selection's caught and the log's positives, point and replicates, per port."""

    count: np.ndarray  # (ports,)
    caught: np.ndarray  # (ports,)
    positives: np.ndarray  # (ports,)
    caught_draws: np.ndarray  # (replicates, ports)
    positives_draws: np.ndarray  # (replicates, ports)

    def with_overall(self) -> _Catches:
        """The same with the ports' sum appended as a last column."""

        def add(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, a.sum(axis=-1, keepdims=True)], axis=-1)

        return _Catches(
            *(
                add(a)
                for a in (
                    self.count,
                    self.caught,
                    self.positives,
                    self.caught_draws,
                    self.positives_draws,
                )
            )
        )


def _catches(estimator: str, sums: _Sums, at: int) -> _Catches:
    point = _caught(estimator, sums.point, sums.count, sums.predicted)
    draws = _caught(estimator, sums.draws, sums.count, sums.predicted)
    return _Catches(sums.count[at], point[at], point[0], draws[:, at], draws[:, 0])


def _estimate(name: str, names: tuple[str, ...], c: _Catches, level: float) -> Estimate:
    c = c.with_overall()
    figures = [
        _figures(c.caught, c.caught_draws, level),
        _figures(c.positives, c.positives_draws, level),
        _figures(_ratio(c.caught, c.positives), _ratio(c.caught_draws, c.positives_draws), level),
        _figures(_ratio(c.caught, c.count), _ratio(c.caught_draws, c.count), level),
    ]
    catches = [
        Catch(port, int(count), *(f[i] for f in figures))
        for i, (port, count) in enumerate(zip((*names, OVERALL), c.count, strict=True))
    ]
    return Estimate(name, catches[-1], tuple(catches[:-1]))


def _estimators(logged: Logged) -> tuple[str, ...]:
    return ESTIMATORS if logged.predicted is not None else ESTIMATORS[:2]


def estimate(
    logged: Logged, selected: np.ndarray, **options: Unpack[BootstrapOptions]
) -> Estimates:
    """What the selection ``selected`` (a mask over the log, such as
    ``select_at_capacity(challenger_scores, logged.port, share)``) would have caught, by each
    estimator (``dr`` only when the log has ``predicted``), with :func:`overlap`'s warnings."""
    bootstrap = Bootstrap(**options)
    chosen = check_flags("selected", selected, logged.n)
    sums = _sums(logged, [np.ones(logged.n, dtype=bool), chosen], bootstrap)
    return Estimates(
        tuple(
            _estimate(e, logged.port_names, _catches(e, sums, 1), bootstrap.level)
            for e in _estimators(logged)
        ),
        tuple(overlap(logged, chosen)),
        bootstrap,
    )


def realised(logged: Logged, red: np.ndarray, **options: Unpack[BootstrapOptions]) -> Estimate:
    """What the logging policy's RED shipments (``red``, a mask; every one inspected) found:
    caught is the positives observed among them (exact, no interval to speak of), recall is
    against the ``ips`` estimate of the log's positives, with its interval."""
    bootstrap = Bootstrap(**options)
    chosen = check_flags("red", red, logged.n)
    forbid(chosen & ~logged.inspected, "red", "are RED but not inspected")
    sums = _sums(logged, [np.ones(logged.n, dtype=bool)], bootstrap)
    ports = len(logged.port_names)
    found = np.bincount(
        logged.port_index, weights=(chosen & logged.positive).astype(np.float64), minlength=ports
    )
    ips = _catches("ips", sums, 0)
    exact = _Catches(
        np.bincount(logged.port_index[chosen], minlength=ports),
        found,
        ips.positives,
        np.broadcast_to(found, ips.caught_draws.shape),
        ips.positives_draws,
    )
    return _estimate("realised", logged.port_names, exact, bootstrap.level)


def compare(
    logged: Logged,
    challenger: np.ndarray,
    champion: np.ndarray,
    **options: Unpack[BootstrapOptions],
) -> Comparisons:
    """Challenger minus champion (two selection masks over the log) in caught and recall, by
    each estimator, with intervals from the same replicates (paired): a difference whose lower
    bound is above 0 says the challenger catches more on this log, beyond the draw's noise."""
    bootstrap = Bootstrap(**options)
    sides = (
        check_flags("challenger", challenger, logged.n),
        check_flags("champion", champion, logged.n),
    )
    sums = _sums(logged, [np.ones(logged.n, dtype=bool), *sides], bootstrap)
    out = []
    for e in _estimators(logged):
        ch, cp = _catches(e, sums, 1), _catches(e, sums, 2)
        both = ch.with_overall(), cp.with_overall()
        gap = both[0].caught - both[1].caught
        gap_draws = both[0].caught_draws - both[1].caught_draws
        caught = _figures(gap, gap_draws, bootstrap.level)
        recall = _figures(
            _ratio(gap, both[0].positives),
            _ratio(gap_draws, both[0].positives_draws),
            bootstrap.level,
        )
        names = (*logged.port_names, OVERALL)
        differences = [Difference(p, c, r) for p, c, r in zip(names, caught, recall, strict=True)]
        out.append(
            Comparison(
                e,
                _estimate(e, logged.port_names, ch, bootstrap.level),
                _estimate(e, logged.port_names, cp, bootstrap.level),
                differences[-1],
                tuple(differences[:-1]),
            )
        )
    warned = (*overlap(logged, sides[0], "challenger"), *overlap(logged, sides[1], "champion"))
    return Comparisons(tuple(out), tuple(dict.fromkeys(warned)), bootstrap)


# --------------------------------------------------------------------------- overlap


def _kish(weights: np.ndarray) -> float:
    """Kish's effective sample size of ``weights``: ``(sum w)^2 / sum w^2``."""
    square = float((weights**2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


def overlap(logged: Logged, selected: np.ndarray, name: str = "selection") -> list[str]:
    """Why estimates for ``selected`` (called ``name`` in the sentences) may be unreliable,
    one sentence each, empty when fine: shipments of it the logging policy could never inspect,
    huge weights, positive terms that rest on few effective shipments, too little exploration.
    Thresholds are the module's ``MIN_*`` and ``MAX_*`` constants."""
    chosen = check_flags("selected", selected, logged.n)
    out = []
    blind = int((chosen & (logged.propensity == 0)).sum())
    if blind:
        out.append(
            f"{blind} shipments of the {name} had propensity 0 (the logging policy could never "
            "inspect them): ips and snips leave their positives out (biased low), dr counts "
            "them at the predicted probability"
        )
    inspected = logged.inspected
    weight = np.where(inspected, 1 / np.where(inspected, logged.propensity, 1.0), 0.0)
    heavy = weight > MAX_WEIGHT
    if heavy.any():
        out.append(
            f"{int(heavy.sum())} inspected shipments weigh more than {MAX_WEIGHT:g} "
            f"(largest {weight.max():.4g}, propensity {1 / weight.max():.3g}): each stands in "
            "for that many shipments"
        )
    for what, rows in (("the log's", logged.positive), (f"the {name}'s", logged.positive & chosen)):
        terms = weight[rows]
        effective = _kish(terms)
        if (terms > 1).any() and effective < MIN_EFFECTIVE_POSITIVES:
            out.append(
                f"{what} estimated positives rest on an effective {effective:.1f} positives "
                f"(Kish, of {len(terms)} observed; below {MIN_EFFECTIVE_POSITIVES:g})"
            )
    explored = int(logged.explored.sum())
    found = int((logged.explored & logged.positive).sum())
    if explored < MIN_EXPLORED:
        out.append(f"only {explored} explored inspections (below {MIN_EXPLORED})")
    if found < MIN_EXPLORED_POSITIVES:
        out.append(f"only {found} explored positives (below {MIN_EXPLORED_POSITIVES})")
    return out
