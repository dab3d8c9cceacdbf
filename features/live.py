"""Shipment records and the rows of the canonical tables, each way.

A :class:`~features.records.Shipment` is one row of the ``shipments`` table (each party spread
over ``shipper_*`` or ``consignee_*`` columns) and one row of the ``goods`` table per goods line.
:func:`shipment_row` and :func:`goods_rows` give those rows: what the ledger stores of a decided
shipment. :func:`shipments_from_frames` reads tables back into records: how bulk scoring hands
the rules the records they check, and how tests and benchmarks replay a simulated world through
the live path. A sequence is a tuple in a record and a list in a table.

Nothing here computes a feature: the kernels read a batch laid out by
:class:`~features.declarations.Declarations`, from these records live and from the tables in
bulk.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter, itemgetter
from typing import Any

import polars as pl

from features.records import GoodsLine, Party, Shipment

# The record attribute each column of the shipments table holds, in table order: a party's
# columns are its role and field (shipper.tax_id in column shipper_tax_id).
_SHIPMENT_ATTRIBUTES: tuple[str, ...] = (
    "shipment_id",
    "declared_at",
    "port_of_entry",
    "mode",
    "origin_country",
    "export_country",
    "transshipment_ports",
    "carrier",
    "conveyance_id",
    "container_id",
    *(f"{role}.{f.name}" for role in ("shipper", "consignee") for f in fields(Party)),
    "broker_id",
)
_SHIPMENT_COLUMNS = tuple(a.replace(".", "_") for a in _SHIPMENT_ATTRIBUTES)
# The goods table: shipment_id, line_no (from 0), then the GoodsLine fields in their order.
_GOODS_COLUMNS = tuple(f.name for f in fields(GoodsLine))

_shipment_values = attrgetter(*_SHIPMENT_ATTRIBUTES)
_goods_values = attrgetter(*_GOODS_COLUMNS)
_goods_cells = itemgetter(*_GOODS_COLUMNS)
_party_cells = {
    role: itemgetter(*(f"{role}_{f.name}" for f in fields(Party)))
    for role in ("shipper", "consignee")
}


def shipment_row(s: Shipment) -> dict[str, Any]:
    """One row of the canonical ``shipments`` table."""
    row = dict(zip(_SHIPMENT_COLUMNS, _shipment_values(s), strict=True))
    row["transshipment_ports"] = list(s.transshipment_ports)
    return row


def goods_rows(s: Shipment) -> list[dict[str, Any]]:
    """The shipment's rows of the canonical ``goods`` table."""
    rows = []
    for i, g in enumerate(s.goods):
        row = {"shipment_id": s.shipment_id, "line_no": i}
        row.update(zip(_GOODS_COLUMNS, _goods_values(g), strict=True))
        row["cas_numbers"] = list(g.cas_numbers)
        rows.append(row)
    return rows


def shipments_from_frames(shipments: pl.DataFrame, goods: pl.DataFrame) -> list[Shipment]:
    """Canonical rows (``shipments`` and ``goods`` tables) back into shipment records."""
    lines: dict[str, list[GoodsLine]] = {}
    for row in goods.sort("shipment_id", "line_no").iter_rows(named=True):
        hs_code, description, cas_numbers, *rest = _goods_cells(row)
        line = GoodsLine(hs_code, description, tuple(cas_numbers), *rest)
        lines.setdefault(row["shipment_id"], []).append(line)
    return [
        Shipment(
            shipment_id=r["shipment_id"],
            declared_at=r["declared_at"],
            port_of_entry=r["port_of_entry"],
            mode=r["mode"],
            origin_country=r["origin_country"],
            export_country=r["export_country"],
            transshipment_ports=tuple(r["transshipment_ports"]),
            carrier=r["carrier"],
            conveyance_id=r["conveyance_id"],
            container_id=r["container_id"],
            shipper=Party(*_party_cells["shipper"](r)),
            consignee=Party(*_party_cells["consignee"](r)),
            broker_id=r["broker_id"],
            goods=tuple(lines.get(r["shipment_id"], ())),
        )
        for r in shipments.iter_rows(named=True)
    ]
