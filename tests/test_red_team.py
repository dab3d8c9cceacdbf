"""The red team (:mod:`training.red_team`) sent through a real server: every variant of every
Table I precursor of the watchlist must come back RED from a rule that identifies the
substance; a broken CAS alone must at least stay out of GREEN.

The cases and their tricks are library code, so the promotion gate
(:func:`training.red_team.table_i_recall`, ``tests/test_red_team_gate.py``) runs the same ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from features.canonical import read_cas
from features.records import Party, Shipment
from features.tables import table_path
from features.watchlist import load_watchlist
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc
from tests.support import ServerThread, request_for
from training.red_team import (
    CAS_TRICKS,
    IDENTITY_RULES,
    Case,
    broken_cas_cases,
    control_shipment,
    table_i_cases,
)

CASES = table_i_cases(load_watchlist())
BROKEN = broken_cas_cases(load_watchlist())
ALL = CASES + BROKEN


def test_the_red_team_is_big_and_covers_every_table_i_entry() -> None:
    watchlist = load_watchlist()
    table_i = {
        e.id
        for e in watchlist.spec.entries
        if e.kind == "substance" and any(m.list == "un-1988-table-i" for m in e.memberships)
    }
    assert len(ALL) >= 150
    assert {c.entry_id for c in CASES} == table_i
    assert {c.field for c in CASES} == {"cas", "name", "hs"}
    assert {c.field for c in BROKEN} == {"broken-cas"}
    assert {c.entry_id for c in BROKEN} <= table_i


def test_case_shipment_ids_are_unique_and_the_same_on_every_run() -> None:
    ids = [c.shipment.shipment_id for c in ALL]
    assert len(set(ids)) == len(ids)
    again = table_i_cases(load_watchlist()) + broken_cas_cases(load_watchlist())
    assert [c.shipment.shipment_id for c in again] == ids
    assert again == ALL


def _established_consignee(world: Path) -> Party:
    """The busiest consignee of the test world that declares a tax id: old enough and clean
    enough that no new-consignee rule fires, so only the substance's identity can make RED."""
    ships = pl.read_parquet(table_path(world, "shipments"))
    row = (
        ships.filter(pl.col("consignee_tax_id").str.len_chars() > 0)
        .group_by("consignee_id", "consignee_name", "consignee_country", "consignee_tax_id")
        .len()
        .sort("len", descending=True)
        .row(0, named=True)
    )
    return Party(
        row["consignee_id"],
        row["consignee_name"],
        row["consignee_country"],
        row["consignee_tax_id"],
    )


def _shipment(case: Case, consignee: Party) -> Shipment:
    return dataclasses.replace(case.shipment, consignee=consignee)


def test_every_evasion_variant_is_caught(server: ServerThread, world: Path) -> None:
    consignee = _established_consignee(world)
    stub = pb_grpc.RiskScoringStub(server.channel)
    shipments = [_shipment(c, consignee) for c in ALL]
    decisions = list(stub.ScoreShipments(iter(request_for(s) for s in shipments), timeout=120))
    assert len(decisions) == len(ALL)
    identity_codes = {f"RULE_{r.upper().replace('-', '_')}" for r in IDENTITY_RULES}
    evaded = []
    for case, decision in zip(ALL, decisions, strict=True):
        assert not decision.HasField("error"), f"{case.label}: {decision.error.message}"
        codes = {r.code for r in decision.reasons}
        if case.field == "broken-cas":
            caught = decision.lane != pb.LANE_GREEN and "RULE_DECLARED_CAS_INVALID" in codes
        else:
            caught = decision.lane == pb.LANE_RED and bool(codes & identity_codes)
        if not caught:
            evaded.append(f"{case.label}: {pb.Lane.Name(decision.lane)} {sorted(codes)}")
    assert evaded == [], f"{len(evaded)} of {len(ALL)} variants evaded:\n" + "\n".join(evaded)


def test_the_plain_shipment_of_the_established_consignee_is_not_red_by_rule(
    server: ServerThread, world: Path
) -> None:
    """Control: without the substance the same shipment fires no identity rule, so the
    suite's REDs come from the identity and not from the consignee or the route."""
    consignee = _established_consignee(world)
    shipment = dataclasses.replace(control_shipment(load_watchlist()), consignee=consignee)
    decision = pb_grpc.RiskScoringStub(server.channel).ScoreShipment(request_for(shipment))
    assert not {r.code for r in decision.reasons} & {
        "RULE_TABLE_I_PRECURSOR",
        "RULE_TABLE_I_PRECURSOR_NAMED",
        "RULE_DECLARED_CAS_INVALID",
    }


@pytest.mark.parametrize("trick", sorted(CAS_TRICKS))
def test_each_cas_trick_reads_as_the_same_cas(trick: str) -> None:
    assert read_cas(CAS_TRICKS[trick]("39742-60-4")).text == "39742-60-4"
