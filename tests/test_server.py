"""The real gRPC server on port 0, called by a real client."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from features.records import Party, Shipment
from features.schema import FEATURE_NAMES
from scoring.decisions import Decision
from server.errors import INTERNAL_MESSAGE, Undecodable
from server.metrics import Metrics
from server.pb import admin_pb2, admin_pb2_grpc
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from server.servicers import RiskScoringServicer
from tests.conftest import server_settings
from tests.support import ServerThread, make_decision, make_shipment, request_for

GOOD = make_shipment()


def stub(server: ServerThread) -> pb_grpc.RiskScoringStub:
    return pb_grpc.RiskScoringStub(server.channel)


def bad_request(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return [(v.field, v.description) for v in detail.field_violations]


def test_valid_shipment_gets_a_decision(server: ServerThread) -> None:
    decision = stub(server).ScoreShipment(request_for(GOOD), timeout=10)
    assert decision.shipment_id == GOOD.shipment_id
    assert len(decision.decision_id) == 32
    assert 0.0 <= decision.risk_score <= 1.0
    assert decision.lane in (pb.LANE_RED, pb.LANE_YELLOW, pb.LANE_GREEN)
    assert decision.model_version == "v0001"
    assert decision.watchlist_version
    assert not decision.HasField("error")
    assert all(r.message_es and r.message_en for r in decision.reasons)
    assert "npp" in {h.entry_id for h in decision.watchlist_hits}


def test_hs_abc_and_negative_weight_are_both_named(server: ServerThread) -> None:
    line = dataclasses.replace(GOOD.goods[0], hs_code="ABC", gross_weight_kg=-3.0)
    shipment = dataclasses.replace(GOOD, goods=(GOOD.goods[1], line))
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(request_for(shipment), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "goods[1].hs_code" in caught.value.details()
    violations = bad_request(caught.value)
    assert [f for f, _ in violations] == ["goods[1].hs_code", "goods[1].gross_weight_kg"]
    assert "'ABC' is not 6 to 10 digits" in violations[0][1]
    assert "greater than 0" in violations[1][1]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"shipment_id": ""}, "shipment_id"),
        ({"declared_at": None}, "declared_at"),
        ({"port_of_entry": "ZLO"}, "port_of_entry"),
        ({"mode": ""}, "mode"),
        ({"origin_country": "ZZ"}, "origin_country"),
        ({"export_country": ""}, "export_country"),
        ({"transshipment_ports": ("X",)}, "transshipment_ports[0]"),
        ({"shipper": Party("")}, "shipper.id"),
        ({"consignee": Party("C1", country="Mexico")}, "consignee.country"),
        ({"goods": ()}, "goods"),
    ],
)
def test_each_kind_of_invalid_field(
    server: ServerThread, changes: dict[str, object], field: str
) -> None:
    shipment = dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(request_for(shipment), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(caught.value)] == [field]


@pytest.mark.parametrize(
    ("goods_changes", "field"),
    [
        ({"description": ""}, "goods[0].description"),
        # A bad check digit is scored and flagged (scoring.validation); an overlong one is not.
        ({"cas_numbers": ("3" * 40,)}, "goods[0].cas_numbers[0]"),
        ({"quantity": -1.0}, "goods[0].quantity"),
        ({"declared_value_usd": -10.0}, "goods[0].declared_value_usd"),
    ],
)
def test_each_kind_of_invalid_goods_field(
    server: ServerThread, goods_changes: dict[str, object], field: str
) -> None:
    line = dataclasses.replace(GOOD.goods[0], **goods_changes)  # type: ignore[arg-type]
    shipment = dataclasses.replace(GOOD, goods=(line,))
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(request_for(shipment), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(caught.value)] == [field]


def test_request_without_shipment(server: ServerThread) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(pb.ScoreShipmentRequest(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(caught.value) == [("shipment", "required")]


def test_empty_stream_ends_cleanly(server: ServerThread) -> None:
    assert list(stub(server).ScoreShipments(iter(()), timeout=10)) == []


def test_stream_with_good_and_bad_shipments_goes_on(server: ServerThread) -> None:
    bad_line = dataclasses.replace(GOOD.goods[0], hs_code="ABC")
    shipments = [
        make_shipment("S-1"),
        dataclasses.replace(GOOD, shipment_id="S-2", goods=(bad_line,)),
        make_shipment("S-3", port_of_entry="MXLZC"),
        dataclasses.replace(GOOD, shipment_id="S-4", mode=""),
        make_shipment("S-5"),
    ]
    decisions = list(
        stub(server).ScoreShipments(iter([request_for(s) for s in shipments]), timeout=20)
    )
    assert [d.shipment_id for d in decisions] == ["S-1", "S-2", "S-3", "S-4", "S-5"]
    errors = {d.shipment_id: d.error for d in decisions if d.HasField("error")}
    assert set(errors) == {"S-2", "S-4"}
    assert errors["S-2"].code == "INVALID_ARGUMENT"
    assert [v.field for v in errors["S-2"].field_violations] == ["goods[0].hs_code"]
    assert [v.field for v in errors["S-4"].field_violations] == ["mode"]
    for d in decisions:
        if d.shipment_id not in errors:
            assert d.decision_id
            assert d.lane != pb.LANE_UNSPECIFIED


def test_model_info(server: ServerThread) -> None:
    info = stub(server).GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
    assert info.model_version == "v0001"
    assert tuple(info.feature_names) == FEATURE_NAMES
    assert info.watchlist_version
    assert {m.name for m in info.metrics} >= {"test_pr_auc"}
    assert info.trained_at.seconds > 0


def test_table_i_precursor_goes_red_with_its_rule_reason(server: ServerThread) -> None:
    decision = stub(server).ScoreShipment(request_for(GOOD), timeout=10)
    assert decision.lane == pb.LANE_RED
    assert decision.propensity == 1.0
    assert not decision.random_selection
    assert decision.rules_version
    first = decision.reasons[0]
    assert first.code == "RULE_TABLE_I_PRECURSOR"
    assert "Table I" in first.message_en
    assert "Tabla I" in first.message_es
    assert "39742-60-4" in first.message_en


def test_replaying_a_shipment_gives_the_same_decision(server: ServerThread) -> None:
    benign = make_shipment(
        "REPLAY-1",
        goods=(dataclasses.replace(GOOD.goods[1]),),
    )
    first = stub(server).ScoreShipment(request_for(benign), timeout=10)
    again = stub(server).ScoreShipment(request_for(benign), timeout=10)
    assert first.decision_id != again.decision_id
    for field in ("risk_score", "lane", "random_selection"):
        assert getattr(first, field) == getattr(again, field)
    # The propensity is the policy's at that moment; one more decision barely moves it.
    assert again.propensity == pytest.approx(first.propensity, rel=0.05)
    assert [r.code for r in first.reasons] == [r.code for r in again.reasons]


def test_record_outcome_is_idempotent_and_versions_conflicts(server: ServerThread) -> None:
    decision = stub(server).ScoreShipment(request_for(make_shipment("OUT-1")), timeout=10)
    report = pb.RecordOutcomeRequest(
        decision_id=decision.decision_id,
        inspected=True,
        result="positive",
        substances=["npp"],
        lab_confirmed=True,
        notes="20 drums, sampled",
    )
    first = stub(server).RecordOutcome(report, timeout=10)
    assert (first.version, first.duplicate) == (1, False)
    repeat = stub(server).RecordOutcome(report, timeout=10)
    assert (repeat.version, repeat.duplicate) == (1, True)
    report.result = "negative"
    conflict = stub(server).RecordOutcome(report, timeout=10)
    assert (conflict.version, conflict.duplicate) == (2, False)


def test_record_outcome_errors(server: ServerThread) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).RecordOutcome(
            pb.RecordOutcomeRequest(decision_id="nope", inspected=True, result="negative"),
            timeout=10,
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no decision with id 'nope'" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).RecordOutcome(
            pb.RecordOutcomeRequest(decision_id="x", inspected=True, result="maybe"), timeout=10
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(caught.value) == [
        ("result", "must be one of positive, negative, inconclusive")
    ]


def test_reflection_lists_the_services(server: ServerThread) -> None:
    reflect = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    responses = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {
        "centinela.v1.RiskScoring",
        "centinela.v1.Admin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


def test_metrics_endpoint_shows_requests_and_latency(server: ServerThread) -> None:
    stub(server).ScoreShipment(request_for(GOOD), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub(server).ScoreShipment(request_for(dataclasses.replace(GOOD, mode="")), timeout=10)
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    ok = 'centinela_grpc_requests_total{code="OK",method="RiskScoring/ScoreShipment"}'
    invalid = (
        'centinela_grpc_requests_total{code="INVALID_ARGUMENT",method="RiskScoring/ScoreShipment"}'
    )
    assert ok in text
    assert invalid in text
    assert 'centinela_grpc_request_duration_seconds_bucket{le="0.005",method=' in text
    assert 'centinela_decisions_total{lane="' in text
    assert "centinela_model_loaded 1.0" in text
    assert 'centinela_serving_info{model_version="v0001",rules_version="' in text
    assert "centinela_invalid_shipments_total" in text


def health_status(server: ServerThread, service: str = "") -> int:
    health = health_pb2_grpc.HealthStub(server.channel)
    return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_health_before_and_after_loading(registry: Path, tmp_path: Path) -> None:
    empty = tmp_path / "registry"
    empty.mkdir()
    running = ServerThread(server_settings(empty, tmp_path))
    try:
        assert not running.load()
        assert health_status(running) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (
            health_status(running, "centinela.v1.RiskScoring")
            == health_pb2.HealthCheckResponse.NOT_SERVING
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub(running).ScoreShipment(request_for(GOOD), timeout=10)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no model loaded" in caught.value.details()

        admin = admin_pb2_grpc.AdminStub(running.channel)
        with pytest.raises(grpc.RpcError) as caught:
            admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=10)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "no model promoted" in caught.value.details()

        shutil.copytree(registry, empty, dirs_exist_ok=True)
        reply = admin.ReloadModel(admin_pb2.ReloadModelRequest(), timeout=30)
        assert reply.model_version == "v0001"
        assert health_status(running) == health_pb2.HealthCheckResponse.SERVING
        assert stub(running).ScoreShipment(request_for(GOOD), timeout=10).decision_id
    finally:
        running.stop()


def test_reload_watchlists_swaps_in_place_and_keeps_the_old_on_failure(
    registry: Path, tmp_path: Path
) -> None:
    from importlib.resources import files

    shipped = files("features.watchlist").joinpath("watchlist.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "watchlist.yaml"
    edited.write_text(shipped, encoding="utf-8")
    running = ServerThread(server_settings(registry, tmp_path, watchlist_file=edited))
    try:
        assert running.load()
        admin = admin_pb2_grpc.AdminStub(running.channel)
        before = stub(running).ScoreShipment(request_for(GOOD), timeout=10).watchlist_version

        edited.write_text(shipped.replace("39742-60-4", "39742-60-5"), encoding="utf-8")
        with pytest.raises(grpc.RpcError) as caught:
            admin.ReloadWatchlists(admin_pb2.ReloadWatchlistsRequest(), timeout=30)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "39742-60-5" in caught.value.details()
        assert stub(running).ScoreShipment(request_for(GOOD), timeout=10).watchlist_version == (
            before
        )

        newer = shipped.replace(f'version: "{before}"', 'version: "2099.1.1"')
        assert newer != shipped
        edited.write_text(newer, encoding="utf-8")
        reply = admin.ReloadWatchlists(admin_pb2.ReloadWatchlistsRequest(), timeout=30)
        assert reply.watchlist_version == "2099.1.1"
        assert reply.rules_version
        decision = stub(running).ScoreShipment(request_for(GOOD), timeout=10)
        assert decision.watchlist_version == "2099.1.1"
        assert decision.lane == pb.LANE_RED
    finally:
        running.stop()


# --- Malformed requests over the wire: clean rejections, streams that go on ----------------

SCORE = "/centinela.v1.RiskScoring/ScoreShipment"
SCORE_STREAM = "/centinela.v1.RiskScoring/ScoreShipments"
GARBAGE = b"\xff\xff\xff\xff\x0a\x80"


def with_declared_at(shipment_id: str, seconds: int, nanos: int = 0) -> pb.ScoreShipmentRequest:
    request = request_for(make_shipment(shipment_id))
    request.shipment.declared_at.seconds = seconds
    request.shipment.declared_at.nanos = nanos
    return request


def raw_unary(server: ServerThread, method: str = SCORE) -> Any:
    return server.channel.unary_unary(
        method, request_serializer=None, response_deserializer=pb.Decision.FromString
    )


@pytest.mark.parametrize(("seconds", "nanos"), [(-(10**13), 0), (10**13, 0), (1_748_874_600, -1)])
def test_out_of_range_declared_at_is_invalid_argument_naming_it(
    server: ServerThread, seconds: int, nanos: int
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(with_declared_at("TS-1", seconds, nanos), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "declared_at" in caught.value.details()
    assert [f for f, _ in bad_request(caught.value)] == ["declared_at"]


def test_random_bytes_are_invalid_argument_with_one_log_line_and_no_traceback(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), pytest.raises(grpc.RpcError) as caught:
        raw_unary(server)(GARBAGE, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "request is not a valid ScoreShipmentRequest message"
    assert "DecodeError" not in caught.value.details()
    noted = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noted) == 1, [r.getMessage() for r in noted]
    assert noted[0].name == "server.interceptors"
    assert "undecodable request to /centinela.v1.RiskScoring/ScoreShipment" in (
        noted[0].getMessage()
    )
    assert noted[0].exc_info is None
    assert not noted[0].exc_text


@pytest.mark.parametrize(
    "method",
    [
        "/centinela.v1.RiskScoring/RecordOutcome",
        "/centinela.v1.Admin/ReloadModel",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_random_bytes_to_other_methods_are_invalid_argument(
    server: ServerThread, method: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        raw_unary(server, method)(GARBAGE, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("request is not a valid ")


def test_random_bytes_in_a_reflection_stream_are_invalid_argument(server: ServerThread) -> None:
    call = server.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=None,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(call(iter([GARBAGE]), timeout=10))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_megabyte_bad_value_gets_a_short_message(server: ServerThread) -> None:
    huge = "Z" * 1_000_000
    request = request_for(dataclasses.replace(GOOD, port_of_entry=huge, shipment_id=huge))
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(request, timeout=20)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert len(caught.value.details().encode()) < 2_048
    assert "1000000 characters" in caught.value.details()
    fields = [f for f, _ in bad_request(caught.value)]
    assert fields == ["shipment_id", "port_of_entry"]
    assert all(len(d) < 400 for _, d in bad_request(caught.value))


def test_thousands_of_bad_goods_lines_get_a_short_message(server: ServerThread) -> None:
    bad = dataclasses.replace(GOOD.goods[1], hs_code="ABC" * 300, gross_weight_kg=-1.0)
    request = request_for(dataclasses.replace(GOOD, goods=(bad,) * 1_000))
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).ScoreShipment(request, timeout=20)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert len(caught.value.details().encode()) < 2_048
    violations = bad_request(caught.value)
    assert len(violations) <= 21
    assert violations[-1][0] == "..."
    assert violations[-1][1].endswith("more violations")


def test_a_stream_with_a_bad_timestamp_and_garbage_in_the_middle_goes_on(
    server: ServerThread,
) -> None:
    messages = [
        request_for(make_shipment("M-1")).SerializeToString(),
        with_declared_at("M-2", 2**62).SerializeToString(),
        GARBAGE,
        with_declared_at("M-4", 0, 2_000_000_000).SerializeToString(),
        request_for(make_shipment("M-5")).SerializeToString(),
        b"",  # an empty message parses: a request without a shipment
        request_for(make_shipment("M-7")).SerializeToString(),
    ]
    call = server.channel.stream_stream(
        SCORE_STREAM, request_serializer=None, response_deserializer=pb.Decision.FromString
    )
    decisions = list(call(iter(messages), timeout=30))
    assert [d.shipment_id for d in decisions] == ["M-1", "M-2", "", "M-4", "M-5", "", "M-7"]
    errors = [d.error for d in decisions]
    for i in (0, 4, 6):
        assert not decisions[i].HasField("error")
        assert decisions[i].decision_id
    assert [errors[i].code for i in (1, 2, 3, 5)] == ["INVALID_ARGUMENT"] * 4
    assert [v.field for v in errors[1].field_violations] == ["declared_at"]
    assert errors[2].message == "request is not a valid ScoreShipmentRequest message"
    assert [v.field for v in errors[3].field_violations] == ["declared_at"]
    assert [v.field for v in errors[5].field_violations] == ["shipment"]


# --- The manifest stream's guarantees, with the servicer called directly -------------------


class FakeService:
    """Stands in for ScoringService: ``score_each`` answers from ``answer``."""

    def __init__(self, answer: Callable[[list[Shipment]], list[Any]]) -> None:
        self.answer = answer
        self.batches: list[list[str]] = []

    def score_each(self, shipments: list[Shipment], caller: object = None) -> list[Any]:
        self.batches.append([s.shipment_id for s in shipments])
        return self.answer(shipments)


def decided(shipment: Shipment, lane: str = "green") -> Decision:
    return make_decision(
        f"D-{shipment.shipment_id}",
        shipment.shipment_id,
        port_of_entry=shipment.port_of_entry,
        lane=lane,
    )


async def run_stream(service: FakeService, requests: list[Any]) -> list[pb.Decision]:
    servicer = RiskScoringServicer(service, Metrics(), stream_batch_max=3)  # type: ignore[arg-type]

    async def incoming() -> AsyncIterator[Any]:
        for request in requests:
            if isinstance(request, Exception):
                raise request
            yield request
            await asyncio.sleep(0)

    return [d async for d in servicer.ScoreShipments(incoming(), None)]  # type: ignore[arg-type]


async def test_a_scoring_failure_answers_its_batch_internal_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def answer(shipments: list[Shipment]) -> list[Any]:
        if any(s.shipment_id == "BOOM" for s in shipments):
            raise RuntimeError("scorer bug")
        return [decided(s) for s in shipments]

    requests = [request_for(make_shipment(i)) for i in ("A", "BOOM", "C", "D", "E", "F", "G")]
    service = FakeService(answer)
    with caplog.at_level(logging.ERROR, logger="server.errors"):
        decisions = await run_stream(service, requests)
    assert [d.shipment_id for d in decisions] == ["A", "BOOM", "C", "D", "E", "F", "G"]
    failed = {b for batch in service.batches if "BOOM" in batch for b in batch}
    for d in decisions:
        if d.shipment_id in failed:
            assert d.error.code == "INTERNAL"
            assert d.error.message == INTERNAL_MESSAGE
        else:
            assert not d.HasField("error")
            assert d.decision_id == f"D-{d.shipment_id}"
    assert len(caplog.records) == 1  # once per failed batch, with its traceback
    assert caplog.records[0].exc_info is not None


async def test_a_decision_that_cannot_be_sent_as_is_still_reports_its_id() -> None:
    service = FakeService(
        lambda shipments: [
            decided(s, "purple" if s.shipment_id == "P" else "red") for s in shipments
        ]
    )
    requests = [request_for(make_shipment(i)) for i in ("A", "P", "C")]
    decisions = await run_stream(service, requests)
    assert [d.shipment_id for d in decisions] == ["A", "P", "C"]
    assert decisions[1].error.code == "INTERNAL"
    assert decisions[1].decision_id == "D-P"  # ledgered: the caller learns its id
    assert decisions[0].lane == decisions[2].lane == pb.LANE_RED


async def test_undecodable_and_unconvertible_items_get_error_decisions() -> None:
    service = FakeService(lambda shipments: [decided(s) for s in shipments])
    bad_stamp = request_for(make_shipment("T"))
    bad_stamp.shipment.declared_at.seconds = 2**62
    requests = [
        request_for(make_shipment("A")),
        Undecodable("ScoreShipmentRequest", 3, "DecodeError"),
        bad_stamp,
        pb.ScoreShipmentRequest(),
        request_for(make_shipment("B")),
    ]
    decisions = await run_stream(service, requests)
    assert [d.shipment_id for d in decisions] == ["A", "", "T", "", "B"]
    assert [d.error.code for d in decisions] == ["", *["INVALID_ARGUMENT"] * 3, ""]
    assert [s for batch in service.batches for s in batch] == ["A", "B"]


async def test_a_failing_request_stream_ends_after_answering_what_was_read() -> None:
    service = FakeService(lambda shipments: [decided(s) for s in shipments])
    servicer = RiskScoringServicer(service, Metrics(), stream_batch_max=3)  # type: ignore[arg-type]
    requests = [request_for(make_shipment("A")), request_for(make_shipment("B"))]

    async def incoming() -> AsyncIterator[Any]:
        for request in requests:
            yield request
        raise ConnectionError("transport went away")

    answered: list[str] = []

    async def consume() -> None:
        async for decision in servicer.ScoreShipments(incoming(), None):  # type: ignore[arg-type]
            answered.append(decision.shipment_id)

    with pytest.raises(ConnectionError):
        await consume()
    assert answered == ["A", "B"]
