"""Proto ↔ domain conversion and the error → status mapping, without a server."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from features.errors import (
    ConfigError,
    FieldViolation,
    InvalidInput,
    NotFound,
    Unavailable,
)
from features.records import Party
from scoring.reasons import Reason
from scoring.scorer import HitRef
from scoring.service import Decision
from server import converters
from server.errors import INTERNAL_MESSAGE, status_code_for, to_rpc_status
from server.pb import risk_scoring_pb2 as pb
from tests.support import make_shipment


def test_shipment_round_trip() -> None:
    shipment = make_shipment()
    assert converters.shipment_from_proto(converters.shipment_to_proto(shipment)) == shipment


def test_missing_fields_convert_without_validation() -> None:
    shipment = converters.shipment_from_proto(pb.Shipment(shipment_id="X"))
    assert shipment.declared_at is None
    assert shipment.mode == ""
    assert shipment.shipper == Party("")
    assert shipment.goods == ()


def test_request_without_shipment_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        converters.request_shipment(pb.ScoreShipmentRequest())
    assert [v.field for v in caught.value.violations] == ["shipment"]


def test_decision_to_proto() -> None:
    decision = Decision(
        decision_id="d1",
        shipment_id="s1",
        port_of_entry="MXZLO",
        risk_score=0.42,
        lane="red",
        random_selection=False,
        propensity=1.0,
        reasons=(Reason("WATCHLIST_CAS", "es", "en", 0.0),),
        watchlist_hits=(HitRef("npp", "NPP", "cas", "39742-60-4", 0, 1.0),),
        model_version="v0001",
        watchlist_version="2026.11.1",
    )
    msg = converters.decision_to_proto(decision)
    assert msg.lane == pb.LANE_RED
    assert msg.reasons[0].message_en == "en"
    assert msg.watchlist_hits[0].entry_id == "npp"
    assert not msg.HasField("error")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("gone"), grpc.StatusCode.NOT_FOUND),
        (Unavailable("later"), grpc.StatusCode.UNAVAILABLE),
        (ConfigError("file"), grpc.StatusCode.FAILED_PRECONDITION),
        (RuntimeError("secret detail"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_mapping(error: Exception, code: grpc.StatusCode) -> None:
    assert status_code_for(error) is code


def test_invalid_input_carries_bad_request_details() -> None:
    error = InvalidInput("shipment S is invalid", [FieldViolation("goods[0].hs_code", "not 6")])
    status = to_rpc_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert [(v.field, v.description) for v in detail.field_violations] == [
        ("goods[0].hs_code", "not 6")
    ]


def test_unexpected_errors_never_leak_their_text() -> None:
    status = to_rpc_status(KeyError("/etc/secret path"))
    assert status.message == INTERNAL_MESSAGE
    assert "secret" not in status.message
    decision = converters.error_decision("s1", KeyError("/etc/secret path"))
    assert decision.error.code == "INTERNAL"
    assert decision.error.message == INTERNAL_MESSAGE


def test_error_decision_lists_field_violations() -> None:
    error = InvalidInput("bad", [FieldViolation("goods[1].gross_weight_kg", "must be > 0")])
    decision = converters.error_decision("s9", error)
    assert decision.shipment_id == "s9"
    assert decision.lane == pb.LANE_UNSPECIFIED
    assert decision.error.code == "INVALID_ARGUMENT"
    assert decision.error.field_violations[0].field == "goods[1].gross_weight_kg"
