"""The recent positive rate (issue 15): each earlier outcome weighted by its age with a half-life
of :data:`features.history.RECENCY_HALF_LIFE_DAYS`, smoothed like the plain rate, the same bits
live and in bulk, with outcomes reported out of order and a re-scored shipment's own outcome
left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import features.history
from features.errors import DataError
from features.history import (
    KEY_COLUMNS,
    OUTCOME_KEYS,
    RECENCY,
    RECENCY_HALF_LIFE_DAYS,
    US_PER_DAY,
    Keyed,
    entity_outcomes,
    history_feature_names,
    history_features,
    outcome_counts,
)
from features.state import EntityState

PRIOR, STRENGTH = 0.1, 3.0
H_US = RECENCY_HALF_LIFE_DAYS * US_PER_DAY
START = datetime(2024, 1, 1, tzinfo=UTC)
START_US = int(START.timestamp()) * 1_000_000


def _us(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_an_outcome_weighs_half_after_a_half_life_and_nothing_after_two_epochs() -> None:
    reported = _us([START_US])  # midnight UTC: the weight's whole-day age is exact
    queries = _us([START_US + 1, START_US + H_US, START_US + 2 * H_US, START_US + 3 * H_US // 2])
    *_, recent_inspections, recent_positives = outcome_counts(reported, np.array([True]), queries)
    expected = np.array([1.0, 0.5, 0.25, 2**-1.5])
    np.testing.assert_allclose(recent_inspections, expected, rtol=2e-6)
    assert recent_inspections.tobytes() == recent_positives.tobytes()
    # More than an epoch before the query's own, an outcome no longer counts (it weighs
    # < 2**-16), while the plain counts keep it.
    late = _us([(START_US // RECENCY.epoch_us + 2) * RECENCY.epoch_us + 1])
    inspections, _, _, recent, _ = outcome_counts(reported, np.array([True]), late)
    assert inspections.tolist() == [1]
    assert recent.tolist() == [0.0]


def test_the_recent_rate_tells_recent_findings_from_old_ones() -> None:
    """Two entities with the same record, 2 findings in 10 inspections: the one whose findings
    came last has the higher recent rate, the same plain rate; with no outcome at all the
    recent rate is the prior, as the plain rate is."""
    times = _us([START_US + d * 30 * US_PER_DAY for d in range(10)])
    old_findings = np.array([True, True] + [False] * 8)
    new_findings = old_findings[::-1].copy()
    query = _us([START_US + 400 * US_PER_DAY])
    old = entity_outcomes(times, old_findings, query, PRIOR, STRENGTH)
    new = entity_outcomes(times, new_findings, query, PRIOR, STRENGTH)
    assert old[2].tobytes() == new[2].tobytes()  # the plain rate: (2 + 0.3) / (10 + 3)
    assert old[4][0] < old[2][0] < new[4][0]
    none = entity_outcomes(_us([]), np.array([], dtype=bool), query, PRIOR, STRENGTH)
    assert none[4].tobytes() == none[2].tobytes()
    assert none[4][0] == pytest.approx(PRIOR)


def test_weights_of_times_before_1970_and_one_by_one_agree() -> None:
    times = _us([-5 * RECENCY.epoch_us + 7, -1, 0, 1, RECENCY.epoch_us - 1, START_US])
    weights = RECENCY.weights(times)
    assert weights.tolist() == [RECENCY.weight(t) for t in times.tolist()]
    assert weights.min() >= 2**20
    assert weights.max() < 2**36


def test_more_outcomes_than_the_integer_sums_hold_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyed, outcomes = _table([_row("A", 10)], [(_row("B", 0), 5, True)] * 3)
    monkeypatch.setattr(features.history, "MAX_OUTCOMES", 2)
    with pytest.raises(DataError, match="3 inspection outcomes are more than"):
        history_features(keyed, outcomes, PRIOR)


# --------------------------------------------------------------------------- live against bulk


def _row(shipment_id: str, day: float, key: str = "K") -> dict[str, object]:
    return {
        "shipment_id": shipment_id,
        "declared_at": START + timedelta(days=day),
        **{KEY_COLUMNS[e]: key for e in OUTCOME_KEYS},
    }


def _table(
    rows: list[dict[str, object]], outcomes: list[tuple[dict[str, object], float, bool]]
) -> tuple[Keyed, pl.DataFrame]:
    keyed = Keyed(
        shipment_id=[str(r["shipment_id"]) for r in rows],
        declared_at=_us([_micros(r["declared_at"]) for r in rows]),
        keys={e: [str(r[KEY_COLUMNS[e]]) for r in rows] for e in OUTCOME_KEYS},
        families=[() for _ in rows],
    )
    frame = pl.DataFrame(
        {
            "reported_at": pl.Series(
                [START + timedelta(days=d) for _, d, _ in outcomes], dtype=pl.Datetime("us", "UTC")
            ),
            "positive": pl.Series([p for _, _, p in outcomes], dtype=pl.Boolean),
            **{
                KEY_COLUMNS[e]: pl.Series(
                    [r[KEY_COLUMNS[e]] for r, _, _ in outcomes], dtype=pl.String
                )
                for e in OUTCOME_KEYS
            },
        }
    )
    return keyed, frame


def _micros(at: object) -> int:
    assert isinstance(at, datetime)
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_live_recent_rates_are_bulk_with_late_reports_and_a_rescored_own_outcome() -> None:
    """Outcomes credited in a shuffled order over four years (across a recency epoch's start),
    some reported long after others of later shipments; then a batch re-scoring a shipment
    whose own positive outcome is among the history, and a new shipment. Each row's history is
    the bulk history of the table without the row's own earlier record and outcome."""
    rng = np.random.default_rng(7)
    days = np.sort(rng.integers(0, 1400, 60)).tolist()
    known = [_row(f"S{i}", day) for i, day in enumerate(days)]
    delays, positive = rng.integers(1, 200, len(days)).tolist(), rng.random(len(days)) < 0.4
    reports = [
        (row, day + delay + 0.25, bool(p))
        for row, day, delay, p, kept in zip(
            known, days, delays, positive, rng.random(len(days)) < 0.7, strict=True
        )
        if kept
    ]
    own_row, own_day, _ = reports[len(reports) // 2]
    reports[len(reports) // 2] = (own_row, own_day, True)
    state = EntityState.empty()
    keyed, _ = _table(known, [])
    state.add_shipments(keyed)
    for at in rng.permutation(len(reports)).tolist():  # out of report order
        row, day, positive = reports[at]
        assert state.add_outcome(str(row["shipment_id"]), START + timedelta(days=day), positive)

    query_day = 1650.0
    again = {**own_row, "declared_at": START + timedelta(days=query_day)}
    new = _row("NEW", query_day + 0.5)
    batch, _ = _table([again, new], [])
    live = state.history_for(batch, PRIOR, STRENGTH)
    names = history_feature_names()
    recent = [n for n in names if n.endswith("_recent_rate")]
    assert len(recent) == len(OUTCOME_KEYS)

    others = [r for r in known if r["shipment_id"] != own_row["shipment_id"]]
    without_own = [r for r in reports if r[0] is not own_row]
    for at, (rows, outcomes) in enumerate(
        [([*others, again], without_own), ([*others, again, new], reports)]
    ):
        keyed, frame = _table(rows, outcomes)
        bulk = history_features(keyed, frame, PRIOR, STRENGTH)
        row = len(rows) - 1
        for name in names:
            assert live[name][at : at + 1].tobytes() == bulk[name][row : row + 1].tobytes(), name
    # The own outcome matters: counted, it would raise the re-scored row's recent rate.
    keyed, frame = _table([*others, again], reports)
    with_own = history_features(keyed, frame, PRIOR, STRENGTH)["shipper_recent_rate"][-1]
    assert live["shipper_recent_rate"][0] < with_own
    assert live["shipper_recent_rate"][1] != live["shipper_positive_rate"][1]
