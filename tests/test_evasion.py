"""Issue 9's tricks, replayed against a real server with the default live window: one identity
however it is written, a broken CAS scored and flagged, back-dated declarations refused, and a
ledger that keeps both what was declared and what it was read as."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from features.records import Party, Shipment
from scoring.ledger import payload_text
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.conftest import server_settings
from tests.support import ServerThread, make_shipment, request_for

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def live(
    registry: Path, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with the default declaredAt window (21 days back, 3 ahead)."""
    workdir = tmp_path_factory.mktemp("evasion")
    settings = server_settings(registry, workdir, data_dir=world, declared_at_max_age_days=21.0)
    running = ServerThread(settings)
    assert running.load()
    yield running
    running.stop()


def _now(shipment_id: str, **changes: object) -> Shipment:
    return make_shipment(shipment_id, **{"declared_at": NOW, **changes})


def _with_line(shipment: Shipment, **changes: object) -> Shipment:
    line = dataclasses.replace(shipment.goods[0], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(shipment, goods=(line, *shipment.goods[1:]))


def _score(server: ServerThread, shipment: Shipment) -> pb.Decision:
    return pb_grpc.RiskScoringStub(server.channel).ScoreShipment(request_for(shipment))


def _bad_request(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


@pytest.mark.parametrize(
    "cas",
    ["39742-60-4", "039742-60-4", "0039742-60-4", "39742604", " 39742-60-4", "39742-60-4\n"],
)
def test_every_writing_of_npps_cas_goes_red_by_the_table_i_rule(
    live: ServerThread, cas: str
) -> None:
    shipment = _with_line(_now(f"CAS-{abs(hash(cas))}"), cas_numbers=(cas,))
    decision = _score(live, shipment)
    assert decision.lane == pb.LANE_RED
    assert "RULE_TABLE_I_PRECURSOR" in {r.code for r in decision.reasons}
    assert [h.matched_text for h in decision.watchlist_hits if h.match_type == "cas"] == [
        "39742-60-4"
    ]


@pytest.mark.parametrize(
    "hs", ["２９３３３７", "٢٩٣٣٣٧", "2933.37", "2933 37", "2933370000", "293337\n", "2933\u200b37"]
)
def test_hs_in_other_digits_or_notation_is_the_same_subheading(live: ServerThread, hs: str) -> None:
    shipment = _with_line(
        _now(f"HS-{abs(hash(hs))}"), hs_code=hs, description="chemical intermediate", cas_numbers=()
    )
    decision = _score(live, shipment)
    assert decision.lane == pb.LANE_RED
    assert any(h.match_type == "hs_specific" for h in decision.watchlist_hits)


def test_a_broken_check_digit_is_scored_flagged_and_kept_out_of_green(live: ServerThread) -> None:
    shipment = _with_line(
        _now("BROKEN-CAS"), hs_code="292990", description="solvent", cas_numbers=("39742-60-5",)
    )
    decision = _score(live, shipment)
    assert decision.lane != pb.LANE_GREEN
    reasons = {r.code: r for r in decision.reasons}
    assert "RULE_DECLARED_CAS_INVALID" in reasons
    assert "CAS" in reasons["RULE_DECLARED_CAS_INVALID"].message_en
    assert "CAS" in reasons["RULE_DECLARED_CAS_INVALID"].message_es
    assert not decision.watchlist_hits  # an invalid CAS never identifies anything


def test_ids_and_codes_are_read_in_canonical_form(live: ServerThread) -> None:
    shipment = _now(
        "ids-\u0441\u0445\u200b-1\n",  # lower case, Cyrillic look-alikes, zero-width, newline
        port_of_entry=" mxzlo",
        origin_country="cn",
        consignee=Party("CNE\u2011000123", "Distribuidora", "mx", "DQP190101AB1"),
    )
    decision = _score(live, shipment)
    assert decision.shipment_id == "IDS-CX-1"
    assert decision.lane == pb.LANE_RED  # still NPP


@pytest.mark.parametrize("shipment_id", ["has space", "tab\there", "中文-1"])
def test_what_can_only_be_an_attack_inside_an_id_is_rejected(
    live: ServerThread, shipment_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _score(live, _now(shipment_id))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shipment_id" in _bad_request(caught.value)


def test_back_dated_declarations_are_refused_and_cannot_build_history(live: ServerThread) -> None:
    """60 fake declarations from 1990 for a new shipper: every one is refused naming
    declared_at, so the shipper is as new afterwards as before."""
    shipper = Party("SHP-FORGED-0001", "Forged Trading", "CN")
    stub = pb_grpc.RiskScoringStub(live.channel)
    fakes = [
        request_for(
            _now(
                f"FAKE-{i}",
                shipper=shipper,
                declared_at=datetime(1990, 1, 1, tzinfo=UTC) + timedelta(days=i),
            )
        )
        for i in range(60)
    ]
    answers = list(stub.ScoreShipments(iter(fakes)))
    assert len(answers) == 60
    assert all(a.error.code == "INVALID_ARGUMENT" for a in answers)
    assert all([v.field for v in a.error.field_violations] == ["declared_at"] for a in answers)
    assert "outside the accepted window" in answers[0].error.field_violations[0].description
    decision = _score(live, _now("REAL-1", shipper=shipper))
    features = _ledgered(live, decision.decision_id)["features"]
    assert features["shipper_age_days"] is None  # never seen: no age
    assert features["shipper_count_365d"] == 0


@pytest.mark.parametrize(
    "when", [NOW - timedelta(days=22), NOW + timedelta(days=4), datetime(1990, 1, 1, tzinfo=UTC)]
)
def test_the_window_is_enforced_on_unary_calls(live: ServerThread, when: datetime) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _score(live, _now("WINDOW-1", declared_at=when))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "outside the accepted window" in _bad_request(caught.value)["declared_at"]


def _ledgered(server: ServerThread, decision_id: str) -> dict[str, Any]:
    with sqlite3.connect(server.app.settings.ledger_path) as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM ledger WHERE decision_id = ? AND kind = 'decision'",
            (decision_id,),
        ).fetchone()
    result: dict[str, Any] = json.loads(payload_text(payload))
    return result


def test_the_ledger_keeps_what_was_declared_beside_the_canonical_form(live: ServerThread) -> None:
    shipment = _with_line(_now("ledger-1\n"), cas_numbers=("０３９７４２‐６０‐４",))
    decision = _score(live, shipment)
    plain = _score(live, _now("LEDGER-PLAIN"))
    payload = _ledgered(live, decision.decision_id)
    assert payload["shipment"]["shipment_id"] == "LEDGER-1"
    assert payload["goods"][0]["cas_numbers"] == ["39742-60-4"]
    assert payload["declared"]["shipment"]["shipment_id"] == "ledger-1\n"
    assert payload["declared"]["goods"][0]["cas_numbers"] == ["０３９７４２‐６０‐４"]
    assert _ledgered(live, plain.decision_id)["declared"] is None
