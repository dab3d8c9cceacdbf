"""The bulk history (:func:`features.history.history_features`, every entity at once) gives
exactly what the per-entity kernels give each entity's rows, as the grouping loop it replaced
computed them: training and ``centinela score`` read it, and the live state matches it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from features.history import (
    KEY_COLUMNS,
    NETWORK_KEYS,
    OUTCOME_KEYS,
    US_PER_DAY,
    VOLUME_KEYS,
    Keyed,
    entity_network,
    entity_outcomes,
    entity_volume,
    history_feature_names,
    history_features,
    network_names,
    outcome_names,
    volume_names,
)

FAMILIES = ("fentanyl-npp-anpp", "fentanyl-reagent", "meth-p2p", "pill-press", "other-route")
Array = np.ndarray


def _groups(keys: pl.Series, times: Array) -> Iterator[tuple[object, Array]]:
    """Row indices of each key value, each group ordered by time (ties by position); a
    missing key is a group of its own."""
    codes = keys.rank("dense").to_numpy()
    order = np.lexsort((np.arange(len(codes)), times, codes))
    bounds = np.flatnonzero(codes[order][1:] != codes[order][:-1]) + 1
    values = keys.to_list()
    for rows in np.split(order, bounds):
        if len(rows):
            yield values[rows[0]], rows


def reference_history(
    keyed: Keyed, outcomes: pl.DataFrame, prior_rate: float, strength: float
) -> dict[str, Array]:
    """The kernels called once per entity key: the bulk history as it was first written."""
    n = len(keyed)
    declared = keyed.declared_at
    columns: dict[str, Array] = {}
    for entity in VOLUME_KEYS:
        out = entity_volume(np.zeros(0, dtype=np.int64), np.zeros(n, dtype=np.int64))
        for _, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            times = declared[rows]
            for target, values in zip(out, entity_volume(times, times), strict=True):
                target[rows] = values
        columns.update(zip(volume_names(entity), out, strict=True))
    reported = outcomes["reported_at"].dt.timestamp("us").to_numpy().astype(np.int64)
    positive = outcomes["positive"].to_numpy().astype(bool)
    no_outcomes = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))
    for entity in OUTCOME_KEYS:
        out = entity_outcomes(*no_outcomes, np.zeros(n, dtype=np.int64), prior_rate, strength)
        by_key = dict(_groups(outcomes[KEY_COLUMNS[entity]], reported))
        for key, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            found = by_key.get(key)
            if found is None:
                continue
            computed = entity_outcomes(
                reported[found], positive[found], declared[rows], prior_rate, strength
            )
            for target, value in zip(out, computed, strict=True):
                target[rows] = value
        columns.update(zip(outcome_names(entity), out, strict=True))
    for entity in NETWORK_KEYS:
        out = entity_network({}, np.zeros(n, dtype=np.int64), [[]] * n)
        for _, rows in _groups(pl.Series(keyed.keys[entity], dtype=pl.String), declared):
            times = declared[rows]
            fams = [list(keyed.families[i]) for i in rows]
            by_family: dict[str, list[int]] = {}
            for t, row_families in zip(times.tolist(), fams, strict=True):
                for family in row_families:
                    by_family.setdefault(family, []).append(t)
            if not by_family:
                continue
            family_times = {f: np.array(ts, dtype=np.int64) for f, ts in by_family.items()}
            for target, value in zip(out, entity_network(family_times, times, fams), strict=True):
                target[rows] = value
        columns.update(zip(network_names(entity), out, strict=True))
    return columns


def small_world(seed: int, n: int, missing: float) -> tuple[Keyed, pl.DataFrame]:
    """``n`` shipments over two years with few entities (so windows hold many events), many
    equal times, ``missing`` of every key absent, watched route families on a tenth of the
    rows, and outcomes (some without keys) reported days after a fifth of the shipments."""
    rng = np.random.default_rng(seed)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    declared = start + rng.integers(0, 730, n) * US_PER_DAY + rng.integers(0, 3, n) * 3_600_000_000

    def keys(prefix: str, pool: int) -> list[str | None]:
        drawn = rng.integers(0, pool, n)
        gone = rng.random(n) < missing
        return [None if g else f"{prefix}{k}" for k, g in zip(drawn.tolist(), gone, strict=True)]

    families = [
        tuple(sorted(set(rng.choice(FAMILIES, rng.integers(1, 3)).tolist())))
        if rng.random() < 0.1
        else ()
        for _ in range(n)
    ]
    keyed = Keyed(
        shipment_id=[f"S{i}" for i in range(n)],
        declared_at=declared.astype(np.int64),
        keys={e: keys(e[:2], 40) for e in OUTCOME_KEYS},  # type: ignore[misc]
        families=families,
    )
    inspected = np.flatnonzero(rng.random(n) < 0.2)
    reported = declared[inspected] + rng.integers(0, 30, len(inspected)) * US_PER_DAY
    outcomes = pl.DataFrame(
        {
            "shipment_id": [keyed.shipment_id[i] for i in inspected],
            "reported_at": pl.Series(reported).cast(pl.Datetime("us", "UTC")),
            "positive": rng.random(len(inspected)) < 0.3,
            **{
                KEY_COLUMNS[e]: pl.Series([keyed.keys[e][i] for i in inspected], dtype=pl.String)
                for e in OUTCOME_KEYS
            },
        }
    )
    return keyed, outcomes


def assert_identical(got: dict[str, Array], expected: dict[str, Array]) -> None:
    assert list(got) == list(expected) == history_feature_names()
    for name, values in expected.items():
        assert got[name].dtype == values.dtype, name
        assert got[name].tobytes() == values.tobytes(), name


@pytest.mark.parametrize(("seed", "missing"), [(1, 0.0), (2, 0.03), (3, 0.3)])
def test_bulk_history_is_the_kernels_per_entity(seed: int, missing: float) -> None:
    keyed, outcomes = small_world(seed, 3_000, missing)
    expected = reference_history(keyed, outcomes, 0.02, 10.0)
    assert_identical(history_features(keyed, outcomes, 0.02, 10.0), expected)
    # The world exercises every part: counts, outcomes, positives, families and combinations.
    assert expected["shipper_count_30d"].max() > 5
    assert expected["consignee_positives"].max() > 0
    assert expected["broker_route_families_90d"].max() >= 2
    assert expected["consignee_complementary_90d"].sum() > 0


def test_bulk_history_in_any_row_order() -> None:
    keyed, outcomes = small_world(4, 2_000, 0.05)
    shuffled = keyed.take(np.random.default_rng(0).permutation(len(keyed)).tolist())
    expected = reference_history(shuffled, outcomes, 0.01, 3.0)
    assert_identical(history_features(shuffled, outcomes, 0.01, 3.0), expected)


def test_bulk_history_without_outcomes_or_rows() -> None:
    keyed, outcomes = small_world(5, 500, 0.1)
    none = outcomes.clear()
    assert_identical(
        history_features(keyed, none, 0.02, 20.0), reference_history(keyed, none, 0.02, 20.0)
    )
    empty = keyed.slice(0, 0)
    got = history_features(empty, outcomes, 0.02, 20.0)
    assert all(len(v) == 0 for v in got.values())
    assert_identical(got, reference_history(empty, outcomes, 0.02, 20.0))
