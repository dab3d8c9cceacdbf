"""Every field of a shipment is validated, and every bad field is named with its reason."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest

from features.errors import InvalidInput
from features.records import GoodsLine, Party
from scoring.validation import shipment_violations, validate_shipment
from tests.support import make_shipment

GOOD = make_shipment()
LINE = GOOD.goods[0]


def line(**changes: object) -> tuple[GoodsLine, ...]:
    return (dataclasses.replace(LINE, **changes), GOOD.goods[1])  # type: ignore[arg-type]


def test_valid_shipment_has_no_violations() -> None:
    assert shipment_violations(GOOD) == []
    assert validate_shipment(GOOD) is GOOD


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"shipment_id": ""}, "shipment_id", "required"),
        ({"shipment_id": "has space"}, "shipment_id", "no spaces"),
        ({"declared_at": None}, "declared_at", "required"),
        ({"port_of_entry": ""}, "port_of_entry", "required"),
        ({"port_of_entry": "Manzanillo"}, "port_of_entry", "not a UN/LOCODE"),
        ({"mode": ""}, "mode", "MODE_SEA"),
        ({"origin_country": "XX"}, "origin_country", "not an ISO 3166-1 alpha-2"),
        ({"origin_country": ""}, "origin_country", "required"),
        ({"export_country": "china"}, "export_country", "not an ISO 3166-1 alpha-2"),
        ({"transshipment_ports": ("KRPUS", "busan")}, "transshipment_ports[1]", "UN/LOCODE"),
        ({"shipper": Party("")}, "shipper.id", "required"),
        ({"consignee": Party("C 1")}, "consignee.id", "no spaces"),
        ({"consignee": Party("C1", country="MEX")}, "consignee.country", "alpha-2"),
        ({"goods": ()}, "goods", "at least one goods line"),
        ({"goods": line(hs_code="ABC")}, "goods[0].hs_code", "not 6 to 10 digits"),
        ({"goods": line(hs_code="2933.37")}, "goods[0].hs_code", "not 6 to 10 digits"),
        ({"goods": line(hs_code="")}, "goods[0].hs_code", "required"),
        ({"goods": line(hs_code="990000")}, "goods[0].hs_code", "chapter 99 does not exist"),
        ({"goods": line(description="  ")}, "goods[0].description", "required"),
        ({"goods": line(cas_numbers=("1" * 33,))}, "goods[0].cas_numbers[0]", "longer than 32"),
        ({"goods": line(cas_numbers=("",))}, "goods[0].cas_numbers[0]", "empty"),
        ({"goods": line(cas_numbers=("50-00-0",) * 51)}, "goods[0].cas_numbers", "more than"),
        ({"goods": line(gross_weight_kg=-5.0)}, "goods[0].gross_weight_kg", "greater than 0"),
        ({"goods": line(gross_weight_kg=0.0)}, "goods[0].gross_weight_kg", "greater than 0"),
        ({"goods": line(gross_weight_kg=math.nan)}, "goods[0].gross_weight_kg", "finite"),
        ({"goods": line(quantity=-1.0)}, "goods[0].quantity", "must not be negative"),
        ({"goods": line(declared_value_usd=math.inf)}, "goods[0].declared_value_usd", "finite"),
        ({"goods": line(declared_value_usd=1e12)}, "goods[0].declared_value_usd", "implausibly"),
        ({"goods": line(unit="X" * 17)}, "goods[0].unit", "longer than 16"),
    ],
)
def test_each_bad_field_is_named_with_its_reason(
    changes: dict[str, object], field: str, reason: str
) -> None:
    shipment = dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]
    violations = shipment_violations(shipment)
    assert [v.field for v in violations] == [field]
    assert reason in violations[0].description


def test_all_violations_are_reported_together() -> None:
    shipment = dataclasses.replace(GOOD, goods=line(hs_code="ABC", gross_weight_kg=-2.0))
    with pytest.raises(InvalidInput) as caught:
        validate_shipment(shipment)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["goods[0].hs_code", "goods[0].gross_weight_kg"]
    assert "goods[0].hs_code" in caught.value.message
    assert "SHP-1" in caught.value.message


def test_goods_line_limit() -> None:
    shipment = dataclasses.replace(GOOD, goods=(LINE,) * 3)
    assert [v.field for v in shipment_violations(shipment, max_goods_lines=2)] == ["goods"]


@pytest.mark.parametrize("cas", ["39742-60-5", "NPP", "39742-6O-4"])
def test_an_invalid_cas_is_scored_and_flagged_not_rejected(cas: str) -> None:
    """A broken CAS on a chemical line is a signal (feature, rule), not a reason to bounce."""
    assert shipment_violations(dataclasses.replace(GOOD, goods=line(cas_numbers=(cas,)))) == []


def test_a_huge_bad_value_is_quoted_by_a_short_prefix_only() -> None:
    huge = "Z" * 1_000_000
    shipment = dataclasses.replace(GOOD, shipment_id=huge, port_of_entry=huge)
    with pytest.raises(InvalidInput) as caught:
        validate_shipment(shipment)
    assert len(caught.value.message) < 1_000
    assert "1000000 characters" in caught.value.message


def test_the_live_window_bounds_declared_at() -> None:
    at = GOOD.declared_at
    assert at is not None
    window = (at - timedelta(days=21), at + timedelta(days=3))
    assert shipment_violations(GOOD, window=window) == []
    for moved in (at - timedelta(days=22), at + timedelta(days=4)):
        violations = shipment_violations(
            dataclasses.replace(GOOD, declared_at=moved), window=window
        )
        assert [v.field for v in violations] == ["declared_at"]
        assert "outside the accepted window" in violations[0].description
