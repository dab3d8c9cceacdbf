"""A batch of live targets as history sees it, and the few events it changes about the stored ones.

The state keeps one :class:`Record` per shipment id and the one :class:`Credit` (outcome) its
entities were given. A batch's earlier rows count as history of its later ones; the stored
records it replaces (a re-scored id's) and their credited outcomes do not; and an earlier row of
an id the batch repeats gets the history of its id's first scoring, so its id's staying row is
left out of it. :class:`Batch` names those events; :func:`corrected` counts the events before
each query as the stored arrays' binary search corrected by them, never copying the arrays.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from features.history import OUTCOME_KEYS, Keyed
from features.state.events import END, Times

ENTITY_INDEX = {entity: i for i, entity in enumerate(OUTCOME_KEYS)}
"""Where each entity's key is in a :class:`Record`'s ``keys``."""
NO_LEAVE = END  # a row with no event of its own to leave out
# From how many queries of one key the batch's corrections are counted with numpy: a few
# numpy calls cost about what a Python binary search per query costs for this many.
_MANY_QUERIES = 16


class Record(NamedTuple):
    """What the state remembers of one shipment id."""

    at: int  # declared time, µs since the epoch
    keys: tuple[str, ...]  # entity keys in the order of OUTCOME_KEYS
    families: tuple[str, ...]  # identified route families


@dataclass(frozen=True, slots=True)
class Credit:
    """The one outcome a shipment id's entities were credited with."""

    at: int  # reported time, µs since the epoch
    positive: bool


class Batch:
    """A batch of targets as history sees it: each row's id, time, keys and families, which
    rows stay (each id's last row becomes its record), the stored records the batch replaces
    and the outcomes credited to its re-scored ids."""

    __slots__ = ("declared", "families", "keys", "own", "replaced", "size", "stays")

    def __init__(
        self, targets: Keyed, records: dict[str, Record], credits: dict[str, Credit]
    ) -> None:
        ids = targets.shipment_id
        self.size = len(ids)
        self.declared: list[int] = targets.declared_at.tolist()
        self.families = targets.families
        self.keys = targets.keys
        last = {shipment_id: i for i, shipment_id in enumerate(ids)}
        # The row that becomes each row's id's record; None when no id repeats (each row).
        self.stays = None if len(last) == len(ids) else [last[s] for s in ids]
        self.replaced = [records[s] for s in last if s in records]
        # Rows of a re-scored id with a credited outcome: its record and that credit.
        self.own = (
            {i: (records[s], credits[s]) for i, s in enumerate(ids) if s in credits}
            if self.replaced
            else {}
        )

    def rows_by_key(self, entity: str) -> dict[str, list[int]]:
        """Row indices of each key of ``entity``, in first-seen order."""
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys[entity]):
            found = rows.get(key)
            if found is None:
                rows[key] = [i]
            else:
                found.append(i)
        return rows

    def dropped(self, entity: str) -> dict[str, list[Record]]:
        """The records the batch replaces, by their key of ``entity``."""
        by_key: dict[str, list[Record]] = {}
        if not self.replaced:
            return by_key
        index = ENTITY_INDEX[entity]
        for record in self.replaced:
            by_key.setdefault(record.keys[index], []).append(record)
        return by_key

    def staying(self, rows: list[int]) -> list[int]:
        """Those of ``rows`` that stay."""
        stays = self.stays
        return rows if stays is None else [i for i in rows if stays[i] == i]

    def added(
        self, entity: str, key: str, rows: list[int], family: str | None = None
    ) -> tuple[list[int], list[int]]:
        """The batch's events of ``key`` (all of ``rows``' key) with ``family`` when given:
        the sorted declared times of the rows that stay, which count as history of the
        others; and for each row, the time of the event to leave out of its history
        (:data:`NO_LEAVE` when none): an earlier row of an id the batch repeats gets the
        history of its id's first scoring, so its id's staying row is not its past."""
        declared, families, stays = self.declared, self.families, self.stays
        added = sorted(
            declared[i] for i in self.staying(rows) if family is None or family in families[i]
        )
        if stays is None or not added:
            return added, [NO_LEAVE] * len(rows)
        keys = self.keys[entity]
        leaves = []
        for i in rows:
            r = stays[i]
            mine = r != i and keys[r] == key and (family is None or family in families[r])
            leaves.append(declared[r] if mine else NO_LEAVE)
        return added, leaves


def corrected(
    store: Times | None,
    queries: list[int],
    dropped: list[int],
    added: list[int],
    leaves: list[int],
) -> list[int]:
    """How many events lie strictly before each query: the stored ones (one search for all the
    queries) less ``dropped`` (some of them) plus ``added``, less the query's row's leave (one
    of ``added``); the queries come in equal runs per row, one leave each. Nothing of the
    stored events is copied. The corrections are binary searches on the few events, in Python
    for a few queries, with numpy (a few calls for them all) for many."""
    if (dropped or added) and len(queries) >= _MANY_QUERIES:
        at = np.array(queries, dtype=np.int64)
        many = np.zeros(len(at), dtype=np.int64) if store is None else store.times.searchsorted(at)
        if dropped:
            many -= np.array(dropped, dtype=np.int64).searchsorted(at)
        if added:
            many += np.array(added, dtype=np.int64).searchsorted(at)
            per_row = len(queries) // len(leaves)
            many -= np.repeat(np.array(leaves, dtype=np.int64), per_row) < at
        counts: list[int] = many.tolist()
        return counts
    found = [0] * len(queries) if store is None else store.times.searchsorted(queries).tolist()
    if not dropped and not added:
        return found
    per_row = len(queries) // len(leaves)
    bisect_left = bisect.bisect_left
    for k, x in enumerate(queries):
        count = found[k]
        if dropped:
            count -= bisect_left(dropped, x)
        if added:
            count += bisect_left(added, x) - (leaves[k // per_row] < x)
        found[k] = count
    return found


def first_kept(store: Times | None, dropped: list[int]) -> int | None:
    """The first stored event less ``dropped`` (some of them), None when none is left: among
    the first ``len(dropped) + 1``."""
    if store is None or not store.size:
        return None
    if not dropped:
        return store.earliest
    head: list[int] = store.view()[: len(dropped) + 1].tolist()
    for time in dropped:
        if time in head:
            head.remove(time)  # one occurrence each
    return head[0] if head else None


def first_event(kept: int | None, added: list[int], leave: int) -> int | None:
    """A row's first event: the first ``kept`` stored one or the first of ``added`` less the
    row's ``leave`` (one of them), whichever is earlier; None when there is none."""
    if not added:
        return kept
    if leave != added[0]:
        batch_first = added[0]
    elif len(added) > 1:
        batch_first = added[1]
    else:
        return kept
    return batch_first if kept is None else min(kept, batch_first)
