"""Records to table rows and back (features/live.py): what bulk scoring hands the rules."""

from __future__ import annotations

import dataclasses

import polars as pl

from features.live import goods_rows, shipment_row, shipments_from_frames
from features.records import GoodsLine, Party, Shipment
from features.tables import GOODS_SCHEMA, SHIPMENTS_SCHEMA
from tests.support import make_shipment


def frames(shipments: list[Shipment]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ships = pl.DataFrame([shipment_row(s) for s in shipments], schema=SHIPMENTS_SCHEMA)
    goods = pl.DataFrame([r for s in shipments for r in goods_rows(s)], schema=GOODS_SCHEMA)
    return ships, goods


def test_records_survive_a_round_trip_through_the_tables() -> None:
    three = GoodsLine("847130", "laptops", ("1-2-3", "4-5-6"), 3.0, "PCS", 9.5, 1200.0)
    records = [
        make_shipment("SHP-1"),
        make_shipment("SHP-2", goods=(), transshipment_ports=(), consignee=Party("CNE-9")),
        make_shipment("SHP-3", goods=(*make_shipment().goods, three)),
    ]
    ships, goods = frames(records)
    # Lines come back in line_no order whatever order the goods table holds them in.
    shuffled = goods.sample(fraction=1.0, shuffle=True, seed=7)
    assert shuffled["line_no"].to_list() != goods["line_no"].to_list()

    back = shipments_from_frames(ships, shuffled)

    assert back == records
    assert [type(s.transshipment_ports) for s in back] == [tuple] * 3
    assert all(type(g.cas_numbers) is tuple for s in back for g in s.goods)


def test_lines_follow_their_shipment_id() -> None:
    """Lines of an id the shipments table lacks are left out; a repeated id gets the lines of
    that id each time; a shipment without lines gets none."""
    first, second = make_shipment("SHP-1"), make_shipment("SHP-2")
    ships, goods = frames([first, second, make_shipment("SHP-GONE")])
    ships = pl.concat([ships.filter(pl.col("shipment_id") != "SHP-GONE"), ships.head(1)])
    goods = goods.filter(pl.col("shipment_id") != "SHP-2")

    back = shipments_from_frames(ships, goods)

    assert [s.shipment_id for s in back] == ["SHP-1", "SHP-2", "SHP-1"]
    assert back[0] == back[2] == first
    assert back[1] == dataclasses.replace(second, goods=())


def test_empty_tables_give_no_records() -> None:
    ships, goods = frames([])
    assert shipments_from_frames(ships, goods) == []
