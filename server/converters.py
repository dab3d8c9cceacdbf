"""Proto ↔ domain conversion, in paired functions and nowhere else.

Conversion never validates: it maps what arrived (unset enums, missing timestamps and missing
parties included) so :mod:`scoring.validation` can name every bad field in one answer. The one
exception is what has no domain value at all: a ``declared_at`` outside the range a Timestamp
may hold (years 1 to 9999, nanos 0 to 999,999,999) cannot become a datetime, so conversion
rejects it with :class:`InvalidInput` naming ``declared_at``. Conversion from proto raises
nothing else.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from features.canonical import canonical_code
from features.errors import FieldViolation, InvalidInput, quote
from features.records import GoodsLine, Party, Shipment
from scoring.decisions import Decision, ModelInfo, Outcome, OutcomeReceipt
from scoring.reasons import Reason
from server.errors import Undecodable, public_message, public_violations, status_code_for
from server.pb import risk_scoring_pb2 as pb

_MODES = {pb.MODE_SEA: "sea", pb.MODE_LAND: "land", pb.MODE_AIR: "air", pb.MODE_POSTAL: "postal"}
_MODES_BACK = {v: k for k, v in _MODES.items()}
_LANES = {"red": pb.LANE_RED, "yellow": pb.LANE_YELLOW, "green": pb.LANE_GREEN}
_EXAMS = {
    "physical_sampling": pb.EXAM_PHYSICAL_SAMPLING,
    "non_intrusive": pb.EXAM_NON_INTRUSIVE,
    "canine": pb.EXAM_CANINE,
    "documentary": pb.EXAM_DOCUMENTARY,
}
_EXAMS_BACK: dict[int, str] = {v: k for k, v in _EXAMS.items()}
# Fields named alike on both sides whose value passes as it is, in both directions.
_SHIPMENT_SCALARS = (
    "shipment_id",
    "port_of_entry",
    "origin_country",
    "export_country",
    "carrier",
    "conveyance_id",
    "container_id",
    "broker_id",
)
_GOODS_SCALARS = (
    "hs_code",
    "description",
    "quantity",
    "unit",
    "gross_weight_kg",
    "declared_value_usd",
)

# The range google.protobuf.Timestamp defines: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
MAX_NANOS = 999_999_999
MAX_ECHOED_ID = 1024
"""An error Decision echoes at most this many characters of the request's shipment id (a valid
id has at most 128; a longer one is named as invalid, and echoing megabytes back could push the
answer past the message size limit)."""


def party_from_proto(msg: pb.Party) -> Party:
    return Party(id=msg.id, name=msg.name, country=msg.country, tax_id=msg.tax_id)


def party_to_proto(party: Party) -> pb.Party:
    return pb.Party(id=party.id, name=party.name, country=party.country, tax_id=party.tax_id)


def goods_from_proto(msg: pb.GoodsLine) -> GoodsLine:
    return GoodsLine(
        **{name: getattr(msg, name) for name in _GOODS_SCALARS},
        cas_numbers=tuple(msg.cas_numbers),
    )


def goods_to_proto(line: GoodsLine) -> pb.GoodsLine:
    return pb.GoodsLine(
        **{name: getattr(line, name) for name in _GOODS_SCALARS},
        cas_numbers=list(line.cas_numbers),
    )


def timestamp_violations(msg: Timestamp, path: str) -> list[FieldViolation]:
    """Why ``msg`` is not a valid Timestamp (empty when it is)."""
    out = []
    if not MIN_TIMESTAMP_SECONDS <= msg.seconds <= MAX_TIMESTAMP_SECONDS:
        out.append(
            FieldViolation(
                path,
                f"seconds {quote(msg.seconds)} is outside the Timestamp range "
                "0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z",
            )
        )
    if not 0 <= msg.nanos <= MAX_NANOS:
        out.append(FieldViolation(path, f"nanos {quote(msg.nanos)} is outside 0 .. {MAX_NANOS}"))
    return out


def _declared_at(msg: pb.Shipment) -> datetime | None:
    if not msg.HasField("declared_at"):
        return None
    violations = timestamp_violations(msg.declared_at, "declared_at")
    if not violations:
        try:
            return msg.declared_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):  # the ranges above should have caught it
            violations = [FieldViolation("declared_at", "is not a valid Timestamp")]
    name = quote(msg.shipment_id) if msg.shipment_id else "(no id)"
    raise InvalidInput(f"shipment {name} is invalid", violations)


def shipment_from_proto(msg: pb.Shipment) -> Shipment:
    """The shipment as declared; raises :class:`InvalidInput` (only) for a ``declared_at``
    no datetime can hold."""
    return Shipment(
        **{name: getattr(msg, name) for name in _SHIPMENT_SCALARS},
        declared_at=_declared_at(msg),
        mode=_MODES.get(msg.mode, ""),
        transshipment_ports=tuple(msg.transshipment_ports),
        shipper=party_from_proto(msg.shipper),
        consignee=party_from_proto(msg.consignee),
        goods=tuple(goods_from_proto(g) for g in msg.goods),
    )


def shipment_to_proto(shipment: Shipment) -> pb.Shipment:
    msg = pb.Shipment(
        **{name: getattr(shipment, name) for name in _SHIPMENT_SCALARS},
        mode=_MODES_BACK.get(shipment.mode, pb.MODE_UNSPECIFIED),
        transshipment_ports=list(shipment.transshipment_ports),
        shipper=party_to_proto(shipment.shipper),
        consignee=party_to_proto(shipment.consignee),
        goods=[goods_to_proto(g) for g in shipment.goods],
    )
    if shipment.declared_at is not None:
        msg.declared_at.FromDatetime(shipment.declared_at)
    return msg


def request_shipment(request: pb.ScoreShipmentRequest) -> Shipment:
    if not request.HasField("shipment"):
        raise InvalidInput("invalid request", [FieldViolation("shipment", "required")])
    return shipment_from_proto(request.shipment)


def exam_to_proto(exam: str) -> pb.Exam:
    """The proto enum of an exam name (scoring.exams.EXAMS); EXAM_UNSPECIFIED for ""."""
    return _EXAMS[exam] if exam else pb.EXAM_UNSPECIFIED


def exam_from_proto(exam: pb.Exam | int) -> str:
    """The exam name of a proto enum value; "" for EXAM_UNSPECIFIED or an unknown value."""
    return _EXAMS_BACK.get(exam, "")


def reason_to_proto(reason: Reason) -> pb.Reason:
    return pb.Reason(
        code=reason.code,
        message_es=reason.message_es,
        message_en=reason.message_en,
        contribution=reason.contribution,
    )


def decision_to_proto(decision: Decision) -> pb.Decision:
    scored = decision.scored
    msg = pb.Decision(
        decision_id=decision.decision_id,
        shipment_id=scored.shipment_id,
        risk_score=scored.risk_score,
        lane=_LANES[scored.lane],
        random_selection=scored.random_selection,
        propensity=scored.propensity,
        reasons=[reason_to_proto(r) for r in scored.reasons],
        watchlist_hits=[
            pb.WatchlistHit(**{f.name: getattr(h, f.name) for f in fields(h)})
            for h in scored.watchlist_hits
        ],
        model_version=decision.model_version,
        watchlist_version=decision.watchlist_version,
        rules_version=decision.rules_version,
        exam=exam_to_proto(scored.exam),
    )
    if scored.exam_reason is not None:
        msg.exam_reason.CopyFrom(reason_to_proto(scored.exam_reason))
    return msg


def error_decision(shipment_id: str, error: BaseException, decision_id: str = "") -> pb.Decision:
    """The Decision a stream returns for a shipment that could not be scored (or, with
    ``decision_id``, one that was decided and ledgered but could not be sent as it is).
    Message and violations are bounded as for a unary status (:mod:`server.errors`)."""
    code = status_code_for(error)
    return pb.Decision(
        decision_id=decision_id,
        # The canonical id, as a scored Decision names it (scoring.service reads ids so).
        shipment_id=canonical_code(shipment_id[:MAX_ECHOED_ID]),
        lane=pb.LANE_UNSPECIFIED,
        error=pb.Error(
            code=code.name,
            message=public_message(error),
            field_violations=[
                pb.FieldViolation(field=v.field, description=v.description)
                for v in public_violations(error)
            ],
        ),
    )


def request_shipment_id(request: pb.ScoreShipmentRequest | Undecodable) -> str:
    """The shipment id a request names, for echoing in its Decision ('' when undecodable)."""
    return "" if isinstance(request, Undecodable) else request.shipment.shipment_id


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
        metrics=_metrics_to_proto(info.metrics),
        code_version=info.code_version,
        rules_version=info.rules_version,
        shadow_model_version=info.shadow_model_version,
        shadow_metrics=_metrics_to_proto(info.shadow_metrics),
    )


def _metrics_to_proto(metrics: dict[str, float]) -> list[pb.Metric]:
    return [pb.Metric(name=k, value=v) for k, v in sorted(metrics.items())]
