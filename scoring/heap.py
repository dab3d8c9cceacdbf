"""The cyclic garbage collector, tuned for a bulk run (``centinela score``): a large long-lived
heap (the table's keys and history, the model, the watchlist) and many short-lived records a
shipment.

With Python's default thresholds (700, 10, 10) the collector runs every few hundred
allocations and, every hundred of those, walks the whole heap: in bulk scoring it took a fifth
of the run (200,000 shipments: 11,358/s with the defaults, 14,919/s with these, the same with
collection off). The server does not use it: on the bench world it changed neither the rate nor
the memory, and a full collection at each reload would pause serving. What is loaded is frozen
out of the collector's sight (:func:`gc.freeze`: never garbage, never scanned again) and
collections come less often. Almost everything a shipment allocates is freed by
reference counting anyway; the collector only finds cycles.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (100_000, 50, 100)
"""Allocations before a young collection, and young (then middle) collections before an older
one."""


def settle_heap() -> None:
    """Collect once, freeze what is left (what was just loaded), and collect less often from
    now on. Call it after loading: frozen objects are freed by reference counting only, never
    by the collector, so only what lives as long as the process should be frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
