"""Following a shared ledger: what other servers decide, in this server's entity history.

Where several servers write one ledger (PostgreSQL: :attr:`Ledger.shared`), each keeps its own
in-memory entity history (:class:`features.state.EntityState`). A :class:`Follower` keeps it
whole: after the start's replay (:func:`~scoring.ledger.replay.replay_into`, whose last seq it
starts from), a thread of its own reads the rows after the last one applied every
``interval`` seconds (one indexed query, ``seq > cursor``, when nothing is new) and applies them
as the replay does: a decision's shipment to the history, the first definite outcome of a
decision to its shipment's entities (once per shipment id, as the state credits it).

**Own rows.** This server's own decisions are in its history already: the live path adds them
as soon as they are durable. The follower skips the seqs its writer committed
(:meth:`Ledger.take_own`) instead of adding them again. Outcomes, own or not, are all applied:
the state credits one per shipment id whichever comes first, and a report of an outcome for a
decision made on another server, before this one had followed that decision, is credited when
the follower gets there.

**Order.** The state keeps one record per shipment id, the last remembered; the ledger's is the
highest seq's. The live path and the follower both remember a shipment through this class, under
one lock, and a row is remembered only if no later row of the same id was (``_newest``): a
shipment re-scored on two servers a moment apart ends with the later decision's record on both,
whichever of the two reached a server's history first. What ``_newest`` holds is dropped once no
row at or below its seq can still come (below the cursor and every live batch in flight), so it
stays the size of a poll's worth of shipments.

**Lag.** Rows are committed in seq order (appends are serialised on the chain's head), so the rows
after the cursor are exactly the new ones, and a row committed at time *t* is in the history by
the end of the first poll that starts after *t*: at most ``interval`` plus one poll's work later.
:meth:`Follower.health` gives the figures the metrics endpoint exports (rows waiting at the last
poll, seconds since the follower was last at the head, the delay of each followed row from its
``recorded_at``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from features.build import context_rows
from features.history import Keyed
from features.state import EntityState
from features.watchlist import Watchlist
from scoring.ledger.contents import decision_frames
from scoring.ledger.health import Buckets, Tally
from scoring.ledger.record import Row
from scoring.ledger.store import LedgerView, open_store
from scoring.ledger.writer import Ledger

log = logging.getLogger("scoring.ledger")

FOLLOW_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds of the delay counts (seconds from a followed row's ``recorded_at`` to its being
in this server's history)."""
_CHUNK = 2000  # rows applied together (one history write, one watchlist pass)


@dataclass(frozen=True, slots=True)
class FollowHealth:
    """The follower's figures as of now (:meth:`Follower.health`)."""

    applied: int  # the last seq applied (or replayed, or this server's own)
    lag_rows: int  # rows the last poll found after the cursor
    lag_seconds: float  # since the start of the last poll that reached the ledger's head
    followed: int  # other writers' rows applied since the start
    delay: Buckets  # per followed row: seconds from its recorded_at to being applied
    failures: int  # polls that failed (the database unreachable, a row unreadable)


def definite_first(payload: dict[str, Any]) -> bool:
    """Whether an outcome payload is a decision's first version and a definite result: what
    the history credits (inspected, positive or negative)."""
    return (
        payload.get("version") == 1
        and bool(payload["inspected"])
        and payload["result"] != "inconclusive"
    )


class Follower:
    """Applies other writers' rows of a shared ledger to ``state`` (see the module), from the
    seq ``after`` on, every ``interval`` seconds once :meth:`start`-ed; ``watchlist`` gives the
    watchlist serving (route families are identified with it, as live)."""

    def __init__(
        self,
        ledger: Ledger,
        state: EntityState,
        watchlist: Callable[[], Watchlist],
        after: int,
        interval: float,
    ) -> None:
        self._ledger, self._state, self._watchlist = ledger, state, watchlist
        self._store = open_store(ledger.location)
        self.interval = interval
        self.cursor = after  # the last seq applied; under _lock
        self._lock = threading.Lock()  # one writer of the history: this or the live path
        self._newest: dict[str, int] = {}  # shipment id -> seq of the record remembered
        self._heap: list[tuple[int, str]] = []  # the same, by seq, to drop them
        self._floors: dict[int, int] = {}  # live batches in flight -> the cursor when they began
        self._tokens = itertools.count()
        self._own: deque[tuple[int, int]] = deque()  # own seq ranges not yet passed
        self._view: LedgerView | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._health_lock = threading.Lock()
        self._caught_up = time.monotonic()
        self._lag_rows = self._followed = self._failures = 0
        self._delay = Tally(FOLLOW_DELAY_BUCKETS)
        self._last_problem = ""
        ledger.track_own()

    # ----------------------------------------------------------------------- the live path

    @contextlib.contextmanager
    def live(self) -> Iterator[Callable[[Keyed, Sequence[int | None]], None]]:
        """Around one live batch, from before its decisions are appended: gives the function
        that remembers them (``keyed`` with each row's seq, None where its write failed)."""
        with self._lock:
            token = next(self._tokens)
            self._floors[token] = self.cursor  # every seq the batch gets is above it
        try:
            yield self._remember_own
        finally:
            with self._lock:
                del self._floors[token]

    def _remember_own(self, keyed: Keyed, seqs: Sequence[int | None]) -> None:
        with self._lock:
            self._remember(keyed, dict(zip(keyed.shipment_id, seqs, strict=True)))

    def _remember(self, keyed: Keyed, seqs: dict[str, int | None]) -> None:
        """Add the rows of ``keyed`` no later row of the same id has been (under ``_lock``)."""
        newest = self._newest
        keep = []
        for i, shipment_id in enumerate(keyed.shipment_id):
            seq = seqs[shipment_id]
            if seq is not None and newest.get(shipment_id, 0) < seq:
                newest[shipment_id] = seq
                heapq.heappush(self._heap, (seq, shipment_id))
                keep.append(i)
        if keep:
            self._state.add_shipments(keyed if len(keep) == len(keyed) else keyed.take(keep))

    def _drop_passed(self) -> None:
        """Forget the seqs no row can come below any more (under ``_lock``)."""
        low = min([self.cursor, *self._floors.values()])
        heap, newest = self._heap, self._newest
        while heap and heap[0][0] <= low:
            seq, shipment_id = heapq.heappop(heap)
            if newest.get(shipment_id) == seq:
                del newest[shipment_id]

    # -------------------------------------------------------------------------- following

    def poll(self) -> int:
        """Apply every row committed after the cursor; the rows read. Raises what the store
        raises (the next poll opens a new connection)."""
        started = time.monotonic()
        if self._view is None:
            self._view = self._store.reader()
        read, whole = 0, True
        try:
            rows = self._view.rows(self.cursor + 1)
            while whole and (chunk := list(itertools.islice(rows, _CHUNK))):
                read += len(chunk)
                whole = self._apply(chunk)  # False at a gap: the rest on the next poll
        except BaseException:
            self._close_view()
            raise
        with self._lock:
            self._drop_passed()
        with self._health_lock:
            self._lag_rows = read
            if whole:
                self._caught_up = started
        return read

    def _is_own(self, seq: int) -> bool:
        own = self._own
        while own and own[0][1] < seq:
            own.popleft()
        return bool(own) and own[0][0] <= seq

    def _apply(self, chunk: list[Row]) -> bool:
        """Apply ``chunk`` (rows in seq order from the cursor on); False when it stopped at a
        gap in the seqs (a row not yet visible: never expected, as commits are in seq order)."""
        self._own.extend(self._ledger.take_own())  # after the rows were read: all of theirs
        decisions: dict[str, tuple[int, dict[str, Any]]] = {}
        outcomes: list[tuple[str, datetime, bool]] = []
        followed: list[str] = []
        expected = self.cursor + 1
        whole = True
        for row in chunk:
            if row.seq != expected:
                whole = False
                break
            expected += 1
            own = self._is_own(row.seq)
            if row.kind == "decision" and not own:
                payload = json.loads(row.payload)
                decisions[payload["shipment"]["shipment_id"]] = (row.seq, payload)
            elif row.kind == "outcome":
                payload = json.loads(row.payload)
                if definite_first(payload):
                    at = datetime.fromisoformat(row.recorded_at)
                    shipment_id = payload.get("shipment_id") or self._shipment_of(row.decision_id)
                    outcomes.append((shipment_id, at, payload["result"] == "positive"))
            if not own:
                followed.append(row.recorded_at)
        keyed = self._keyed([p for _, p in decisions.values()]) if decisions else None
        with self._lock:
            if keyed is not None:
                self._remember(keyed, {s: seq for s, (seq, _) in decisions.items()})
            for shipment_id, at, positive in outcomes:
                self._state.add_outcome(shipment_id, at, positive)
            self.cursor = expected - 1
        self._observe(followed)
        return whole

    def _keyed(self, payloads: list[dict[str, Any]]) -> Keyed:
        shipments, goods = decision_frames(payloads)
        return Keyed.from_frame(context_rows(shipments, goods, self._watchlist()))

    def _shipment_of(self, decision_id: str) -> str:
        """The shipment id of a decision (for an outcome row that does not name it)."""
        assert self._view is not None
        for row in self._view.rows_for(decision_id):
            if row.kind == "decision":
                return str(json.loads(row.payload)["shipment"]["shipment_id"])
        return ""  # no such decision: the state credits nothing to an unknown id

    def _observe(self, recorded: list[str]) -> None:
        now = datetime.now(UTC)
        delays = [(now - datetime.fromisoformat(at)).total_seconds() for at in recorded]
        with self._health_lock:
            self._followed += len(delays)
            for delay in delays:
                self._delay.observe(max(0.0, delay))

    # ------------------------------------------------------------------------ its thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as error:
                with self._health_lock:
                    self._failures += 1
                problem = f"{type(error).__name__}: {error}"
                if problem != self._last_problem:  # once per distinct problem, not per poll
                    log.error("ledger follow failed; retrying every interval", exc_info=error)
                self._last_problem = problem
            else:
                self._last_problem = ""

    def health(self) -> FollowHealth:
        with self._health_lock:
            return FollowHealth(
                applied=self.cursor,
                lag_rows=self._lag_rows,
                lag_seconds=max(0.0, time.monotonic() - self._caught_up),
                followed=self._followed,
                delay=self._delay.snapshot(),
                failures=self._failures,
            )

    def _close_view(self) -> None:
        view, self._view = self._view, None
        if view is not None:
            with contextlib.suppress(Exception):
                view.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._close_view()
