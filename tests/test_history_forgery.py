"""A shipment id is one shipment: scoring it again neither makes its parties look established nor
credits them with its inspection twice, live, after a restart, or in bulk.

Issue 9: re-scoring one shipment id six times credited its entities six times. These tests
score the same id repeatedly, report an outcome against every decision, and compare the
history features with what a single scoring would have given.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.history import (
    FAMILIES_COLUMN,
    KEY_COLUMNS,
    OUTCOME_KEYS,
    Keyed,
    history_feature_names,
    history_features,
)
from features.records import Party
from features.state import EntityState
from scoring.decisions import Outcome
from scoring.service import ScoringService
from tests.conftest import server_settings
from tests.support import make_shipment

PRIOR = 0.02
NAMES = history_feature_names()
KEY_NAMES = [KEY_COLUMNS[e] for e in OUTCOME_KEYS]
ROW_SCHEMA: dict[str, pl.DataType] = {
    "shipment_id": pl.String(),
    "declared_at": pl.Datetime("us", "UTC"),
    **{column: pl.String() for column in KEY_NAMES},
    FAMILIES_COLUMN: pl.List(pl.String()),
}
START = datetime(2024, 1, 1, tzinfo=UTC)
FAMILIES = ("fentanyl-npp-anpp", "fentanyl-reagent", "pill-press", "meth-p2p")


# --------------------------------------------------------------------------- the live service


NEW_SHIPPER = Party("SHP-NEW-0001", "Importadora Nueva", "CN")
NEW_CONSIGNEE = Party("CNE-NEW-0001", "Comercial Nueva", "MX", "CNU190101AB1")
FORGED = make_shipment(
    "FORGE-0001", shipper=NEW_SHIPPER, consignee=NEW_CONSIGNEE, broker_id="BRK-NEW-01"
)
WATCHED = (
    "shipper_age_days",
    "shipper_count_30d",
    "consignee_count_30d",
    "consignee_count_365d",
    "broker_count_30d",
    "shipper_inspections",
    "shipper_positives",
    "consignee_inspections",
    "consignee_positives",
    "shipper_positive_rate",
)


def recorded_features(service: ScoringService, decision_id: str) -> dict[str, Any]:
    """The features a decision was made with, as the ledger recorded them."""
    assert service.ledger is not None
    (row,) = [r for r in service.ledger.entries_for(decision_id) if r.kind == "decision"]
    features = json.loads(row.payload)["features"]
    return {name: features[name] for name in WATCHED}


def probe(service: ScoringService, shipment_id: str, declared_at: datetime) -> dict[str, Any]:
    """Score another shipment of the same parties and return its history features."""
    shipment = dataclasses.replace(FORGED, shipment_id=shipment_id, declared_at=declared_at)
    (decision,) = service.score([shipment])
    return recorded_features(service, decision.decision_id)


def test_rescoring_one_shipment_id_six_times_credits_its_parties_once(
    registry: Path, world: Path, tmp_path: Path
) -> None:
    settings = server_settings(registry, tmp_path, data_dir=world)
    service = ScoringService(settings)
    service.load()
    assert service.state is not None
    outcomes_before = service.state.outcomes
    decisions, seen = [], []
    for day in range(6):  # the same shipment id, declared one day later each time
        shipment = dataclasses.replace(FORGED, declared_at=FORGED.declared_at + timedelta(days=day))
        (decision,) = service.score([shipment])
        assert decision.scored.shipment_id == FORGED.shipment_id
        decisions.append(decision)
        seen.append(recorded_features(service, decision.decision_id))
    assert len({d.decision_id for d in decisions}) == 6  # a new decision every time
    # Every scoring has the history of a first scoring: a party never seen before.
    first = seen[0]
    assert first["shipper_age_days"] is None  # NaN: never seen
    assert first["shipper_count_30d"] == first["consignee_count_365d"] == 0
    assert seen == [first] * 6

    receipts = [
        service.record_outcome(Outcome(d.decision_id, True, "positive" if i == 0 else "negative"))
        for i, d in enumerate(decisions)
    ]
    assert [(r.version, r.duplicate) for r in receipts] == [(1, False)] * 6
    assert service.state.outcomes == outcomes_before + 1  # one shipment, one outcome

    # A later shipment of the same parties sees one earlier shipment (the last declaration),
    # and after the outcomes were reported, one inspection, positive.
    later = probe(service, "PROBE-0001", FORGED.declared_at + timedelta(days=20))
    assert later["shipper_count_30d"] == later["consignee_count_30d"] == 1
    assert later["broker_count_30d"] == 1
    assert later["shipper_age_days"] == 15.0  # from day 5, the latest declaration kept
    now = probe(service, "PROBE-0002", datetime.now(UTC))
    assert (now["shipper_inspections"], now["shipper_positives"]) == (1, 1)
    assert (now["consignee_inspections"], now["consignee_positives"]) == (1, 1)
    service.close()

    # A restart replays the ledger into the same history: re-scoring the probes gives the
    # features of their first scoring, and still one inspection.
    restarted = ScoringService(settings)
    restarted.load()
    assert restarted.state is not None
    assert restarted.state.outcomes == outcomes_before + 1
    assert probe(restarted, "PROBE-0001", FORGED.declared_at + timedelta(days=20)) == later
    again = probe(restarted, "PROBE-0002", datetime.now(UTC))
    assert (again["shipper_inspections"], again["shipper_positives"]) == (1, 1)
    restarted.close()


def test_a_rescored_id_does_not_count_its_own_outcome(registry: Path, tmp_path: Path) -> None:
    service = ScoringService(server_settings(registry, tmp_path))
    service.load()
    now = datetime.now(UTC)
    shipment = dataclasses.replace(FORGED, declared_at=now - timedelta(hours=2))
    (decision,) = service.score([shipment])
    service.record_outcome(Outcome(decision.decision_id, True, "positive"))
    # Declared again after its own outcome was reported: that outcome is not its history.
    (again,) = service.score([dataclasses.replace(shipment, declared_at=now + timedelta(hours=1))])
    assert recorded_features(service, again.decision_id)["shipper_inspections"] == 0
    other = probe(service, "PROBE-0003", now + timedelta(hours=1))
    assert (other["shipper_inspections"], other["shipper_positives"]) == (1, 1)
    service.close()


# --------------------------------------------------------------------------- live vs bulk


def frame(rows: list[dict[str, Any]]) -> Keyed:
    return Keyed.from_frame(pl.DataFrame(rows, schema=ROW_SCHEMA))


def outcome_frame(outcomes: list[tuple[dict[str, Any], datetime, bool]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"reported_at": at, "positive": positive, **{c: row[c] for c in KEY_NAMES}}
            for row, at, positive in outcomes
        ],
        schema={
            "reported_at": pl.Datetime("us", "UTC"),
            "positive": pl.Boolean(),
            **{c: pl.String() for c in KEY_NAMES},
        },
    )


def bulk_row(
    rows: list[dict[str, Any]], outcomes: list[tuple[dict[str, Any], datetime, bool]], at: int
) -> list[float]:
    """The bulk path's history features of ``rows[at]`` with ``rows`` and ``outcomes``."""
    computed = history_features(frame(rows), outcome_frame(outcomes), PRIOR)
    return [float(computed[name][at]) for name in NAMES]


def same(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


@st.composite
def shipment_row(draw: st.DrawFn, shipment_id: str) -> dict[str, Any]:
    day = draw(st.integers(0, 800))
    offset = draw(st.sampled_from([0, 0, 1, 43_200_000_000]))
    return {
        "shipment_id": shipment_id,
        "declared_at": START + timedelta(days=day, microseconds=offset),
        "shipper_id": draw(st.sampled_from("AB")),
        "consignee_id": draw(st.sampled_from("CD")),
        "broker_id": draw(st.sampled_from("EF")),
        "route_key": draw(st.sampled_from(["CN>MXZLO", "IN>MXLZC"])),
        "heading_key": draw(st.sampled_from(["2933", "2914"])),
        "item_key": draw(st.sampled_from(["", "npp"])),
        FAMILIES_COLUMN: sorted(draw(st.sets(st.sampled_from(FAMILIES), max_size=2))),
    }


@st.composite
def scenario(draw: st.DrawFn) -> dict[str, Any]:
    known = [draw(shipment_row(f"S{i}")) for i in range(draw(st.integers(0, 12)))]
    outcomes = []
    for row in known:
        if draw(st.booleans()):
            at = START + timedelta(days=draw(st.integers(0, 820)))
            outcomes.append((row["shipment_id"], at, draw(st.booleans())))
    batch_ids = [
        draw(st.sampled_from([r["shipment_id"] for r in known] + ["N0", "N1", "N2"]))
        for _ in range(draw(st.integers(1, 6)))
    ]
    batch = [draw(shipment_row(shipment_id)) for shipment_id in batch_ids]
    probes = [draw(shipment_row(f"P{i}")) for i in range(3)]
    return {"known": known, "outcomes": outcomes, "batch": batch, "probes": probes}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_live_history_is_bulk_history_with_one_record_per_shipment_id(
    case: dict[str, Any],
) -> None:
    """Live history of a batch with repeated and re-scored ids equals the bulk history of the
    table in which each id is one shipment and a row's own earlier record is not its past."""
    known, batch = case["known"], case["batch"]
    state = EntityState.empty()
    state.add_shipments(frame(known))
    by_id = {r["shipment_id"]: r for r in known}
    credited = []
    for shipment_id, at, positive in case["outcomes"]:
        assert state.add_outcome(shipment_id, at, positive)
        assert not state.add_outcome(shipment_id, at + timedelta(days=1), not positive)
        credited.append((shipment_id, at, positive))

    live = state.history_for(frame(batch), PRIOR)
    last = {r["shipment_id"]: r for r in batch}  # the batch's last row of each id stays
    world = {**{s: r for s, r in by_id.items() if s not in last}, **last}
    for at, row in enumerate(batch):
        others = [r for s, r in world.items() if s != row["shipment_id"]]
        # Outcomes sit with the keys the state held when they were credited.
        outcomes = [(by_id[s], t, p) for s, t, p in credited if s != row["shipment_id"]]
        expected = bulk_row([*others, row], outcomes, len(others))
        got = [float(live[name][at]) for name in NAMES]
        pairs = dict(zip(NAMES, zip(got, expected, strict=True), strict=True))
        assert same(got, expected), (row, pairs)

    # Remembered, the batch leaves one record per id, the last; outcomes follow their
    # shipment's latest keys; later shipments see exactly that.
    state.add_shipments(frame(batch))
    assert state.shipments == len(world)
    assert state.outcomes == len(credited)
    probes = case["probes"]
    live = state.history_for(frame(probes), PRIOR)
    outcomes = [(world[s], t, p) for s, t, p in credited]
    for at in range(len(probes)):
        rows = [*world.values(), *probes]
        expected = bulk_row(rows, outcomes, len(world) + at)
        assert same([float(live[name][at]) for name in NAMES], expected)


def test_rescoring_after_a_year_drops_the_first_seen_time_of_its_own_record() -> None:
    """An entity's first shipment re-scored: its age comes from its next shipment, even when
    that is older than the year the counts look back on."""
    old = {
        "shipment_id": "S0",
        "declared_at": START,
        **dict.fromkeys(KEY_NAMES, "K"),
        FAMILIES_COLUMN: [],
    }
    rows = [old, {**old, "shipment_id": "S1", "declared_at": START + timedelta(days=10)}]
    rows += [
        {**old, "shipment_id": f"S{i}", "declared_at": START + timedelta(days=400 + i)}
        for i in range(2, 6)
    ]
    state = EntityState.empty()
    state.add_shipments(frame(rows))
    again = {**old, "declared_at": START + timedelta(days=500)}
    live = state.history_for(frame([again]), PRIOR)
    assert live["shipper_age_days"][0] == 490.0  # S1 is first now, not S0
    assert live["shipper_count_365d"][0] == 4
    expected = bulk_row([*rows[1:], again], [], len(rows) - 1)
    assert same([float(live[name][0]) for name in NAMES], expected)
    assert np.isnan(expected[NAMES.index("consignee_days_since_positive")])


# --------------------------------------------------------------------------- new shipments alone


@st.composite
def varied_row(draw: st.DrawFn, shipment_id: str) -> dict[str, Any]:
    """A shipment over many keys, so that in a batch most rows have keys of their own."""
    day = draw(st.integers(0, 800))
    offset = draw(st.sampled_from([0, 1, 43_200_000_000]))
    return {
        "shipment_id": shipment_id,
        "declared_at": START + timedelta(days=day, microseconds=offset),
        "shipper_id": draw(st.sampled_from("ABCDEF")),
        "consignee_id": draw(st.sampled_from("GHIJKL")),
        "broker_id": draw(st.sampled_from("MNO")),
        "route_key": draw(st.sampled_from(["CN>MXZLO", "IN>MXLZC", "US>MXNLD", "DE>MXVER"])),
        "heading_key": draw(st.sampled_from(["2933", "2914", "8479", "2922"])),
        "item_key": draw(st.sampled_from(["", "npp", "aniline"])),
        FAMILIES_COLUMN: sorted(draw(st.sets(st.sampled_from(FAMILIES), max_size=2))),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_live_history_of_new_shipments_is_bulk_history(data: st.DataObject) -> None:
    """A batch of new ids only (the common live case, which the state answers on a short path
    for a key only one row asks about): each row's history is the bulk history of the state's
    shipments, the batch's other rows and itself, declared before, inside or after them."""
    known = [data.draw(varied_row(f"S{i}")) for i in range(data.draw(st.integers(0, 30)))]
    batch = [data.draw(varied_row(f"N{i}")) for i in range(data.draw(st.integers(1, 8)))]
    credited = [
        (row, START + timedelta(days=data.draw(st.integers(0, 820))), data.draw(st.booleans()))
        for row in known
        if data.draw(st.booleans())
    ]
    state = EntityState.empty()
    state.add_shipments(frame(known))
    for row, at, positive in credited:
        assert state.add_outcome(row["shipment_id"], at, positive)
    live = state.history_for(frame(batch), PRIOR)
    for position, row in enumerate(batch):
        others = [*known, *(r for r in batch if r is not row)]
        expected = bulk_row([*others, row], credited, len(others))
        got = [float(live[name][position]) for name in NAMES]
        pairs = dict(zip(NAMES, zip(got, expected, strict=True), strict=True))
        assert same(got, expected), (row, pairs)
