"""Replay: bring a live entity state up to date with the ledger, as the live path credited it
(on a server's start, after the state was built from the data directory)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from features.build import context_rows
from features.history import Keyed
from features.state import EntityState
from features.watchlist import Watchlist
from scoring.ledger.contents import decision_frames, latest_decisions, read_contents
from scoring.ledger.store import open_store


def _definite(version: dict[str, Any]) -> bool:
    """Whether an outcome version is a definite result: inspected, positive or negative."""
    return bool(version["inspected"]) and version["result"] != "inconclusive"


def replay_into(state: EntityState, path: Path | str, watchlist: Watchlist) -> int:
    """Bring a live entity state up to date with the ledger, as the live path credited it:
    each decided shipment id once, as its latest decision declared it, and one outcome per
    shipment id: the earliest first report against one of its decisions that is a definite
    result (positive or negative). Returns the seq of the last row read (0: none), where a
    follower of a shared ledger goes on from (:mod:`scoring.ledger.follow`)."""
    if not open_store(path).exists():
        return 0
    contents = read_contents(path)
    if not contents.decisions:
        return contents.last
    shipments, goods = decision_frames(latest_decisions(contents).values())
    state.add_shipments(Keyed.from_frame(context_rows(shipments, goods, watchlist)))
    # In the order each decision got its first outcome; the state credits an id only once.
    for decision_id, versions in contents.outcomes.items():
        first = versions[0]
        if _definite(first):
            state.add_outcome(
                contents.decisions[decision_id]["shipment"]["shipment_id"],
                datetime.fromisoformat(first["recorded_at"]),
                first["result"] == "positive",
            )
    return contents.last
