"""Proto ↔ domain conversion, in paired functions and nowhere else.

Conversion never validates: it maps what arrived (unset enums, missing timestamps and missing
parties included) so :mod:`scoring.validation` can name every bad field in one answer.
"""

from __future__ import annotations

from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp

from features.errors import FieldViolation, InvalidInput
from features.records import GoodsLine, Party, Shipment
from scoring.service import Decision, ModelInfo, Outcome, OutcomeReceipt
from server.errors import public_message, status_code_for
from server.pb import risk_scoring_pb2 as pb

_MODES = {pb.MODE_SEA: "sea", pb.MODE_LAND: "land", pb.MODE_AIR: "air", pb.MODE_POSTAL: "postal"}
_MODES_BACK = {v: k for k, v in _MODES.items()}
_LANES = {"red": pb.LANE_RED, "yellow": pb.LANE_YELLOW, "green": pb.LANE_GREEN}


def party_from_proto(msg: pb.Party) -> Party:
    return Party(id=msg.id, name=msg.name, country=msg.country, tax_id=msg.tax_id)


def party_to_proto(party: Party) -> pb.Party:
    return pb.Party(id=party.id, name=party.name, country=party.country, tax_id=party.tax_id)


def goods_from_proto(msg: pb.GoodsLine) -> GoodsLine:
    return GoodsLine(
        hs_code=msg.hs_code,
        description=msg.description,
        cas_numbers=tuple(msg.cas_numbers),
        quantity=msg.quantity,
        unit=msg.unit,
        gross_weight_kg=msg.gross_weight_kg,
        declared_value_usd=msg.declared_value_usd,
    )


def goods_to_proto(line: GoodsLine) -> pb.GoodsLine:
    return pb.GoodsLine(
        hs_code=line.hs_code,
        description=line.description,
        cas_numbers=list(line.cas_numbers),
        quantity=line.quantity,
        unit=line.unit,
        gross_weight_kg=line.gross_weight_kg,
        declared_value_usd=line.declared_value_usd,
    )


def shipment_from_proto(msg: pb.Shipment) -> Shipment:
    return Shipment(
        shipment_id=msg.shipment_id,
        declared_at=msg.declared_at.ToDatetime(tzinfo=UTC) if msg.HasField("declared_at") else None,
        port_of_entry=msg.port_of_entry,
        mode=_MODES.get(msg.mode, ""),
        origin_country=msg.origin_country,
        export_country=msg.export_country,
        transshipment_ports=tuple(msg.transshipment_ports),
        carrier=msg.carrier,
        conveyance_id=msg.conveyance_id,
        container_id=msg.container_id,
        shipper=party_from_proto(msg.shipper),
        consignee=party_from_proto(msg.consignee),
        broker_id=msg.broker_id,
        goods=tuple(goods_from_proto(g) for g in msg.goods),
    )


def shipment_to_proto(shipment: Shipment) -> pb.Shipment:
    msg = pb.Shipment(
        shipment_id=shipment.shipment_id,
        port_of_entry=shipment.port_of_entry,
        mode=_MODES_BACK.get(shipment.mode, pb.MODE_UNSPECIFIED),
        origin_country=shipment.origin_country,
        export_country=shipment.export_country,
        transshipment_ports=list(shipment.transshipment_ports),
        carrier=shipment.carrier,
        conveyance_id=shipment.conveyance_id,
        container_id=shipment.container_id,
        shipper=party_to_proto(shipment.shipper),
        consignee=party_to_proto(shipment.consignee),
        broker_id=shipment.broker_id,
        goods=[goods_to_proto(g) for g in shipment.goods],
    )
    if shipment.declared_at is not None:
        msg.declared_at.FromDatetime(shipment.declared_at)
    return msg


def request_shipment(request: pb.ScoreShipmentRequest) -> Shipment:
    if not request.HasField("shipment"):
        raise InvalidInput("invalid request", [FieldViolation("shipment", "required")])
    return shipment_from_proto(request.shipment)


def decision_to_proto(decision: Decision) -> pb.Decision:
    return pb.Decision(
        decision_id=decision.decision_id,
        shipment_id=decision.shipment_id,
        risk_score=decision.risk_score,
        lane=_LANES[decision.lane],
        random_selection=decision.random_selection,
        propensity=decision.propensity,
        reasons=[
            pb.Reason(
                code=r.code,
                message_es=r.message_es,
                message_en=r.message_en,
                contribution=r.contribution,
            )
            for r in decision.reasons
        ],
        watchlist_hits=[
            pb.WatchlistHit(
                entry_id=h.entry_id,
                name=h.name,
                match_type=h.match_type,
                matched_text=h.matched_text,
                goods_index=h.goods_index,
                similarity=h.similarity,
            )
            for h in decision.watchlist_hits
        ],
        model_version=decision.model_version,
        watchlist_version=decision.watchlist_version,
        rules_version=decision.rules_version,
    )


def error_decision(shipment_id: str, error: BaseException) -> pb.Decision:
    """The Decision a stream returns for a shipment that could not be scored."""
    violations = error.violations if isinstance(error, InvalidInput) else []
    code = status_code_for(error)
    return pb.Decision(
        shipment_id=shipment_id,
        lane=pb.LANE_UNSPECIFIED,
        error=pb.Error(
            code=code.name,
            message=public_message(error),
            field_violations=[
                pb.FieldViolation(field=v.field, description=v.description) for v in violations
            ],
        ),
    )


def outcome_from_proto(msg: pb.RecordOutcomeRequest) -> Outcome:
    return Outcome(
        decision_id=msg.decision_id,
        inspected=msg.inspected,
        result=msg.result,
        substances=tuple(msg.substances),
        lab_confirmed=msg.lab_confirmed,
        notes=msg.notes,
    )


def receipt_to_proto(receipt: OutcomeReceipt) -> pb.RecordOutcomeResponse:
    return pb.RecordOutcomeResponse(
        decision_id=receipt.decision_id, version=receipt.version, duplicate=receipt.duplicate
    )


def model_info_to_proto(info: ModelInfo) -> pb.ModelInfo:
    trained_at = Timestamp()
    trained_at.FromDatetime(info.trained_at)
    return pb.ModelInfo(
        model_version=info.model_version,
        trained_at=trained_at,
        feature_names=list(info.feature_names),
        watchlist_version=info.watchlist_version,
        metrics=[pb.Metric(name=k, value=v) for k, v in sorted(info.metrics.items())],
        code_version=info.code_version,
        rules_version=info.rules_version,
    )
