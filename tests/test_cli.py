"""The ``centinela`` command run as a subprocess, the way the README tells analysts to."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import polars as pl
from grpc_health.v1 import health_pb2, health_pb2_grpc

from features.tables import Folded
from scoring.decisions import Outcome
from scoring.service import ScoringService
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import CENTINELA, centinela, make_shipment, request_for


def test_help_lists_every_command() -> None:
    result = centinela("--help")
    assert result.returncode == 0, result.stderr
    for command in ("simulate", "train", "models", "watchlist", "serve"):
        assert command in result.stdout


def test_train_then_list_promote_and_rollback(world: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    first = centinela("train", "--data", str(world), "--registry", str(registry), "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["version"] == "v0001"
    assert result["promoted"] is True
    assert (registry / "v0001" / "model.txt").exists()

    second = centinela("train", "--data", str(world), "--registry", str(registry), "--json")
    assert json.loads(second.stdout)["promoted"] is False

    listed = json.loads(centinela("models", "list", "--registry", str(registry), "--json").stdout)
    assert [(m["version"], m["promoted"]) for m in listed] == [("v0001", True), ("v0002", False)]

    # v0002 has no gate verdict: the gate refuses it unless forced, with a reason.
    refused = centinela("models", "promote", "v0002", "--registry", str(registry))
    assert refused.returncode == 6
    assert "v0002 has no gate verdict" in refused.stderr
    forced = ("--force", "--reason", "trial of v0002")
    promoted = centinela("models", "promote", "v0002", *forced, "--registry", str(registry))
    assert promoted.returncode == 0, promoted.stderr
    rolled = centinela("models", "rollback", "--registry", str(registry))
    assert rolled.returncode == 0
    assert "v0001 is promoted" in rolled.stdout

    missing = centinela("models", "promote", "v0042", "--registry", str(registry))
    assert missing.returncode == 4
    assert "model version 'v0042' not in registry" in missing.stderr


def test_train_on_a_missing_directory_names_it(tmp_path: Path) -> None:
    result = centinela("train", "--data", str(tmp_path / "nowhere"), "--registry", str(tmp_path))
    assert result.returncode == 3
    assert "no shipments table" in result.stderr


def _wait_for_port(proc: subprocess.Popen[str], deadline: float) -> int:
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        if record.get("message") == "listening":
            return int(record["grpc"].rsplit(":", 1)[1])
    raise AssertionError("server never logged 'listening'")


def test_serve_answers_and_stops_gracefully_on_sigterm(registry: Path, tmp_path: Path) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text(
        f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {registry}\ngrace_period_s: 2\n"
        f"ledger_path: {tmp_path / 'ledger.sqlite'}\ndata_dir: {tmp_path / 'data'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
    proc = subprocess.Popen(
        [CENTINELA, "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        port = _wait_for_port(proc, time.monotonic() + 60)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            status = health_pb2.HealthCheckResponse.NOT_SERVING
            while time.monotonic() < deadline:
                request = health_pb2.HealthCheckRequest()
                status = health.Check(request, timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
                time.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.SERVING
            decision = pb_grpc.RiskScoringStub(channel).ScoreShipment(
                request_for(make_shipment(declared_at=datetime.now(UTC))), timeout=10
            )
            assert decision.model_version == "v0001"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert '"message": "stopped"' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_rejects_an_unknown_setting(tmp_path: Path) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text("grpc_prot: 1\n")
    result = centinela("serve", "--config", str(config))
    assert result.returncode == 3
    assert "grpc_prot" in result.stderr


# --------------------------------------------------------------------------- repeated shipment ids


def repeat_shipments(world: Path, out: Path, every: int = 20) -> Folded:
    """A copy of ``world`` where every ``every``-th shipment is appended again, with its goods
    lines and inspection: the same shipments, some of them twice."""
    out.mkdir(parents=True)
    for extra in ("truth.parquet", "manifest.json"):
        if (world / extra).exists():
            shutil.copy(world / extra, out / extra)
    ships = pl.read_parquet(world / "shipments.parquet")
    again = ships.gather_every(every)
    ids = again["shipment_id"].implode()
    counts = [again.height]
    pl.concat([ships, again]).write_parquet(out / "shipments.parquet")
    for table in ("goods", "inspections"):
        frame = pl.read_parquet(world / f"{table}.parquet")
        repeated = frame.filter(pl.col("shipment_id").is_in(ids))
        counts.append(repeated.height)
        pl.concat([frame, repeated]).write_parquet(out / f"{table}.parquet")
    return Folded(*counts)


def test_train_and_evaluate_count_a_repeated_shipment_once(
    world: Path, registry: Path, tmp_path: Path
) -> None:
    repeated = tmp_path / "repeated"
    appended = repeat_shipments(world, repeated)
    assert appended.shipments == 300
    assert appended.inspections > 0

    clean = centinela("train", "--data", str(world), "--registry", str(tmp_path / "a"), "--json")
    twice = centinela("train", "--data", str(repeated), "--registry", str(tmp_path / "b"), "--json")
    assert clean.returncode == 0, clean.stderr
    assert twice.returncode == 0, twice.stderr
    assert json.loads(clean.stdout)["folded"] == {"shipments": 0, "goods": 0, "inspections": 0}
    assert json.loads(twice.stdout)["folded"] == appended.to_json()
    # The same shipments make the same model, however often some of them are listed.
    model = (tmp_path / "a" / "v0001" / "model.txt").read_text()
    assert (tmp_path / "b" / "v0001" / "model.txt").read_text() == model

    text = centinela("train", "--data", str(repeated), "--registry", str(tmp_path / "b"))
    assert text.returncode == 0, text.stderr
    assert (
        f"folded 300 repeated shipment rows, {appended.goods} goods lines and "
        f"{appended.inspections} inspections of the same shipment ids (last kept)"
    ) in text.stdout

    figures = []
    for data in (world, repeated):
        evaluated = centinela(
            "evaluate", "--data", str(data), "--registry", str(registry), "--json"
        )
        assert evaluated.returncode == 0, evaluated.stderr
        figures.append(json.loads(evaluated.stdout))
    assert figures[1]["window"].pop("folded") == appended.to_json()
    assert figures[0]["window"].pop("folded") == Folded().to_json()
    assert figures[1] == figures[0]


def test_ledger_export_keeps_the_latest_decision_of_each_shipment_id(
    registry: Path, tmp_path: Path
) -> None:
    service = ScoringService(server_settings(registry, tmp_path))
    service.load()
    shipment = make_shipment("MSC-2025-000777")
    decisions = [
        service.score([replace(shipment, declared_at=shipment.declared_at + timedelta(hours=h))])[0]
        for h in range(3)
    ]
    other = service.score([make_shipment("MSC-2025-000778")])[0]
    for decision in (*decisions, other):
        service.record_outcome(Outcome(decision.decision_id, True, "negative"))
    service.close()

    db, out = str(tmp_path / "ledger.sqlite"), tmp_path / "export"
    result = centinela("ledger", "export", "--out", str(out), "--db", db)
    assert result.returncode == 0, result.stderr
    assert "exported 2 shipments, 4 goods lines and 2 inspection outcomes" in result.stdout
    assert "folded 2 repeated decisions of the same shipment ids (latest kept)" in result.stdout
    shipments = pl.read_parquet(out / "shipments.parquet").sort("shipment_id")
    assert shipments["declared_at"][0] == shipment.declared_at + timedelta(hours=2)
    assert pl.read_parquet(out / "inspections.parquet")["shipment_id"].n_unique() == 2

    as_json = centinela("ledger", "export", "--out", str(out), "--db", db, "--json")
    assert as_json.returncode == 0, as_json.stderr
    counts = json.loads(as_json.stdout)
    assert (counts["shipments"], counts["inspections"], counts["folded"]) == (2, 2, 2)


def test_bootstrap_replaces_a_promoted_bundle_older_than_the_format_it_checks(
    world: Path, tmp_path: Path
) -> None:
    """A machine that ran an older `make run` keeps working: its format-1 model is replaced by
    a new one, not left refusing to load."""
    from scoring.bundle import META_FILE
    from scoring.registry import Registry
    from server.cli import bootstrap
    from server.settings import load_settings

    root = tmp_path / "registry"
    (root / "v0001").mkdir(parents=True)
    (root / "v0001" / META_FILE).write_text('{"format": 1, "version": "v0001"}')
    Registry(root).promote("v0001", by="make run", reason="an older version", forced=True)
    bootstrap(load_settings(registry_dir=root, data_dir=world))
    registry = Registry(root)
    assert registry.promoted() == "v0002"
    assert registry.load().version == "v0002"
    logged = registry.promotion_log()[-1]
    assert (logged.version, logged.by, logged.forced) == (
        "v0002",
        "centinela serve --bootstrap",
        True,
    )
    assert logged.reason == "the promoted model v0001 predates the bundle format this version loads"
    bootstrap(load_settings(registry_dir=root, data_dir=world))  # current: nothing to do
    assert registry.versions() == ["v0001", "v0002"]
