"""The ledger's decision payload is built by hand for speed; it must say exactly what the
records say (every field of a reason, a hit and a shipment), and keep the declared form only
when it differs from the canonical one."""

from __future__ import annotations

import dataclasses

from features.canonical import canonical_shipment
from features.schema import FEATURE_NAMES
from scoring.decisions import Decision, Declared, decision_payload
from scoring.reasons import Reason
from scoring.scorer import HitRef, Scored
from tests.support import make_shipment

REASON = Reason("RULE_X", "es", "en", 0.25)
HIT = HitRef("npp", "NPP", "cas", "40064-34-4", 0, 1.0)


def payload(declared_id: str) -> dict[str, object]:
    shipment = make_shipment(declared_id)
    canonical = canonical_shipment(shipment)
    features = dict.fromkeys(FEATURE_NAMES, 1.0)
    scored = Scored(
        canonical.shipment_id,
        canonical.port_of_entry,
        0.5,
        "red",
        False,
        1.0,
        (REASON,),
        (HIT,),
        features,
        rules_fired=("rule-x",),
        exam="sample",
        exam_reason=REASON,
        thresholds=(0.4, 0.2),
    )
    decision = Decision("d1", scored, "v1", "w1", "r1")
    return decision_payload(decision, Declared(canonical, shipment))


def test_reasons_and_hits_carry_every_field_of_their_records() -> None:
    doc = payload("SHP-1")
    assert doc["reasons"] == [dataclasses.asdict(REASON)]
    assert doc["watchlist_hits"] == [dataclasses.asdict(HIT)]
    assert doc["exam_reason"] == dataclasses.asdict(REASON)
    assert doc["features"] == dict.fromkeys(FEATURE_NAMES, 1.0)


def test_the_declared_form_is_kept_only_when_it_differs() -> None:
    assert payload("SHP-1")["declared"] is None
    odd = payload("shp‐1")  # lower case and a Unicode hyphen: read as SHP-1
    assert odd["shipment"]["shipment_id"] == "SHP-1"  # type: ignore[index]
    assert odd["declared"]["shipment"]["shipment_id"] == "shp‐1"  # type: ignore[index]
