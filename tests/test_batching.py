"""Adaptive batching across calls (server/batcher.py): concurrent calls are scored together,
and each call keeps its own answer, caller, deadline and errors.

Batches are made deterministic, never timed: a gate in front of the real scorer holds a first
("blocker") batch in its worker thread while the calls under test queue up behind it, the test
waits until the batcher reports them queued, then opens the gate; the next batch is then
exactly what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from features.errors import DeadlineExceeded, InvalidInput
from features.records import Shipment
from scoring.caller import Caller
from scoring.decisions import Decision
from scoring.ledger import payload_text
from server.batcher import Batcher
from server.metrics import Metrics
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import ServerThread, make_decision, make_shipment, request_for

PRECURSOR = make_shipment()  # a Table I precursor line: RED by a hard rule
BENIGN_LINE = PRECURSOR.goods[1]


def precursor(shipment_id: str) -> Shipment:
    return dataclasses.replace(PRECURSOR, shipment_id=shipment_id)


def benign(shipment_id: str) -> Shipment:
    return dataclasses.replace(PRECURSOR, shipment_id=shipment_id, goods=(BENIGN_LINE,))


# --------------------------------------------------------------------------- a gated server


class GatedScorer:
    """The loaded scorer, recording the shipment ids of every scorer batch; while ``gated``,
    each batch waits in its worker thread for a permit."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.gated = False
        self.permits = threading.Semaphore(0)
        self.waiting = 0
        self.batches: list[list[str]] = []

    def score_batch(self, shipments: Sequence[Shipment], state: Any) -> Any:
        with self._lock:
            self.batches.append([s.shipment_id for s in shipments])
            gated = self.gated
            self.waiting += gated
        if gated:
            assert self.permits.acquire(timeout=30), "the test never opened the gate"
            with self._lock:
                self.waiting -= 1
        return self._inner.score_batch(shipments, state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


SERVER_DEADLINE_SKEW_S = 0.3


def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for a condition the server reports (never for a fixed time)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class Gated:
    """A loaded server whose scorer is a :class:`GatedScorer`."""

    def __init__(self, running: ServerThread) -> None:
        self.running = running
        service = running.app.service
        self.scorer = GatedScorer(service._scorer)
        service._scorer = self.scorer  # type: ignore[assignment]
        assert running.app.scoring is not None
        self.batcher = running.app.scoring.batcher
        self.stub = pb_grpc.RiskScoringStub(running.channel)

    def queued(self) -> int:
        """Calls waiting in the batcher, read on the server's own loop."""

        async def read() -> int:
            return self.batcher.queued

        return self.running.call(read)

    @contextlib.contextmanager
    def holding(self) -> Iterator[Any]:
        """Send a blocker call and hold its batch in the scorer; on exit open the gate and
        return the blocker's Decision future (finished)."""
        self.scorer.gated = True
        blocker = self.stub.ScoreShipment.future(
            request_for(benign(f"BLOCK-{time.monotonic_ns()}")), timeout=60
        )
        try:
            until(lambda: self.scorer.waiting == 1, "the blocker to reach the scorer")
            yield blocker
        finally:
            self.scorer.gated = False
            for _ in range(64):
                self.scorer.permits.release()
        assert blocker.result(timeout=30).decision_id
        self.scorer.permits = threading.Semaphore(0)

    def ledger(self) -> dict[str, dict[str, Any]]:
        """Every ledgered decision's payload, by shipment id (the latest)."""
        conn = sqlite3.connect(self.running.app.settings.ledger_path)
        try:
            rows = conn.execute("SELECT payload FROM ledger WHERE kind = 'decision'").fetchall()
        finally:
            conn.close()
        payloads = [json.loads(payload_text(p)) for (p,) in rows]
        return {p["shipment"]["shipment_id"]: p for p in payloads}


@pytest.fixture(scope="module")
def gated(registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    workdir = tmp_path_factory.mktemp("batching")
    running = ServerThread(
        server_settings(
            registry,
            workdir,
            data_dir=world,
            max_in_flight=64,
            max_queued=64,
            stream_batch_max=4,
        )
    )
    try:
        assert running.load()
        yield Gated(running)
    finally:
        running.stop()


def bad_request_fields(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return [v.field for v in detail.field_violations]


def metric(running: ServerThread, name: str) -> float:
    """A sample read from the Prometheus endpoint, as a scraper reads it."""
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


# --------------------------------------------------------------------------- through the server


def test_sixteen_concurrent_calls_are_one_batch_each_with_its_own_decision(
    gated: Gated,
) -> None:
    shipments = [precursor(f"CC-P{i}") if i % 2 else benign(f"CC-B{i}") for i in range(16)]
    alone = {  # the rule-driven ones scored alone first, under other ids
        s.shipment_id: gated.stub.ScoreShipment(
            request_for(dataclasses.replace(s, shipment_id=f"ALONE-{s.shipment_id}")), timeout=30
        )
        for s in shipments
        if s.shipment_id.startswith("CC-P")
    }
    batches_before = gated.batcher.batches
    count_before = metric(gated.running, "centinela_batch_size_count")
    with gated.holding():
        calls = [gated.stub.ScoreShipment.future(request_for(s), timeout=60) for s in shipments]
        until(lambda: gated.queued() == 16, "16 calls queued")
    decisions = [call.result(timeout=30) for call in calls]

    # 17 calls (the blocker and 16), 2 batches: the 16 were scored as one.
    assert gated.batcher.batches - batches_before == 2
    assert list(gated.batcher.sizes)[-2:] == [1, 16]
    assert sorted(gated.scorer.batches[-1]) == sorted(s.shipment_id for s in shipments)
    assert metric(gated.running, "centinela_batch_size_count") - count_before == 2
    assert metric(gated.running, 'centinela_batch_size_bucket{le="16.0"}') >= 2

    assert [d.shipment_id for d in decisions] == [s.shipment_id for s in shipments]
    assert len({d.decision_id for d in decisions}) == 16
    for shipment, decision in zip(shipments, decisions, strict=True):
        if shipment.shipment_id in alone:
            single = alone[shipment.shipment_id]
            assert decision.lane == single.lane == pb.LANE_RED
            assert [r.code for r in decision.reasons] == [r.code for r in single.reasons]
            assert {h.entry_id for h in decision.watchlist_hits} == {"npp"}
        else:  # nothing of a neighbour's goods leaks into a benign shipment's answer
            assert not decision.watchlist_hits
            assert "RULE_TABLE_I_PRECURSOR" not in {r.code for r in decision.reasons}
    ledgered = gated.ledger()
    assert {d.decision_id for d in decisions} <= {p["decision_id"] for p in ledgered.values()}


def test_a_lone_call_is_dispatched_at_once_without_a_timer(gated: Gated) -> None:
    assert gated.batcher.max_wait_s == 0  # the default
    batches, timers = gated.batcher.batches, gated.batcher.timers_armed
    decision = gated.stub.ScoreShipment(request_for(benign("LONE-1")), timeout=30)
    assert decision.shipment_id == "LONE-1"
    assert gated.batcher.batches == batches + 1
    assert gated.batcher.sizes[-1] == 1
    assert gated.batcher.timers_armed == timers == 0
    assert gated.scorer.batches[-1] == ["LONE-1"]


def test_an_invalid_shipment_among_valid_ones_is_invalid_argument_alone(gated: Gated) -> None:
    bad_line = dataclasses.replace(BENIGN_LINE, hs_code="ABC")
    valid = [benign(f"INV-OK{i}") for i in range(5)]
    invalid = dataclasses.replace(benign("INV-BAD"), goods=(bad_line,))
    with gated.holding():
        calls = [gated.stub.ScoreShipment.future(request_for(s), timeout=60) for s in valid]
        bad = gated.stub.ScoreShipment.future(request_for(invalid), timeout=60)
        until(lambda: gated.queued() == 6, "6 calls queued")
    assert [c.result(timeout=30).shipment_id for c in calls] == [s.shipment_id for s in valid]
    with pytest.raises(grpc.RpcError) as caught:
        bad.result(timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["goods[0].hs_code"]
    assert gated.batcher.sizes[-1] == 6  # batched with the others...
    assert sorted(gated.scorer.batches[-1]) == sorted(s.shipment_id for s in valid)  # ...unscored


def test_a_call_whose_deadline_passes_while_queued_is_neither_scored_nor_ledgered(
    gated: Gated,
) -> None:
    batches = gated.batcher.batches
    with gated.holding():
        late = gated.stub.ScoreShipment.future(request_for(benign("LATE-Q")), timeout=0.5)
        with pytest.raises(grpc.RpcError) as caught:
            late.result(timeout=30)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    gated.stub.ScoreShipment(request_for(benign("AFTER-Q")), timeout=30)  # the queue moved on
    assert gated.batcher.batches == batches + 2  # the blocker and AFTER-Q, nothing for LATE-Q
    assert not any("LATE-Q" in batch for batch in gated.scorer.batches)
    assert "LATE-Q" not in gated.ledger()


def test_in_one_batch_only_the_call_whose_deadline_passed_is_not_ledgered(
    gated: Gated,
) -> None:
    with gated.holding():
        short = gated.stub.ScoreShipment.future(request_for(benign("DL-SHORT")), timeout=2.5)
        long = gated.stub.ScoreShipment.future(request_for(benign("DL-LONG")), timeout=60)
        until(lambda: gated.queued() == 2, "2 calls queued")
        gated.scorer.permits.release()  # the blocker goes; the next batch stays held
        until(
            lambda: gated.scorer.waiting == 1 and "DL-SHORT" in gated.scorer.batches[-1],
            "the batch of both to reach the scorer",
        )
        with pytest.raises(grpc.RpcError) as caught:
            short.result(timeout=30)  # its deadline passes while its batch is scored
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        # The server's deadline counts from when the call arrived, a transit later than the
        # client's: let it pass too before the gate opens, or a fast scorer stores in time.
        time.sleep(SERVER_DEADLINE_SKEW_S)
    assert long.result(timeout=30).shipment_id == "DL-LONG"
    assert sorted(gated.scorer.batches[-1]) == ["DL-LONG", "DL-SHORT"]  # scored together
    ledgered = gated.ledger()
    assert "DL-LONG" in ledgered
    assert "DL-SHORT" not in ledgered


def test_in_a_batch_where_every_valid_call_timed_out_an_invalid_one_is_still_invalid(
    gated: Gated,
) -> None:
    bad_line = dataclasses.replace(BENIGN_LINE, hs_code="ABC")
    with gated.holding():
        short = gated.stub.ScoreShipment.future(request_for(benign("AL-SHORT")), timeout=2.5)
        bad = gated.stub.ScoreShipment.future(
            request_for(dataclasses.replace(benign("AL-BAD"), goods=(bad_line,))), timeout=60
        )
        until(lambda: gated.queued() == 2, "2 calls queued")
        gated.scorer.permits.release()  # the blocker goes; the next batch stays held
        until(
            lambda: gated.scorer.waiting == 1 and gated.scorer.batches[-1] == ["AL-SHORT"],
            "the batch of both to reach the scorer",
        )
        with pytest.raises(grpc.RpcError) as caught:
            short.result(timeout=30)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(SERVER_DEADLINE_SKEW_S)  # the server's deadline too (see above)
    with pytest.raises(grpc.RpcError) as caught:
        bad.result(timeout=30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(caught.value) == ["goods[0].hs_code"]
    assert gated.batcher.sizes[-1] == 2
    assert "AL-SHORT" not in gated.ledger()


def test_one_id_twice_in_a_batch_is_scored_in_two_rounds_without_mixing_goods(
    gated: Gated,
) -> None:
    with gated.holding():
        clean = gated.stub.ScoreShipment.future(request_for(benign("dup-1")), timeout=60)
        dirty = gated.stub.ScoreShipment.future(request_for(precursor("DUP-1")), timeout=60)
        until(lambda: gated.queued() == 2, "2 calls queued")
    clean_decision, dirty_decision = clean.result(timeout=30), dirty.result(timeout=30)
    assert gated.batcher.sizes[-1] == 2  # one batch...
    assert gated.scorer.batches[-2:] == [["DUP-1"], ["DUP-1"]]  # ...two scorer rounds
    assert clean_decision.shipment_id == dirty_decision.shipment_id == "DUP-1"
    assert not clean_decision.watchlist_hits
    assert clean_decision.lane != pb.LANE_RED or clean_decision.random_selection
    assert dirty_decision.lane == pb.LANE_RED
    assert {h.entry_id for h in dirty_decision.watchlist_hits} == {"npp"}


def test_streams_and_unary_calls_are_batched_together_and_keep_order(gated: Gated) -> None:
    stream_ids = [f"ST-{i:02d}" for i in range(10)]
    unary_ids = ["UN-1", "UN-2", "UN-3"]
    released = threading.Event()

    def requests() -> Iterator[pb.ScoreShipmentRequest]:
        yield request_for(benign(stream_ids[0]))
        released.wait(30)  # the rest once the first micro-batch is queued with the calls
        for shipment_id in stream_ids[1:]:
            made = precursor if shipment_id[-1] in "37" else benign
            yield request_for(made(shipment_id))

    with ThreadPoolExecutor(1) as pool:
        with gated.holding():
            stream = pool.submit(lambda: list(gated.stub.ScoreShipments(requests(), timeout=60)))
            until(lambda: gated.queued() == 1, "the stream's first micro-batch queued")
            calls = [
                gated.stub.ScoreShipment.future(request_for(benign(i)), timeout=60)
                for i in unary_ids
            ]
            until(lambda: gated.queued() == 4, "the stream and 3 calls queued")
        released.set()
        answers = stream.result(timeout=60)
    assert [d.shipment_id for d in answers] == stream_ids
    assert all(d.decision_id and not d.HasField("error") for d in answers)
    assert [answers[i].lane for i in (3, 7)] == [pb.LANE_RED, pb.LANE_RED]
    assert [c.result(timeout=30).shipment_id for c in calls] == unary_ids
    mixed = next(b for b in gated.scorer.batches if "ST-00" in b)
    assert sorted(mixed) == sorted(["ST-00", *unary_ids])  # one batch of both kinds


def test_each_caller_of_a_batch_is_ledgered_as_itself(
    registry: Path, world: Path, tmp_path: Path
) -> None:
    tokens = {"alpha": "tok-alpha-0123456789", "beta": "tok-beta-0123456789"}
    credentials = tmp_path / "callers.yaml"
    credentials.write_text(
        json.dumps(
            {
                "callers": [
                    {
                        "name": name,
                        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
                        "roles": ["scorer"],
                    }
                    for name, token in tokens.items()
                ]
            }
        ),
        encoding="utf-8",
    )
    running = ServerThread(
        server_settings(
            registry, tmp_path, data_dir=world, credentials_file=credentials, max_in_flight=16
        )
    )
    try:
        assert running.load()
        server = Gated(running)

        def bearer(name: str) -> tuple[tuple[str, str]]:
            return (("authorization", f"Bearer {tokens[name]}"),)

        server.scorer.gated = True  # a blocker of alpha's held in the scorer
        blocker = server.stub.ScoreShipment.future(
            request_for(benign("WHO-0")), timeout=60, metadata=bearer("alpha")
        )
        until(lambda: server.scorer.waiting == 1, "the blocker to reach the scorer")
        first = server.stub.ScoreShipment.future(
            request_for(benign("WHO-A")), timeout=60, metadata=bearer("alpha")
        )
        second = server.stub.ScoreShipment.future(
            request_for(precursor("WHO-B")), timeout=60, metadata=bearer("beta")
        )
        until(lambda: server.queued() == 2, "both callers queued")
        server.scorer.gated = False
        server.scorer.permits.release()
        decisions = [blocker.result(timeout=30), first.result(30), second.result(30)]
        assert server.batcher.sizes[-1] == 2  # alpha's and beta's calls in one batch
        assert sorted(server.scorer.batches[-1]) == ["WHO-A", "WHO-B"]
        ledgered = server.ledger()
        callers = {s: ledgered[s]["caller"]["name"] for s in ("WHO-0", "WHO-A", "WHO-B")}
        assert callers == {"WHO-0": "alpha", "WHO-A": "alpha", "WHO-B": "beta"}
        assert {ledgered[d.shipment_id]["decision_id"] for d in decisions} == {
            d.decision_id for d in decisions
        }
    finally:
        running.stop()


# --------------------------------------------------------------------------- the batcher alone


class FakeService:
    """Stands in for ScoringService: answers each shipment with a Decision, an invalid one
    (id starting BAD) with InvalidInput; ``hold`` blocks the worker thread."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.calls: list[tuple[str, list[str], Any, Any]] = []

    def _answer(self, shipments: Sequence[Shipment]) -> list[Decision | Exception]:
        self.entered.set()
        assert self.hold.wait(10)
        return [
            InvalidInput("bad", []) if s.shipment_id.startswith("BAD") else decided(s)
            for s in shipments
        ]

    def score(
        self, shipments: Sequence[Shipment], caller: Any = None, deadline: Any = None
    ) -> list[Decision]:
        self.calls.append(("score", [s.shipment_id for s in shipments], caller, deadline))
        results = self._answer(shipments)
        for r in results:
            if isinstance(r, Exception):
                raise r
        return [r for r in results if isinstance(r, Decision)]

    def score_each(
        self, shipments: Sequence[Shipment], caller: Any = None, deadline: Any = None
    ) -> list[Decision | Exception]:
        self.calls.append(("score_each", [s.shipment_id for s in shipments], caller, deadline))
        return self._answer(shipments)


def decided(shipment: Shipment) -> Decision:
    return make_decision(
        f"D-{shipment.shipment_id}",
        shipment.shipment_id,
        port_of_entry=shipment.port_of_entry,
        lane="green",
    )


ALPHA = Caller("alpha", frozenset({"scorer"}), "token")
BETA = Caller("beta", frozenset({"scorer"}), "token")


def batcher_for(service: FakeService, **kwargs: Any) -> Batcher:
    return Batcher(service, metrics=Metrics(), **kwargs)  # type: ignore[arg-type]


async def test_a_held_batch_lets_arrivals_form_the_next_one_with_a_caller_each() -> None:
    service = FakeService()
    batcher = batcher_for(service)
    service.hold.clear()
    first = asyncio.create_task(batcher.submit(make_shipment("A"), ALPHA, None))
    await asyncio.to_thread(service.entered.wait, 10)
    later = [
        asyncio.create_task(batcher.submit(make_shipment("B"), ALPHA, None)),
        asyncio.create_task(batcher.submit(make_shipment("BAD-C"), BETA, time.monotonic() + 60)),
        asyncio.create_task(
            batcher.submit_many([make_shipment("S1"), make_shipment("S2")], BETA, None)
        ),
    ]
    await asyncio.sleep(0)
    assert batcher.queued == 3
    service.hold.set()
    assert (await first).decision_id == "D-A"
    b, c, s = await asyncio.gather(*later, return_exceptions=True)
    assert isinstance(b, Decision)
    assert b.scored.shipment_id == "B"
    assert isinstance(c, InvalidInput)  # this call's error alone
    assert isinstance(s, list)
    assert [r.decision_id for r in s if isinstance(r, Decision)] == ["D-S1", "D-S2"]
    assert service.calls[0] == ("score", ["A"], ALPHA, None)  # alone: as before batching
    kind, ids, callers, deadlines = service.calls[1]
    assert (kind, ids) == ("score_each", ["B", "BAD-C", "S1", "S2"])
    assert callers == [ALPHA, BETA, BETA, BETA]
    assert deadlines[1] is not None  # BAD-C's own
    assert [deadlines[i] for i in (0, 2, 3)] == [None, None, None]
    assert list(batcher.sizes) == [1, 4]
    assert batcher.timers_armed == 0


async def test_a_batch_waits_for_company_only_with_a_wait_set_and_closes_when_full() -> None:
    service = FakeService()
    batcher = batcher_for(service, max_size=2, max_wait_us=60_000_000)  # a minute
    one = asyncio.create_task(batcher.submit(make_shipment("W1"), None, None))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batcher.timers_armed == 1  # waiting for company
    assert batcher.batches == 0
    two = asyncio.create_task(batcher.submit(make_shipment("W2"), None, None))
    assert [(await one).scored.shipment_id, (await two).scored.shipment_id] == ["W1", "W2"]
    assert list(batcher.sizes) == [2]  # full: dispatched without waiting out the minute

    short = batcher_for(FakeService(), max_wait_us=1)
    assert (await short.submit(make_shipment("W3"), None, None)).scored.shipment_id == "W3"
    assert (short.timers_armed, list(short.sizes)) == (1, [1])  # the wait ran out alone


async def test_a_stream_micro_batch_is_never_split_and_a_full_batch_waits() -> None:
    service = FakeService()
    batcher = batcher_for(service, max_size=3)
    service.hold.clear()
    first = asyncio.create_task(batcher.submit(make_shipment("F"), None, None))
    await asyncio.to_thread(service.entered.wait, 10)
    big = asyncio.create_task(
        batcher.submit_many([make_shipment(f"M{i}") for i in range(5)], None, None)
    )
    small = asyncio.create_task(batcher.submit(make_shipment("N"), None, None))
    await asyncio.sleep(0)
    service.hold.set()
    await asyncio.gather(first, big, small)
    assert list(batcher.sizes) == [1, 5, 1]  # five together, the next call after them


async def test_a_caller_gone_before_dispatch_is_not_scored_and_after_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FakeService()
    batcher = batcher_for(service)
    service.hold.clear()
    running = asyncio.create_task(batcher.submit(make_shipment("RUN"), None, None))
    await asyncio.to_thread(service.entered.wait, 10)
    queued = asyncio.create_task(batcher.submit(make_shipment("GONE"), None, None))
    await asyncio.sleep(0)
    queued.cancel()
    running.cancel()  # its batch is in the worker thread already
    with caplog.at_level(logging.WARNING, logger="server.batcher"):
        for task in (queued, running):
            with pytest.raises(asyncio.CancelledError):
                await task
        service.hold.set()
        for _ in range(500):
            if caplog.records:
                break
            await asyncio.sleep(0.01)
    assert [ids for _, ids, _, _ in service.calls] == [["RUN"]]  # GONE never scored
    assert [r.getMessage() for r in caplog.records] == [
        "1 decided and ledgered, not delivered: the call was cancelled"
    ]
    assert caplog.records[0].decision_ids == ["D-RUN"]


async def test_a_deadline_passed_before_submitting_or_while_queued_is_not_scored() -> None:
    service = FakeService()
    batcher = batcher_for(service)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(make_shipment("PAST"), None, time.monotonic() - 1)
    service.hold.clear()
    first = asyncio.create_task(batcher.submit(make_shipment("HELD"), None, None))
    await asyncio.to_thread(service.entered.wait, 10)
    soon = time.monotonic() + 0.05
    queued = asyncio.create_task(batcher.submit(make_shipment("EXPIRES"), None, soon))
    await asyncio.sleep(0)
    while time.monotonic() < soon:  # let its deadline pass while it is queued
        await asyncio.sleep(0.01)
    service.hold.set()
    await first
    with pytest.raises(DeadlineExceeded, match="while it was queued"):
        await queued
    assert [ids for _, ids, _, _ in service.calls] == [["HELD"]]


async def test_a_batch_that_fails_as_a_whole_fails_each_of_its_calls() -> None:
    class Broken(FakeService):
        def score_each(self, *args: Any, **kwargs: Any) -> list[Decision | Exception]:
            raise RuntimeError("scorer bug")

    service = Broken()
    batcher = batcher_for(service)
    service.hold.clear()
    first = asyncio.create_task(batcher.submit(make_shipment("OK"), None, None))
    await asyncio.to_thread(service.entered.wait, 10)
    both = [asyncio.create_task(batcher.submit(make_shipment(i), None, None)) for i in ("X", "Y")]
    await asyncio.sleep(0)
    service.hold.set()
    assert (await first).decision_id == "D-OK"
    results = await asyncio.gather(*both, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert (await batcher.submit(make_shipment("NEXT"), None, None)).decision_id == "D-NEXT"
