"""Every feature is defined once, whole: a name, a meaning, and a reason in Spanish and English;
and the kernels compute exactly the schema's features, in its order (issue 16)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from features.build import (
    STAGE_ONE_COLUMNS,
    Declarations,
    FeatureReference,
    finish,
    keyed_outcomes,
    stage_one,
)
from features.history import history_feature_names, history_features
from features.schema import FEATURE_NAMES, FEATURES, FeatureSpec
from features.watchlist import load_watchlist
from tests.support import make_shipment

# A typical value (a count, a code, a share, a number of days) and the edges reasons meet.
VALUES = (27.0, 1.0, 0.0)
NO_INSPECTIONS = pl.DataFrame(
    schema={
        "shipment_id": pl.String,
        "reported_at": pl.Datetime("us", "UTC"),
        "positive": pl.Boolean,
    }
)


def definition_problems(spec: FeatureSpec) -> list[str]:
    """What a feature's definition lacks, as readable lines (empty when it is whole)."""
    problems = []
    if not spec.name or not spec.name.isidentifier():
        problems.append(f"{spec.name!r}: no name a column can carry")
    if not spec.meaning.strip():
        problems.append(f"{spec.name!r}: no meaning")
    for value in (*VALUES, math.nan):
        try:
            text = spec.reason_text(value)
        except Exception as error:  # any failure is the finding
            problems.append(f"{spec.name!r}: reason for {value} raises {error!r}")
            continue
        if text is None and math.isnan(value):
            continue  # a null that is no reason: the feature gives none, as intended
        if not _two_texts(text):
            problems.append(f"{spec.name!r}: reason for {value} is not (es, en) text: {text!r}")
    return problems


def _two_texts(text: object) -> bool:
    return (
        isinstance(text, tuple)
        and len(text) == 2
        and all(isinstance(t, str) and t.strip() and "nan" not in t.lower() for t in text)
        and text[0] != text[1]
    )


@pytest.mark.parametrize("spec", FEATURES, ids=FEATURE_NAMES)
def test_each_feature_has_a_name_a_meaning_and_a_reason(spec: FeatureSpec) -> None:
    assert definition_problems(spec) == []


# Codes the kernels derive from validated strings (two letters, HS digits): never extreme.
CODES = {"origin_code", "export_code", "principal_hs_chapter", "principal_hs_heading"}


@pytest.mark.parametrize("spec", [f for f in FEATURES if f.name not in CODES], ids=lambda f: f.name)
def test_a_reason_never_fails_on_an_extreme_value(spec: FeatureSpec) -> None:
    """Values a declaration can push a feature to (a weight of 1e-300 kg, a huge value) still
    give a reason an inspector can read: the text of a RED decision must never raise."""
    for value in (-1e308, -1e6, -1.0, 1e6, 720.0, 1e308, float("inf"), -float("inf")):
        es, en = spec.reason(value)
        assert es.strip(), (spec.name, value)
        assert en.strip(), (spec.name, value)


def test_a_feature_lacking_any_part_is_caught() -> None:
    """The check itself can fail: planted bad definitions are each reported."""
    whole = FEATURES[0]
    planted = {
        "no name": FeatureSpec("", "int32", False, "a meaning", whole.reason),
        "no meaning": FeatureSpec("x", "int32", False, " ", whole.reason),
        "empty Spanish": FeatureSpec("x", "int32", False, "m", lambda v: ("", "text")),
        "one language": FeatureSpec("x", "int32", False, "m", lambda v: ("same", "same")),
        "not text": FeatureSpec("x", "int32", False, "m", lambda v: ("a", None)),  # type: ignore[arg-type]
        "raises": FeatureSpec("x", "int32", False, "m", lambda v: (f"{v:d}", "b")),
        "empty null text": FeatureSpec("x", "int32", False, "m", whole.reason, ("", "")),
    }
    for what, spec in planted.items():
        assert definition_problems(spec), what
    assert definition_problems(whole) == []


def test_null_values_give_a_reason_only_where_the_null_says_something() -> None:
    explained = {spec.name for spec in FEATURES if spec.reason_text(math.nan) is not None}
    # A watched item's null history means nothing was identified: no reason either.
    assert explained == {
        name
        for name in FEATURE_NAMES
        if name.endswith(("_age_days", "_days_since_positive")) and not name.startswith("item_")
    }


def test_the_kernels_compute_exactly_the_schemas_features_in_order() -> None:
    """Stage one, history and stage three together give each schema feature once, none else."""
    shipments = [make_shipment("SHP-1"), make_shipment("SHP-2", origin_country="IN")]
    watchlist = load_watchlist()
    declarations = Declarations.from_shipments(shipments, watchlist)
    basics = stage_one(declarations, watchlist)
    outcomes = keyed_outcomes(basics.keyed.keys_frame(), NO_INSPECTIONS)
    history = history_features(basics.keyed, outcomes, 0.01)
    assert list(basics.columns) == list(STAGE_ONE_COLUMNS)
    assert list(history) == history_feature_names()
    computed = [*basics.columns, *history, "value_per_kg_log_ratio"]  # stage three adds the ratio
    assert sorted(computed) == sorted(FEATURE_NAMES)
    assert len(computed) == len(set(computed))
    block = finish(basics, history, FeatureReference())
    assert block.frame().columns[3:] == list(FEATURE_NAMES)
    computed_columns = {**basics.columns, **history}
    for i, name in enumerate(FEATURE_NAMES):
        if name in computed_columns:
            assert np.array_equal(block.matrix[:, i], computed_columns[name], equal_nan=True), name


def test_history_features_stand_in_the_schema_in_the_history_modules_order() -> None:
    names = set(history_feature_names())
    assert [n for n in FEATURE_NAMES if n in names] == history_feature_names()
