"""The servers the benchmarks measure, each in a subprocess of its own on 127.0.0.1: started,
waited for until they serve, and stopped. Their output goes to a log file in their work
directory, shown when one fails to start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180.0

# The servers compared, by the names the reports give them.
CENTINELA = "Centinela"
MLSERVER = "Seldon MLServer"
BARE = "bare grpc.aio + lightgbm"
EMPTY = "empty RPC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A server in a subprocess, its output in ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    target: str = ""

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def spawn(name: str, argv: list[str], log: Path, cwd: Path | None = None) -> Served:
    # Neither server may pick up settings from the environment of whoever runs the benchmark.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CENTINELA_", "MLSERVER_"))}
    out = log.open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    out.close()
    return Served(name, proc, log)


def wait_for_line(served: Served, match: Callable[[dict[str, Any]], str | None]) -> str:
    """The first JSON log line for which ``match`` returns a value, and that value."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in served.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (found := match(record)):
                    return found
        if served.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{served.name} did not start:\n{served.tail()}")


def start_centinela(registry: Path, world: Path, workdir: Path) -> Served:
    """``centinela serve`` with default settings on ports of its own, once it is SERVING."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "centinela.yaml"
    config.write_text(
        f"grpc_port: 0\nmetrics_port: 0\nregistry_dir: {registry}\n"
        f"data_dir: {world}\nledger_path: {workdir / 'ledger.sqlite'}\n"
    )
    centinela = Path(sys.executable).parent / "centinela"
    served = spawn(CENTINELA, [str(centinela), "serve", "--config", str(config)], workdir / "log")
    try:
        port = wait_for_line(
            served,
            lambda r: r["grpc"].rsplit(":", 1)[1] if r.get("message") == "listening" else None,
        )
        served.target = f"127.0.0.1:{port}"
        wait_serving(served)
    except BaseException:
        served.stop()
        raise
    return served


def wait_serving(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(served.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if served.proc.poll() is not None:
                break
            with contextlib.suppress(grpc.RpcError):
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{served.name} never reported SERVING:\n{served.tail()}")


def start_peer(kind: str, model: Path, rows: Path, workdir: Path) -> Served:
    """The bare (``kind`` "bare") or the empty server of ``bench.bare``, through the hidden
    ``--serve`` of ``python -m bench.peers``, scoring the feature ``rows`` with ``model``."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "bench.peers", "--serve", kind, "--model", str(model)]
    served = spawn(
        BARE if kind == "bare" else EMPTY, [*argv, "--rows", str(rows)], workdir / "log", ROOT
    )
    try:
        port = wait_for_line(served, lambda r: str(r.get("listening", "")))
    except BaseException:
        served.stop()
        raise
    served.target = f"127.0.0.1:{port}"
    return served
