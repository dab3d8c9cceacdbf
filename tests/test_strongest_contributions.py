"""Model reasons from each row's strongest contributions (strongest_contributions, ranked for a
batch in numpy) are the reasons model_reasons gives from all of a row's contributions: the same
features in the same order, ties and missing values included."""

from __future__ import annotations

import numpy as np
import pytest

from features.schema import FEATURE_NAMES
from scoring.reasons import model_reasons
from scoring.verdicts import MODEL_REASONS, strongest_contributions


def test_the_strongest_contributions_give_the_reasons_all_of_them_give() -> None:
    rng = np.random.default_rng(3)
    n, width = 400, len(FEATURE_NAMES)
    contributions = rng.normal(0, 0.3, size=(n, width))
    contributions[rng.random((n, width)) < 0.05] = np.nan
    contributions[::7, :] = np.round(contributions[::7, :], 1)  # many ties
    contributions[::11, :] = -np.abs(contributions[::11, :])  # nothing pushes the score up
    contributions[5, :] = 0.25  # every feature tied
    values = rng.normal(5, 3, size=(n, width))
    values[rng.random((n, width)) < 0.2] = np.nan
    strongest = strongest_contributions(contributions)
    worded = 0
    for row in range(n):
        everything = dict(zip(FEATURE_NAMES, contributions[row].tolist(), strict=True))
        by_name = dict(zip(FEATURE_NAMES, values[row].tolist(), strict=True))
        expected = model_reasons(everything, by_name, limit=MODEL_REASONS)
        assert len(strongest[row]) <= MODEL_REASONS
        assert model_reasons(strongest[row], by_name, limit=MODEL_REASONS) == expected
        worded += bool(expected)
    assert worded > n // 2
    assert strongest[11] == {}
    assert list(strongest[5]) == list(FEATURE_NAMES[:MODEL_REASONS])  # ties in schema order


def test_contributions_of_another_width_are_refused() -> None:
    with pytest.raises(ValueError, match="one column per feature"):
        strongest_contributions(np.zeros((2, len(FEATURE_NAMES) + 1)))
