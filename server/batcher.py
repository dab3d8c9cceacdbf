"""Adaptive batching across calls: concurrent scoring calls are scored together.

One :class:`Batcher` per server (the servicer's). Each ``ScoreShipment`` call, and each
micro-batch of a ``ScoreShipments`` stream, is an entry in one queue; a single consumer task
takes whatever is queued, up to ``max_size`` shipments, and scores it with one
:meth:`~scoring.service.ScoringService.score_each` in a worker thread (one feature plan, one
model predict, one wait for the ledger's commit), then hands each caller its own results.

With ``max_wait_us`` 0 (the default) nothing ever waits for company: a lone call is dispatched
at once, and calls that arrive while a batch is being scored queue up and form the next one,
so batches grow with the load by themselves (the adaptive batching of MLServer, and Triton's
dynamic batcher with no queue delay). With ``max_wait_us`` > 0 a batch with room left waits up
to that long for more before it is scored.

Every call keeps what it had alone:

- its caller: each shipment is ledgered with the caller of the call that sent it;
- its deadline: a call whose deadline passes while queued is answered DeadlineExceeded and
  neither scored nor ledgered; in a batch, each shipment's own deadline is checked before it is
  scored and again before it is stored (``score_each`` takes one deadline per shipment);
- its errors: an invalid shipment is that call's InvalidInput alone;
- a caller that goes away: before its batch is dispatched it is dropped unscored; after, the
  decisions it was given are ledgered and logged as not delivered, with their ids.

A batch holding a single unary call is scored by :meth:`~scoring.service.ScoringService.score`,
exactly as a call was before batching; a stream's micro-batch is one entry, never split, so the
stream's order and its one answer per message are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from features.errors import DeadlineExceeded, Unavailable
from features.records import Shipment
from scoring.caller import Caller
from scoring.decisions import Decision
from scoring.service import ScoringService
from server.metrics import Metrics

log = logging.getLogger(__name__)

Result = Decision | Exception
"""One shipment's answer: its decision, or the error that is its alone."""


def decision_ids(results: Sequence[object]) -> list[str]:
    return [r.decision_id for r in results if isinstance(r, Decision)]


def report_undelivered(ids: Sequence[str], why: str) -> None:
    """Decisions are ledgered before the reply; when the reply cannot go out, say which."""
    if ids:
        log.warning(
            "%d decided and ledgered, not delivered: %s",
            len(ids),
            why,
            extra={"decision_ids": list(ids)},
        )


@dataclass(eq=False)
class _Entry:
    """One call's shipments waiting in the queue, and the future its caller awaits."""

    shipments: list[Shipment]
    caller: Caller | None
    deadline: float | None
    unary: bool  # a ScoreShipment call: scored by service.score when alone in its batch
    future: asyncio.Future[list[Result]] = field(repr=False)


class Batcher:
    """Scores the shipments of concurrent calls together; see the module docstring.

    Driven from the event loop thread only. The consumer task exists while there is work and
    ends when the queue is empty; :meth:`close` stops it at shutdown.

    ``batches``, ``timers_armed`` and ``sizes`` (the last 1,024 batch sizes) say what it did:
    how many batches were dispatched, how many of them waited for company, and how big they
    were."""

    def __init__(
        self,
        service: ScoringService,
        max_size: int = 64,
        max_wait_us: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        if max_size < 1 or max_wait_us < 0:
            raise ValueError("max_size must be >= 1 and max_wait_us >= 0")
        self.service = service
        self.max_size = max_size
        self.max_wait_s = max_wait_us / 1_000_000
        self.metrics = metrics
        self._queue: deque[_Entry] = deque()
        self._arrived = asyncio.Event()
        self._consumer: asyncio.Task[None] | None = None
        self.batches = 0
        self.timers_armed = 0
        self.sizes: deque[int] = deque(maxlen=1024)

    @property
    def queued(self) -> int:
        """Calls waiting for a batch."""
        return sum(1 for entry in self._queue if not entry.future.done())

    async def submit(
        self, shipment: Shipment, caller: Caller | None, deadline: float | None
    ) -> Decision:
        """Score one call's shipment with whatever else is queued: its Decision, or its error
        raised (InvalidInput, DeadlineExceeded, ...)."""
        (result,) = await self._submit([shipment], caller, deadline, unary=True)
        if isinstance(result, Exception):
            raise result
        return result

    async def submit_many(
        self, shipments: Sequence[Shipment], caller: Caller | None, deadline: float | None
    ) -> list[Result]:
        """Score a stream's micro-batch with whatever else is queued, kept together and in
        order: one result per shipment, an error being that shipment's (DeadlineExceeded
        for one whose deadline passed while a batch with other calls was scored). Raises
        DeadlineExceeded when the deadline passed before they were scored, or while they
        were scored alone, and the batch's error when scoring failed as a whole."""
        return await self._submit(list(shipments), caller, deadline, unary=False)

    async def _submit(
        self,
        shipments: list[Shipment],
        caller: Caller | None,
        deadline: float | None,
        *,
        unary: bool,
    ) -> list[Result]:
        if deadline is not None and time.monotonic() >= deadline:
            raise DeadlineExceeded("the call's deadline passed before it was scored")
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(shipments, caller, deadline, unary, future))
        self._arrived.set()
        if self._consumer is None or self._consumer.done():
            # A context of its own: the consumer serves every caller, not the first one's.
            self._consumer = asyncio.get_running_loop().create_task(
                self._drain(), name="centinela-batcher", context=contextvars.Context()
            )
        try:
            return await future
        except asyncio.CancelledError:
            # Answered just as the caller went away: what it was given was ledgered.
            if future.done() and not future.cancelled() and future.exception() is None:
                report_undelivered(decision_ids(future.result()), "the call was cancelled")
            raise

    async def close(self) -> None:
        """Stop the consumer (at shutdown, after the calls have drained). A batch being
        scored finishes in its thread and its callers still get their answers; calls still
        queued are answered UNAVAILABLE."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None and not consumer.done():
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        queued, self._queue = list(self._queue), deque()
        _fail(queued, Unavailable("the server is shutting down"))

    # --------------------------------------------------------------------------- the consumer

    async def _drain(self) -> None:
        """Form and score batches until the queue is empty."""
        while self._queue:
            batch: list[_Entry] = []
            try:
                size, full = self._take(batch, 0)
                if batch and self.max_wait_s > 0 and not full:
                    self.timers_armed += 1
                    await self._wait_for_company(batch, size)
                batch = [entry for entry in batch if not entry.future.done()]
            except asyncio.CancelledError:
                _fail(batch, Unavailable("the server is shutting down"))
                raise
            except Exception as error:  # pragma: no cover - forming a batch does not raise
                log.error("the batcher failed to form a batch", exc_info=error)
                _fail(batch, Unavailable("the call could not be scored; retry it"))
                continue
            if batch:
                await self._dispatch(batch)

    def _take(self, batch: list[_Entry], size: int) -> tuple[int, bool]:
        """Move queued entries into ``batch`` in arrival order while they fit; answer those
        whose caller has gone (nothing to do) or whose deadline has passed (DeadlineExceeded,
        not scored). Returns the batch's size in shipments and whether it is full (at
        ``max_size``, or the next entry does not fit)."""
        now = time.monotonic()
        while self._queue:
            entry = self._queue[0]
            if entry.future.done():  # the caller went away while queued: nothing was scored
                self._queue.popleft()
                continue
            if entry.deadline is not None and now >= entry.deadline:
                self._queue.popleft()
                entry.future.set_exception(
                    DeadlineExceeded("the call's deadline passed while it was queued")
                )
                continue
            n = len(entry.shipments)
            if batch and size + n > self.max_size:
                return size, True
            self._queue.popleft()
            batch.append(entry)
            size += n
            if size >= self.max_size:
                return size, True
        return size, False

    async def _wait_for_company(self, batch: list[_Entry], size: int) -> None:
        """Take arrivals into ``batch`` until it is full or ``max_wait_s`` has passed."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.max_wait_s
        while (remaining := until - loop.time()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return
            size, full = self._take(batch, size)
            if full:
                return

    async def _dispatch(self, batch: list[_Entry]) -> None:
        """Score ``batch`` in a worker thread and answer each entry with its own results.
        Cancelled (the server is stopping), the thread still finishes and its callers are
        answered then."""
        shipments = [s for entry in batch for s in entry.shipments]
        self.batches += 1
        self.sizes.append(len(shipments))
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(shipments))
        running = asyncio.ensure_future(asyncio.to_thread(self._work(batch, shipments)))
        try:
            await asyncio.wait((running,))  # neither raises its error nor cancels it
        except asyncio.CancelledError:
            running.add_done_callback(partial(_answer, batch, len(shipments)))
            raise
        _answer(batch, len(shipments), running)

    def _work(self, batch: list[_Entry], shipments: list[Shipment]) -> Callable[[], Any]:
        """What the worker thread runs for ``batch``: one ``score_each`` with a caller and a
        deadline per shipment; a unary call alone, ``score`` as before batching."""
        if len(batch) == 1:
            entry = batch[0]
            score = self.service.score if entry.unary else self.service.score_each
            work = partial(score, shipments, entry.caller)
            return work if entry.deadline is None else partial(work, deadline=entry.deadline)
        callers = [entry.caller for entry in batch for _ in entry.shipments]
        deadlines = [entry.deadline for entry in batch for _ in entry.shipments]
        work = partial(self.service.score_each, shipments, callers)
        if any(d is not None for d in deadlines):
            work = partial(work, deadline=deadlines)
        return work


def _fail(batch: list[_Entry], error: Exception) -> None:
    """Answer every entry of ``batch`` still waiting with ``error``: nothing was scored."""
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(error)


def _answer(batch: list[_Entry], total: int, done: asyncio.Future[Any]) -> None:
    """Give each entry of ``batch`` its slice of the batch's results (or the batch's error);
    a caller that has gone away has its decisions logged as not delivered."""
    if done.cancelled():
        error: BaseException | None = Unavailable("the batch was not scored")
    else:
        error = done.exception()
    results: list[Result] = []
    if error is None:
        results = list(done.result())
        if len(results) != total:
            error = RuntimeError(f"{len(results)} results for {total} shipments")
    start = 0
    for entry in batch:
        mine = results[start : start + len(entry.shipments)]
        start += len(entry.shipments)
        if entry.future.done():
            report_undelivered(decision_ids(mine), "the call was cancelled")
        elif error is not None:
            entry.future.set_exception(error)
        else:
            entry.future.set_result(mine)
