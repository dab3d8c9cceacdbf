"""Shadow scoring (issue 17) through a real server and a real client: a shadow model is scored
beside the serving one, changes no decision, is ledgered beside each one, counted in the
metrics and reported by GetModelInfo.

The registry is the session's (v0001, serving) plus two shadows: v0002, trained with other
boosting settings, and v0003, v0002's model with party rates smoothed by another strength, so
its features differ from the serving model's for the same shipment.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import polars as pl
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from features.canonical import canonical_shipment
from features.errors import ConfigError
from features.live import shipments_from_frames
from features.records import Shipment
from features.state import EntityState
from features.tables import scan_table
from features.watchlist import load_watchlist
from scoring.bundle import REFERENCE_FILE, ReferenceSet, save_bundle
from scoring.lanes import LANES
from scoring.ledger import export
from scoring.ledger.contents import read_decision
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer
from server.pb import admin_pb2, admin_pb2_grpc
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from server.settings import load_settings
from tests.conftest import server_settings
from tests.support import ServerThread, make_shipment, request_for

SHADOW = "v0003"
LIVE = 30  # the world's newest shipments, scored again under new ids


@pytest.fixture(scope="module")
def shadow_registry(registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import train
    from training.train_settings import TrainSettings

    root = tmp_path_factory.mktemp("shadow") / "registry"
    shutil.copytree(registry, root)
    small = TrainSettings(num_leaves=4, learning_rate=0.2, max_rounds=30)
    other = Registry(root).load(train(world, root, seed=3, settings=small).version)
    assert other.version == "v0002"
    rows = ReferenceSet.from_json(json.loads((other.path / REFERENCE_FILE).read_text())).rows
    reference = dataclasses.replace(other.meta.reference, smoothing_strength=20.0)
    assert reference != other.meta.reference
    meta = dataclasses.replace(other.meta, version=SHADOW, reference=reference)
    save_bundle(root / SHADOW, other.booster, meta, rows)
    return root


@pytest.fixture(scope="module")
def shipments(world: Path) -> list[Shipment]:
    """The world's newest shipments under new ids (their parties have history), and one whose
    Table I precursor a hard rule sends RED."""
    newest = scan_table(world, "shipments").sort("declared_at", "shipment_id").tail(LIVE).collect()
    goods = scan_table(world, "goods").filter(pl.col("shipment_id").is_in(newest["shipment_id"]))
    records = shipments_from_frames(newest, goods.collect())
    renamed = [dataclasses.replace(s, shipment_id=f"SHADOW-{i:02d}") for i, s in enumerate(records)]
    return [*renamed, make_shipment("SHADOW-RULE")]


def serve(registry: Path, world: Path, workdir: Path, **changes: object) -> ServerThread:
    running = ServerThread(server_settings(registry, workdir, data_dir=world, **changes))
    assert running.load()
    return running


@pytest.fixture(scope="module")
def alone(
    shadow_registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    running = serve(shadow_registry, world, tmp_path_factory.mktemp("alone"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def beside(
    shadow_registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    running = serve(shadow_registry, world, tmp_path_factory.mktemp("beside"), shadow_model=SHADOW)
    yield running
    running.stop()


def score_one_by_one(server: ServerThread, shipments: list[Shipment]) -> list[pb.Decision]:
    stub = pb_grpc.RiskScoringStub(server.channel)
    return [stub.ScoreShipment(request_for(s), timeout=30) for s in shipments]


@pytest.fixture(scope="module")
def decided(
    alone: ServerThread, beside: ServerThread, shipments: list[Shipment]
) -> tuple[list[pb.Decision], list[pb.Decision]]:
    """The same shipments in the same order, one call each, to both servers."""
    return score_one_by_one(alone, shipments), score_one_by_one(beside, shipments)


def payloads(server: ServerThread, decisions: list[pb.Decision]) -> list[dict[str, object]]:
    ledger = server.app.settings.ledger_location
    return [read_decision(ledger, d.decision_id) for d in decisions]


def scrape(server: ServerThread) -> dict[str, list[tuple[dict[str, str], float]]]:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def solo_scores(
    registry: Path, world: Path, version: str, shipments: list[Shipment]
) -> list[float]:
    """What ``version`` alone scores the shipments, one after the other from the world's history,
    as a server serving it would."""
    watchlist = load_watchlist(None)
    settings = load_settings(registry_dir=registry, data_dir=world)
    scorer = Scorer.create(
        Registry(registry).load(version), watchlist, load_rules(None, watchlist), settings
    )
    state = EntityState.from_data_dir(world, watchlist)
    scores = []
    for shipment in shipments:
        batch = scorer.score_batch([canonical_shipment(shipment)], state)
        state.add_shipments(batch.keyed)
        scores.append(batch.scored[0].risk_score)
    return scores


def test_a_shadow_changes_no_decision(
    decided: tuple[list[pb.Decision], list[pb.Decision]],
) -> None:
    without, with_shadow = decided
    for a, b in zip(without, with_shadow, strict=True):
        assert a.decision_id != b.decision_id
        same = pb.Decision()
        same.CopyFrom(b)
        same.decision_id = a.decision_id
        assert same == a  # lane, score, propensity, reasons, hits, exam, versions
    lanes = {d.lane for d in without}
    assert pb.LANE_RED in lanes
    assert pb.LANE_GREEN in lanes


def test_the_ledger_keeps_the_shadow_score_its_bundle_gives_alone(
    decided: tuple[list[pb.Decision], list[pb.Decision]],
    alone: ServerThread,
    beside: ServerThread,
    shadow_registry: Path,
    world: Path,
    shipments: list[Shipment],
    tmp_path: Path,
) -> None:
    without, with_shadow = decided
    assert all("shadow" not in p for p in payloads(alone, without))
    stored = payloads(beside, with_shadow)
    shadows = [p["shadow"] for p in stored]
    assert all(isinstance(s, dict) and s["model_version"] == SHADOW for s in shadows)
    expected = solo_scores(shadow_registry, world, SHADOW, shipments)
    assert [s["risk_score"] for s in shadows] == expected  # type: ignore[index]
    # v0003 is v0002's model on features measured against its own reference: scored on
    # v0002's (the serving model's) features instead, some shipments score differently.
    assert expected != solo_scores(shadow_registry, world, "v0002", shipments)
    assert [p["risk_score"] for p in stored] != expected
    assert {s["lane"] for s in shadows} <= set(LANES)  # type: ignore[index]
    rule_red = stored[-1]
    assert rule_red["rules_fired"]
    assert rule_red["lane"] == "red"
    assert rule_red["shadow"]["lane"] == "red"  # type: ignore[index]
    # Readers of the ledger take records with the key as they take those without.
    result = export(beside.app.settings.ledger_location, tmp_path / "export")
    assert result.shipments == len(shipments)


def test_metrics_count_the_lanes_against_the_shadows(
    decided: tuple[list[pb.Decision], list[pb.Decision]],
    alone: ServerThread,
    beside: ServerThread,
) -> None:
    stored = payloads(beside, decided[1])
    expected = Counter((p["lane"], p["shadow"]["lane"]) for p in stored)  # type: ignore[index]
    samples = scrape(beside)
    counted: Counter[tuple[str, str]] = Counter()
    for labels, value in samples["centinela_shadow_decisions_total"]:
        counted[(labels["lane"], labels["shadow_lane"])] += int(value)
    assert counted == expected
    assert sum(counted.values()) == len(stored)
    differences = samples["centinela_shadow_score_difference_count"]
    assert sum(value for _, value in differences) == len(stored)
    assert samples["centinela_shadow_info"] == [({"model_version": SHADOW}, 1.0)]
    nothing = scrape(alone)
    assert "centinela_shadow_decisions_total" not in nothing
    assert "centinela_shadow_info" not in nothing


def test_model_info_reports_the_shadow(
    alone: ServerThread, beside: ServerThread, shadow_registry: Path
) -> None:
    request = pb.GetModelInfoRequest()
    info = pb_grpc.RiskScoringStub(beside.channel).GetModelInfo(request, timeout=10)
    assert info.model_version == "v0001"
    assert info.shadow_model_version == SHADOW
    metrics = Registry(shadow_registry).load(SHADOW).meta.metrics
    assert metrics
    assert {m.name: m.value for m in info.shadow_metrics} == metrics
    none = pb_grpc.RiskScoringStub(alone.channel).GetModelInfo(request, timeout=10)
    assert none.shadow_model_version == ""
    assert list(none.shadow_metrics) == []


def test_the_serving_bundle_as_its_own_shadow_agrees_on_everything(
    shadow_registry: Path, world: Path, shipments: list[Shipment], tmp_path: Path
) -> None:
    running = serve(shadow_registry, world, tmp_path, shadow_model="v0001")
    try:
        stored = payloads(running, score_one_by_one(running, shipments))
        for p in stored:
            assert p["shadow"] == {  # type: ignore[comparison-overlap]
                "model_version": "v0001",
                "risk_score": p["risk_score"],
                "lane": p["lane"],
            }
        counted = scrape(running)["centinela_shadow_decisions_total"]
        assert all(labels["lane"] == labels["shadow_lane"] for labels, _ in counted)
        assert sum(value for _, value in counted) == len(shipments)
    finally:
        running.stop()


def test_a_shadow_that_cannot_load_stops_the_start_naming_it(
    shadow_registry: Path, world: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(shadow_model="3")
    assert "shadow_model" in str(caught.value.violations)
    running = ServerThread(server_settings(shadow_registry, tmp_path, shadow_model="v0042"))
    try:
        with caplog.at_level(logging.ERROR):
            assert not running.load()
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "shadow model v0042 (setting shadow_model)" in logged
        assert "'v0042' not in registry" in logged
        health = health_pb2_grpc.HealthStub(running.channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        running.stop()


def test_a_shadow_that_fails_to_reload_keeps_what_serves(
    shadow_registry: Path, world: Path, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(shadow_registry, root)
    running = serve(root, world, tmp_path / "server", shadow_model=SHADOW)
    admin = admin_pb2_grpc.AdminStub(running.channel)
    try:
        (root / SHADOW).rename(root / "moved")
        with pytest.raises(grpc.RpcError) as caught:
            admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=60)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert f"shadow model {SHADOW}" in (caught.value.details() or "")
        (decision,) = score_one_by_one(running, [make_shipment("AFTER-FAILED-RELOAD")])
        assert payloads(running, [decision])[0]["shadow"]["model_version"] == SHADOW  # type: ignore[index]
        (root / "moved").rename(root / SHADOW)
        reply = admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=60)
        assert reply.model_version == "v0001"
    finally:
        running.stop()
