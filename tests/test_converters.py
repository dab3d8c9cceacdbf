"""Proto ↔ domain conversion and the error → status mapping, without a server."""

from __future__ import annotations

import logging
import random
import re
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2

from features.errors import (
    MAX_MESSAGE_CHARS,
    ConfigError,
    FieldViolation,
    InvalidInput,
    NotFound,
    Unavailable,
    quote,
)
from features.records import Party
from scoring.reasons import Reason
from scoring.scorer import HitRef
from server import converters
from server.errors import (
    INTERNAL_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_VIOLATIONS,
    RateLimitedLog,
    Undecodable,
    log_unexpected,
    public_violations,
    status_code_for,
    to_rpc_status,
    tolerant_deserializer,
)
from server.pb import risk_scoring_pb2 as pb
from tests.support import make_decision, make_shipment, request_for


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
    decision = make_decision(
        "d1",
        "s1",
        risk_score=0.42,
        lane="red",
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
    decision = converters.error_decision(" s\u200b9\n", error)
    assert decision.shipment_id == "S9"  # the canonical id, as a scored Decision names it
    assert decision.lane == pb.LANE_UNSPECIFIED
    assert decision.error.code == "INVALID_ARGUMENT"
    assert decision.error.field_violations[0].field == "goods[1].gross_weight_kg"


# --- Hostile input: conversion raises InvalidInput only, and what goes back stays small ------


def _stamped(seconds: int, nanos: int = 0, shipment_id: str = "S-T") -> pb.Shipment:
    msg = converters.shipment_to_proto(make_shipment(shipment_id))
    msg.declared_at.seconds = seconds
    msg.declared_at.nanos = nanos
    return msg


@pytest.mark.parametrize(
    ("seconds", "nanos", "says"),
    [
        (converters.MIN_TIMESTAMP_SECONDS - 1, 0, "seconds '-62135596801'"),
        (converters.MAX_TIMESTAMP_SECONDS + 1, 0, "seconds '253402300800'"),
        (-(2**63), 0, "outside the Timestamp range"),
        (2**63 - 1, 0, "outside the Timestamp range"),
        (0, -1, "nanos '-1' is outside 0 .. 999999999"),
        (0, 1_000_000_000, "nanos '1000000000'"),
        (-(2**31), -(2**31), "nanos"),
    ],
)
def test_out_of_range_declared_at_is_invalid_input_naming_the_field(
    seconds: int, nanos: int, says: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        converters.shipment_from_proto(_stamped(seconds, nanos))
    assert {v.field for v in caught.value.violations} == {"declared_at"}
    assert says in caught.value.message
    assert "'S-T'" in caught.value.message
    assert len(caught.value.message) < 300


def test_bad_seconds_and_bad_nanos_are_both_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        converters.shipment_from_proto(_stamped(2**40, -5))
    descriptions = [v.description for v in caught.value.violations]
    assert len(descriptions) == 2
    assert descriptions[0].startswith("seconds")
    assert descriptions[1].startswith("nanos")


def test_the_timestamp_range_ends_are_accepted() -> None:
    first = converters.shipment_from_proto(_stamped(converters.MIN_TIMESTAMP_SECONDS))
    assert first.declared_at == datetime(1, 1, 1, tzinfo=UTC)
    last = converters.shipment_from_proto(
        _stamped(converters.MAX_TIMESTAMP_SECONDS, converters.MAX_NANOS)
    )
    assert last.declared_at == datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_a_huge_shipment_id_is_quoted_briefly_in_a_timestamp_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        converters.shipment_from_proto(_stamped(-(10**15), shipment_id="Q" * 1_000_000))
    assert len(caught.value.message) < 400
    assert "1000000 characters" in caught.value.message


def test_conversion_raises_nothing_but_invalid_input_for_any_timestamp() -> None:
    rng = random.Random(20250602)
    edges = [0, 1, -1, 2**31, -(2**31), 2**62, -(2**63), 2**63 - 1]
    seconds_pool = [
        converters.MIN_TIMESTAMP_SECONDS,
        converters.MAX_TIMESTAMP_SECONDS,
        converters.MIN_TIMESTAMP_SECONDS - 1,
        converters.MAX_TIMESTAMP_SECONDS + 1,
        *edges,
    ]
    nanos_pool = [0, converters.MAX_NANOS, converters.MAX_NANOS + 1, -1, 2**31 - 1, -(2**31)]
    for _ in range(2_000):
        seconds = (
            rng.choice(seconds_pool) if rng.random() < 0.5 else rng.randint(-(2**63), 2**63 - 1)
        )
        nanos = rng.choice(nanos_pool) if rng.random() < 0.5 else rng.randint(-(2**31), 2**31 - 1)
        valid = (
            converters.MIN_TIMESTAMP_SECONDS <= seconds <= converters.MAX_TIMESTAMP_SECONDS
            and 0 <= nanos <= converters.MAX_NANOS
        )
        if valid:
            assert converters.shipment_from_proto(_stamped(seconds, nanos)).declared_at
        else:
            with pytest.raises(InvalidInput) as caught:
                converters.shipment_from_proto(_stamped(seconds, nanos))
            assert {v.field for v in caught.value.violations} == {"declared_at"}


def test_invalid_input_message_lists_a_few_violations_and_counts_the_rest() -> None:
    violations = [
        FieldViolation(f"goods[{i}].hs_code", f"{quote('A' * 5_000)} is not 6 to 10 digits")
        for i in range(3_000)
    ]
    error = InvalidInput("shipment 'S' is invalid", violations)
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert error.message.startswith("shipment 'S' is invalid: goods[0].hs_code: ")
    assert re.search(r"\.\.\. and \d+ more violations$", error.message)
    assert len(error.violations) == 3_000
    one = InvalidInput("bad", [FieldViolation("a", "b" * 100_000)])
    assert len(one.message) <= MAX_MESSAGE_CHARS
    assert InvalidInput("bad", [FieldViolation("a", "b")]).message == "bad: a: b"


def test_status_details_are_capped_in_count_and_bytes() -> None:
    violations = [FieldViolation(f"goods[{i}].description", "x" * 10_000) for i in range(5_000)]
    status = to_rpc_status(InvalidInput("shipment 'S' is invalid", violations))
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    shown = list(detail.field_violations)
    assert 1 < len(shown) <= MAX_VIOLATIONS + 1
    assert shown[-1].field == "..."
    assert shown[-1].description == f"... and {5_000 - (len(shown) - 1)} more violations"
    assert all(len(v.description) <= 300 for v in shown)
    # Whole status, as it travels (base64) in the grpc-status-details-bin trailer.
    assert len(status.SerializeToString()) < 3_000


def test_few_violations_are_passed_whole() -> None:
    violations = [FieldViolation(f"f{i}", "bad") for i in range(MAX_VIOLATIONS)]
    assert public_violations(InvalidInput("x", violations)) == violations
    one_more = [*violations, FieldViolation("g", "bad")]
    shown = public_violations(InvalidInput("x", one_more))
    assert shown[:-1] == violations
    assert shown[-1] == FieldViolation("...", "... and 1 more violation")


def test_a_non_ascii_message_is_cut_to_its_byte_budget_on_a_character_boundary() -> None:
    error = NotFound("no decision with id " + "\U0001f600" * 5_000)
    status = to_rpc_status(error)
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    assert status.message.endswith("...")


def test_error_decision_bounds_the_echoed_id_and_keeps_a_decision_id() -> None:
    decision = converters.error_decision("Z" * 1_000_000, KeyError("x"), decision_id="d-1")
    assert len(decision.shipment_id) == converters.MAX_ECHOED_ID
    assert decision.decision_id == "d-1"
    assert decision.error.code == "INTERNAL"


def test_undecodable_bytes_become_a_sentinel_not_an_exception() -> None:
    parse = tolerant_deserializer(pb.ScoreShipmentRequest.FromString)
    assert parse is not None
    assert tolerant_deserializer(parse) is parse
    good = request_for(make_shipment())
    assert parse(good.SerializeToString()) == good
    bad = parse(b"\xff\xff\xff\xff")
    assert isinstance(bad, Undecodable)
    assert bad.message_name == "ScoreShipmentRequest"
    assert bad.size == 4
    error = bad.error()
    assert error.message == "request is not a valid ScoreShipmentRequest message"
    assert status_code_for(error) is grpc.StatusCode.INVALID_ARGUMENT
    # Invalid UTF-8 in a string field is a parse error too.
    assert isinstance(parse(b"\x0a\x03\x0a\x01\xff"), Undecodable)
    assert converters.request_shipment_id(bad) == ""


def test_rate_limited_log_holds_back_a_flood_and_counts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RateLimitedLog(logging.getLogger("centinela.test"), burst=3, period=3_600)
    with caplog.at_level(logging.WARNING, logger="centinela.test"):
        sent = [limiter.warning("line %d", i) for i in range(10)]
    assert sent == [True] * 3 + [False] * 7
    assert len(caplog.records) == 3
    limiter._window -= 3_600  # the next period
    with caplog.at_level(logging.WARNING, logger="centinela.test"):
        assert limiter.warning("again")
    assert caplog.records[-1].getMessage() == "again (7 similar lines held back)"


def test_a_long_operator_message_is_cut_for_the_caller_and_logged_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    problems = [FieldViolation(f"entries[{i}].cas", "bad check digit") for i in range(200)]
    error = ConfigError("watchlist.yaml: watchlist is invalid", problems)
    assert len(to_rpc_status(error).message.encode()) <= MAX_MESSAGE_BYTES
    with caplog.at_level(logging.WARNING, logger="server.errors"):
        log_unexpected(error, "Admin/ReloadWatchlists")
        log_unexpected(InvalidInput("bad", [FieldViolation("x", "y" * 5_000)] * 50), "m")
    assert len(caplog.records) == 1
    assert "entries[199].cas" in caplog.records[0].getMessage()
