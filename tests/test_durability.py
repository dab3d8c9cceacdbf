"""No acknowledged decision is lost: SIGKILL mid-stream, restart, and the ledger has every
decision whose reply the client received, with the hash chain intact. Outcomes recorded over
gRPC come out of ``ledger export`` in the form ``train`` reads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import polars as pl
from grpc_health.v1 import health_pb2, health_pb2_grpc

from features.live import shipments_from_frames
from features.tables import scan_table
from scoring.ledger import encode_payload, payload_text
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import CENTINELA, centinela, request_for


def world_requests(world: Path, n: int, offset: int = 0) -> list[pb.ScoreShipmentRequest]:
    ships = scan_table(world, "shipments").sort("declared_at").collect().slice(offset, n)
    goods = scan_table(world, "goods").collect()
    goods = goods.filter(pl.col("shipment_id").is_in(ships["shipment_id"].implode()))
    return [request_for(s) for s in shipments_from_frames(ships, goods)]


class Served:
    """``centinela serve`` in a subprocess, configured to keep everything under ``workdir``."""

    def __init__(self, registry: Path, world: Path, workdir: Path) -> None:
        config = workdir / "centinela.yaml"
        config.write_text(
            f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {registry}\n"
            f"data_dir: {world}\nledger_path: {workdir / 'ledger.sqlite'}\n"
            # The world's shipments are replayed as of their own (2024-2025) dates.
            "declared_at_max_age_days: 36500\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
        self.proc = subprocess.Popen(
            [CENTINELA, "serve", "--config", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stderr is not None
        port = 0
        for line in self.proc.stderr:
            record = json.loads(line)
            if record.get("message") == "listening":
                port = int(record["grpc"].rsplit(":", 1)[1])
                break
        assert port, "server never logged 'listening'"
        # Keep reading its log: a full pipe would block the server at its next log line.
        self.log: list[str] = []
        self._drain = threading.Thread(target=self.log.extend, args=(self.proc.stderr,))
        self._drain.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.1)
        self.stub = pb_grpc.RiskScoringStub(self.channel)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0
        self.close()

    def close(self) -> None:
        self.channel.close()
        self._drain.join(timeout=30)  # the process has exited: its stderr is at its end
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def ledger_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT decision_id FROM ledger WHERE kind = 'decision'").fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def test_sigkill_mid_stream_loses_no_acknowledged_decision(
    registry: Path, world: Path, tmp_path: Path
) -> None:
    requests = world_requests(world, 400)
    served = Served(registry, world, tmp_path)
    received: list[str] = []
    try:

        def stream() -> Iterator[pb.ScoreShipmentRequest]:
            yield from requests

        for decision in served.stub.ScoreShipments(stream(), timeout=120):
            assert not decision.HasField("error"), decision.error
            received.append(decision.decision_id)
            if len(received) == 40:
                served.kill()
                break
    finally:
        if served.proc.poll() is None:
            served.kill()
    ledger = tmp_path / "ledger.sqlite"
    assert len(received) == 40
    assert set(received) <= ledger_ids(ledger)

    verified = centinela("ledger", "verify", "--db", str(ledger), "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    again = Served(registry, world, tmp_path)
    try:
        decision = again.stub.ScoreShipment(requests[-1], timeout=10)
        assert decision.decision_id in ledger_ids(ledger)
    finally:
        again.stop()
    result = json.loads(centinela("ledger", "verify", "--db", str(ledger), "--json").stdout)
    assert result["ok"] is True
    assert result["rows"] >= 41


def test_outcomes_flow_from_rpc_through_export_into_train(
    registry: Path, world: Path, tmp_path: Path
) -> None:
    served = Served(registry, world, tmp_path)
    try:
        decisions = list(served.stub.ScoreShipments(iter(world_requests(world, 300)), timeout=120))
        for i, decision in enumerate(decisions[:240]):
            served.stub.RecordOutcome(
                pb.RecordOutcomeRequest(
                    decision_id=decision.decision_id,
                    inspected=True,
                    result="positive" if i % 6 == 0 else "negative",
                ),
                timeout=10,
            )
    finally:
        served.stop()
    out = tmp_path / "exported"
    exported = centinela(
        "ledger", "export", "--out", str(out), "--db", str(tmp_path / "ledger.sqlite")
    )
    assert exported.returncode == 0, exported.stderr
    assert "300 shipments" in exported.stdout
    assert "240 inspection outcomes" in exported.stdout
    inspections = pl.read_parquet(out / "inspections.parquet")
    assert inspections["positive"].sum() == 40
    trained = centinela("train", "--data", str(out), "--registry", str(tmp_path / "reg"), "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["version"] == "v0001"


def test_verify_names_a_tampered_row_from_the_cli(
    registry: Path, world: Path, tmp_path: Path
) -> None:
    served = Served(registry, world, tmp_path)
    try:
        list(served.stub.ScoreShipments(iter(world_requests(world, 5)), timeout=60))
    finally:
        served.stop()
    ledger = tmp_path / "ledger.sqlite"
    conn = sqlite3.connect(ledger)
    (stored,) = conn.execute("SELECT payload FROM ledger WHERE seq = 3").fetchone()
    edited = payload_text(stored).replace('"risk_score":', '"risk_score":9')
    conn.execute("UPDATE ledger SET payload = ? WHERE seq = 3", (encode_payload(edited),))
    conn.commit()
    conn.close()
    result = centinela("ledger", "verify", "--db", str(ledger))
    assert result.returncode == 6
    assert "row 3 was edited" in result.stderr
