"""Bulk scoring in chunks decides exactly what scoring the whole tables at once decides.

``centinela score`` reads its tables a chunk at a time (features.tables.stream_tables) and
scores them in two passes (Scorer.score_stream); these tests compare it, decision by decision,
with Scorer.score_tables on the whole tables, for tables in order, out of order, with goods in
another order than their shipments, and with repeated shipment ids.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from features.tables import load_tables, scan_table, stream_tables
from features.watchlist import load_watchlist
from scoring.bulk import first_pass
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scored, Scorer
from server.settings import load_settings


def decision(s: Scored) -> tuple[object, ...]:
    return (
        s.shipment_id,
        s.risk_score,
        s.lane,
        s.random_selection,
        s.propensity,
        s.rules_fired,
        tuple(r.code for r in s.reasons),
        tuple((h.entry_id, h.goods_index) for h in s.watchlist_hits),
        s.exam,
        [None if math.isnan(v) else v for v in s.features.values()],
    )


def scorer(registry: Path) -> Scorer:
    watchlist = load_watchlist()
    settings = load_settings(None)
    return Scorer.create(
        Registry(registry).load(), watchlist, load_rules(None, watchlist), settings
    )


def whole(data: Path, registry: Path) -> list[tuple[object, ...]]:
    tables = load_tables(data, need_inspections=False)
    ships = tables.shipments.sort("declared_at", "shipment_id")
    return [
        decision(s) for s in scorer(registry).score_tables(ships, tables.goods, tables.inspections)
    ]


def streamed(data: Path, registry: Path, work: Path, chunk: int) -> list[tuple[object, ...]]:
    stream = stream_tables(data, work, chunk_rows=chunk)
    return [decision(s) for part in scorer(registry).score_stream(stream) for s in part]


def write(data: Path, shipments: pl.DataFrame, goods: pl.DataFrame, world: Path) -> Path:
    data.mkdir()
    shipments.write_parquet(data / "shipments.parquet")
    goods.write_parquet(data / "goods.parquet")
    scan_table(world, "inspections").collect().write_parquet(data / "inspections.parquet")
    return data


@pytest.fixture(scope="module")
def expected(world: Path, registry: Path) -> list[tuple[object, ...]]:
    return whole(world, registry)


def test_chunks_decide_what_the_whole_tables_decide(
    world: Path, registry: Path, expected: list[tuple[object, ...]], tmp_path: Path
) -> None:
    got = streamed(world, registry, tmp_path / "work", chunk=700)
    assert len(got) == len(expected) == 6000
    assert got == expected
    assert not (tmp_path / "work").exists()  # in order already: streamed as it is


def test_a_kept_first_pass_decides_what_computing_stage_one_again_decides(
    world: Path, registry: Path, expected: list[tuple[object, ...]], tmp_path: Path
) -> None:
    stream = stream_tables(world, tmp_path / "work", chunk_rows=700)
    first = first_pass(stream, load_watchlist(), keep=tmp_path / "kept")
    assert len(first.kept) == 9  # 6,000 shipments in chunks of 700: one file a chunk
    assert all(path.parent == tmp_path / "kept" and path.exists() for path in first.kept)
    got = [decision(s) for part in scorer(registry).score_stream(stream, first) for s in part]
    assert got == expected


def test_tables_out_of_order_are_ordered_first(
    world: Path, registry: Path, expected: list[tuple[object, ...]], tmp_path: Path
) -> None:
    ships = scan_table(world, "shipments").collect().sample(fraction=1.0, shuffle=True, seed=3)
    goods = scan_table(world, "goods").collect().sample(fraction=1.0, shuffle=True, seed=4)
    data = write(tmp_path / "shuffled", ships, goods, world)
    assert streamed(data, registry, tmp_path / "work", chunk=1000) == expected
    assert (tmp_path / "work" / "shipments.parquet").exists()


def test_goods_in_another_order_are_regrouped(
    world: Path, registry: Path, expected: list[tuple[object, ...]], tmp_path: Path
) -> None:
    ships = scan_table(world, "shipments").collect()
    goods = scan_table(world, "goods").collect().sort("line_no", "shipment_id")
    data = write(tmp_path / "goods-apart", ships, goods, world)
    assert streamed(data, registry, tmp_path / "work", chunk=1000) == expected
    assert (tmp_path / "work" / "goods-ordered.parquet").exists()


def test_repeated_shipment_ids_are_folded_as_load_tables_folds_them(
    world: Path, registry: Path, tmp_path: Path
) -> None:
    ships = scan_table(world, "shipments").collect()
    goods = scan_table(world, "goods").collect()
    again = ships.slice(100, 50)
    data = write(
        tmp_path / "repeated",
        pl.concat([ships, again]),
        pl.concat(
            [goods, goods.filter(pl.col("shipment_id").is_in(again["shipment_id"].implode()))]
        ),
        world,
    )
    stream = stream_tables(data, tmp_path / "work", chunk_rows=1000)
    assert stream.folded.shipments == 50
    assert stream.total == 6000
    assert streamed(data, registry, tmp_path / "work2", chunk=1000) == whole(data, registry)
