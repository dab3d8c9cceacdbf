"""``centinela evaluate``: figures checked by hand on tiny frames, then the path on a world."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from features.errors import DataError
from scoring.bundle import ModelBundle
from scoring.lanes import Budget
from scoring.registry import Registry
from tests.support import CENTINELA, centinela
from training.evaluate import (
    BUDGET_KEYS,
    MIN_POSITIVES,
    RED_SOURCES,
    SELECTORS,
    Evaluation,
    average_precision,
    budget_metrics,
    budget_size,
    calibration,
    evaluate,
    expected_random_average_precision,
    pattern_recall,
    policy_metrics,
    pr_auc,
    precision_recall_curve,
    red_source,
    rule_scores,
    shift_date,
    tiebreak_keys,
    watchlist_evidence,
    window_shift,
)
from training.evaluation_record import PolicyEvaluation
from training.evaluation_report import PLOTS, REPORT_FILE, markdown, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
EVIDENCE = ("cas", "hs_specific", "name_exact", "name_fuzzy", "hs_broad")


def tiny_frame(n: int = 40, **columns: list[Any]) -> pl.DataFrame:
    """An evaluation frame of ``n`` shipments: model rank = row order; ties reverse row order.

    Ports alternate A (even rows) and B (odd rows); everything else defaults to zero/false.
    """
    base: dict[str, list[Any]] = {
        "shipment_id": [f"s{i:02d}" for i in range(n)],
        "declared_at": [T0 + timedelta(hours=i) for i in range(n)],
        "port_of_entry": ["A" if i % 2 == 0 else "B" for i in range(n)],
        "risk_score": [(n - i) / n for i in range(n)],
        "rule_score": [0] * n,
        **{f"wl_{t}": [0] * n for t in EVIDENCE},
        "tiebreak": [n - 1 - i for i in range(n)],
        "inspected": [False] * n,
        "observed": [False] * n,
        "truth": [False] * n,
    }
    base.update(columns)
    return pl.DataFrame(base).with_columns(
        pl.col("tiebreak").cast(pl.UInt64),
        *(pl.col(c).cast(pl.Int32) for c in ("rule_score", *(f"wl_{t}" for t in EVIDENCE))),
    )


def flags(n: int, on: set[int]) -> list[bool]:
    return [i in on for i in range(n)]


def counts(n: int, values: dict[int, int]) -> list[int]:
    return [values.get(i, 0) for i in range(n)]


# --------------------------------------------------------------------------- metrics by hand


def test_budget_sizes_round_up_and_never_select_from_nothing() -> None:
    assert [budget_size(float(k), 40) for k in BUDGET_KEYS] == [1, 1, 1, 2, 4]
    assert budget_size(0.005, 200) == 1
    assert budget_size(0.01, 250) == 3
    assert budget_size(0.1, 0) == 0


def test_model_precision_recall_and_pr_auc_match_hand_computation() -> None:
    n = 40
    frame = tiny_frame(
        truth=flags(n, {0, 2, 3, 20}),
        inspected=flags(n, {0, 1, 5, 20}),
        observed=flags(n, {0, 20}),
    )
    table = budget_metrics(frame, ("observed", "truth"))
    truth = {k: table[k]["model"]["truth"] for k in BUDGET_KEYS}
    assert (truth["0.005"].selected, truth["0.005"].precision, truth["0.005"].recall) == (
        1,
        1,
        0.25,
    )
    assert (truth["0.05"].selected, truth["0.05"].precision, truth["0.05"].recall) == (2, 0.5, 0.25)
    assert (truth["0.1"].selected, truth["0.1"].precision, truth["0.1"].recall) == (4, 0.75, 0.75)
    assert truth["0.1"].positives_found == 3

    observed = table["0.1"]["model"]["observed"]
    assert (observed.precision, observed.recall) == (0.25, 0.5)
    assert (observed.inspected_selected, observed.precision_inspected) == (2, 0.5)

    auc = pr_auc(frame, ("observed", "truth"))
    assert auc["model"]["truth"] == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 21) / 4)
    assert auc["model"]["observed"] == pytest.approx((1 + 2 / 21) / 2)


def test_random_is_the_analytic_expectation() -> None:
    n = 40
    frame = tiny_frame(
        truth=flags(n, {0, 2, 3, 20}),
        inspected=flags(n, {0, 1, 5, 20}),
        observed=flags(n, {0, 20}),
    )
    table = budget_metrics(frame, ("observed", "truth"))
    truth = table["0.1"]["random"]["truth"]
    assert (truth.selected, truth.precision, truth.recall) == (4, 0.1, 0.1)
    assert truth.positives_found == pytest.approx(0.4)
    observed = table["0.1"]["random"]["observed"]
    assert observed.precision == pytest.approx(0.05)
    assert observed.inspected_selected == pytest.approx(0.4)
    assert observed.precision_inspected == pytest.approx(0.5)


def test_expected_random_average_precision_equals_the_mean_over_all_orderings() -> None:
    for n, positives in ((5, 2), (6, 1), (6, 3), (4, 4)):
        values: list[float] = []
        for where in itertools.combinations(range(n), positives):
            hits = np.zeros(n)
            hits[list(where)] = 1
            ap = average_precision(hits)
            assert ap is not None
            values.append(ap)
        assert expected_random_average_precision(n, positives) == pytest.approx(np.mean(values))
    assert expected_random_average_precision(10, 0) is None


def test_rules_ties_are_broken_by_the_hash_column() -> None:
    n = 40
    frame = tiny_frame(truth=flags(n, {0, 2, 3, 20}), rule_score=counts(n, {5: 2, 20: 2, 30: 2}))
    table = budget_metrics(frame, ("truth",))
    # score 2 first, each tie group in ascending tiebreak (= descending row): 30, 20, 5, 39, ...
    assert table["0.005"]["rules"]["truth"].precision == 0
    assert table["0.05"]["rules"]["truth"].precision == 0.5
    assert (table["0.1"]["rules"]["truth"].precision, table["0.1"]["rules"]["truth"].recall) == (
        0.25,
        0.25,
    )


def test_watchlist_ranks_by_strongest_evidence_first() -> None:
    n = 40
    frame = tiny_frame(
        truth=flags(n, {0, 2, 3, 20}),
        wl_cas=counts(n, {10: 1}),
        wl_hs_specific=counts(n, {3: 1}),
        wl_name_exact=counts(n, {2: 1}),
        wl_hs_broad=counts(n, {39: 3}),
    )
    table = budget_metrics(frame, ("truth",))
    # one CAS line beats anything else, three broad HS lines lose to one name: 10, 3, 2, 39
    assert table["0.005"]["watchlist"]["truth"].precision == 0
    assert table["0.05"]["watchlist"]["truth"].precision == 0.5
    assert table["0.1"]["watchlist"]["truth"].precision == 0.5


def test_per_port_budgets_are_shares_of_the_ports_own_shipments() -> None:
    n = 40
    frame = tiny_frame(truth=flags(n, {0, 2, 3, 20}))
    port_a = budget_metrics(frame.filter(pl.col("port_of_entry") == "A"), ("truth",))
    port_b = budget_metrics(frame.filter(pl.col("port_of_entry") == "B"), ("truth",))
    a, b = port_a["0.1"]["model"]["truth"], port_b["0.1"]["model"]["truth"]
    assert (a.selected, a.precision) == (2, 1.0)
    assert a.recall == pytest.approx(2 / 3)
    assert (b.selected, b.precision, b.recall) == (2, 0.5, 1.0)
    assert port_b["0.005"]["model"]["truth"].precision == 0
    assert port_b["0.1"]["random"]["truth"].precision == pytest.approx(1 / 20)


def test_no_positives_gives_null_figures_with_a_reason_not_a_zero() -> None:
    frame = tiny_frame()
    table = budget_metrics(frame, ("observed", "truth"))
    for selector in SELECTORS:
        m = table["0.02"][selector]["observed"]
        assert (m.precision, m.recall, m.precision_inspected) == (None, None, None), selector
        assert (m.precision_interval, m.recall_interval) == (None, None), selector
        assert m.reason == "no positives"
    assert pr_auc(frame, ("observed",))["model"]["observed"] is None
    assert calibration(frame).brier is None
    doc = table["0.02"]["model"]["observed"].to_json()
    assert (doc["precision"], doc["recall"], doc["precisionInspected"]) == (None, None, None)
    assert doc["reason"] == "no positives"


def test_no_positives_is_told_apart_from_zero_precision_per_port() -> None:
    # Port A (even rows) has a positive the model ranks last; port B (odd rows) has none.
    n = 40
    frame = tiny_frame(truth=flags(n, {38}))
    port_a = budget_metrics(frame.filter(pl.col("port_of_entry") == "A"), ("truth",))
    port_b = budget_metrics(frame.filter(pl.col("port_of_entry") == "B"), ("truth",))
    zero, empty = port_a["0.02"]["model"]["truth"], port_b["0.02"]["model"]["truth"]
    assert (zero.precision, zero.recall, zero.reason) == (0.0, 0.0, None)
    assert zero.precision_interval is not None
    assert zero.precision_interval[0] == 0.0
    assert (empty.precision, empty.recall, empty.reason) == (None, None, "no positives")
    assert zero.to_json()["precision"] == 0.0
    assert "reason" not in zero.to_json()
    assert empty.to_json()["precision"] is None
    assert empty.to_json()["reason"] == "no positives"


def test_calibration_bins_and_brier() -> None:
    n = 4
    frame = tiny_frame(
        n,
        risk_score=[0.05, 0.15, 0.95, 0.5],
        inspected=[True, True, True, False],
        observed=[False, True, True, False],
    )
    result = calibration(frame)
    assert result.brier == pytest.approx((0.05**2 + 0.85**2 + 0.05**2) / 3)
    assert result.brier_base == pytest.approx(2 / 3 * 1 / 3)
    assert result.brier is not None
    assert result.brier_skill == pytest.approx(1 - result.brier / (2 / 9))
    assert (result.inspected, result.positives, result.binning) == (3, 2, "quantile")
    # three inspected shipments: three bins of one, in score order
    assert [(b.lower, b.count, b.positives) for b in result.bins] == [
        (0.05, 1, 0),
        (0.15, 1, 1),
        (0.95, 1, 1),
    ]


def test_quantile_bins_hold_equal_counts_however_the_scores_crowd() -> None:
    # 95 tiny scores and 8 large ones: equal-width bins would put 95 in the first bin
    n = 103
    scores = [1e-20 * (i + 1) for i in range(95)] + [0.3 + 0.05 * i for i in range(8)]
    frame = tiny_frame(
        n, risk_score=scores, inspected=[True] * n, observed=flags(n, {3, 97, 99, 101, 102})
    )
    result = calibration(frame)
    sizes = [b.count for b in result.bins]
    assert len(sizes) == 10
    assert sum(sizes) == n
    assert max(sizes) - min(sizes) <= 1
    assert all(b.lower <= b.upper for b in result.bins)
    assert [b.upper for b in result.bins] == sorted(b.upper for b in result.bins)
    assert result.bins[0].upper < 1e-18  # the crowd of tiny scores spans several bins
    assert sum(b.positives for b in result.bins) == 5
    for b in result.bins:
        assert b.observed_interval is not None
        assert b.observed_interval[0] <= b.observed_rate <= b.observed_interval[1]  # type: ignore[operator]
    # a model that knows nothing scores at or below the base rate's Brier
    flat = calibration(frame.with_columns(risk_score=pl.lit(5 / n)))
    assert flat.brier_skill == pytest.approx(0.0, abs=1e-12)


def test_brier_skill_has_an_interval_that_narrows_with_more_positives() -> None:
    rng = np.random.default_rng(4)

    def skill_of(n: int) -> tuple[float | None, tuple[float, float] | None]:
        scores = rng.uniform(0.0, 0.2, n)
        frame = tiny_frame(
            n,
            risk_score=scores.tolist(),
            inspected=[True] * n,
            observed=(rng.random(n) < scores).tolist(),
        )
        result = calibration(frame)
        return result.brier_skill, result.brier_skill_interval

    few, few_interval = skill_of(200)
    many, many_interval = skill_of(20_000)
    for value, interval in ((few, few_interval), (many, many_interval)):
        assert value is not None
        assert interval is not None
        assert interval[0] <= value <= interval[1]
    assert few_interval is not None
    assert many_interval is not None
    assert many_interval[1] - many_interval[0] < (few_interval[1] - few_interval[0]) / 3
    # the scores are the true probabilities: the skill is above zero, surely so with many
    assert many_interval[0] > 0
    # no positive, or nothing inspected: no skill and no interval
    none = calibration(
        tiny_frame(3, risk_score=[0.1] * 3, inspected=[True] * 3, observed=[False] * 3)
    )
    assert (none.brier_skill, none.brier_skill_interval) == (None, None)


def test_rule_score_counts_chemistry_origin_and_transshipment() -> None:
    shipments = pl.DataFrame(
        {
            "shipment_id": ["a", "b", "c"],
            "origin_country": ["CN", "DE", "IN"],
            "transshipment_ports": [["KRPUS"], [], []],
        }
    )
    goods = pl.DataFrame(
        {"shipment_id": ["a", "a", "b", "c"], "hs_code": ["293339", "380891", "850440", "847989"]}
    )
    scores = dict(rule_scores(shipments, goods).iter_rows())
    assert scores == {"a": 3, "b": 0, "c": 1}


def test_watchlist_evidence_counts_each_line_once_at_its_strongest() -> None:
    hits = pl.DataFrame(
        {
            "shipment_id": ["a", "a", "a", "a", "b", "b"],
            "line_no": [0, 0, 0, 1, 0, 1],
            "match_type": [
                "name_exact",
                "cas",
                "hs_specific",
                "name_fuzzy",
                "hs_broad",
                "hs_broad",
            ],
        },
        schema_overrides={"line_no": pl.Int32},
    )
    rows = {r["shipment_id"]: r for r in watchlist_evidence(hits).iter_rows(named=True)}
    assert (rows["a"]["wl_cas"], rows["a"]["wl_name_fuzzy"], rows["a"]["wl_hs_specific"]) == (
        1,
        1,
        0,
    )
    assert rows["b"]["wl_hs_broad"] == 2


def test_tiebreak_is_a_stable_hash_of_the_id_alone() -> None:
    first = tiebreak_keys(["s1", "s2", "s3"]).to_list()
    again = tiebreak_keys(["s3", "s1"]).to_list()
    assert again == [first[2], first[0]]
    assert len(set(first)) == 3


def test_shift_date_is_a_known_shift_inside_the_window_or_none(tmp_path: Path) -> None:
    start, end = datetime(2024, 9, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"tactic_shifts": [{"name": "new origin", "date": "2025-01-15"}]}),
        encoding="utf-8",
    )
    assert shift_date(tmp_path, start, end) == (
        datetime(2025, 1, 15, tzinfo=UTC),
        "manifest: new origin",
    )
    # the manifest names its world's shifts: none inside is none, never a made-up midpoint
    later = datetime(2025, 6, 1, tzinfo=UTC)
    assert shift_date(tmp_path, datetime(2025, 2, 1, tzinfo=UTC), later) is None
    # data without a list of shifts: the real 4-piperidone scheduling, when inside
    manifest.write_text(json.dumps({"parameters": {"months": 24}}), encoding="utf-8")
    found = shift_date(tmp_path, start, end)
    assert found is not None
    assert found[0] == datetime(2024, 12, 3, tzinfo=UTC)
    assert "4-piperidone" in found[1]
    assert shift_date(tmp_path, end, later) is None


def policy_frame(
    n: int = 40, lanes: dict[int, str] | None = None, **columns: list[Any]
) -> pl.DataFrame:
    """:func:`tiny_frame` with the policy's columns; ``lanes`` maps row -> lane or
    ``red:<source>``, every other row is GREEN."""
    lane = ["green"] * n
    red_by: list[str | None] = [None] * n
    for row, value in (lanes or {}).items():
        lane[row], _, source = value.partition(":")
        red_by[row] = source or None
    return tiny_frame(n, **columns).with_columns(
        lane=pl.Series(lane, dtype=pl.String),
        random_selection=pl.Series([s == "exploration" for s in red_by]),
        red_by=pl.Series(red_by, dtype=pl.String),
    )


def test_a_red_counts_for_a_red_rule_then_exploration_then_the_model() -> None:
    red_rules = {"table-i-precursor"}
    assert red_source("red", False, ("declared-cas-invalid", "table-i-precursor"), red_rules) == (
        "rules"
    )
    # a YELLOW rule fired, but the RED came from the score
    assert red_source("red", False, ("declared-cas-invalid",), red_rules) == "model"
    assert red_source("red", True, (), red_rules) == "exploration"
    assert red_source("red", False, (), red_rules) == "model"
    assert red_source("yellow", False, ("table-i-precursor",), red_rules) is None
    assert red_source("green", True, (), red_rules) is None


def test_policy_metrics_match_hand_computation() -> None:
    # Model rank = row order; port A holds the even rows, port B the odd ones (20 each).
    n = 40
    frame = policy_frame(
        n,
        # A: rows 0 (model), 30 (rule), 36 (explore) RED, row 2 YELLOW; B: row 9 (rule) RED.
        lanes={0: "red:model", 30: "red:rules", 36: "red:exploration", 2: "yellow", 9: "red:rules"},
        truth=flags(n, {0, 2, 4, 30, 9, 1}),
        inspected=flags(n, {0, 30, 9, 11}),
        observed=flags(n, {0, 9}),
    )
    budgets = {"A": Budget(red=0.1, yellow=0.05), "default": Budget(red=0.05, yellow=0.05)}
    port_a = policy_metrics(
        frame.filter(pl.col("port_of_entry") == "A"), ("observed", "truth"), budgets
    )
    assert (port_a.shipments, port_a.capacity, port_a.red_budget) == (20, 2, 0.1)
    assert port_a.lanes == {"red": 3, "yellow": 1, "green": 16}
    assert port_a.red_by == {"rules": 1, "exploration": 1, "model": 1}
    assert port_a.red_share == pytest.approx(3 / 20)
    assert port_a.budget is not None
    assert port_a.budget["red"] == 0.1
    # policy RED: rows 0, 30, 36; truth positives in A: 0, 2, 4, 30
    red = port_a.red["truth"]
    assert (red.selected, red.positives_found, red.positives) == (3, 2, 4)
    assert red.precision == pytest.approx(2 / 3)
    assert red.recall == 0.5
    # model alone, same count: rows 0, 2, 4 (all positive); at capacity: rows 0, 2
    assert (port_a.model_red["truth"].precision, port_a.model_red["truth"].recall) == (1.0, 0.75)
    assert port_a.model_capacity["truth"].selected == 2
    assert port_a.model_capacity["truth"].recall == 0.5
    # selected = RED + YELLOW: rows 0, 2, 30, 36 against model rows 0, 2, 4, 6
    assert port_a.selected["truth"].positives_found == 3
    assert port_a.model_selected["truth"].positives_found == 3
    observed = port_a.red["observed"]
    assert (observed.positives_found, observed.inspected_selected) == (1, 2)
    assert observed.precision_inspected == 0.5

    overall = policy_metrics(frame, ("observed", "truth"), budgets)
    # B falls back to default: capacity ceil(0.05 * 20) = 1; it sent one RED, row 9
    assert (overall.shipments, overall.capacity, overall.lanes["red"]) == (40, 3, 4)
    assert overall.red_by == {"rules": 2, "exploration": 1, "model": 1}
    assert overall.red_budget == pytest.approx((0.1 * 20 + 0.05 * 20) / 40)
    assert overall.budget is None
    # the model alone picks inside each port: A rows 0, 2, 4 and B row 1 (not a global top 4)
    model = overall.model_red["truth"]
    assert (model.selected, model.positives_found, model.positives) == (4, 4, 6)
    assert overall.red["truth"].positives_found == 3  # rows 0, 30, 9
    doc = overall.to_json()
    json.dumps(doc, allow_nan=False)
    assert doc["redShare"] == 0.1
    assert doc["modelAlone"]["red"]["truth"]["recall"] == pytest.approx(4 / 6, abs=1e-6)


def test_policy_metrics_with_no_red_and_no_positives() -> None:
    frame = policy_frame(10)
    result = policy_metrics(frame, ("observed",), {"default": Budget(red=0.0)})
    assert (result.capacity, result.lanes["red"], result.red_share) == (0, 0, 0.0)
    red = result.red["observed"]
    assert (red.selected, red.precision, red.recall) == (0, None, None)
    assert result.model_red["observed"].selected == 0


# --------------------------------------------------------------------------- the whole path


@pytest.fixture(scope="module")
def bundle(registry: Path) -> ModelBundle:
    return Registry(registry).load()


@pytest.fixture(scope="module")
def evaluated(
    world: Path, bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Evaluation, Path]:
    report = tmp_path_factory.mktemp("report")
    evaluation = evaluate(world, bundle)
    write_report(evaluation, report)
    return evaluation, report


def test_json_has_exactly_the_documented_shape(evaluated: tuple[Evaluation, Path]) -> None:
    doc = evaluated[0].to_json()
    json.dumps(doc, allow_nan=False)
    assert list(doc) == [
        "model",
        "window",
        "budgets",
        "perPort",
        "policy",
        "prAuc",
        "calibration",
        "shift",
        "patterns",
        "warnings",
    ]
    assert doc["model"]["version"] == "v0001"
    assert list(doc["budgets"]) == list(BUDGET_KEYS)
    for by_selector in doc["budgets"].values():
        assert list(by_selector) == list(SELECTORS)
        for by_source in by_selector.values():
            assert list(by_source) == ["observed", "truth"]
            assert {"precision", "recall", "selected", "positivesFound"} <= set(by_source["truth"])
            assert {"precisionInterval", "recallInterval"} <= set(by_source["truth"])
            assert {"precisionInspected", "inspectedSelected"} <= set(by_source["observed"])
            assert "precisionInspectedInterval" in by_source["observed"]
    assert doc["perPort"]
    for port, table in doc["perPort"].items():
        assert port.startswith("MX")
        assert list(table) == list(BUDGET_KEYS)
        assert list(table["0.01"]) == list(SELECTORS)
    assert list(doc["prAuc"]) == list(SELECTORS)
    assert len(doc["calibration"]["bins"]) == 10
    assert {"brier", "brierBase", "brierSkill", "bins"} <= set(doc["calibration"])
    assert doc["calibration"]["binning"] == "quantile"
    assert {"inWindow", "at", "source", "shifts", "before", "after", "recallLoss"} <= set(
        doc["shift"]
    )
    if doc["shift"]["inWindow"]:
        assert list(doc["shift"]["after"]["budgets"]) == list(BUDGET_KEYS)
        assert list(doc["shift"]["recallLoss"]) == list(BUDGET_KEYS)
    else:
        assert doc["shift"]["before"] is None
    window = doc["window"]
    assert window["minPositives"] == MIN_POSITIVES
    assert window["fewPositives"] == {
        src: n < MIN_POSITIVES for src, n in window["positives"].items()
    }
    # the simulated world names its illicit patterns: recall of each against ground truth
    assert doc["patterns"]
    for by_budget in doc["patterns"].values():
        assert list(by_budget) == list(BUDGET_KEYS)
        assert {"positives", "found", "recall", "interval"} <= set(by_budget["0.02"]["model"])


def _check_selection(m: dict[str, Any], selected: int, positives: int) -> None:
    """A metrics object of the JSON: counts consistent, ratios recomputable from them."""
    assert m["selected"] == selected
    assert m["positives"] == positives
    assert 0 <= m["positivesFound"] <= min(selected, positives)
    for key, denominator in (("precision", selected and positives), ("recall", positives)):
        if denominator:
            assert 0 <= m[key] <= 1
            assert m[key] == pytest.approx(
                m["positivesFound"] / (selected if key == "precision" else positives), abs=1e-6
            )
            lower, upper = m[f"{key}Interval"]
            assert lower - 1e-6 <= m[key] <= upper + 1e-6
        else:
            assert m[key] is None
    if positives == 0:
        assert m["reason"] == "no positives"


def test_policy_at_capacity_figures_are_consistent(evaluated: tuple[Evaluation, Path]) -> None:
    evaluation = evaluated[0]
    doc = evaluation.to_json()["policy"]
    window = evaluation.window
    assert doc["redSources"] == list(RED_SOURCES)
    assert list(doc["perPort"]) == list(window["ports"])
    assert doc["rulesVersion"]
    assert doc["watchlistVersion"] == evaluation.model["evaluatedWithWatchlist"]
    for port, m in [*doc["perPort"].items(), ("overall", doc["overall"])]:
        n = m["shipments"]
        assert n == (window["shipments"] if port == "overall" else window["ports"][port])
        lanes = m["lanes"]
        assert sum(lanes.values()) == n, port
        assert sum(m["redBy"].values()) == lanes["red"], port
        assert m["redShare"] == pytest.approx(lanes["red"] / n, abs=1e-6)
        assert m["selectedShare"] == pytest.approx((lanes["red"] + lanes["yellow"]) / n, abs=1e-6)
        for src in evaluation.label_sources:
            positives = window["positives"][src] if port == "overall" else None
            red = m["red"][src]
            positives = red["positives"] if positives is None else positives
            _check_selection(red, lanes["red"], positives)
            _check_selection(m["selected"][src], lanes["red"] + lanes["yellow"], positives)
            _check_selection(m["modelAlone"]["red"][src], lanes["red"], positives)
            _check_selection(
                m["modelAlone"]["selected"][src], lanes["red"] + lanes["yellow"], positives
            )
            _check_selection(m["modelAlone"]["capacity"][src], m["capacity"], positives)
        if port != "overall":
            assert m["capacity"] == budget_size(m["redBudget"], n)
            assert m["budget"]["red"] == m["redBudget"]
    ports = doc["perPort"].values()
    overall = doc["overall"]
    assert overall["capacity"] == sum(m["capacity"] for m in ports)
    for lane in ("red", "yellow", "green"):
        assert overall["lanes"][lane] == sum(m["lanes"][lane] for m in ports)
    for source in RED_SOURCES:
        assert overall["redBy"][source] == sum(m["redBy"][source] for m in ports)
    for src in evaluation.label_sources:
        for path in (("red",), ("modelAlone", "red"), ("modelAlone", "capacity")):
            found = [_dig(m, path)[src]["positivesFound"] for m in ports]
            assert _dig(overall, path)[src]["positivesFound"] == sum(found), path
    # the frame carries the same decisions, and every RED names its source
    frame = evaluation.frame
    assert frame.filter(pl.col("lane") == "red").height == overall["lanes"]["red"]
    assert frame.filter(pl.col("red_by").is_not_null()).height == overall["lanes"]["red"]
    assert frame.filter(pl.col("random_selection")).height >= overall["redBy"]["exploration"]
    # the default budget sends somebody RED in a 6,000-shipment world, and rules fire on it
    assert overall["lanes"]["red"] > 0
    assert overall["redBy"]["rules"] > 0


def _dig(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        doc = doc[key]
    return doc


def test_only_the_window_the_model_never_saw_is_evaluated(
    evaluated: tuple[Evaluation, Path], world: Path, bundle: ModelBundle
) -> None:
    evaluation = evaluated[0]
    valid_end = datetime.fromisoformat(bundle.meta.windows["valid"][1])
    assert evaluation.frame["declared_at"].min() > valid_end  # type: ignore[operator]
    unseen = pl.read_parquet(world / "shipments.parquet").filter(pl.col("declared_at") > valid_end)
    assert evaluation.window["shipments"] == unseen.height == evaluation.frame.height
    assert sum(evaluation.window["ports"].values()) == unseen.height
    shift = evaluation.shift
    if shift.before is not None and shift.after is not None:
        assert shift.before.shipments + shift.after.shipments == unseen.height


def test_report_files_are_written(evaluated: tuple[Evaluation, Path]) -> None:
    evaluation, report = evaluated
    text = (report / REPORT_FILE).read_text(encoding="utf-8")
    for selector in SELECTORS:
        assert f"**{selector}**" in text
    assert "expected values computed analytically" in text
    assert "never inspected count as negative" in text
    policy = text[text.index("## The policy at each port's capacity") :]
    overall = evaluation.policy.overall
    for src in evaluation.label_sources:
        assert f"### {src.capitalize()} labels, RED lane" in policy
        assert f"### {src.capitalize()} labels, RED and YELLOW (selected)" in policy
    assert "| port | shipments | positives | RED budget | capacity | RED | RED share |" in policy
    for port in evaluation.policy.per_port:
        assert f"\n| {port} | " in policy
    all_ports = next(line for line in policy.splitlines() if line.startswith("| **all ports**"))
    assert f" {overall.lanes['red']:,} " in all_ports
    assert " / ".join(f"{overall.red_by[s]:,}" for s in RED_SOURCES) in all_ports
    for name in PLOTS.values():
        assert (report / name).read_bytes().startswith(PNG_SIGNATURE), name
        assert f"]({name})" in text
    budgets = text[text.index("## Precision and recall at each budget") : text.index("## PR-AUC")]
    model = evaluation.budgets["0.01"]["model"]["truth"]
    assert model.precision_interval is not None
    assert f"[{model.precision_interval[0] * 100:.1f}, " in budgets
    assert "## Recall by illicit pattern (truth labels)" in text
    shift = text[text.index("## Before and after a tactic shift") :]
    if evaluation.shift.in_window:
        assert "Recall lost across the shift" in shift
    else:
        assert "No tactic shift falls inside the evaluated window" in shift
    assert json.loads((report / "evaluation.json").read_text(encoding="utf-8")) == json.loads(
        json.dumps(evaluation.to_json())
    )


def test_data_older_than_the_models_test_window_is_refused(
    world: Path, bundle: ModelBundle
) -> None:
    future = dataclasses.replace(
        bundle.meta,
        windows={
            **bundle.meta.windows,
            "valid": ("2099-01-01T00:00:00+00:00", "2099-02-01T00:00:00+00:00"),
        },
    )
    with pytest.raises(DataError, match=r"no shipments declared after 2099-02-01.*newer than"):
        evaluate(world, dataclasses.replace(bundle, meta=future))
    unknown = dataclasses.replace(bundle.meta, windows={})
    with pytest.raises(DataError, match="records no validation window"):
        evaluate(world, dataclasses.replace(bundle, meta=unknown))


def test_truth_is_omitted_without_a_truth_table(
    world: Path, bundle: ModelBundle, tmp_path: Path
) -> None:
    for name in ("shipments", "goods", "inspections"):
        shutil.copy(world / f"{name}.parquet", tmp_path / f"{name}.parquet")
    evaluation = evaluate(tmp_path, bundle)
    doc = evaluation.to_json()
    assert evaluation.label_sources == ("observed",)
    assert list(doc["budgets"]["0.01"]["model"]) == ["observed"]
    assert list(doc["prAuc"]["rules"]) == ["observed"]
    assert "truth" not in doc["window"]["positives"]
    assert "truth" not in evaluation.frame.columns


def test_cli_json(world: Path, registry: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [CENTINELA, "evaluate", "--data", str(world), "--registry", str(registry), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc["budgets"]) == ["0.005", "0.01", "0.02", "0.05", "0.1"]
    assert doc["budgets"]["0.05"]["random"]["truth"]["recall"] == pytest.approx(0.05, abs=0.01)


def test_cli_config_sets_the_policys_lane_budgets(
    world: Path, registry: Path, tmp_path: Path, evaluated: tuple[Evaluation, Path]
) -> None:
    config = tmp_path / "centinela.yaml"
    config.write_text(  # the server's own file: its transport settings are read, not refused
        "grpc_port: 50999\nmax_in_flight: 8\n"
        "lane_budgets:\n  default: {red: 0.06, yellow: 0.04}\n  MXZLO: {red: 0.08, yellow: 0.04}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            CENTINELA,
            "evaluate",
            "--data",
            str(world),
            "--registry",
            str(registry),
            "--config",
            str(config),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)["policy"]
    assert policy["perPort"], "no ports"
    for port, m in policy["perPort"].items():
        expected = 0.08 if port == "MXZLO" else 0.06
        assert m["redBudget"] == expected, port
        assert m["capacity"] == budget_size(expected, m["shipments"])
    # three to four times the default RED budget: the policy opens more than it did by default
    default = evaluated[0].policy.overall
    assert policy["overall"]["lanes"]["red"] > default.lanes["red"]
    assert policy["overall"]["capacity"] > default.capacity

    config.write_text("lane_budget:\n  default: {red: 0.06}\n", encoding="utf-8")
    misspelt = centinela(
        "evaluate", "--data", str(world), "--registry", str(registry), "--config", str(config)
    )
    assert misspelt.returncode != 0
    assert "lane_budget" in misspelt.stderr


def test_cli_reports_a_missing_model_version(world: Path, registry: Path) -> None:
    result = subprocess.run(
        [
            CENTINELA,
            "evaluate",
            "--data",
            str(world),
            "--registry",
            str(registry),
            "--model",
            "v0042",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 4
    assert "model version 'v0042' not in registry" in result.stderr
    assert result.stdout == ""


def test_pr_curve_corners_give_the_average_precision() -> None:
    hits = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=np.float64)
    precision, recall = precision_recall_curve(hits)
    assert precision.tolist() == [1.0, 2 / 3, 3 / 4, 4 / 7]
    assert recall.tolist() == [0.25, 0.5, 0.75, 1.0]
    area = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    assert area == pytest.approx(average_precision(hits))


# --------------------------------------------------------------------------- honest reports


def test_intervals_hold_their_figure_and_narrow_with_more_data() -> None:
    def model_at(scale: int) -> Any:
        # each row of a 40-row frame repeated ``scale`` times, in the model's order
        n = 40 * scale
        positives = {i for i in range(n) if i // scale in {0, 2, 3, 20, 33}}
        return budget_metrics(tiny_frame(n, truth=flags(n, positives)), ("truth",))

    small, large = model_at(1), model_at(10)
    for table in (small, large):
        for key in BUDGET_KEYS:
            for selector in SELECTORS:
                m = table[key][selector]["truth"]
                for value, interval in (
                    (m.precision, m.precision_interval),
                    (m.recall, m.recall_interval),
                ):
                    assert value is not None, (key, selector)
                    assert interval is not None, (key, selector)
                    assert 0 <= interval[0] <= value <= interval[1] <= 1, (key, selector)
    for key in ("0.05", "0.1"):
        a, b = small[key]["model"]["truth"], large[key]["model"]["truth"]
        assert a.precision == pytest.approx(b.precision)  # same rates, ten times the shipments
        assert _width(b.precision_interval) < 0.6 * _width(a.precision_interval), key
        assert _width(b.recall_interval) < 0.6 * _width(a.recall_interval), key
    # a figure at 100% of few shipments is not certain: its interval reaches well below
    first = small["0.005"]["model"]["truth"]
    assert first.precision == 1.0
    assert first.precision_interval is not None
    assert first.precision_interval[0] < 0.5
    doc = first.to_json()
    assert doc["precisionInterval"][1] == 1.0
    assert len(doc["recallInterval"]) == 2


def _width(interval: tuple[float, float] | None) -> float:
    assert interval is not None
    return interval[1] - interval[0]


def tiny_evaluation(frame: pl.DataFrame, data_dir: Path) -> Evaluation:
    """An :class:`Evaluation` of a hand-made frame, assembled as :func:`evaluate` does."""
    sources: tuple[Any, ...] = ("observed", "truth")
    frame = policy_frame(frame.height, lanes={0: "red:model"}).with_columns(
        frame.select(pl.exclude("lane", "random_selection", "red_by"))
    )
    budgets = {"default": Budget(red=0.05, yellow=0.05)}
    ports = sorted(frame["port_of_entry"].unique().to_list())
    by_port = {p: frame.filter(pl.col("port_of_entry") == p) for p in ports}
    positives = {src: int(frame[src].sum()) for src in sources}
    return Evaluation(
        model={"version": "v0001", "watchlistVersion": "w", "evaluatedWithWatchlist": "w"},
        window={
            "after": T0.isoformat(),
            "start": T0.isoformat(),
            "end": T0.isoformat(),
            "shipments": frame.height,
            "inspected": int(frame["inspected"].sum()),
            "positives": positives,
            "ports": {p: part.height for p, part in by_port.items()},
        },
        label_sources=sources,
        budgets=budget_metrics(frame, sources),
        per_port={p: budget_metrics(part, sources) for p, part in by_port.items()},
        policy=PolicyEvaluation(
            rules_version="r",
            watchlist_version="w",
            exploration_seed=1,
            overall=policy_metrics(frame, sources, budgets),
            per_port={p: policy_metrics(part, sources, budgets) for p, part in by_port.items()},
        ),
        pr_auc=pr_auc(frame, sources),
        calibration=calibration(frame),
        shift=window_shift(data_dir, frame, sources),
        patterns=pattern_recall(frame),
        frame=frame,
    )


def test_few_positives_warn_and_give_no_ratio_headline(tmp_path: Path) -> None:
    n = 400
    few = tiny_frame(n, truth=flags(n, {0, 1, 5, 60}), observed=flags(n, {0, 2}))
    evaluation = tiny_evaluation(few, tmp_path)
    assert MIN_POSITIVES > 4
    assert evaluation.few_positives("truth")
    assert evaluation.few_positives("observed")
    text = markdown(evaluation)
    summary = text[text.index("## Summary") : text.index("## How shipments")]
    assert "**Warning:** only 4 truth positives in the evaluated window" in summary
    assert "**Warning:** only 2 observed positives" in summary
    assert "×" not in summary
    assert "found 2 of 4 positives in 2 selected" in summary  # the 0.5% budget: rows 0 and 1
    auc = text[text.index("## PR-AUC") : text.index("## Per port")]
    assert "(unreliable)" in auc
    doc = evaluation.to_json()
    assert any("only 4 truth positives" in w for w in doc["warnings"])

    # the same frame with enough positives: a ratio headline and no warning about them
    enough = tiny_frame(n, truth=flags(n, set(range(0, 200, 5))), observed=flags(n, {0, 2}))
    plenty = tiny_evaluation(enough, tmp_path)
    assert not plenty.few_positives("truth")
    text = markdown(plenty)
    summary = text[text.index("With **truth** labels") : text.index("## How shipments")]
    assert "×" in summary
    assert "only 40 truth positives" not in text


def test_pattern_recall_matches_a_hand_count() -> None:
    n = 40
    truth = {0, 2, 3, 20, 30, 39}
    pattern: list[str | None] = [None] * n
    for row, name in {0: "press", 2: "press", 30: "press", 3: "split", 20: "split"}.items():
        pattern[row] = name
    pattern[39] = "designer"
    frame = tiny_frame(n, truth=flags(n, truth)).with_columns(
        pattern=pl.Series(pattern, dtype=pl.String)
    )
    table = pattern_recall(frame)
    assert table is not None
    assert sorted(table) == ["designer", "press", "split"]
    # the model opens rows 0..k-1: k = 1, 1, 1, 2, 4 at the five budgets
    press = [table["press"][k]["model"] for k in BUDGET_KEYS]
    assert [(m.found, m.positives) for m in press] == [(1, 3), (1, 3), (1, 3), (1, 3), (2, 3)]
    assert press[-1].recall == pytest.approx(2 / 3)
    split = table["split"]["0.1"]["model"]
    assert (split.found, split.recall) == (1, 0.5)
    designer = table["designer"]["0.1"]["model"]
    assert (designer.found, designer.recall) == (0, 0.0)
    assert designer.interval is not None
    assert designer.interval[0] == 0.0
    assert table["press"]["0.1"]["random"].recall == pytest.approx(0.1)
    assert pattern_recall(frame.drop("pattern")) is None


def test_the_pattern_section_names_what_the_model_misses(tmp_path: Path) -> None:
    n = 400
    frame = tiny_frame(n, truth=flags(n, {0, 1, 399})).with_columns(
        pattern=pl.Series(["press", "press", *([None] * (n - 3)), "designer"], dtype=pl.String)
    )
    text = markdown(tiny_evaluation(frame, tmp_path))
    section = text[text.index("## Recall by illicit pattern") : text.index("## Before and")]
    assert "| press | 2 | 100.0% [" in section
    assert "| designer | 1 | 0.0% [0.0, " in section
    assert "Patterns the model finds none of at 10%: **designer**." in section
    without = markdown(tiny_evaluation(frame.drop("pattern"), tmp_path))
    assert "the data names no illicit patterns" in without


def _manifest(directory: Path, *dates: str) -> None:
    shifts = [{"name": f"shift {i}", "date": d} for i, d in enumerate(dates)]
    (directory / "manifest.json").write_text(
        json.dumps({"tactic_shifts": shifts}), encoding="utf-8"
    )


def test_the_shift_section_says_none_when_no_shift_is_in_the_window(tmp_path: Path) -> None:
    n = 400  # hourly from 2025-01-01: the window ends on 2025-01-17
    frame = tiny_frame(n, truth=flags(n, set(range(0, n, 9))))
    _manifest(tmp_path, "2024-03-01", "2024-12-03")
    evaluation = tiny_evaluation(frame, tmp_path)
    shift = evaluation.shift
    assert not shift.in_window
    assert (shift.at, shift.before, shift.after, shift.recall_loss) == (None, None, None, None)
    assert [s["inWindow"] for s in shift.shifts] == [False, False]
    assert "2024-12-03" in shift.source
    doc = evaluation.to_json()["shift"]
    assert (doc["inWindow"], doc["at"], doc["before"]) == (False, None, None)
    text = markdown(evaluation)
    section = text[text.index("## Before and after") :]
    assert "**No tactic shift falls inside the evaluated window**" in section
    assert "| before |" not in section
    assert "loss" not in section
    assert any("no tactic shift" in w for w in evaluation.warnings)


def test_the_loss_across_a_shift_inside_the_window_has_an_interval(tmp_path: Path) -> None:
    n = 400
    # the model's top rows hold every positive before the shift (hour 200), none after
    positives = set(range(0, 200, 10)) | set(range(390, 400))
    frame = tiny_frame(n, truth=flags(n, positives))
    _manifest(tmp_path, "2024-06-01", (T0 + timedelta(hours=200)).isoformat())
    evaluation = tiny_evaluation(frame, tmp_path)
    shift = evaluation.shift
    assert shift.in_window
    assert shift.at == T0 + timedelta(hours=200)
    assert shift.before is not None
    assert shift.after is not None
    assert (shift.before.shipments, shift.after.shipments) == (200, 200)
    assert shift.recall_loss is not None
    loss = shift.recall_loss["0.1"]["model"]["truth"]
    # before: top 20 of rows 0..199 hold 2 of 20 positives; after: top 20 of 200..399 none of 10
    assert (loss.before, loss.after) == (0.1, 0.0)
    assert loss.loss == pytest.approx(0.1)
    assert loss.interval is not None
    assert loss.interval[0] <= 0.1 <= loss.interval[1]
    text = markdown(evaluation)
    assert "Recall lost across the shift" in text
    assert "| 10% | 10.0% → 0.0% | +10.0 pts [" in text
