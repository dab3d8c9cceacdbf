"""Off-policy evaluation (training/offpolicy.py) against synthetic worlds whose truth is known.

Each world has every shipment's true label (3% positive). The logging policy inspects each
port's top 3% by a noisy champion score (propensity 1) and explores the rest with a known
probability (propensity ``P_EXPLORE``), as the lanes record them; outcomes exist only for
inspected rows. A challenger with its own score selects each port's top 3%; its true recall is
computed from all labels, which no estimator sees.
"""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from features.errors import DataError
from training.offpolicy import (
    ESTIMATORS,
    MAX_WEIGHT,
    MIN_EXPLORED_POSITIVES,
    OVERALL,
    Bootstrap,
    Logged,
    compare,
    estimate,
    overlap,
    realised,
    select_at_capacity,
)

SHARE = 0.03
P_EXPLORE = 0.2
BASE_RATE = 0.03
PORTS = np.array(["MXLZC", "MXVER", "MXZLO"])
REPS = 100
REPLICATES = 400


@dataclass(frozen=True)
class World:
    logged: Logged
    truth: np.ndarray  # every shipment's label
    challenger: np.ndarray  # the challenger's selection at capacity
    champion: np.ndarray  # the logging policy's model picks (the champion at capacity)


def world(
    seed: int,
    n: int = 6_000,
    challenger_noise: float = 0.5,
    champion_noise: float = 1.0,
    p_explore: float | np.ndarray = P_EXPLORE,
) -> World:
    """A world, its log and both selections. ``p_explore`` may differ by row (0 blinds)."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < BASE_RATE
    port = rng.choice(PORTS, n)
    champion_score = truth + rng.normal(0.0, champion_noise, n)
    challenger_score = truth + rng.normal(0.0, challenger_noise, n)
    picks = select_at_capacity(champion_score, port, SHARE)
    p = np.broadcast_to(p_explore, n)
    explored = ~picks & (rng.random(n) < p)
    inspected = picks | explored
    predicted = 1 / (1 + np.exp(-(2.0 * champion_score - 5.0)))  # fixed before outcomes
    logged = Logged(
        port=port,
        inspected=inspected,
        positive=truth & inspected,
        propensity=np.where(picks, 1.0, p),
        explored=explored,
        predicted=predicted,
    )
    return World(logged, truth, select_at_capacity(challenger_score, port, SHARE), picks)


def true_recall(w: World, selected: np.ndarray) -> float:
    return float(w.truth[selected].sum() / w.truth.sum())


@dataclass(frozen=True)
class Repetitions:
    """Per repetition: truth, and per estimator the recall, its interval and caught."""

    recall: np.ndarray  # (REPS,) the challenger's true recall
    champion_recall: np.ndarray  # (REPS,) the logging policy's picks' true recall
    caught: np.ndarray  # (REPS,) the challenger's true positives caught
    value: dict[str, np.ndarray]
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    caught_value: dict[str, np.ndarray]
    naive: np.ndarray  # observed positives in S: no weights


@cache
def repetitions() -> Repetitions:
    names = (*ESTIMATORS, "realised")
    rows: dict[str, list[tuple[float, float, float, float]]] = {e: [] for e in names}
    truth, champion, caught, naive = [], [], [], []
    for seed in range(REPS):
        w = world(seed)
        truth.append(true_recall(w, w.challenger))
        champion.append(true_recall(w, w.champion))
        caught.append(float(w.truth[w.challenger].sum()))
        naive.append(float(w.logged.positive[w.challenger].sum()))
        found = estimate(w.logged, w.challenger, replicates=REPLICATES, seed=seed)
        got = {e: found[e].overall for e in ESTIMATORS}
        got["realised"] = realised(w.logged, w.champion, replicates=REPLICATES, seed=seed).overall
        for e, c in got.items():
            r = c.recall
            assert r.value is not None
            assert r.lower is not None
            assert r.upper is not None
            assert c.caught.value is not None
            rows[e].append((r.value, r.lower, r.upper, c.caught.value))
    table = {e: np.array(v) for e, v in rows.items()}
    return Repetitions(
        np.array(truth),
        np.array(champion),
        np.array(caught),
        {e: t[:, 0] for e, t in table.items()},
        {e: t[:, 1] for e, t in table.items()},
        {e: t[:, 2] for e, t in table.items()},
        {e: t[:, 3] for e, t in table.items()},
        np.array(naive),
    )


def _close_on_average(errors: np.ndarray) -> bool:
    """The mean error is within 4 standard errors of 0 (the spread over repetitions)."""
    return bool(abs(errors.mean()) <= 4 * errors.std(ddof=1) / np.sqrt(len(errors)))


# --------------------------------------------------------------------------- (a) unbiased


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimates_centre_on_the_truth(estimator: str) -> None:
    reps = repetitions()
    recall_error = reps.value[estimator] - reps.recall
    caught_error = reps.caught_value[estimator] - reps.caught
    assert _close_on_average(caught_error), (caught_error.mean(), caught_error.std())
    assert _close_on_average(recall_error), (recall_error.mean(), recall_error.std())
    # The tolerance is tight enough to mean something: 4 standard errors under 3 points.
    assert 4 * recall_error.std(ddof=1) / np.sqrt(REPS) < 0.03


def test_the_same_check_rejects_unweighted_counts() -> None:
    """Counting the observed positives in the selection (no 1/p weights) misses what nobody
    inspected: the check above fails on it, so passing it means something."""
    reps = repetitions()
    assert not _close_on_average(reps.naive - reps.caught)


# --------------------------------------------------------------------------- (b) coverage


@pytest.mark.parametrize("estimator", [*ESTIMATORS, "realised"])
def test_intervals_cover_the_truth(estimator: str) -> None:
    reps = repetitions()
    # realised: the logging policy's own picks, caught exactly, over the estimated positives
    truth = reps.champion_recall if estimator == "realised" else reps.recall
    lower, upper = reps.lower[estimator], reps.upper[estimator]
    assert ((lower <= truth) & (truth <= upper)).mean() >= 0.85
    # and are not uselessly wide: a recall 25 points off is rarely inside them
    for wrong in (truth - 0.25, truth + 0.25):
        assert ((lower <= wrong) & (wrong <= upper)).mean() <= 0.25


def test_realised_counts_what_the_inspections_found() -> None:
    w = world(1)
    found = realised(w.logged, w.champion, replicates=50)
    exact = float((w.truth & w.champion).sum())
    assert found.overall.caught.value == exact
    assert found.overall.caught.lower == found.overall.caught.upper == exact
    assert found.overall.selected == int(w.champion.sum())
    ips = estimate(w.logged, w.champion, replicates=50)["ips"].overall
    assert found.overall.positives == ips.positives
    for port in found.ports:
        mask = w.champion & (w.logged.port == port.port)
        assert port.caught.value == float((w.truth & mask).sum())


# --------------------------------------------------------------------------- (c) paired


def test_compare_finds_a_clearly_better_challenger() -> None:
    w = world(7, n=20_000, challenger_noise=0.3, champion_noise=1.5)
    assert true_recall(w, w.challenger) > true_recall(w, w.champion) + 0.3
    found = compare(w.logged, w.challenger, w.champion)
    for c in found.comparisons:
        assert c.overall.recall.lower is not None
        assert c.overall.recall.lower > 0, c.estimator
        assert c.verdict == "better"


def test_compare_does_not_call_a_worse_challenger_better() -> None:
    w = world(8, n=20_000, challenger_noise=5.0, champion_noise=0.5)
    assert true_recall(w, w.challenger) < true_recall(w, w.champion) - 0.3
    found = compare(w.logged, w.challenger, w.champion)
    for c in found.comparisons:
        assert c.overall.recall.upper is not None
        assert c.overall.recall.upper < 0, c.estimator
        assert c.verdict == "worse"


def test_compare_is_paired_on_the_replicates_of_estimate() -> None:
    """The challenger's figures in a comparison are exactly those :func:`estimate` gives with
    the same seed: every shipment draws the same weights whatever the selections are."""
    w = world(3)
    pair = compare(w.logged, w.challenger, w.champion, replicates=200, seed=5)
    alone = estimate(w.logged, w.challenger, replicates=200, seed=5)
    for e in ESTIMATORS:
        assert pair[e].challenger == alone[e]
    difference = pair["ips"].overall.recall.value
    challenger = alone["ips"].overall.recall.value
    champion = pair["ips"].champion.overall.recall.value
    assert difference is not None
    assert challenger is not None
    assert champion is not None
    assert difference == pytest.approx(challenger - champion)


def test_results_print_and_turn_into_json() -> None:
    w = world(4)
    pair = compare(w.logged, w.challenger, w.champion, replicates=100)
    data = pair.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["bootstrap"] == {"replicates": 100, "level": 0.95, "seed": 0}
    assert [c["estimator"] for c in data["comparisons"]] == list(ESTIMATORS)
    dr = data["comparisons"][2]
    assert dr["verdict"] == pair["dr"].verdict
    assert dr["challenger"]["overall"]["port"] == OVERALL
    assert dr["overall"]["recall"]["value"] == pair["dr"].overall.recall.value
    assert [p["port"] for p in dr["ports"]] == list(PORTS)
    text = str(pair)
    assert "dr: challenger recall" in text
    assert "MXVER" in text
    assert "ips:" in str(estimate(w.logged, w.challenger, replicates=100))


def test_dr_needs_a_prediction() -> None:
    w = world(5)
    bare = Logged(
        w.logged.port, w.logged.inspected, w.logged.positive, w.logged.propensity, w.logged.explored
    )
    found = estimate(bare, w.challenger, replicates=50)
    assert [e.estimator for e in found.estimates] == ["ips", "snips"]
    with pytest.raises(KeyError, match="no estimate 'dr'"):
        found["dr"]


# --------------------------------------------------------------------------- (d) overlap


def test_overlap_is_silent_on_a_healthy_log() -> None:
    w = world(2)
    assert overlap(w.logged, w.challenger) == []
    assert estimate(w.logged, w.challenger, replicates=20).warnings == ()


def test_overlap_counts_selected_shipments_never_inspectable() -> None:
    port = world(2).logged.port
    blind = np.where(port == "MXZLO", 0.0, P_EXPLORE)  # MXZLO explored nothing
    w = world(2, p_explore=blind)
    zero = int((w.challenger & (w.logged.propensity == 0)).sum())
    assert zero > 0
    warnings = overlap(w.logged, w.challenger)
    assert any(f"{zero} shipments of the selection had propensity 0" in s for s in warnings)
    pair = compare(w.logged, w.challenger, w.champion, replicates=20)
    assert any(s.startswith(f"{zero} shipments of the challenger") for s in pair.warnings)


def test_overlap_warns_of_few_explored_positives_and_huge_weights() -> None:
    w = world(2, p_explore=0.0008)
    found = int((w.logged.explored & w.logged.positive).sum())
    assert found < MIN_EXPLORED_POSITIVES
    warnings = overlap(w.logged, w.challenger)
    assert f"only {found} explored positives (below {MIN_EXPLORED_POSITIVES})" in warnings
    assert any("explored inspections" in s for s in warnings)
    assert any(f"weigh more than {MAX_WEIGHT:g}" in s for s in warnings)


# --------------------------------------------------------------------------- (e) bad input


def _columns() -> dict[str, np.ndarray]:
    return {
        "port": np.array(["A", "A", "B", "B"]),
        "inspected": np.array([True, True, False, True]),
        "positive": np.array([True, False, False, False]),
        "propensity": np.array([1.0, 0.5, 0.5, 0.5]),
        "explored": np.array([False, True, False, True]),
        "predicted": np.array([0.9, 0.1, 0.1, 0.2]),
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("inspected", np.array([True, True, False]), "inspected: 3 rows, expected 4"),
        ("propensity", np.array([1.0, 1.5, 0.5, 0.5]), "propensity: 1 rows are outside"),
        ("propensity", np.array([1.0, np.nan, 0.5, 0.5]), "propensity: 1 rows are NaN"),
        ("predicted", np.array([0.9, 0.1, np.nan, 0.2]), "predicted: 1 rows are NaN"),
        ("positive", np.array([1.0, np.nan, 0.0, 0.0]), "positive: 1 rows are NaN"),
        ("inspected", np.array([1, 2, 0, 1]), "inspected: 1 rows are neither true nor false"),
        ("propensity", np.array([0.0, 0.5, 0.5, 0.5]), "propensity: 1 rows inspected with"),
        ("explored", np.array([False, False, True, True]), "explored: 1 rows explored but not"),
        ("port", np.array(["A", "", "B", "B"]), "port: 1 rows are empty"),
        ("port", np.array([1, 2, 3, 4]), "port: expected port codes"),
        ("propensity", np.array([["x"]]), "propensity: expected one value per shipment"),
    ],
)
def test_bad_logs_name_the_field(field: str, value: np.ndarray, message: str) -> None:
    columns = _columns() | {field: value}
    with pytest.raises(DataError, match=message):
        Logged(**columns)


def test_bad_arguments_name_themselves() -> None:
    logged = Logged(**_columns())
    with pytest.raises(DataError, match="selected: 3 rows, expected 4"):
        estimate(logged, np.array([True, False, False]))
    with pytest.raises(DataError, match="champion: 5 rows"):
        compare(logged, np.ones(4, bool), np.ones(5, bool))
    with pytest.raises(DataError, match="red: 1 rows are RED but not inspected"):
        realised(logged, np.array([True, False, True, False]))
    with pytest.raises(DataError, match="replicates: must be a whole number of at least 1"):
        Bootstrap(replicates=0)
    with pytest.raises(DataError, match="level: must be a number between 0 and 1"):
        Bootstrap(level=1.5)
    with pytest.raises(DataError, match="seed: must be a whole number"):
        Bootstrap(seed=0.5)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="port: the log has no rows"):
        Logged(*(np.array([], dtype=t) for t in (str, bool, bool, float, bool)))


# --------------------------------------------------------------------------- (f) selection


def test_select_at_capacity_takes_each_ports_top_share() -> None:
    rng = np.random.default_rng(0)
    port = rng.choice(np.array(["A", "B", "C"]), 1_001)
    score = rng.random(1_001)
    chosen = select_at_capacity(score, port, {"A": 0.1, "default": 0.02})
    for p, share in (("A", 0.1), ("B", 0.02), ("C", 0.02)):
        here = port == p
        k = int(np.ceil(share * here.sum()))
        assert chosen[here].sum() == k
        assert score[here & chosen].min() > score[here & ~chosen].max()


def test_select_at_capacity_breaks_ties_by_row_order() -> None:
    port = np.array(["A", "B", "A", "A", "B", "A", "B"])
    score = np.array([0.5, 0.2, 0.9, 0.5, 0.2, 0.5, 0.2])
    # A (4 rows, 2 picks): 0.9, then the earliest of three tied at 0.5; B (3 rows, 2 picks):
    # the earliest two of three ties
    chosen = select_at_capacity(score, port, 0.5)
    assert np.flatnonzero(chosen).tolist() == [0, 1, 2, 4]
    assert select_at_capacity(score, port, 0.0).sum() == 0
    assert select_at_capacity(score, port, 1.0).all()


def test_select_at_capacity_refuses_bad_shares_and_scores() -> None:
    port, score = np.array(["A", "B"]), np.array([0.1, 0.2])
    with pytest.raises(DataError, match="share: no share for port 'B'"):
        select_at_capacity(score, port, {"A": 0.1})
    with pytest.raises(DataError, match=r"share\['A'\]: a share must be a number in \[0, 1\]"):
        select_at_capacity(score, port, {"A": 1.5, "default": 0.1})
    with pytest.raises(DataError, match="scores: 1 rows are NaN"):
        select_at_capacity(np.array([0.1, np.nan]), port, 0.1)
    with pytest.raises(DataError, match="scores: 3 rows, expected 2"):
        select_at_capacity(np.array([0.1, 0.2, 0.3]), port, 0.1)


# --------------------------------------------------------------------------- (g) scale


def test_a_million_rows_by_a_thousand_replicates_stay_small() -> None:
    """A million-row log, 3% RED by the model and 0.3% of the rest explored: about 2,900
    inspections draw weights in each of 1,000 replicates. Memory is measured (numpy reports its
    buffers to tracemalloc), world included (about 150 MB of it); time is not."""
    n = 1_000_000
    tracemalloc.start()
    try:
        w = world(11, n=n, p_explore=0.003)
        found = compare(w.logged, w.challenger, w.champion)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400e6
    assert found.bootstrap.replicates == 1_000
    for c in found.comparisons:
        assert c.overall.recall.lower is not None
        assert c.overall.recall.upper is not None
        assert c.overall.recall.lower <= c.overall.recall.upper
