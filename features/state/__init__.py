"""Live entity state: each entity's events, kept sorted in memory and updated as the server runs.

For every shipper, consignee and broker the state holds its shipments' declared times; for every
entity of :data:`features.history.OUTCOME_KEYS` the report times and results of its inspections,
beside their running totals (positives so far, time of the last positive so far); for consignee
and broker, per watched route family, the declared times of the shipments where it was
identified.

A live shipment's history features are what the bulk kernels of :mod:`features.history`
(``entity_volume``, ``entity_outcomes``, ``entity_network``) give for its entities' events, bit
for bit, at a cost that does not grow with how busy an entity has been. The stored arrays are
never copied or scanned to answer: a count of events before a time is a binary search on them,
an outcome query a binary search and a look-up in the running totals. What a batch changes
about them (its earlier rows count as history; a re-scored id's own earlier record and own
credited outcome do not) is a handful of events, counted apart and added or subtracted. The
floating-point features are computed from those counts with the kernels' own formulas,
operation for operation. A query thus costs O(log n) in an entity's history; an append in time
order (the normal case) O(1) amortised; an event added out of order or taken out moves the
later events (and their running totals) once.

A live batch is a few rows, so a query is answered row by row in Python, not with numpy over
arrays of a few elements (whose per-call overhead would dominate): see
:mod:`features.state.columns`.

A shipment id is one shipment however often it is scored: the state keeps one record per id
(the latest scoring's), a re-scored id's history leaves out its own earlier record and outcome,
and an id's entities are credited with one inspection outcome at most, the first definite one.
Scoring one shipment six times therefore makes none of its parties look more established.

Concurrency: one readers-writer lock. Any number of :meth:`EntityState.history_for` calls read
at once; :meth:`~EntityState.add_shipments` and :meth:`~EntityState.add_outcome` write alone,
and a writer waiting holds off new readers, so appends are not starved by a stream of reads. A
read therefore sees each write whole or not at all (a shipment's five entities, an outcome's
five credits). Striping locks by entity key was not chosen: every row reads five entities, and a
batch would have to take many stripes in order and could see half of a write.

The package, by concern:

* :mod:`features.state.entity`: :class:`EntityState`, the API (``add_shipments``,
  ``add_outcome``, ``history_for``, built from tables or a data directory);
* :mod:`features.state.events`: one entity's events in sorted arrays, with the running totals
  of its outcomes;
* :mod:`features.state.batch`: a batch of targets as history sees it, and the counts of events
  before a time corrected for what the batch changes;
* :mod:`features.state.columns`: the history columns, what the kernels give, per entity;
* :mod:`features.state.lock`: the readers-writer lock.
"""

from features.state.entity import EntityState
from features.state.lock import ReadWriteLock

__all__ = ["EntityState", "ReadWriteLock"]
