import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_SEA: _ClassVar[Mode]
    MODE_LAND: _ClassVar[Mode]
    MODE_AIR: _ClassVar[Mode]
    MODE_POSTAL: _ClassVar[Mode]

class Lane(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LANE_UNSPECIFIED: _ClassVar[Lane]
    LANE_RED: _ClassVar[Lane]
    LANE_YELLOW: _ClassVar[Lane]
    LANE_GREEN: _ClassVar[Lane]

class Exam(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXAM_UNSPECIFIED: _ClassVar[Exam]
    EXAM_PHYSICAL_SAMPLING: _ClassVar[Exam]
    EXAM_NON_INTRUSIVE: _ClassVar[Exam]
    EXAM_CANINE: _ClassVar[Exam]
    EXAM_DOCUMENTARY: _ClassVar[Exam]
MODE_UNSPECIFIED: Mode
MODE_SEA: Mode
MODE_LAND: Mode
MODE_AIR: Mode
MODE_POSTAL: Mode
LANE_UNSPECIFIED: Lane
LANE_RED: Lane
LANE_YELLOW: Lane
LANE_GREEN: Lane
EXAM_UNSPECIFIED: Exam
EXAM_PHYSICAL_SAMPLING: Exam
EXAM_NON_INTRUSIVE: Exam
EXAM_CANINE: Exam
EXAM_DOCUMENTARY: Exam

class Party(_message.Message):
    __slots__ = ("id", "name", "country", "tax_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TAX_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    country: str
    tax_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., country: _Optional[str] = ..., tax_id: _Optional[str] = ...) -> None: ...

class GoodsLine(_message.Message):
    __slots__ = ("hs_code", "description", "cas_numbers", "quantity", "unit", "gross_weight_kg", "declared_value_usd")
    HS_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CAS_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    GROSS_WEIGHT_KG_FIELD_NUMBER: _ClassVar[int]
    DECLARED_VALUE_USD_FIELD_NUMBER: _ClassVar[int]
    hs_code: str
    description: str
    cas_numbers: _containers.RepeatedScalarFieldContainer[str]
    quantity: float
    unit: str
    gross_weight_kg: float
    declared_value_usd: float
    def __init__(self, hs_code: _Optional[str] = ..., description: _Optional[str] = ..., cas_numbers: _Optional[_Iterable[str]] = ..., quantity: _Optional[float] = ..., unit: _Optional[str] = ..., gross_weight_kg: _Optional[float] = ..., declared_value_usd: _Optional[float] = ...) -> None: ...

class Shipment(_message.Message):
    __slots__ = ("shipment_id", "declared_at", "port_of_entry", "mode", "origin_country", "export_country", "transshipment_ports", "carrier", "conveyance_id", "container_id", "shipper", "consignee", "broker_id", "goods")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DECLARED_AT_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_ENTRY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    EXPORT_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    TRANSSHIPMENT_PORTS_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    CONVEYANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    SHIPPER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    BROKER_ID_FIELD_NUMBER: _ClassVar[int]
    GOODS_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    declared_at: _timestamp_pb2.Timestamp
    port_of_entry: str
    mode: Mode
    origin_country: str
    export_country: str
    transshipment_ports: _containers.RepeatedScalarFieldContainer[str]
    carrier: str
    conveyance_id: str
    container_id: str
    shipper: Party
    consignee: Party
    broker_id: str
    goods: _containers.RepeatedCompositeFieldContainer[GoodsLine]
    def __init__(self, shipment_id: _Optional[str] = ..., declared_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., port_of_entry: _Optional[str] = ..., mode: _Optional[_Union[Mode, str]] = ..., origin_country: _Optional[str] = ..., export_country: _Optional[str] = ..., transshipment_ports: _Optional[_Iterable[str]] = ..., carrier: _Optional[str] = ..., conveyance_id: _Optional[str] = ..., container_id: _Optional[str] = ..., shipper: _Optional[_Union[Party, _Mapping]] = ..., consignee: _Optional[_Union[Party, _Mapping]] = ..., broker_id: _Optional[str] = ..., goods: _Optional[_Iterable[_Union[GoodsLine, _Mapping]]] = ...) -> None: ...

class ScoreShipmentRequest(_message.Message):
    __slots__ = ("shipment",)
    SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    shipment: Shipment
    def __init__(self, shipment: _Optional[_Union[Shipment, _Mapping]] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("code", "message_es", "message_en", "contribution")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_EN_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    code: str
    message_es: str
    message_en: str
    contribution: float
    def __init__(self, code: _Optional[str] = ..., message_es: _Optional[str] = ..., message_en: _Optional[str] = ..., contribution: _Optional[float] = ...) -> None: ...

class WatchlistHit(_message.Message):
    __slots__ = ("entry_id", "name", "match_type", "matched_text", "goods_index", "similarity")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCH_TYPE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_TEXT_FIELD_NUMBER: _ClassVar[int]
    GOODS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    name: str
    match_type: str
    matched_text: str
    goods_index: int
    similarity: float
    def __init__(self, entry_id: _Optional[str] = ..., name: _Optional[str] = ..., match_type: _Optional[str] = ..., matched_text: _Optional[str] = ..., goods_index: _Optional[int] = ..., similarity: _Optional[float] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field_violations")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("decision_id", "shipment_id", "risk_score", "lane", "random_selection", "propensity", "reasons", "watchlist_hits", "model_version", "watchlist_version", "error", "rules_version", "exam", "exam_reason")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RISK_SCORE_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    RANDOM_SELECTION_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    WATCHLIST_HITS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WATCHLIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RULES_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXAM_FIELD_NUMBER: _ClassVar[int]
    EXAM_REASON_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    shipment_id: str
    risk_score: float
    lane: Lane
    random_selection: bool
    propensity: float
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    watchlist_hits: _containers.RepeatedCompositeFieldContainer[WatchlistHit]
    model_version: str
    watchlist_version: str
    error: Error
    rules_version: str
    exam: Exam
    exam_reason: Reason
    def __init__(self, decision_id: _Optional[str] = ..., shipment_id: _Optional[str] = ..., risk_score: _Optional[float] = ..., lane: _Optional[_Union[Lane, str]] = ..., random_selection: _Optional[bool] = ..., propensity: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., watchlist_hits: _Optional[_Iterable[_Union[WatchlistHit, _Mapping]]] = ..., model_version: _Optional[str] = ..., watchlist_version: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., rules_version: _Optional[str] = ..., exam: _Optional[_Union[Exam, str]] = ..., exam_reason: _Optional[_Union[Reason, _Mapping]] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("decision_id", "inspected", "result", "substances", "lab_confirmed", "notes")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    INSPECTED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SUBSTANCES_FIELD_NUMBER: _ClassVar[int]
    LAB_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    inspected: bool
    result: str
    substances: _containers.RepeatedScalarFieldContainer[str]
    lab_confirmed: bool
    notes: str
    def __init__(self, decision_id: _Optional[str] = ..., inspected: _Optional[bool] = ..., result: _Optional[str] = ..., substances: _Optional[_Iterable[str]] = ..., lab_confirmed: _Optional[bool] = ..., notes: _Optional[str] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("decision_id", "version", "duplicate")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    version: int
    duplicate: bool
    def __init__(self, decision_id: _Optional[str] = ..., version: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_version", "trained_at", "feature_names", "watchlist_version", "metrics", "code_version", "rules_version", "shadow_model_version", "shadow_metrics")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    WATCHLIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULES_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_METRICS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    trained_at: _timestamp_pb2.Timestamp
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    watchlist_version: str
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    code_version: str
    rules_version: str
    shadow_model_version: str
    shadow_metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, model_version: _Optional[str] = ..., trained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_names: _Optional[_Iterable[str]] = ..., watchlist_version: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ..., code_version: _Optional[str] = ..., rules_version: _Optional[str] = ..., shadow_model_version: _Optional[str] = ..., shadow_metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...
