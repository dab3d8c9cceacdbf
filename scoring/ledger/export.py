"""Export: the ledger's decisions and outcomes as the canonical tables ``centinela train``
reads, closing the loop from inspection to model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from features.tables import INSPECTIONS_SCHEMA, table_path
from scoring.ledger.contents import (
    LedgerContents,
    decision_frames,
    latest_decisions,
    read_contents,
)


@dataclass(frozen=True, slots=True)
class ExportResult:
    shipments: int
    goods: int
    inspections: int
    folded: int = 0  # decisions folded into a later decision of the same shipment id


def export(path: Path | str, out_dir: Path, contents: LedgerContents | None = None) -> ExportResult:
    """Write decisions and outcomes as canonical tables (``shipments``, ``goods``,
    ``inspections``) that ``centinela train`` reads, closing the loop from inspection to model.

    One shipment per shipment id: its latest decision (highest seq) gives the shipment row and
    its goods lines; earlier decisions of the id are folded away and counted in ``folded``.
    At most one inspection row per shipment id: each decision's outcome is its latest version;
    of the decisions of one id whose outcome says inspected, the latest decision's wins. An
    outcome reported as not inspected gives no row and does not erase an inspection reported
    against an earlier decision of the same shipment. ``selection_probability`` is the
    propensity recorded by the decision the inspection was reported against.
    """
    if contents is None:  # a caller that reads the ledger for more passes what it read
        contents = read_contents(path)
    latest = latest_decisions(contents)
    shipments, goods = decision_frames(latest.values())
    inspected: dict[str, dict[str, Any]] = {}
    for decision_id, decision in contents.decisions.items():  # in seq order: later ones win
        versions = contents.outcomes.get(decision_id)
        if not versions or not versions[-1]["inspected"]:
            continue
        outcome = versions[-1]
        reported = datetime.fromisoformat(outcome["recorded_at"])
        shipment_id = decision["shipment"]["shipment_id"]
        inspected[shipment_id] = {
            "shipment_id": shipment_id,
            "inspected_at": reported,
            "reported_at": reported,
            "positive": outcome["result"] == "positive",
            "substances": list(outcome["substances"]),
            "selection_probability": max(float(decision["propensity"]), 1e-6),
            "random_selection": bool(decision["random_selection"]),
        }
    inspections = [inspected[s] for s in latest if s in inspected]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shipments.write_parquet(table_path(out_dir, "shipments"))
    goods.write_parquet(table_path(out_dir, "goods"))
    pl.DataFrame(inspections, schema=INSPECTIONS_SCHEMA).write_parquet(
        table_path(out_dir, "inspections")
    )
    return ExportResult(
        shipments.height,
        goods.height,
        len(inspections),
        folded=len(contents.decisions) - len(latest),
    )
