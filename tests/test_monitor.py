"""The drift and label-lag monitor (scoring.monitor) on its own: bins, PSI, windows, ages, and
its counts read back from the ledger after a restart."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.bundle import META_FILE, MODEL_FILE, REFERENCE_FILE, load_bundle, seal
from scoring.decisions import Outcome
from scoring.drift import (
    EPSILON,
    SCORE,
    Binning,
    DriftReference,
    build_reference,
    psi,
    top_features,
)
from scoring.monitor import Monitor
from scoring.service import ScoringService
from tests.conftest import server_settings
from tests.support import make_shipment

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FakeDecision:
    port_of_entry: str
    risk_score: float
    lane: str = "green"
    watchlist_hits: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeMeta:
    drift: dict[str, Any]


def test_bins_are_the_same_one_value_at_a_time_and_in_bulk() -> None:
    rng = np.random.default_rng(3)
    reference = np.concatenate([rng.lognormal(3, 1, 900), np.zeros(300), [np.nan] * 50])
    binning = Binning.fit(reference)
    assert binning.edges[0] == 0.0
    assert binning.edges[1] == math.nextafter(0.0, math.inf)
    probe = np.concatenate([rng.lognormal(3, 2, 500), [0.0, -1.0, np.nan], binning.edges])
    assert binning.indices(probe).tolist() == [binning.index(float(x)) for x in probe]
    assert binning.index(None) == binning.size - 1
    assert sum(binning.proportions) == pytest.approx(1.0)
    assert binning.proportions[1] == pytest.approx(300 / 1250)  # 0 has a bin of its own
    assert binning.proportions[-1] == pytest.approx(50 / 1250)  # missing

    codes = Binning.fit(np.array([5.0] * 50 + [7.0] * 30 + list(range(100, 120)) + [np.nan] * 5))
    assert codes.values is None  # numeric unless said otherwise
    categorical = Binning.fit(np.array([5.0] * 50 + [7.0] * 30 + [1.0, 2.0]), categorical=True)
    assert categorical.values is not None
    assert categorical.values[:2] == (5.0, 7.0)
    assert categorical.index(7.0) == 1
    assert categorical.index(999.0) == categorical.size - 2  # any other code
    assert Binning.from_json(json.loads(json.dumps(categorical.to_json()))).values == (
        categorical.values
    )


def test_psi_is_zero_for_the_reference_and_finite_for_an_empty_bin() -> None:
    shares = (0.25, 0.25, 0.5, 0.0)
    assert psi([25, 25, 50, 0], shares) == pytest.approx(0.0)
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.0 + EPSILON - 0.25) * math.log(
        EPSILON / 0.25
    )
    assert psi([50, 0, 50, 0], shares) == pytest.approx(expected + 0.0)
    moved = psi([0, 0, 50, 50], shares)
    assert math.isfinite(moved)
    assert moved > 4
    assert math.isnan(psi([0, 0, 0, 0], shares))


def test_top_features_leave_out_what_grows_with_the_calendar() -> None:
    names = ("shipper_age_days", "total_value_usd", "broker_inspections", "a", "b", "c", "d", "e")
    gains = [100.0, 90.0, 80.0, 5.0, 4.0, 3.0, 0.0, 2.0]
    assert top_features(gains, names) == ["total_value_usd", "a", "b", "c", "e"]


def reference_of(scores: np.ndarray, ports: np.ndarray) -> DriftReference:
    matrix = np.zeros((len(scores), 64))
    matrix[:, 12] = scores * 1000  # total_value_usd, a feature of the schema
    return build_reference(matrix, scores, ports, ["total_value_usd"])


def test_a_port_window_measures_its_last_decisions_against_its_own_reference() -> None:
    rng = np.random.default_rng(5)
    scores = np.concatenate([rng.uniform(0, 0.1, 400), rng.uniform(0.5, 0.6, 100)])
    ports = np.array(["MXNLD"] * 400 + ["MXZLO"] * 100)
    reference = reference_of(scores, ports)
    assert set(reference.ports) == {"default", "MXNLD"}  # MXZLO: too few for its own
    meta = FakeMeta(reference.to_json())
    monitor = Monitor(window=300, min_decisions=100)
    same = [FakeDecision("MXNLD", float(s)) for s in rng.uniform(0, 0.1, 99)]
    monitor.decided(meta, [(d, {"total_value_usd": d.risk_score * 1000}) for d in same])
    (window,) = monitor.snapshot().drift
    assert window.decisions == 99
    assert window.psi == {}
    assert window.no_history_share == 1.0  # no shipper_age_days given
    more = [FakeDecision("MXNLD", float(s)) for s in rng.uniform(0, 0.1, 201)]
    monitor.decided(meta, [(d, {"total_value_usd": 1.0, "shipper_age_days": 3.0}) for d in more])
    (window,) = monitor.snapshot().drift
    assert window.decisions == 300
    assert window.psi[SCORE] < 0.1
    assert window.psi["total_value_usd"] > 1  # 201 of 300 moved to one bin
    assert window.no_history_share == pytest.approx(99 / 300)
    # Another 300 push the first ones out of the ring: only what is in it counts.
    shifted = [FakeDecision("MXNLD", 0.9, "red", ("hit",)) for _ in range(300)]
    monitor.decided(meta, [(d, {"total_value_usd": 1.0, "shipper_age_days": 1.0}) for d in shifted])
    (window,) = monitor.snapshot().drift
    assert window.decisions == 300
    assert window.psi[SCORE] > 5
    assert window.no_history_share == 0.0
    assert window.watchlist_hit_rate == 1.0
    # A port without a reference of its own is measured against all ports'; an unknown
    # port is 'other'.
    monitor.decided(meta, [(FakeDecision("XXABC", 0.05), {}) for _ in range(100)])
    ports = {d.port: d for d in monitor.snapshot().drift}
    assert set(ports) == {"MXNLD", "other"}
    assert SCORE in ports["other"].psi
    # A new bundle restarts the windows.
    monitor.decided(FakeMeta(reference.to_json()), [(FakeDecision("MXNLD", 0.05), {})])
    assert [(d.port, d.decisions) for d in monitor.snapshot().drift] == [("MXNLD", 1)]


def test_a_bundle_without_a_reference_gives_shares_but_no_psi() -> None:
    monitor = Monitor(window=10, min_decisions=1)
    monitor.decided(FakeMeta({}), [(FakeDecision("MXZLO", 0.2, "red", ("h",)), {})] * 5)
    (window,) = monitor.snapshot().drift
    assert window.psi == {}
    assert window.watchlist_hit_rate == 1.0
    assert DriftReference.from_json({"features": ["nope"], "ports": {}}) is None


def decision_payload(port: str, lane: str, decided_at: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(decided_at, UTC).isoformat()
    return {"shipment": {"port_of_entry": port}, "lane": lane, "decided_at": when}


def test_label_lag_by_age_outcome_rate_positive_share_and_expiry() -> None:
    clock = Clock()
    monitor = Monitor(label_window_days=30, label_max_age_days=90, clock=clock)
    start = clock.now
    assert monitor.snapshot().seconds_since_last_outcome == 0.0
    meta = FakeMeta({})
    red, green = FakeDecision("MXZLO", 0.5, "red"), FakeDecision("MXZLO", 0.01, "green")
    monitor.decided(meta, [(red, {}), (red, {}), (green, {}), (green, {})])
    clock.now += 2 * DAY
    monitor.decided(meta, [(FakeDecision("MXZLO", 0.3, "yellow"), {})])
    (labels,) = monitor.snapshot().labels
    assert labels.awaiting == {"lt_1d": 1, "1d_7d": 2, "7d_30d": 0, "gt_30d": 0}  # GREEN: never
    assert labels.outcome_rate == 0.0
    assert labels.positive_share_inspected is None
    # A first outcome closes its decision; a second version does not close another one.
    first = {"version": 1, "inspected": True, "result": "positive"}
    monitor.outcome(decision_payload("MXZLO", "red", start), first)
    monitor.outcome(decision_payload("MXZLO", "red", start), {**first, "version": 2})
    monitor.outcome(
        decision_payload("MXZLO", "green", start), {"version": 1, "inspected": True, "result": ""}
    )
    (labels,) = monitor.snapshot().labels
    assert labels.awaiting == {"lt_1d": 1, "1d_7d": 1, "7d_30d": 0, "gt_30d": 0}
    assert labels.outcome_rate == pytest.approx(2 / 5)
    assert labels.positive_share_inspected == pytest.approx(1 / 2)
    clock.now += 3600
    assert monitor.snapshot().seconds_since_last_outcome == pytest.approx(3600)
    clock.now += 40 * DAY
    (labels,) = monitor.snapshot().labels
    assert labels.awaiting == {"lt_1d": 0, "1d_7d": 0, "7d_30d": 0, "gt_30d": 2}
    assert labels.outcome_rate is None  # nothing decided in the last 30 days
    clock.now += 60 * DAY
    (labels,) = monitor.snapshot().labels
    assert sum(labels.awaiting.values()) == 0
    assert labels.expired == 2


def test_label_lag_survives_a_restart(registry: Path, world: Path, tmp_path: Path) -> None:
    settings = server_settings(registry, tmp_path, data_dir=world)
    service = ScoringService(settings)
    service.load()
    decisions = service.score([make_shipment(f"LAG-{i}") for i in range(6)])
    exams = [d for d in decisions if d.scored.lane in ("red", "yellow")]
    assert exams, "make_shipment declares NPP: rules send it RED"
    service.record_outcome(Outcome(exams[0].decision_id, True, "positive"))
    repeat = service.record_outcome(Outcome(exams[0].decision_id, True, "positive"))
    assert repeat.duplicate
    service.record_outcome(Outcome(decisions[-1].decision_id, False, ""))
    before = service.monitor.snapshot()
    service.close()

    restarted = ScoringService(settings)
    restarted.load()
    after = restarted.monitor.snapshot()
    restarted.close()
    (labels,) = after.labels
    assert labels == before.labels[0]
    closed = {exams[0].decision_id, decisions[-1].decision_id}
    assert labels.awaiting["lt_1d"] == len([d for d in exams if d.decision_id not in closed])
    assert labels.outcome_rate == pytest.approx(2 / 6)
    assert labels.positive_share_inspected == 1.0
    assert after.seconds_since_last_outcome < 60


def test_a_bundle_trained_before_drift_references_still_loads(
    registry: Path, tmp_path: Path
) -> None:
    source = next(p for p in sorted(registry.iterdir()) if (p / META_FILE).exists())
    old = tmp_path / source.name
    shutil.copytree(source, old)
    doc = json.loads((old / META_FILE).read_text(encoding="utf-8"))
    assert DriftReference.from_json(doc["drift"]) is not None
    del doc["drift"]
    files = {name: (old / name).read_bytes() for name in (MODEL_FILE, REFERENCE_FILE)}
    (old / META_FILE).write_text(json.dumps(seal(doc, files)), encoding="utf-8")
    bundle = load_bundle(old)
    assert bundle.meta.drift == {}
    monitor = Monitor(window=10, min_decisions=1)
    monitor.decided(bundle.meta, [(FakeDecision("MXZLO", 0.1), {})] * 3)
    assert [(d.decisions, d.psi) for d in monitor.snapshot().drift] == [(3, {})]
    assert replace(bundle.meta, drift={}).to_json().get("drift") is None
