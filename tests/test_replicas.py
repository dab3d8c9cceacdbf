"""Replicas that share history (issue 14), end to end: PostgreSQL and two real ``centinela serve``
processes on different ports, one ledger, the same registry, data directory and key files.

Shipments go alternately to each replica over gRPC (streams, several in flight); one replica is
killed with SIGKILL midway and what it had not acknowledged goes to the other, as a client-side
round robin fails over. Then: ``centinela ledger verify --db URL`` accepts one chain, every
acknowledged decision is in it, the killed replica starts again (replaying the ledger before it
reports SERVING) and holds what the other scored meanwhile, and a shipment scored on one replica
counts in the other's history features (``consignee_count_30d`` of a later decision, as ledgered)
within :data:`LAG_BOUND_S`, the bound docs/operations.md states; the measured lags are printed.

The 10,000 shipments of the issue take about 10 s to send on 2 CPUs (the whole test about 30 s),
so the suite runs them all.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from features.records import Party, Shipment
from scoring.ledger import default_key_file, default_signing_key_file, read_decision
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.ledger_backends import beside
from tests.postgres import PostgresServer
from tests.support import CENTINELA, centinela, make_shipment, request_for

pytest_plugins = ("tests.ledger_fixtures",)

LAG_BOUND_S = 2.0
"""What docs/operations.md promises at the default ledger_follow_interval_s (0.2 s): a shipment
acknowledged by one replica counts in another's history features within this long (measured
here from the acknowledgement to a decision on the other replica that shows it)."""
DECLARED = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)
CONSIGNEES = 50
STREAM_CHUNK = 100  # shipments per ScoreShipments call
STREAMS = 2  # calls in flight per replica
Record = Callable[[str, object], None]  # pytest's record_property


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One ``centinela serve`` process."""

    def __init__(self, name: str, root: Path, settings: dict[str, object]) -> None:
        self.name, self.port, self.metrics_port = name, free_port(), free_port()
        self.config = root / f"{name}.yaml"
        self.log = root / f"{name}.log"
        values = {**settings, "grpc_port": self.port, "metrics_port": self.metrics_port}
        self.config.write_text(yaml.safe_dump({k: str(v) for k, v in values.items()}))
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.killed = False  # set before the signal: a call it cuts may fail before the exit

    def start(self) -> None:
        self.killed = False
        if self.channel is not None:
            self.channel.close()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CENTINELA, "serve", "--config", str(self.config)], stdout=log, stderr=log
            )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def wait_serving(self, timeout: float = 120) -> None:
        assert self.channel is not None
        assert self.process is not None
        health = health_pb2_grpc.HealthStub(self.channel)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.tail()}"
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not SERVING after {timeout} s:\n{self.tail()}")

    @property
    def stub(self) -> pb_grpc.RiskScoringStub:
        assert self.channel is not None
        return pb_grpc.RiskScoringStub(self.channel)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode()
        return text


@dataclasses.dataclass
class Cluster:
    url: str
    root: Path
    replicas: dict[str, Replica]


@pytest.fixture
def cluster(
    postgres_server: PostgresServer, registry: Path, world: Path, tmp_path: Path
) -> Iterator[Cluster]:
    url = postgres_server.create_database("replicas")
    keys = tmp_path / "keys" / "ledger"
    keys.parent.mkdir()
    beside(keys)  # one MAC key ring and one signing key, on every replica
    settings: dict[str, object] = {
        "grpc_host": "127.0.0.1",
        "metrics_host": "127.0.0.1",
        "registry_dir": registry,
        "data_dir": world,
        "ledger_url": url,
        "ledger_key_file": default_key_file(keys),
        "ledger_signing_key_file": default_signing_key_file(keys),
        "ledger_follow_interval_s": 0.2,
        "declared_at_max_age_days": 36_500.0,  # the test world is of 2024-2025
        "grace_period_s": 1.0,
        "shutdown_notice_s": 0.0,
        "log_json": False,
    }
    replicas = {name: Replica(name, tmp_path, settings) for name in ("a", "b")}
    try:
        for replica in replicas.values():
            replica.start()
        for replica in replicas.values():
            replica.wait_serving()
        yield Cluster(url, tmp_path, replicas)
    finally:
        for replica in replicas.values():
            replica.stop()
        postgres_server.drop_database(url)


def shipment(i: int, consignee: str, shipment_id: str | None = None, at: float = 0) -> Shipment:
    return make_shipment(
        shipment_id or f"R-{i:05d}",
        declared_at=DECLARED + timedelta(seconds=at or i),
        consignee=Party(consignee, "Importadora Réplica", "MX", ""),
    )


class Load:
    """Sends shipments to replicas in streams; records each acknowledged decision."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, str] = {}  # shipment id -> decision id
        self.by: dict[str, int] = {}  # replica -> decisions it acknowledged

    def send(self, replica: Replica, items: list[Shipment]) -> list[Shipment]:
        """Send ``items`` in streams of :data:`STREAM_CHUNK`; what was not acknowledged when
        the replica failed (empty: all were)."""
        for first in range(0, len(items), STREAM_CHUNK):
            chunk = items[first : first + STREAM_CHUNK]
            done = 0
            try:
                replies = replica.stub.ScoreShipments(
                    iter([request_for(s) for s in chunk]), timeout=120
                )
                for reply in replies:
                    assert not reply.HasField("error"), reply.error
                    with self.lock:
                        self.acked[reply.shipment_id] = reply.decision_id
                        self.by[replica.name] = self.by.get(replica.name, 0) + 1
                    done += 1
            except grpc.RpcError:
                if replica.killed:
                    return [s for s in items[first:] if s.shipment_id not in self.acked]
                raise
            assert done == len(chunk)
        return []


def run_load(cluster: Cluster, n: int) -> tuple[Load, list[float]]:
    """``n`` shipments alternately to a and b, :data:`STREAMS` streams each, and meanwhile the
    follow lag both ways (:func:`follow_lag`); a is killed with SIGKILL once half are
    acknowledged, and what it had not acknowledged is sent to b. The load and the lags."""
    a, b = cluster.replicas["a"], cluster.replicas["b"]
    load = Load()
    items = [shipment(i, f"CNE-R{i % CONSIGNEES}") for i in range(n)]
    failed: list[Shipment] = []
    errors: list[BaseException] = []
    lags: list[float] = []

    def worker(replica: Replica, mine: list[Shipment]) -> None:
        try:
            left = load.send(replica, mine)
            with load.lock:
                failed.extend(left)
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    def lagging() -> None:
        try:
            for k in range(3):
                for src, dst in ((a, b), (b, a)):
                    lags.append(follow_lag(cluster.url, src, dst, f"L{src.name}{k}", n + k))
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=worker, args=(r, items[k::2][s::STREAMS]))
        for k, r in enumerate((a, b))
        for s in range(STREAMS)
    ]
    probe = threading.Thread(target=lagging)
    for thread in [*threads, probe]:
        thread.start()
    while len(load.acked) < n // 2 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    probe.join(timeout=120)  # under load, while a is up
    a.kill()  # mid-stream: its streams are cut, its open transaction is rolled back
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert failed, "a was killed after it had acknowledged all of its shipments"
    assert load.send(b, failed) == []  # the client fails over to the replica still up
    return load, lags


def ledger_decisions(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT decision_id FROM ledger WHERE kind = 'decision'").fetchall()
    return {r[0] for r in rows}


def ledger_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT count(*) FROM ledger").fetchone()
    assert found is not None
    return int(found[0])


def metric(text: str, name: str) -> float:
    """The value of the unlabelled sample ``name`` in a scrape."""
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the scrape")


def count_on(url: str, replica: Replica, consignee: str, probe: str, at: float) -> int:
    """``consignee_count_30d`` of a decision made on ``replica`` for ``consignee`` (the probe
    id is re-scored each time, so its own earlier records are never its history)."""
    reply = replica.stub.ScoreShipment(request_for(shipment(0, consignee, probe, at)), timeout=30)
    features = read_decision(url, reply.decision_id)["features"]
    return int(features["consignee_count_30d"])


def follow_lag(url: str, source: Replica, target: Replica, tag: str, at: float) -> float:
    """Seconds from ``source`` acknowledging a shipment of a new consignee to a decision on
    ``target`` counting it (polled; at most 10 s)."""
    consignee = f"CNE-LAG-{tag}"
    source.stub.ScoreShipment(request_for(shipment(0, consignee, f"LAG-{tag}", at)), timeout=30)
    acked = time.monotonic()
    while time.monotonic() - acked < 10:
        if count_on(url, target, consignee, f"PROBE-{tag}", at + 3600) == 1:
            return time.monotonic() - acked
    raise AssertionError(f"{target.name} did not count {source.name}'s shipment within 10 s")


def check_replicas(cluster: Cluster, n: int, record: Record) -> None:
    started = time.monotonic()
    load, loaded = run_load(cluster, n)
    sent = time.monotonic() - started
    a, b = cluster.replicas["a"], cluster.replicas["b"]
    assert len(load.acked) == n  # every shipment acknowledged by one replica or the other
    assert set(load.acked.values()) <= ledger_decisions(cluster.url)  # none lost

    keys = cluster.root / "keys" / "ledger"
    env = {**os.environ, "CENTINELA_LEDGER_SIGNING_KEY_FILE": str(default_signing_key_file(keys))}
    done = subprocess.run(
        [CENTINELA, "ledger", "verify", "--db", cluster.url, "--key-file",
         str(default_key_file(keys))],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MAC chain intact" in done.stdout
    exported = centinela("ledger", "export", "--db", cluster.url, "--out", str(cluster.root / "x"))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    # one per shipment id (failed over or not), and a shipment and a probe per lag measured
    assert f"exported {n + 2 * len(loaded)} shipments" in exported.stdout

    a.start()  # replays the ledger, b's shipments of the meantime included, before SERVING
    a.wait_serving()
    everything = n + 3600  # declared after the whole load: it all counts as 30-day history
    for consignee in ("CNE-R0", f"CNE-R{CONSIGNEES - 1}"):
        expected = len(range(int(consignee[5:]), n, CONSIGNEES))
        assert count_on(cluster.url, a, consignee, "PROBE-A", everything) == expected
        assert count_on(cluster.url, b, consignee, "PROBE-B", everything) == expected

    lags = [
        follow_lag(cluster.url, src, dst, f"{src.name}{dst.name}{k}", everything + 10 * k)
        for k in range(3)
        for src, dst in ((a, b), (b, a))
    ]
    followed = metric(b.metrics(), "centinela_ledger_followed_rows_total")
    rows = ledger_rows(cluster.url)
    assert load.by["a"] <= followed <= rows - load.by["b"]  # a's rows, none of b's own
    print(
        f"\n{n} shipments in {sent:.1f} s ({load.by}); follow lag, acknowledgement on one "
        f"replica to a decision on the other counting it: under load "
        f"{[round(x, 3) for x in loaded]}, after {[round(x, 3) for x in lags]} s"
    )
    record("follow_lag_max_s", round(max(lags + loaded), 3))
    assert max(lags + loaded) < LAG_BOUND_S


def test_two_replicas_share_one_ledger_and_history(
    cluster: Cluster, record_property: Record
) -> None:
    check_replicas(cluster, 10_000, record_property)


def test_ledger_cli_on_a_database_names_the_keys_to_give() -> None:
    done = centinela("ledger", "verify", "--db", "postgresql://ledger@127.0.0.1:1/centinela")
    assert done.returncode != 0
    assert "--key-file" in done.stdout + done.stderr
    assert "database server" in done.stdout + done.stderr
