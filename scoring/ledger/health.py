"""Ledger health: the figures the writer keeps for the metrics endpoint, and the server's own
checks of the chain's tail while it runs.

The writer keeps a few figures for the metrics endpoint to read at scrape time
(:class:`LedgerHealth`, from :meth:`scoring.ledger.writer.Ledger.health`): the rows (the head's
seq: rows are numbered from 1 without gaps), the bytes the ledger takes, a bucket count of each
group commit's duration (encoding, MACs and the transaction with its fsync: what the batch's
callers wait for) and of its rows, and the result and time of the last verification: the tail
check at open, then the same check every ``verify_interval`` seconds if set
(:class:`TailVerifier`), by a thread of its own on a read-only connection, in one read
transaction (a consistent snapshot while the writer goes on; a tail of 10,000 decisions takes
about 0.2 s, holding the GIL in slices like any Python thread). A failed check is logged at
ERROR; the writer keeps appending (refusing would stop every port's scoring for whoever can
write the file), and later checks reach back to the first bad row found, so a failure stays
reported after the row has left the tail. Rows older than the tail are for ``centinela ledger
verify``.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from scoring.ledger.chain import check
from scoring.ledger.checkpoint import Checkpoint
from scoring.ledger.store import LedgerStore
from scoring.ledger_keys import KeyRing

log = logging.getLogger("scoring.ledger")  # the package's one logger, as before it was split

COMMIT_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Upper bounds of the commit duration counts (seconds); 0.25 is the alert's p99 threshold."""
GROUP_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
"""Upper bounds of the rows-per-commit counts (a commit holds at most ``max_batch``, 512)."""


@dataclass(frozen=True, slots=True)
class Buckets:
    """Observations counted by bucket: ``counts[i]`` of those over ``bounds[i - 1]`` and at most
    ``bounds[i]``, the last one of those over every bound (not cumulative); ``total`` is their
    sum."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class Tally:
    """A :class:`Buckets` being counted (by the writer, under the ledger's health lock)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> Buckets:
        return Buckets(self.bounds, tuple(self.counts), self.total)


@dataclass(frozen=True, slots=True)
class Verified:
    """The result of a verification the writer's process ran."""

    ok: bool
    at: float  # Unix seconds
    problem: str = ""
    """Empty when ``ok``; otherwise what is wrong, as :func:`scoring.ledger.chain.check`
    words it."""


@dataclass(frozen=True, slots=True)
class LedgerHealth:
    """What :meth:`Ledger.health` reports: the figures behind ``centinela_ledger_*``."""

    rows: int
    bytes: int  # the database file and its -wal
    commit_seconds: Buckets  # of this writer's group commits
    group_size: Buckets
    verified: Verified  # the last verification: the tail check at open, or a later one


class TailVerifier:
    """The writer's process checking the chain's tail again (:meth:`verify`), every
    ``interval`` seconds in a thread of its own once :meth:`start` ed (0: only when asked).

    ``check_rows``, ``trusted`` and ``witness`` are the writer's, as the check at open used
    them; :attr:`last` starts as that check's success (the writer refuses to open otherwise).
    """

    def __init__(
        self,
        store: LedgerStore,
        keys: KeyRing,
        trusted: Mapping[str, Ed25519PublicKey],
        witness: Checkpoint | None,
        *,
        check_rows: int,
        interval: float,
    ) -> None:
        self._store, self._keys, self._trusted, self._witness = store, keys, trusted, witness
        self.check_rows, self.interval = check_rows, interval
        self._lock = threading.Lock()
        self._last = Verified(True, time.time())
        self._first_bad: int | None = None  # the first bad row a later check found
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def last(self) -> Verified:
        with self._lock:
            return self._last

    def start(self) -> None:
        if self.interval > 0:
            self._thread = threading.Thread(
                target=self._verify_every, name="ledger-verifier", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the periodic checks at once (a check under way is finished first)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def verify(self) -> Verified:
        """Check the chain's tail as at open (the last ``check_rows`` rows back to the latest
        checkpoint, the head, the seal, the witness; from the first bad row an earlier check
        found, if any) on a read-only connection, in one read transaction; record and return
        the result. The writer goes on meanwhile; a failure is logged at ERROR."""
        try:
            view = self._store.reader()
        except self._store.error as exc:
            return self._record(Verified(False, time.time(), f"cannot open it ({exc})"))
        try:
            with view.snapshot():  # one snapshot for every read of the check
                tail = self.check_rows
                if tail > 0 and self._first_bad is not None:
                    tail = max(tail, view.last_seq() - self._first_bad + 1)
                result = check(view, self._keys, self._trusted, self._witness, tail=tail)
        except self._store.error as exc:
            return self._record(Verified(False, time.time(), f"cannot read it ({exc})"))
        finally:
            view.close()
        if result.ok:
            self._first_bad = None  # every row from it checks again: the file was put right
        elif result.seq is not None and (self._first_bad is None or result.seq < self._first_bad):
            self._first_bad = result.seq
        return self._record(Verified(result.ok, time.time(), result.problem))

    def _record(self, verified: Verified) -> Verified:
        if not verified.ok:
            log.error(
                "ledger verification failed: %s",
                verified.problem,
                extra={"path": self._store.location, "problem": verified.problem},
            )
        with self._lock:
            self._last = verified
        return verified

    def _verify_every(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.verify()
            except Exception as exc:  # the verifier must outlive any surprise; say so
                self._record(Verified(False, time.time(), f"the check itself failed ({exc})"))
