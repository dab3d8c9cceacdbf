"""Every feature can be explained in Spanish and English, in neutral words."""

from __future__ import annotations

import math

import pytest

from features.schema import FEATURE_NAMES
from scoring.reasons import model_reasons, watchlist_reason

ACCUSING = ("suspicious", "sospechos", "criminal", "smuggl", "contrabandista", "guilty", "culpable")


@pytest.mark.parametrize("name", FEATURE_NAMES)
@pytest.mark.parametrize("value", [0.0, 1.0, 37.5, math.nan])
def test_each_feature_reads_in_both_languages(name: str, value: float) -> None:
    reasons = model_reasons({name: 1.0}, {name: value})
    says = name.endswith(("_age_days", "_days_since_positive")) and not name.startswith("item_")
    if math.isnan(value) and not says:  # a null item history: nothing identified, no reason
        assert reasons == []
        return
    (reason,) = reasons
    assert reason.code == f"MODEL_{name.upper()}"
    assert reason.message_es
    assert reason.message_en
    assert reason.message_es != reason.message_en
    text = (reason.message_es + reason.message_en).lower()
    assert "nan" not in text
    assert not any(word in text for word in ACCUSING)


def test_only_factors_that_raised_the_score_are_reasons_strongest_first() -> None:
    reasons = model_reasons(
        {"consignee_age_days": 0.2, "watchlist_cas_lines": 1.5, "total_weight_kg": -0.7},
        {"consignee_age_days": 12.0, "watchlist_cas_lines": 1.0, "total_weight_kg": 500.0},
    )
    assert [r.code for r in reasons] == ["MODEL_WATCHLIST_CAS_LINES", "MODEL_CONSIGNEE_AGE_DAYS"]
    assert reasons[1].message_en == "Consignee first seen 12 days ago"


def test_watchlist_reason_names_the_line_from_one() -> None:
    reason = watchlist_reason("N-Phenethyl-4-piperidone", "cas", 1, "39742-60-4")
    assert reason.code == "WATCHLIST_CAS"
    assert "goods line 2" in reason.message_en
    assert "partida 2" in reason.message_es
