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

from collections.abc import Iterable
from dataclasses import fields
from itertools import accumulate
from operator import attrgetter
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
    """Canonical rows (``shipments`` and ``goods`` tables) back into shipment records.

    Goods lines are in ``line_no`` order; lines of a shipment id the shipments table does not
    hold are left out, and a repeated shipment id gets all lines of that id each time.
    """
    lines = _lines_by_shipment(goods)
    column = {c: shipments.get_column(c).to_list() for c in _SHIPMENT_COLUMNS}
    # Party attributes (shipper.id) are spread over columns (shipper_id); the rest are columns.
    values: dict[str, Iterable[Any]] = {a: column[a] for a in _SHIPMENT_ATTRIBUTES if "." not in a}
    for role in ("shipper", "consignee"):
        values[role] = _parties(
            zip(*(column[f"{role}_{f.name}"] for f in fields(Party)), strict=True)
        )
    values["transshipment_ports"] = map(tuple, column["transshipment_ports"])
    values["goods"] = [lines.get(shipment_id, ()) for shipment_id in column["shipment_id"]]
    return list(map(Shipment, *(values[f.name] for f in fields(Shipment))))


def _parties(rows: Iterable[tuple[str, ...]]) -> list[Party]:
    """A party record per row of (id, name, country, tax id) cells; equal rows share one record
    (a party declares many shipments, and records are immutable)."""
    known: dict[tuple[str, ...], Party] = {}
    parties = []
    for cells in rows:
        party = known.get(cells)
        if party is None:
            party = known[cells] = Party(*cells)
        parties.append(party)
    return parties


def _lines_by_shipment(goods: pl.DataFrame) -> dict[str, tuple[GoodsLine, ...]]:
    """Each shipment id's goods lines, in ``line_no`` order: the table sorted once, its lines
    built a column at a time, and each id's run of consecutive lines sliced out."""
    ordered = goods.sort("shipment_id", "line_no")
    cells: list[Iterable[Any]] = [ordered.get_column(c).to_list() for c in _GOODS_COLUMNS]
    cas = _GOODS_COLUMNS.index("cas_numbers")
    cells[cas] = map(tuple, cells[cas])
    lines = tuple(map(GoodsLine, *cells))
    runs = ordered.get_column("shipment_id").rle().struct.unnest()
    lengths = runs.get_column("len").to_list()
    ends = list(accumulate(lengths))
    return {
        shipment_id: lines[end - length : end]
        for shipment_id, length, end in zip(
            runs.get_column("value").to_list(), lengths, ends, strict=True
        )
    }
