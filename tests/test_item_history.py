"""The identified watched item as a history entity: which item a shipment is keyed to, and that
an item's findings reach later shipments of that item only."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl

from features.build import Basics, Declarations, FeatureReference, finish, keyed_outcomes, stage_one
from features.history import Keyed, history_features
from features.records import GoodsLine
from features.watchlist import load_watchlist
from tests.support import make_shipment

DAY_ONE = datetime(2025, 6, 2, tzinfo=UTC)


def _line(hs_code: str, description: str, *cas: str) -> GoodsLine:
    return GoodsLine(
        hs_code=hs_code,
        description=description,
        cas_numbers=cas,
        quantity=10,
        unit="DRUM",
        gross_weight_kg=250.0,
        declared_value_usd=9_000.0,
    )


ANILINE_CAS = _line("292141", "aniline", "62-53-3")  # CAS, strength 1.0
ANILINE_NAME = _line("292141", "aniline oil")  # name only, strength 0.95
PIPERIDONE_CAS = _line("293339", "pharmaceutical intermediate", "3612-20-2")
PIPERIDONE_NAME = _line("293339", "1-benzyl-4-piperidone")
PLASTICS = _line("392690", "plastic household articles")


def _basics(rows: list[tuple[str, int, tuple[GoodsLine, ...]]]) -> Basics:
    shipments = [
        make_shipment(sid, declared_at=DAY_ONE + timedelta(days=day), goods=goods)
        for sid, day, goods in rows
    ]
    watchlist = load_watchlist()
    return stage_one(Declarations.from_shipments(shipments, watchlist), watchlist)


def _keyed(rows: list[tuple[str, int, tuple[GoodsLine, ...]]]) -> Keyed:
    return _basics(rows).keyed


def test_the_item_is_the_strongest_identification_then_the_first_id() -> None:
    keyed = _keyed(
        [
            ("ANILINE", 0, (PLASTICS, ANILINE_CAS)),
            ("TIE", 0, (ANILINE_CAS, PIPERIDONE_CAS)),  # both by CAS: the first id in order
            ("STRONGER", 0, (ANILINE_CAS, PIPERIDONE_NAME)),  # CAS beats a name
            ("NAME", 0, (ANILINE_NAME,)),
            ("NOTHING", 0, (PLASTICS,)),
        ]
    )
    assert keyed.keys["item"] == ["aniline", "1-benzyl-4-piperidone", "aniline", "aniline", ""]


def test_an_items_findings_reach_later_shipments_of_that_item_only() -> None:
    keyed = _keyed(
        [
            ("A1", 0, (ANILINE_CAS,)),
            ("P1", 0, (PIPERIDONE_NAME,)),
            ("A2", 5, (ANILINE_NAME,)),
            ("P2", 5, (PIPERIDONE_CAS, ANILINE_CAS)),
            ("X", 5, (PLASTICS,)),
        ]
    )
    reported = DAY_ONE + timedelta(days=2)
    inspections = pl.DataFrame(
        {
            "shipment_id": ["A1", "P1"],
            "reported_at": [reported, reported],
            "positive": [True, False],
        }
    )
    history = history_features(keyed, keyed_outcomes(keyed.keys_frame(), inspections), 0.01)
    assert history["item_inspections"].tolist() == [0, 0, 1, 1, 0]
    assert history["item_positives"].tolist() == [0, 0, 1, 0, 0]
    assert history["item_days_since_positive"][2] == 3.0


def test_a_shipment_without_an_identified_item_has_no_item_history() -> None:
    """Not the history of everything unidentified, which only grows with time."""
    basics = _basics([("A1", 0, (ANILINE_CAS,)), ("X1", 0, (PLASTICS,)), ("X2", 5, (PLASTICS,))])
    reported = DAY_ONE + timedelta(days=2)
    inspections = pl.DataFrame(
        {"shipment_id": ["A1", "X1"], "reported_at": [reported] * 2, "positive": [True, True]}
    )
    outcomes = keyed_outcomes(basics.keyed.keys_frame(), inspections)
    history = history_features(basics.keyed, outcomes, 0.01)
    assert history["item_positives"].tolist() == [0, 0, 1]  # X1's finding, keyed ""
    block = finish(basics, history, FeatureReference(prior_rate=0.01))
    for name in ("item_inspections", "item_positives", "item_positive_rate"):
        values = [block.row(i)[name] for i in range(3)]
        assert not math.isnan(values[0]), name  # A1, identified, keeps its history
        assert math.isnan(values[1]), name
        assert math.isnan(values[2]), name
    assert all(math.isnan(block.row(i)["item_days_since_positive"]) for i in range(3))
