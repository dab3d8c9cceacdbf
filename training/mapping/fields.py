"""The canonical fields a mapping may name, and the groups that decide how each is read.

Every field of the canonical ``shipments`` and ``goods`` tables (:mod:`features.tables`) plus the
inspection fields can be named under a mapping's ``columns``, ``values`` or ``defaults``. The
groups below say which fields are required, which may not have a default, which must not be
empty, and which conversion (time, number, country, list, code) applies to each.
"""

from __future__ import annotations

from typing import Final

from features.tables import GOODS_SCHEMA, SHIPMENTS_SCHEMA

INSPECTION_FIELDS: Final[tuple[str, ...]] = (
    "inspected_at",
    "reported_at",
    "selection_probability",
    "random_selection",
    "substances",
)
SHIPMENT_FIELDS: Final[tuple[str, ...]] = tuple(SHIPMENTS_SCHEMA)
GOODS_FIELDS: Final[tuple[str, ...]] = tuple(
    f for f in GOODS_SCHEMA if f not in ("shipment_id", "line_no")
)
MAPPABLE_FIELDS: Final[tuple[str, ...]] = (*SHIPMENT_FIELDS, *GOODS_FIELDS, *INSPECTION_FIELDS)
"""Every canonical field a mapping may name under ``columns``, ``values`` or ``defaults``."""

REQUIRED: Final = frozenset({"declared_at"})
NO_DEFAULT: Final = frozenset({"shipment_id", "declared_at", "inspected_at", "reported_at"})
NOT_EMPTY: Final = frozenset(
    {"shipment_id", "declared_at", "hs_code", "quantity", "gross_weight_kg", "declared_value_usd"}
)
TIMES: Final = frozenset({"declared_at", "inspected_at", "reported_at"})
NUMBERS: Final = frozenset(
    {"quantity", "gross_weight_kg", "declared_value_usd", "selection_probability"}
)
COUNTRIES: Final = frozenset(
    {"origin_country", "export_country", "shipper_country", "consignee_country"}
)
LISTS: Final = frozenset({"transshipment_ports", "cas_numbers", "substances"})
# Ids and codes, read in canonical form (features.canonical.canonical_code: upper case, ASCII
# digits and dashes, look-alike letters folded, invisible characters removed), exactly as live
# scoring reads them, so history from these tables joins the live shipments of the same entity.
CODES: Final = frozenset(
    {
        "shipment_id",
        "port_of_entry",
        "container_id",
        "conveyance_id",
        "shipper_id",
        "shipper_tax_id",
        "consignee_id",
        "consignee_tax_id",
        "broker_id",
        "transshipment_ports",
    }
)
NUMBER_WHEN_UNMAPPED: Final[dict[str, float]] = {
    "quantity": 0.0,
    "gross_weight_kg": 0.0,
    "declared_value_usd": 0.0,
    "selection_probability": 1.0,
}
