"""The item entity's keys: the watched items a shipment's goods identify, as one key, and which
of their outcome histories the shipment reads.

A shipment may identify several watchlist entries (an analogue, and beside it a decoy line of a
clean, heavily traded chemical). Its item key names them all (:func:`item_key`); the history
counts its outcome under each (:mod:`features.history` in bulk, :mod:`features.state` live)
and gives it the record of the riskiest (:func:`riskiest`), so a decoy can neither hide an
item's findings nor take them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

ITEMS = "item"
"""The one entity of :data:`features.history.OUTCOME_KEYS` whose key names several."""
ITEM_SEPARATOR = " "
"""Between the entry ids of an item key: no watchlist entry id holds it (ids are slugs)."""


def item_key(entry_ids: Sequence[str]) -> str:
    """The item key of a shipment whose goods identify ``entry_ids`` (watchlist entry ids,
    strongest identification first, then in id order): one key naming every item, "" for
    none. The order is :func:`riskiest`'s last tie-break."""
    return ITEM_SEPARATOR.join(entry_ids)


def item_keys(key: str | None) -> list[str]:
    """The watched items an item key names, in its order (none for "" or a missing key)."""
    return key.split(ITEM_SEPARATOR) if key else []


def riskiest(found: Sequence[tuple[int, int, float, float]]) -> int:
    """Which of a shipment's watched items' outcome histories the shipment reads, each given as
    :func:`~features.history.entity_outcomes`' values (inspections, positives, smoothed
    positive rate, days since a positive) in its item key's order: the highest smoothed
    positive rate, then the most positives, then the first in the key (the strongest
    identification, then the first id). The bulk path makes the same choice with arrays
    (``features.history._Table.item_outcomes``)."""
    best = 0
    for i in range(1, len(found)):
        _, positives, rate, _ = found[i]
        _, best_positives, best_rate, _ = found[best]
        if rate > best_rate or (rate == best_rate and positives > best_positives):
            best = i
    return best


def named_items(keys: pl.Series) -> tuple[np.ndarray, np.ndarray, pl.Series]:
    """Each item that each of ``keys`` (item keys: :func:`item_keys`) names, one per row: the
    row of its key (int64), its position in the key (int64) and the item, in key order."""
    named = (
        pl.DataFrame({"item": keys})
        .with_row_index("row")
        .filter(pl.col("item").str.len_bytes() > 0)  # none for "" or a missing key
        .with_columns(pl.col("item").str.split(ITEM_SEPARATOR))
        .with_columns(position=pl.int_ranges(0, pl.col("item").list.len()))
        .explode("item", "position")
    )
    return (
        named["row"].to_numpy().astype(np.int64),
        named["position"].to_numpy().astype(np.int64),
        named["item"],
    )
