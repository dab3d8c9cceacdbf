from __future__ import annotations

import pytest
import yaml

from features.yamlfiles import load_strict


def test_country_codes_and_dates_stay_text() -> None:
    assert load_strict("countries: [NO, ON, MX]\nwhen: 2023-02-30\nok: true\n") == {
        "countries": ["NO", "ON", "MX"],
        "when": "2023-02-30",
        "ok": True,
    }


def test_duplicate_keys_are_refused_with_their_line() -> None:
    with pytest.raises(yaml.constructor.ConstructorError) as caught:
        load_strict("lane: red\nreason: x\nlane: green\n")
    assert "duplicate key 'lane'" in str(caught.value)
    assert "line 3" in str(caught.value)
