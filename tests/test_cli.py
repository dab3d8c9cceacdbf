"""The ``centinela`` command run as a subprocess, the way the README tells analysts to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import make_shipment, request_for

CENTINELA = str(Path(sys.executable).parent / "centinela")


def centinela(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CENTINELA, *args], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


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

    assert centinela("models", "promote", "v0002", "--registry", str(registry)).returncode == 0
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
                request_for(make_shipment()), timeout=10
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
