"""A chunk's declarations and stage one read back from their file exactly as written."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from features.declarations import Declarations
from features.kept import load_stage_one, save_stage_one
from features.stage_one import stage_one
from features.tables import scan_table
from features.watchlist import load_watchlist


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, True)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def test_stage_one_round_trips_with_its_shared_lists(world: Path, tmp_path: Path) -> None:
    watchlist = load_watchlist()
    shipments = scan_table(world, "shipments").sort("declared_at", "shipment_id").collect()
    declarations = Declarations.from_tables(
        shipments, scan_table(world, "goods").collect(), watchlist
    )
    basics = stage_one(declarations, watchlist)
    assert any(m.hits for m in declarations.matches)  # the watchlist found something to keep
    save_stage_one(tmp_path / "chunk", declarations, basics)
    d, b = load_stage_one(tmp_path / "chunk")

    for f in fields(Declarations):
        assert same(getattr(d, f.name), getattr(declarations, f.name)), f.name
    assert list(b.columns) == list(basics.columns)
    for name, column in basics.columns.items():
        assert same(b.columns[name], column), name
    assert b.keyed.keys == basics.keyed.keys
    assert b.keyed.families == basics.keyed.families
    assert same(b.keyed.declared_at, basics.keyed.declared_at)
    # what stage one shares with the declarations is one object again, not a copy
    assert b.keyed.shipment_id is d.shipment_id
    assert b.port_of_entry is d.port_of_entry
    assert b.keyed.keys["shipper"] is d.shipper_id
