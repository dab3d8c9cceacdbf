"""A live batch's history columns: what the bulk kernels give each row, from the stored events.

Each function here answers for one entity what :func:`~features.history.entity_volume`,
:func:`~features.history.entity_outcomes` or :func:`~features.history.entity_network` gives,
bit for bit, from the stored events (:mod:`features.state.events`) and the few events the
batch changes (:mod:`features.state.batch`). A live batch is a few rows, so rows are answered
one by one in Python: one binary search per count, single elements read with ``ndarray.item``,
and the float features computed with the kernels' float64 formulas, operation for operation, on
Python floats (IEEE doubles too: the same operations in the same order give the same bits). A
key asked about by one row only, with no record of it replaced by the batch (the common case),
needs none of the batch's corrections and takes a short path.
"""

from __future__ import annotations

import math

import numpy as np

from features.history import (
    COMPLEMENTARY_FAMILIES,
    NETWORK_KEYS,
    NETWORK_WINDOW_DAYS,
    OUTCOME_KEYS,
    SMOOTHING_STRENGTH,
    US_PER_DAY,
    VOLUME_KEYS,
    WINDOWS_DAYS,
    network_names,
    outcome_names,
    volume_names,
)
from features.state.batch import ENTITY_INDEX, Batch, Credit, corrected, first_event, first_kept
from features.state.events import NO_TIME, Outcomes, Times

_WINDOWS_US = tuple(d * US_PER_DAY for d in WINDOWS_DAYS)  # as the volume kernel's windows
# A query and its windows' starts, as the kernels count them: times before q and before q - w.
_VOLUME_OFFSETS_US = (0, *_WINDOWS_US)
_NETWORK_US = NETWORK_WINDOW_DAYS * US_PER_DAY
_NAN = math.nan  # what the kernels give for "never" (np.nan: the same float)


def _column_layout() -> tuple[tuple[str, int, int], ...]:
    """Where :func:`history_columns` puts each history column, in the order of the names (as
    the kernels give them): its name, its block (0: float64, 1: int32) and its row there, as
    the columns are computed: per volume entity its age (float) and counts (int), per outcome
    entity its two counts (int) and two rates (float), per network entity two ints."""
    layout: list[tuple[str, int, int]] = []
    rows = [0, 0]

    def put(names: list[str], block: int) -> None:
        for name in names:
            layout.append((name, block, rows[block]))
            rows[block] += 1

    for entity in VOLUME_KEYS:
        age, *counts = volume_names(entity)
        put([age], 0)
        put(counts, 1)
    for entity in OUTCOME_KEYS:
        names = outcome_names(entity)
        put(names[:2], 1)
        put(names[2:], 0)
    for entity in NETWORK_KEYS:
        put(network_names(entity), 1)
    return tuple(layout)


_LAYOUT = _column_layout()


def history_columns(
    volume: dict[str, dict[str, Times]],
    outcomes: dict[str, dict[str, Outcomes]],
    network: dict[str, dict[str, dict[str, Times]]],
    batch: Batch,
    prior_rate: float,
    strength: float = SMOOTHING_STRENGTH,
) -> tuple[list[list[float]], list[list[int]]]:
    """Every history column of ``batch``'s rows from the stored events per entity (``volume``
    and ``network`` times, ``outcomes``) of :class:`~features.state.EntityState`: the float64
    columns and the int32 columns, in the order ``_LAYOUT`` places them (:func:`named` names
    them). Positive rates are smoothed by ``strength`` pseudo-inspections at ``prior_rate``.
    Only lists: the caller converts them once it no longer holds the state's lock."""
    floats: list[list[float]] = []  # float64 columns, as _LAYOUT places them
    ints: list[list[int]] = []  # int32 columns
    for entity in VOLUME_KEYS:
        age, counts = volume_columns(volume[entity], entity, batch)
        floats.append(age)
        ints += counts
    smooth = smoothing(prior_rate, strength)
    for entity in OUTCOME_KEYS:
        inspections, positives, rate, since = outcome_columns(
            outcomes[entity], entity, batch, smooth
        )
        ints += (inspections, positives)
        floats += (rate, since)
    for entity in NETWORK_KEYS:
        ints += network_columns(network[entity], entity, batch)
    return floats, ints


def named(floats: list[list[float]], ints: list[list[int]]) -> dict[str, np.ndarray]:
    """The columns of :func:`history_columns` as arrays by name: two conversions for the whole
    batch; each column a row of one of them."""
    blocks = (list(np.array(floats, dtype=np.float64)), list(np.array(ints, dtype=np.int32)))
    return {name: blocks[block][row] for name, block, row in _LAYOUT}


def volume_columns(
    stores: dict[str, Times], entity: str, batch: Batch
) -> tuple[list[float], list[list[int]]]:
    """What :func:`~features.history.entity_volume` gives each row for its events of
    ``entity`` (``stores``: each key's): age in days, and count per window."""
    n, declared = batch.size, batch.declared
    age: list[float] = [_NAN] * n
    counts: list[list[int]] = [[0] * n for _ in _WINDOWS_US]
    dropped = batch.dropped(entity)
    for key, rows in batch.rows_by_key(entity).items():
        store = stores.get(key)
        gone = dropped.get(key)
        if gone is None and len(rows) == 1:
            # One row and nothing replaced: its own event (if it stays) is neither before
            # it nor before its windows' starts, and not its first when any is before it.
            if store is None:
                continue
            i = rows[0]
            q = declared[i]
            before = store.before(q)
            if not before:
                continue
            starts = store.times.searchsorted([q - w for w in _WINDOWS_US]).tolist()
            age[i] = float(q - store.earliest) / US_PER_DAY
            for column, start in zip(counts, starts, strict=True):
                column[i] = before - start
            continue
        gone_times = sorted(r.at for r in gone) if gone else []
        added, leaves = batch.added(entity, key, rows)
        queries = [declared[i] - offset for i in rows for offset in _VOLUME_OFFSETS_US]
        found = corrected(store, queries, gone_times, added, leaves)
        kept = first_kept(store, gone_times)
        width = len(_VOLUME_OFFSETS_US)
        for j, i in enumerate(rows):
            before, *starts = found[width * j : width * (j + 1)]
            if before > 0:
                first = first_event(kept, added, leaves[j])
                assert first is not None  # an event lies before the query
                age[i] = float(declared[i] - first) / US_PER_DAY
            for column, start in zip(counts, starts, strict=True):
                column[i] = before - start
    return age, counts


def outcome_columns(
    stores: dict[str, Outcomes], entity: str, batch: Batch, smooth: tuple[float, float]
) -> tuple[list[int], list[int], list[float], list[float]]:
    """What :func:`~features.history.entity_outcomes` gives each row for the outcomes of
    its ``entity`` (``stores``: each key's), less its own credited one when it is re-scored.
    ``smooth``: ``strength * prior_rate`` and ``strength`` (:func:`smoothing`)."""
    n, declared = batch.size, batch.declared
    inspections, positives = [0] * n, [0] * n
    no_rate = rate(0, 0, *smooth)
    rates, since = [no_rate] * n, [_NAN] * n
    index = ENTITY_INDEX[entity]
    own = batch.own
    for i, key in enumerate(batch.keys[entity]):
        found = stores.get(key)
        if found is None:
            continue
        q = declared[i]
        if own and i in own:  # a re-scored id: its own outcome is not history of itself
            record, credited = own[i]
            credit = credited if record.keys[index] == key else None
            count, positive, last = outcomes_before(found, q, credit)
        else:  # the common case: outcomes_before with no outcome of its own
            count = found.before(q)
            if not count:
                continue  # none before it: what the kernel gives for no outcomes at all
            positive, last = found.positives.item(count - 1), found.last.item(count - 1)
        inspections[i], positives[i], rates[i], since[i] = outcome_values(
            count, positive, last, q, smooth
        )
    return inspections, positives, rates, since


def network_columns(
    stores: dict[str, dict[str, Times]], entity: str, batch: Batch
) -> list[list[int]]:
    """What :func:`~features.history.entity_network` gives each row: its watched route
    families are its own plus those of its ``entity``'s events in the window before it
    (``stores``: each key's times per family, counted as :func:`corrected` counts), which the
    kernel then counts and combines."""
    n, declared, families = batch.size, batch.declared, batch.families
    count, complementary = [0] * n, [0] * n
    dropped = batch.dropped(entity)
    for key, rows in batch.rows_by_key(entity).items():
        received = stores.get(key)
        gone = dropped.get(key)
        if gone is None and len(rows) == 1:  # as for volume: the stored events only
            i = rows[0]
            if not received:
                if families[i]:
                    count[i], complementary[i] = combined(set(families[i]))
                continue
            q = declared[i]
            start = q - _NETWORK_US
            present = set(families[i])
            for family, events in received.items():
                if family not in present and events.recent(start, q):
                    present.add(family)
            count[i], complementary[i] = combined(present)
            continue
        presents = [set(families[i]) for i in rows]
        queries = [x for i in rows for x in (declared[i], declared[i] - _NETWORK_US)]
        in_batch = set().union(*(families[i] for i in batch.staying(rows)))
        for family in set(received or ()) | in_batch:
            store = received.get(family) if received else None
            gone_times = sorted(r.at for r in gone if family in r.families) if gone else []
            if store is not None and not gone_times and family not in in_batch:
                # No event of the batch's to add or leave out: the stored ones alone.
                for i, present in zip(rows, presents, strict=True):
                    if family not in present and store.recent(
                        declared[i] - _NETWORK_US, declared[i]
                    ):
                        present.add(family)
                continue
            added, leaves = batch.added(entity, key, rows, family)
            found = corrected(store, queries, gone_times, added, leaves)
            for j, present in enumerate(presents):
                if found[2 * j] - found[2 * j + 1] > 0:
                    present.add(family)
        for i, present in zip(rows, presents, strict=True):
            count[i], complementary[i] = combined(present)
    return [count, complementary]


def outcomes_before(found: Outcomes, query: int, own: Credit | None) -> tuple[int, int, int]:
    """The outcomes of ``found`` reported before ``query``, less the row's ``own`` credited
    outcome when it was among them: how many, how many positive, the last positive's report
    time (:data:`~features.state.events.NO_TIME` when none). From the running totals at the
    query (a binary search, none when the query is after the last outcome), corrected for the
    outcome left out."""
    end = found.before(query)
    positives, last = found.positives_before(end), found.last_before(end)
    inspections = end
    if own is None or own.at >= query:
        return inspections, positives, last
    lo, hi = found.run(own.at)  # hi <= end: reported before the query
    in_run = found.positives_before(hi) - found.positives_before(lo)
    if (in_run if own.positive else hi - lo - in_run) == 0:
        return inspections, positives, last  # not among them: nothing to leave out
    inspections -= 1
    if own.positive:
        positives -= 1
        if found.positives_before(end) - found.positives_before(lo) == 1:
            last = found.last_before(lo)  # it was the last positive: the one before it
    return inspections, positives, last


def smoothing(prior_rate: float, strength: float = SMOOTHING_STRENGTH) -> tuple[float, float]:
    """``strength * prior_rate`` computed as the kernel computes it, once, before it is added
    to a float64 array (a float32 prior rounds there too), as a Python float; and
    ``strength``. What :func:`rate` and :func:`outcome_values` take as ``smooth``."""
    return float(strength * prior_rate), float(strength)


def rate(inspections: int, positives: int, smooth: float, strength: float) -> float:
    """The kernel's smoothed positive rate; ``smooth`` is ``strength * prior_rate``."""
    return (float(positives) + smooth) / (float(inspections) + strength)


def outcome_values(
    inspections: int, positives: int, last: int, query: int, smooth: tuple[float, float]
) -> tuple[int, int, float, float]:
    """:func:`~features.history.entity_outcomes`' values from the outcomes before a query (how
    many, how many positive, the last positive's report time): its formulas, operation for
    operation, so the floating point is the same to the bit."""
    since = float(query - last) / US_PER_DAY if last != NO_TIME else _NAN
    return inspections, positives, rate(inspections, positives, *smooth), since


def combined(present: set[str]) -> tuple[int, int]:
    """:func:`~features.history.entity_network`'s values for a row's watched route families:
    how many, and 1 when they include a complementary combination."""
    if len(present) < 2:
        return len(present), 0
    complementary = any(
        not present.isdisjoint(left) and not present.isdisjoint(right)
        for left, right in COMPLEMENTARY_FAMILIES
    )
    return len(present), int(complementary)
