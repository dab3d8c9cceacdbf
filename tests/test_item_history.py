"""The identified watched items as a history entity: which items a shipment is keyed to, that an
item's findings reach later shipments of that item only, that a shipment's outcome counts for
every item it identified, and that a shipment reads the record of its riskiest item (issue 15:
a clean decoy line beside a watched analogue must not lend it the decoy's record)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl

from features.build import Basics, Declarations, FeatureReference, finish, keyed_outcomes, stage_one
from features.history import Keyed, history_features
from features.item_keys import item_keys, riskiest
from features.records import GoodsLine
from features.state import EntityState
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


def test_the_item_key_names_every_item_strongest_first_then_by_id() -> None:
    keyed = _keyed(
        [
            ("ANILINE", 0, (PLASTICS, ANILINE_CAS)),
            ("TIE", 0, (ANILINE_CAS, PIPERIDONE_CAS)),  # both by CAS: in id order
            ("STRONGER", 0, (PIPERIDONE_NAME, ANILINE_CAS)),  # CAS before a name
            ("TWICE", 0, (ANILINE_NAME, PIPERIDONE_NAME, ANILINE_CAS)),  # each item once
            ("NAME", 0, (ANILINE_NAME,)),
            ("NOTHING", 0, (PLASTICS,)),
        ]
    )
    assert keyed.keys["item"] == [
        "aniline",
        "1-benzyl-4-piperidone aniline",
        "aniline 1-benzyl-4-piperidone",
        "aniline 1-benzyl-4-piperidone",
        "aniline",
        "",
    ]
    assert [item_keys(k) for k in keyed.keys["item"]][1:3] == [
        ["1-benzyl-4-piperidone", "aniline"],
        ["aniline", "1-benzyl-4-piperidone"],
    ]


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
    # P2 names the piperidone (one clean inspection) and aniline (one finding): it reads
    # aniline's record, the riskier, though the piperidone comes first in its key.
    assert history["item_positives"].tolist() == [0, 0, 1, 1, 0]
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
    assert history["item_positives"].tolist() == [0, 0, 0]  # X1's finding counts for no item
    block = finish(basics, history, FeatureReference(prior_rate=0.01))
    for name in ("item_inspections", "item_positives", "item_positive_rate"):
        values = [block.row(i)[name] for i in range(3)]
        assert not math.isnan(values[0]), name  # A1, identified, keeps its history
        assert math.isnan(values[1]), name
        assert math.isnan(values[2]), name
    assert all(math.isnan(block.row(i)["item_days_since_positive"]) for i in range(3))


def _reported(*rows: tuple[str, int, bool]) -> pl.DataFrame:
    """Inspections of shipment ids, each reported ``day`` days after day one."""
    return pl.DataFrame(
        {
            "shipment_id": [sid for sid, _, _ in rows],
            "reported_at": [DAY_ONE + timedelta(days=day) for _, day, _ in rows],
            "positive": [positive for _, _, positive in rows],
        }
    )


def _both_paths(
    rows: list[tuple[str, int, tuple[GoodsLine, ...]]], inspections: pl.DataFrame
) -> dict[str, list[float]]:
    """The item history of ``rows`` in bulk, checked equal to the live state's for the last
    row (every earlier row remembered and its inspection credited)."""
    keyed = _keyed(rows)
    bulk = history_features(keyed, keyed_outcomes(keyed.keys_frame(), inspections), 0.01, 3.0)
    state = EntityState.empty()
    state.add_shipments(keyed.slice(0, len(keyed) - 1))
    for shipment_id, reported_at, positive in inspections.iter_rows():
        assert state.add_outcome(shipment_id, reported_at, positive)
    live = state.history_for(keyed.slice(len(keyed) - 1, len(keyed)), 0.01, 3.0)
    names = ("item_inspections", "item_positives", "item_positive_rate")
    for name in names:
        assert live[name].tobytes() == bulk[name][-1:].tobytes(), name
    return {name: bulk[name].tolist() for name in names}


def test_a_shipments_outcome_counts_for_every_item_it_identified() -> None:
    """The analogue found beside a decoy: the finding is the analogue's as well as the
    decoy's, so the decoy cannot take it away from the analogue."""
    found = _both_paths(
        [
            ("BOTH", 0, (ANILINE_CAS, PIPERIDONE_NAME)),  # aniline first in its key
            ("A", 5, (ANILINE_CAS,)),
            ("P", 5, (PIPERIDONE_NAME,)),
        ],
        _reported(("BOTH", 2, True)),
    )
    assert found["item_inspections"] == [0, 1, 1]
    assert found["item_positives"] == [0, 1, 1]


def test_a_clean_decoy_does_not_lend_its_record_to_an_analogue_with_findings() -> None:
    """Aniline by CAS (1.0) beside the piperidone named only (0.95): the key names aniline
    first, but the shipment reads the piperidone's record, the riskier, in bulk and live."""
    history = [(f"A{k}", 0, (ANILINE_CAS,)) for k in range(6)]
    history += [("P1", 0, (PIPERIDONE_NAME,)), ("P2", 1, (PIPERIDONE_CAS,))]
    inspections = _reported(
        *[(f"A{k}", 2, False) for k in range(6)], ("P1", 2, True), ("P2", 3, True)
    )
    decoyed = _both_paths([*history, ("DECOYED", 9, (ANILINE_CAS, PIPERIDONE_NAME))], inspections)
    plain = _both_paths([*history, ("PLAIN", 9, (PIPERIDONE_NAME,))], inspections)
    assert decoyed["item_inspections"][-1] == plain["item_inspections"][-1] == 2
    assert decoyed["item_positives"][-1] == plain["item_positives"][-1] == 2
    assert decoyed["item_positive_rate"][-1] == plain["item_positive_rate"][-1]


def test_the_riskiest_item_has_the_highest_rate_then_the_most_positives_then_comes_first() -> None:
    nan = math.nan
    assert riskiest([(9, 0, 0.01, nan), (2, 1, 0.3, 4.0)]) == 1  # the higher rate
    assert riskiest([(2, 1, 0.3, 4.0), (9, 0, 0.01, nan)]) == 0
    assert riskiest([(2, 1, 0.25, 4.0), (6, 3, 0.25, 1.0)]) == 1  # equal rates: more positives
    assert riskiest([(2, 1, 0.25, 4.0), (2, 1, 0.25, 9.0), (0, 0, 0.25, nan)]) == 0  # the first
    assert riskiest([(0, 0, 0.02, nan)]) == 0
