"""A ledger's contents read back: decision payloads by id, each decision's outcome versions,
the latest decision of each shipment id, and those decisions as canonical tables.

An outcome is versioned: a repeat is not stored again, a different report against the same
decision is a new version (``version`` 1, 2, ... in its payload), so the versions of a decision's
outcome are its outcome rows in seq order. What replay and export make of them is theirs
(:mod:`scoring.ledger.replay`, :mod:`scoring.ledger.export`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from features.errors import ConfigError, NotFound
from features.tables import GOODS_SCHEMA, SHIPMENTS_SCHEMA
from scoring.ledger.record import PayloadError, Row
from scoring.ledger.store import reading


@dataclass(frozen=True)
class LedgerContents:
    """Decision payloads by id, and each decision's outcome payloads in version order (each
    with ``recorded_at``)."""

    decisions: dict[str, dict[str, Any]]
    outcomes: dict[str, list[dict[str, Any]]]
    last: int = 0  # the seq of the last row read (rows after it were committed later)


def _parsed(path: Path | str, row: Row) -> Any:
    """The payload of ``row``; ConfigError naming the ledger when it cannot be decoded."""
    try:
        return json.loads(row.payload)
    except PayloadError as exc:
        raise ConfigError(
            f"ledger {path}: {exc}; `centinela ledger verify --db {path}` checks it"
        ) from None


def read_decision(path: Path | str, decision_id: str) -> dict[str, Any]:
    """The payload of one decision, read from the ledger file without opening it for writing;
    NotFound when no decision has that id."""
    with reading(path) as view:
        found = [row for row in view.rows_for(decision_id) if row.kind == "decision"]
    if not found:
        raise NotFound(f"no decision with id {decision_id!r} in ledger {path}")
    payload: dict[str, Any] = _parsed(path, found[-1])
    return payload


def read_contents(path: Path | str) -> LedgerContents:
    """Every decision and outcome of the ledger at ``path``, read without opening it for
    writing."""
    decisions: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    last = 0
    with reading(path) as view:
        for row in view.rows():
            last = row.seq
            payload = _parsed(path, row)
            if row.kind == "decision":
                decisions[row.decision_id] = payload
            else:
                outcomes.setdefault(row.decision_id, []).append(
                    {**payload, "recorded_at": row.recorded_at}
                )
    return LedgerContents(decisions, outcomes, last)


def latest_decisions(contents: LedgerContents) -> dict[str, dict[str, Any]]:
    """The latest decision (highest seq) of each shipment id, by shipment id.

    A shipment id is one shipment however often it was scored: its latest decision holds the
    shipment as last declared, and the earlier ones are folded away.
    """
    latest: dict[str, dict[str, Any]] = {}
    for decision in contents.decisions.values():  # in seq order
        latest[decision["shipment"]["shipment_id"]] = decision
    return latest


def decision_frames(decisions: Iterable[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The shipments and goods lines of ``decisions`` as canonical tables."""
    decisions = list(decisions)
    ships = [
        {**d["shipment"], "declared_at": datetime.fromisoformat(d["shipment"]["declared_at"])}
        for d in decisions
    ]
    goods = [line for d in decisions for line in d["goods"]]
    return (
        pl.DataFrame(ships, schema=SHIPMENTS_SCHEMA),
        pl.DataFrame(goods, schema=GOODS_SCHEMA),
    )
