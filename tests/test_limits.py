"""The server's limits: overload is shed with RESOURCE_EXHAUSTED and what is admitted still
finishes; callers have a rate; streams have a length; work past its deadline is neither scored
nor ledgered; one server per port and per ledger, each refusal one clear line at start."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from features.errors import FailedPrecondition
from scoring.ledger import WriterLock
from server.limits import (
    CallerBuckets,
    Gate,
    Overloaded,
    RateLimited,
    TokenBucket,
    check_port_free,
    peer_key,
)
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import ServerThread, make_shipment, request_for
from tests.test_cli import CENTINELA

REQUEST = request_for(make_shipment())


# --------------------------------------------------------------------------- the mechanisms


async def test_gate_admits_queues_in_order_and_refuses_beyond_both() -> None:
    gate = Gate(max_in_flight=2, max_queued=2)
    await gate.acquire()
    await gate.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await gate.acquire()
        order.append(name)

    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)
    assert (gate.in_flight, gate.queued) == (2, 2)
    with pytest.raises(Overloaded, match=r"2 calls in flight and 2 queued"):
        await gate.acquire()
    gate.release()
    gate.release()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]  # handed over in arrival order
    assert (gate.in_flight, gate.queued) == (2, 0)


async def test_a_waiter_that_gives_up_leaves_the_queue_and_no_slot_is_lost() -> None:
    gate = Gate(max_in_flight=1, max_queued=1)
    await gate.acquire()
    gone = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.queued == 1
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert gate.queued == 0
    gate.release()
    assert gate.in_flight == 0
    await gate.acquire()  # the slot is free again
    assert gate.in_flight == 1


def test_token_bucket_refills_at_its_rate_and_streams_may_go_into_debt() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token is due in half a second
    now[0] += 0.5
    assert bucket.take() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)  # taken now, to be used in 0.5 s
    assert bucket.reserve() == pytest.approx(1.0)
    now[0] += 10
    assert bucket.full


def test_callers_have_their_own_buckets_and_the_table_is_bounded() -> None:
    now = [0.0]
    buckets = CallerBuckets(rate=1.0, burst=1, clock=lambda: now[0], max_callers=2)
    buckets.check("10.0.0.1")
    with pytest.raises(RateLimited, match=r"caller 10\.0\.0\.1 is over 1 calls a second"):
        buckets.check("10.0.0.1")
    buckets.check("10.0.0.2")  # another caller is not held back
    buckets.check("10.0.0.3")
    assert len(buckets._buckets) == 2  # the least recently seen was forgotten


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("ipv4:10.1.2.3:51234", "10.1.2.3"),
        ("ipv6:[::1]:51234", "::1"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
    ],
)
def test_peer_key_drops_the_port(peer: str, key: str) -> None:
    class Context:
        def peer(self) -> str:
            return peer

    assert peer_key(Context()) == key


def test_a_listening_port_is_named_with_its_holder() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FailedPrecondition) as caught:
            check_port_free("gRPC", "127.0.0.1", port)
    assert f"127.0.0.1:{port}: the address is already in use" in caught.value.message
    assert f"held by pid {os.getpid()}" in caught.value.message
    check_port_free("gRPC", "127.0.0.1", port)  # free again


def test_one_writer_per_ledger_in_one_process_too(tmp_path: Path) -> None:
    first = WriterLock.hold(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(FailedPrecondition, match=rf"held by pid {os.getpid()} "):
            WriterLock.hold(tmp_path / "ledger.sqlite")
    finally:
        first.release()
    WriterLock.hold(tmp_path / "ledger.sqlite").release()  # free once released


# --------------------------------------------------------------------------- a real server


class SlowScorer:
    """The loaded scorer, taking ``delay`` seconds more per batch (a stand-in for load)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.batches = 0

    def score_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.batches += 1
        time.sleep(self._delay)
        return self._inner.score_batch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def limited(
    request: pytest.FixtureRequest, registry: Path, tmp_path: Path
) -> Iterator[ServerThread]:
    """A loaded server with the limits ``request.param`` and a scorer slowed by ``delay``."""
    changes = dict(request.param)
    delay = changes.pop("delay", 0.0)
    running = ServerThread(server_settings(registry, tmp_path, **changes))
    try:
        assert running.load()
        if delay:
            service = running.app.service
            service._scorer = SlowScorer(service._scorer, delay)  # type: ignore[assignment]
        yield running
    finally:
        running.stop()


def sample(running: ServerThread, name: str, **labels: str) -> float:
    return running.app.metrics.registry.get_sample_value(name, labels) or 0.0


def requests_counted(
    running: ServerThread, code: str, expected: float, method: str = "ScoreShipment"
) -> float:
    """Calls counted with ``code``, waiting (up to 10 s) for the count to reach ``expected``:
    a status can reach the caller a moment before the server's own record of it."""
    labels = {"method": f"RiskScoring/{method}", "code": code}
    until = time.monotonic() + 10
    value = sample(running, "centinela_grpc_requests_total", **labels)
    while value != expected and time.monotonic() < until:
        time.sleep(0.02)
        value = sample(running, "centinela_grpc_requests_total", **labels)
    return value


def ledger_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(
            conn.execute("SELECT count(*) FROM ledger WHERE kind = 'decision'").fetchone()[0]
        )
    finally:
        conn.close()


def fire(port: int, n: int, timeout: float) -> list[tuple[str, float, str]]:
    """``n`` concurrent ScoreShipment calls: (code, seconds, details) each."""

    async def all_calls() -> list[tuple[str, float, str]]:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RiskScoringStub(channel)
            await channel.channel_ready()

            async def one() -> tuple[str, float, str]:
                start = time.perf_counter()
                try:
                    await stub.ScoreShipment(REQUEST, timeout=timeout)
                    return "OK", time.perf_counter() - start, ""
                except grpc.aio.AioRpcError as error:
                    return error.code().name, time.perf_counter() - start, error.details() or ""

            return await asyncio.gather(*(one() for _ in range(n)))

    return asyncio.run(all_calls())


@pytest.mark.parametrize(
    "limited", [{"max_in_flight": 4, "max_queued": 4, "delay": 0.2}], indirect=True
)
def test_ten_times_capacity_is_shed_and_what_is_admitted_succeeds(
    limited: ServerThread, tmp_path: Path
) -> None:
    deadline = 60.0
    results = fire(limited.port, 80, timeout=deadline)
    admitted = [seconds for code, seconds, _ in results if code == "OK"]
    rejected = [details for code, _, details in results if code == "RESOURCE_EXHAUSTED"]
    p50 = statistics.median(admitted)
    p99 = statistics.quantiles(admitted, n=100)[98] if len(admitted) > 1 else admitted[0]
    print(
        f"\n80 calls at once, max_in_flight 4, max_queued 4, 0.2 s per call: "
        f"{len(admitted)} admitted (p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms), "
        f"{len(rejected)} refused RESOURCE_EXHAUSTED"
    )
    assert len(admitted) + len(rejected) == 80, {code for code, _, _ in results}
    assert len(admitted) >= 4
    assert len(rejected) >= 40  # far more than the server can hold was refused
    assert all("server overloaded" in d and "max_in_flight 4" in d for d in rejected)
    # Every admitted call finished within the deadline the refused calls had.
    assert max(admitted) < deadline
    # Only what was admitted was scored and ledgered; the metrics say what callers got.
    assert ledger_rows(tmp_path / "ledger.sqlite") == len(admitted)
    assert requests_counted(limited, "OK", len(admitted)) == len(admitted)
    assert requests_counted(limited, "RESOURCE_EXHAUSTED", len(rejected)) == len(rejected)
    rejected_metric = limited.app.metrics.registry.get_sample_value(
        "centinela_rejected_calls_total", {"reason": "overloaded"}
    )
    assert rejected_metric == len(rejected)
    # Still standing: health answers and the next call is scored.
    health = health_pb2_grpc.HealthStub(limited.channel)
    status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert pb_grpc.RiskScoringStub(limited.channel).ScoreShipment(REQUEST, timeout=30).decision_id


@pytest.mark.parametrize(
    "limited", [{"max_in_flight": 1, "max_queued": 4, "delay": 1.0}], indirect=True
)
def test_a_call_whose_deadline_passes_in_the_queue_is_not_scored(
    limited: ServerThread, tmp_path: Path
) -> None:
    stub = pb_grpc.RiskScoringStub(limited.channel)
    slow = stub.ScoreShipment.future(REQUEST, timeout=60)
    while sample(limited, "centinela_calls_in_flight") < 1 and not slow.done():
        time.sleep(0.01)
    assert not slow.done()
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreShipment(REQUEST, timeout=0.3)  # waits behind the slow call
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert slow.result().decision_id
    assert limited.app.service._scorer.batches == 1  # type: ignore[union-attr]
    assert ledger_rows(tmp_path / "ledger.sqlite") == 1
    assert requests_counted(limited, "DEADLINE_EXCEEDED", 1) == 1


@pytest.mark.parametrize("limited", [{"delay": 0.6}], indirect=True)
def test_a_call_whose_deadline_passes_while_scoring_is_not_ledgered(
    limited: ServerThread, tmp_path: Path
) -> None:
    service = limited.app.service
    finished = threading.Event()
    score = service.score

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return score(*args, **kwargs)
        finally:
            finished.set()

    service.score = watched  # type: ignore[method-assign]
    with pytest.raises(grpc.RpcError) as caught:
        pb_grpc.RiskScoringStub(limited.channel).ScoreShipment(REQUEST, timeout=0.3)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert finished.wait(30)  # the scoring thread ran on past the deadline, then gave up
    assert ledger_rows(tmp_path / "ledger.sqlite") == 0
    assert requests_counted(limited, "DEADLINE_EXCEEDED", 1) == 1
    assert requests_counted(limited, "OK", 0) == 0


@pytest.mark.parametrize(
    "limited", [{"rate_limit_per_s": 0.001, "rate_limit_burst": 2}], indirect=True
)
def test_a_caller_over_its_rate_is_refused_with_when_to_retry(limited: ServerThread) -> None:
    stub = pb_grpc.RiskScoringStub(limited.channel)
    stub.ScoreShipment(REQUEST, timeout=30)
    stub.ScoreShipment(REQUEST, timeout=30)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreShipment(REQUEST, timeout=30)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit: caller 127.0.0.1 is over 0.001 calls a second" in caught.value.details()
    assert "retry in" in caught.value.details()
    health = health_pb2_grpc.HealthStub(limited.channel)  # health is never rate limited
    for _ in range(5):
        health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    rejected = limited.app.metrics.registry.get_sample_value(
        "centinela_rejected_calls_total", {"reason": "rate_limited"}
    )
    assert rejected == 1


@pytest.mark.parametrize("limited", [{"max_stream_messages": 3}], indirect=True)
def test_a_stream_longer_than_the_limit_is_answered_up_to_it_then_ended(
    limited: ServerThread,
) -> None:
    requests = [request_for(make_shipment(f"S-{i}")) for i in range(5)]
    answered: list[str] = []
    stream = pb_grpc.RiskScoringStub(limited.channel).ScoreShipments(iter(requests), timeout=30)
    with pytest.raises(grpc.RpcError) as caught:
        answered.extend(decision.shipment_id for decision in stream)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_stream_messages" in caught.value.details()
    assert answered == ["S-0", "S-1", "S-2"]
    assert requests_counted(limited, "RESOURCE_EXHAUSTED", 1, "ScoreShipments") == 1


# --------------------------------------------------------------------------- refusals at start


def serve_fails(tmp_path: Path, **values: object) -> subprocess.CompletedProcess[str]:
    """``centinela serve`` with these settings, expected to refuse to start."""
    config = tmp_path / "refused.yaml"
    values = {"log_level": "ERROR", **values}  # only what ends the server
    config.write_text("".join(f"{key}: {value}\n" for key, value in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
    return subprocess.run(
        [CENTINELA, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def running(registry: Path, tmp_path: Path) -> Iterator[ServerThread]:
    """A server in this process (not loaded), holding its port and ledger."""
    server = ServerThread(server_settings(registry, tmp_path / "first"))
    yield server
    server.stop()


def test_a_second_server_on_the_same_port_fails_at_start_naming_it(
    running: ServerThread, tmp_path: Path
) -> None:
    result = serve_fails(
        tmp_path,
        grpc_port=running.port,
        metrics_port=0,
        registry_dir=tmp_path / "registry",
        ledger_path=tmp_path / "second" / "ledger.sqlite",
    )
    assert result.returncode == 1
    line = one_line(result)
    assert f"cannot serve gRPC on 127.0.0.1:{running.port}: the address is already in use" in line
    assert f"held by pid {os.getpid()}" in line


def test_a_second_server_on_the_same_ledger_fails_at_start_naming_it(
    running: ServerThread, tmp_path: Path
) -> None:
    ledger = tmp_path / "first" / "ledger.sqlite"
    result = serve_fails(
        tmp_path,
        grpc_port=0,
        metrics_port=0,
        registry_dir=tmp_path / "registry",
        ledger_path=ledger,
    )
    assert result.returncode == 1
    line = one_line(result)
    assert f"ledger {ledger} is in use by another server (held by pid {os.getpid()} " in line


def test_a_taken_metrics_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_fails(
            tmp_path,
            grpc_port=0,
            metrics_port=port,
            registry_dir=tmp_path / "registry",
            ledger_path=tmp_path / "ledger.sqlite",
        )
    assert result.returncode == 1
    line = one_line(result)
    assert f"cannot serve metrics on 127.0.0.1:{port}: the address is already in use" in line
    assert f"held by pid {os.getpid()}" in line
    # The gRPC server it had started is gone and the ledger is free again.
    WriterLock.hold(tmp_path / "ledger.sqlite").release()


def test_an_unreadable_settings_file_is_one_clear_line(tmp_path: Path) -> None:
    folder = tmp_path / "centinela.yaml"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTINELA_")}
    result = subprocess.run(
        [CENTINELA, "serve", "--config", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 3
    assert f"cannot read settings file {folder}" in one_line(result)


def test_an_unreadable_data_file_ends_the_server_in_one_clear_line(
    registry: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "shipments.parquet").write_bytes(b"not parquet at all")
    result = serve_fails(
        tmp_path,
        grpc_port=0,
        metrics_port=0,
        registry_dir=registry,
        data_dir=data,
        ledger_path=tmp_path / "ledger.sqlite",
    )
    assert result.returncode == 3
    line = one_line(result)
    assert "cannot start serving" in line
    assert str(data) in line
