"""The decoy line (issue 15, :mod:`training.red_team_decoy`): a clean, heavily traded watched
chemical added beside a watched analogue with findings must not give the shipment the decoy's
clean record, in its item history or in its score (which the decoy's clean record must not
lower: the second line itself moves other features, so the score is compared with the same
shipment's after a history without the decoys' shipments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from features.watchlist import load_watchlist
from scoring.registry import Registry
from scoring.rules import load_rules
from scoring.scorer import Scorer
from scoring.settings import CoreSettings
from training.red_team_decoy import (
    ANALOGUES,
    DECOY_TRICKS,
    DECOYS,
    DecoyCheck,
    decoy_cases,
    decoy_check,
)

WATCHLIST = load_watchlist(None)
CASES = decoy_cases(WATCHLIST)


@pytest.fixture(scope="module")
def check(registry: Path) -> DecoyCheck:
    scorer = Scorer.create(
        Registry(registry).load(), WATCHLIST, load_rules(None, WATCHLIST), CoreSettings()
    )
    return decoy_check(scorer, CASES, WATCHLIST)


def test_every_analogue_meets_every_decoy_by_every_trick_that_applies() -> None:
    assert {c.analogue for c in CASES} == set(ANALOGUES)
    assert {c.decoy for c in CASES} == set(DECOYS)
    assert {c.trick for c in CASES} == set(DECOY_TRICKS)
    # Sorting first needs a decoy id before the analogue's: not so for 1-benzyl-4-piperidone.
    sorted_first = [c for c in CASES if "sorting" in c.trick]
    assert all(c.decoy < c.analogue for c in sorted_first)
    assert len(CASES) == len(ANALOGUES) * len(DECOYS) + len(sorted_first)
    ids = [s.shipment_id for c in CASES for s in (c.plain, c.decoyed)]
    assert len(set(ids)) == len(ids)
    assert decoy_cases(WATCHLIST) == CASES


def test_a_decoy_line_lowers_neither_the_item_record_nor_by_its_record_the_score(
    check: DecoyCheck,
) -> None:
    evaded = [
        f"{e.analogue} + {e.decoy} / {e.trick}: item rate {e.plain_item_rate:.3f} -> "
        f"{e.decoyed_item_rate:.3f}, score {e.decoyed_score:.4f} (without the decoys' record "
        f"{e.unrecorded_score:.4f})"
        for e in check.evaded
    ]
    assert evaded == [], f"{len(evaded)} of {check.cases} decoys evaded:\n" + "\n".join(evaded)
    assert check.held == check.cases == len(CASES)


def test_the_check_is_json(check: DecoyCheck) -> None:
    doc = json.loads(json.dumps(check.to_json()))
    assert doc["cases"] == doc["held"] == len(CASES)
    assert doc["evaded"] == []
