"""Shipment records and canonical table rows, each way.

Nothing here computes a feature; features come from the kernels of :mod:`features.build`,
which read records (live) and tables (bulk) alike. These rows are what the ledger stores of a
shipment and what bulk scoring turns back into records for the rules.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from features.records import GoodsLine, Party, Shipment


def shipment_row(s: Shipment) -> dict[str, Any]:
    """One row of the canonical ``shipments`` table."""
    return {
        "shipment_id": s.shipment_id,
        "declared_at": s.declared_at,
        "port_of_entry": s.port_of_entry,
        "mode": s.mode,
        "origin_country": s.origin_country,
        "export_country": s.export_country,
        "transshipment_ports": list(s.transshipment_ports),
        "carrier": s.carrier,
        "conveyance_id": s.conveyance_id,
        "container_id": s.container_id,
        "shipper_id": s.shipper.id,
        "shipper_name": s.shipper.name,
        "shipper_country": s.shipper.country,
        "shipper_tax_id": s.shipper.tax_id,
        "consignee_id": s.consignee.id,
        "consignee_name": s.consignee.name,
        "consignee_country": s.consignee.country,
        "consignee_tax_id": s.consignee.tax_id,
        "broker_id": s.broker_id,
    }


def goods_rows(s: Shipment) -> list[dict[str, Any]]:
    """The shipment's rows of the canonical ``goods`` table."""
    return [
        {
            "shipment_id": s.shipment_id,
            "line_no": i,
            "hs_code": g.hs_code,
            "description": g.description,
            "cas_numbers": list(g.cas_numbers),
            "quantity": g.quantity,
            "unit": g.unit,
            "gross_weight_kg": g.gross_weight_kg,
            "declared_value_usd": g.declared_value_usd,
        }
        for i, g in enumerate(s.goods)
    ]


def shipments_from_frames(shipments: pl.DataFrame, goods: pl.DataFrame) -> list[Shipment]:
    """Canonical rows (``shipments`` and ``goods`` tables) back into shipment records."""
    lines: dict[str, list[GoodsLine]] = {}
    for row in goods.sort("shipment_id", "line_no").iter_rows(named=True):
        lines.setdefault(row["shipment_id"], []).append(
            GoodsLine(
                hs_code=row["hs_code"],
                description=row["description"],
                cas_numbers=tuple(row["cas_numbers"]),
                quantity=row["quantity"],
                unit=row["unit"],
                gross_weight_kg=row["gross_weight_kg"],
                declared_value_usd=row["declared_value_usd"],
            )
        )
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
            shipper=Party(
                r["shipper_id"], r["shipper_name"], r["shipper_country"], r["shipper_tax_id"]
            ),
            consignee=Party(
                r["consignee_id"],
                r["consignee_name"],
                r["consignee_country"],
                r["consignee_tax_id"],
            ),
            broker_id=r["broker_id"],
            goods=tuple(lines.get(r["shipment_id"], ())),
        )
        for r in shipments.iter_rows(named=True)
    ]
