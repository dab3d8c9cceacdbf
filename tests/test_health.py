"""Health tells the truth: ``Health/Watch`` works through the interceptors, and on SIGTERM the
server reports NOT_SERVING (to Watch and Check) while it still answers, before it drains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scoring.ledger import WriterLock
from tests.conftest import server_settings
from tests.support import ServerThread
from tests.test_cli import CENTINELA

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_watch_streams_each_change_through_the_interceptors(registry: Path, tmp_path: Path) -> None:
    running = ServerThread(server_settings(registry, tmp_path))
    try:
        health = health_pb2_grpc.HealthStub(running.channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=60)
        assert next(watch).status == NOT_SERVING  # bound, nothing loaded yet
        assert running.load()
        assert next(watch).status == SERVING
        watch.cancel()
        scoring = health.Watch(
            health_pb2.HealthCheckRequest(service="centinela.v1.RiskScoring"), timeout=60
        )
        assert next(scoring).status == SERVING
        scoring.cancel()

        def counted(code: str) -> float | None:
            return running.app.metrics.registry.get_sample_value(
                "centinela_grpc_requests_total", {"method": "Health/Watch", "code": code}
            )

        until = time.monotonic() + 30
        while counted("CANCELLED") != 2 and time.monotonic() < until:
            time.sleep(0.02)  # the server sees the cancellations a moment later
        assert counted("CANCELLED") == 2
        assert counted("INTERNAL") is None
    finally:
        running.stop()


def test_sigterm_turns_health_not_serving_before_the_server_drains(
    registry: Path, tmp_path: Path
) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text(
        f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {registry}\n"
        f"ledger_path: {tmp_path / 'ledger.sqlite'}\ndata_dir: {tmp_path / 'data'}\n"
        "shutdown_notice_s: 2\ngrace_period_s: 1\n"
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
        assert proc.stderr is not None
        port = 0
        for line in proc.stderr:
            record = json.loads(line)
            if record.get("message") == "listening":
                port = int(record["grpc"].rsplit(":", 1)[1])
                break
        assert port, "server never logged 'listening'"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=120)
            seen = [next(watch).status]
            while seen[-1] != SERVING:
                seen.append(next(watch).status)
            proc.send_signal(signal.SIGTERM)
            seen.append(next(watch).status)
            assert seen[-2:] == [SERVING, NOT_SERVING]
            # A new call during the notice sees NOT_SERVING too, not UNAVAILABLE.
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == NOT_SERVING
        assert proc.wait(timeout=60) == 0
        rest = proc.stderr.read()
        assert '"message": "stopped"' in rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    WriterLock.hold(tmp_path / "ledger.sqlite").release()  # the ledger was released
