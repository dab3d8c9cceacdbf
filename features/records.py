"""Domain records for one shipment, free of any transport (no protobuf here).

A missing party arrives as ``Party(id="")`` so validation reports ``shipper.id: required``.

The server converts requests into these;
:meth:`features.declarations.Declarations.from_shipments` lays a batch of them out for the
feature kernels the bulk path runs on tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Mode = Literal["sea", "land", "air", "postal"]
MODES: tuple[Mode, ...] = ("sea", "land", "air", "postal")


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str = ""
    country: str = ""
    tax_id: str = ""


@dataclass(frozen=True, slots=True)
class GoodsLine:
    hs_code: str
    description: str
    cas_numbers: tuple[str, ...] = ()
    quantity: float = 0.0
    unit: str = ""
    gross_weight_kg: float = 0.0
    declared_value_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Shipment:
    shipment_id: str
    declared_at: datetime | None  # timezone-aware, UTC; None only before validation
    port_of_entry: str
    mode: str  # one of MODES after validation
    origin_country: str
    export_country: str
    shipper: Party
    consignee: Party
    goods: tuple[GoodsLine, ...]
    transshipment_ports: tuple[str, ...] = ()
    carrier: str = ""
    conveyance_id: str = ""
    container_id: str = ""
    broker_id: str = ""
