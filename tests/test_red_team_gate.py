"""The promotion gate's Table I check (issue 17): :func:`training.red_team.table_i_recall` runs
the red team's cases through a bundle, watchlist and rules the way bulk scoring does, and must
report every case RED, or name each one that is not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from features.errors import DataError
from features.watchlist import Watchlist, load_watchlist
from scoring.bundle import ModelBundle
from scoring.registry import Registry
from scoring.rules import RuleSet, load_rules
from scoring.scorer import Scorer
from scoring.settings import CoreSettings
from training.red_team import IDENTITY_RULES, TableIRecall, table_i_cases, table_i_recall

WATCHLIST = load_watchlist(None)
CASES = table_i_cases(WATCHLIST)


@pytest.fixture(scope="module")
def bundle(registry: Path) -> ModelBundle:
    return Registry(registry).load()


def _scorer(bundle: ModelBundle, watchlist: Watchlist, rules: RuleSet) -> Scorer:
    return Scorer.create(bundle, watchlist, rules, CoreSettings())


@pytest.fixture(scope="module")
def recall(bundle: ModelBundle) -> TableIRecall:
    return table_i_recall(_scorer(bundle, WATCHLIST, load_rules(None, WATCHLIST)), CASES)


def test_every_case_comes_back_red_from_an_identity_rule(recall: TableIRecall) -> None:
    assert recall.cases == len(CASES) >= 150
    assert recall.misses == ()
    assert recall.all_red
    assert recall.red == recall.identity_red == recall.cases
    assert 0 <= recall.model_red <= recall.cases


def test_the_result_is_json_and_the_same_on_every_run(
    bundle: ModelBundle, recall: TableIRecall
) -> None:
    doc = json.loads(json.dumps(recall.to_json()))
    assert doc["cases"] == len(CASES)
    assert doc["red"] == doc["identityRed"] == len(CASES)
    assert doc["misses"] == []
    assert doc["modelRedShare"] == 0.02
    again = table_i_recall(_scorer(bundle, WATCHLIST, load_rules(None, WATCHLIST)), CASES)
    assert again == recall


def test_without_the_identity_rules_the_misses_are_named_by_entry_and_trick(
    bundle: ModelBundle,
) -> None:
    rules = load_rules(None, WATCHLIST)
    kept = tuple(r for r in rules.rules if r.id not in IDENTITY_RULES)
    assert len(kept) < len(rules.rules)
    weakened = RuleSet(f"{rules.version}-no-identity", kept, rules.source)
    recall = table_i_recall(_scorer(bundle, WATCHLIST, weakened), CASES)
    assert not recall.all_red
    assert recall.identity_red == 0
    assert recall.red == recall.cases - len(recall.misses)
    by_id = {c.shipment.shipment_id: c for c in CASES}
    for miss in recall.misses:
        case = by_id[miss.shipment_id]
        assert (miss.entry_id, miss.field, miss.trick) == (case.entry_id, case.field, case.trick)
        assert miss.lane in ("green", "yellow")
    assert {m.entry_id for m in recall.misses} == {c.entry_id for c in CASES}
    assert {m.field for m in recall.misses} == {"cas", "name", "hs"}
    listed = recall.to_json()["misses"]
    assert len(listed) == len(recall.misses)
    assert set(listed[0]) == {"entryId", "field", "trick", "lane", "shipmentId"}


def _with_reference(bundle: ModelBundle, value: float) -> ModelBundle:
    """``bundle`` whose reference scores are all ``value``, at every port."""
    meta = dataclasses.replace(bundle.meta, score_quantiles={"default": [value] * 1001})
    return dataclasses.replace(bundle, meta=meta)


def test_the_model_only_figure_counts_scores_at_the_reference_quantile(
    bundle: ModelBundle,
) -> None:
    rules = load_rules(None, WATCHLIST)
    cases = CASES[:40]
    low = table_i_recall(_scorer(_with_reference(bundle, 0.0), WATCHLIST, rules), cases)
    high = table_i_recall(_scorer(_with_reference(bundle, 1.5), WATCHLIST, rules), cases)
    assert (low.model_red, high.model_red) == (len(cases), 0)
    # The identity rules do not read the model.
    assert low.all_red
    assert high.all_red


def test_no_cases_and_repeated_ids_are_refused(bundle: ModelBundle) -> None:
    scorer = _scorer(bundle, WATCHLIST, load_rules(None, WATCHLIST))
    with pytest.raises(DataError, match="no red-team cases"):
        table_i_recall(scorer, [])
    with pytest.raises(DataError, match=f"repeat shipment ids: {CASES[0].shipment.shipment_id}"):
        table_i_recall(scorer, [CASES[0], CASES[0]])
