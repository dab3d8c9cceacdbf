"""Thin gRPC servicers: convert the request, call the core, convert the answer.

Errors are raised, never mapped here (see :mod:`server.interceptors`), except in the
``ScoreShipments`` stream, where one bad shipment must not end the stream: its Decision carries
the error instead, whatever the error (an undecodable message, bad fields, a bug). Scoring is
CPU work, so it runs in a worker thread, off the event loop, and only while the call's
deadline has not passed: work nobody waits for any more is neither scored nor ledgered.
Concurrent calls, and the micro-batches of streams, are scored together by the servicer's
:class:`~server.batcher.Batcher` (one per server), each call keeping its own answer, caller,
deadline and errors.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grpc import aio

from features.errors import DeadlineExceeded, InvalidInput
from features.records import Shipment
from features.vocab import port_label
from scoring.decisions import Decision
from scoring.service import ScoringService
from server import converters
from server.auth import current_caller
from server.batcher import Batcher, report_undelivered
from server.errors import INTERNAL_MESSAGE, Undecodable, log_unexpected
from server.limits import deadline_of
from server.metrics import Metrics
from server.pb import admin_pb2, admin_pb2_grpc
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Context = aio.ServicerContext[Any, Any]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "centinela_deadline", default=None
)
"""The deadline (:func:`time.monotonic`) of the scoring call being served; each RPC runs in
its own task, so this is that call's."""


Request = pb.ScoreShipmentRequest | Undecodable
"""What a stream delivers: a request, or bytes that did not parse (see server.errors)."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """The request stream is over; ``error`` if reading it failed."""

    error: BaseException | None = None


class RiskScoringServicer(pb_grpc.RiskScoringServicer):
    def __init__(
        self,
        service: ScoringService,
        metrics: Metrics,
        *,
        batch_max_size: int = 64,
        batch_max_wait_us: int = 0,
        stream_batch_max: int = 64,
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.stream_batch_max = stream_batch_max
        self.batcher = Batcher(service, batch_max_size, batch_max_wait_us, metrics)

    async def close(self) -> None:
        """Stop the batcher (at shutdown, once calls have drained)."""
        await self.batcher.close()

    async def _score_one(self, request: pb.ScoreShipmentRequest) -> pb.Decision:
        try:
            shipment = converters.request_shipment(request)
            decision = await self.batcher.submit(shipment, current_caller(), _deadline.get())
        except InvalidInput:
            self.metrics.invalid_shipments.inc()
            raise
        try:
            self._observe(decision)
            return converters.decision_to_proto(decision)
        except Exception:
            report_undelivered([decision.decision_id], "its answer could not be built")
            raise

    def _observe(self, decision: Decision) -> None:
        scored = decision.scored
        port = port_label(scored.port_of_entry)
        self.metrics.decisions.labels(port, scored.lane).inc()
        if scored.exam:
            self.metrics.exams.labels(port, scored.exam).inc()
        self.metrics.risk_score.labels(port).observe(scored.risk_score)
        for hit in scored.watchlist_hits:
            self.metrics.watchlist_hits.labels(hit.match_type).inc()
        shadow = scored.shadow
        if shadow is not None:
            self.metrics.shadow_decisions.labels(port, scored.lane, shadow.lane).inc()
            difference = abs(scored.risk_score - shadow.risk_score)
            self.metrics.shadow_score_difference.labels(port).observe(difference)

    async def ScoreShipment(
        self, request: pb.ScoreShipmentRequest, context: Context
    ) -> pb.Decision:
        _deadline.set(deadline_of(context))
        return await self._score_one(request)

    async def ScoreShipments(
        self, request_iterator: AsyncIterator[Request], context: Context
    ) -> AsyncIterator[pb.Decision]:
        """Micro-batched: whatever has arrived while the last batch was scored forms the next
        batch (up to ``stream_batch_max``), so a fast manifest is scored many at a time and a
        slow one still gets each answer as soon as it is scored. Order is kept. Each
        micro-batch goes through the server's batcher, scored together with concurrent calls.

        Every request gets exactly one Decision: a bad or undecodable one, or one whose
        scoring failed unexpectedly, gets a Decision with ``error`` set, and the stream goes
        on. Nothing between scoring (which ledgers) and the reply can raise, so a ledgered
        decision is delivered unless the caller goes away, which is logged with its ids.
        Past the call's deadline the stream ends DEADLINE_EXCEEDED, nothing more scored."""
        _deadline.set(deadline_of(context))
        limit = self.stream_batch_max
        queue: asyncio.Queue[Request | _Ended] = asyncio.Queue(maxsize=2 * limit)

        async def read() -> None:
            ended = _Ended()
            try:
                async for request in request_iterator:
                    await queue.put(request)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # cancelled by the stream below: nobody waits for the end
            except Exception as error:
                ended = _Ended(error)
            await queue.put(ended)

        reader = asyncio.create_task(read())
        try:
            ended: _Ended | None = None
            while ended is None:
                first = await queue.get()
                if isinstance(first, _Ended):
                    ended = first
                    break
                batch = [first]
                while len(batch) < limit and not queue.empty():
                    item = queue.get_nowait()
                    if isinstance(item, _Ended):
                        ended = item
                        break
                    batch.append(item)
                responses = await self._score_batch(batch)
                sent = 0
                try:
                    for response in responses:
                        yield response
                        sent += 1
                finally:
                    if sent < len(responses):
                        report_undelivered(
                            [r.decision_id for r in responses[sent:] if r.decision_id],
                            "the stream ended before they were sent",
                        )
            if ended.error is not None:
                # Reading the requests failed: end the stream with that status, after every
                # answer to what was read.
                raise ended.error
        finally:
            reader.cancel()

    async def _score_batch(self, batch: list[Request]) -> list[pb.Decision]:
        """One Decision per request of ``batch``, in order; raises only DeadlineExceeded."""
        results: list[Decision | BaseException | None] = [None] * len(batch)
        shipments: list[Shipment] = []
        positions: list[int] = []
        for i, request in enumerate(batch):
            if isinstance(request, Undecodable):
                results[i] = request.error()
                continue
            try:
                shipments.append(converters.request_shipment(request))
                positions.append(i)
            except Exception as error:
                log_unexpected(error, "ScoreShipments")
                results[i] = error
        if shipments:
            scored: Sequence[Decision | BaseException]
            try:
                scored = await self.batcher.submit_many(
                    shipments, current_caller(), _deadline.get()
                )
            except DeadlineExceeded:
                raise  # nobody waits for this batch: end the stream
            except Exception as error:
                log_unexpected(error, "ScoreShipments")
                scored = [error] * len(shipments)
            for i, result in zip(positions, scored, strict=True):
                results[i] = result
        self.metrics.stream_batch_size.observe(len(batch))
        return [
            self._answer(request, result) for request, result in zip(batch, results, strict=True)
        ]

    def _answer(self, request: Request, result: Decision | BaseException | None) -> pb.Decision:
        """The Decision for one request of a stream; never raises."""
        try:
            if isinstance(result, Decision):
                try:
                    response = converters.decision_to_proto(result)
                    self._observe(result)
                except Exception as error:
                    log_unexpected(error, "ScoreShipments")
                    # Decided and ledgered: the caller gets its id with the error.
                    response = converters.error_decision(
                        result.scored.shipment_id, error, decision_id=result.decision_id
                    )
                    self.metrics.stream_messages.labels("error").inc()
                else:
                    self.metrics.stream_messages.labels("scored").inc()
                return response
            failure = result if result is not None else RuntimeError("no result")
            if isinstance(failure, InvalidInput):
                self.metrics.invalid_shipments.inc()
            self.metrics.stream_messages.labels("error").inc()
            return converters.error_decision(converters.request_shipment_id(request), failure)
        except Exception as error:  # pragma: no cover - the conversions above do not raise
            log_unexpected(error, "ScoreShipments")
            decision_id = result.decision_id if isinstance(result, Decision) else ""
            return pb.Decision(
                decision_id=decision_id,
                error=pb.Error(code="INTERNAL", message=INTERNAL_MESSAGE),
            )

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Context
    ) -> pb.RecordOutcomeResponse:
        receipt = await asyncio.to_thread(
            self.service.record_outcome, converters.outcome_from_proto(request), current_caller()
        )
        if not receipt.duplicate:  # an idempotent repeat records nothing new
            self.metrics.outcomes.labels(request.result or "not_inspected").inc()
        return converters.receipt_to_proto(receipt)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: Context) -> pb.ModelInfo:
        return converters.model_info_to_proto(self.service.model_info())


class AdminServicer(admin_pb2_grpc.AdminServicer):
    """Reloads run in a worker thread; a failure keeps what is serving and is reported."""

    def __init__(
        self,
        service: ScoringService,
        metrics: Metrics,
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.on_change = on_change

    async def _reload(self, target: str, action: Callable[[], object]) -> admin_pb2.ReloadResponse:
        try:
            await asyncio.to_thread(action)
        except Exception:
            self.metrics.reloads.labels(target, "failed").inc()
            raise
        self.metrics.reloads.labels(target, "ok").inc()
        await self.on_change()
        model_version, watchlist_version, rules_version = self.service.versions
        return admin_pb2.ReloadResponse(
            model_version=model_version,
            watchlist_version=watchlist_version,
            rules_version=rules_version,
        )

    async def ReloadModel(
        self, request: admin_pb2.ReloadModelRequest, context: Context
    ) -> admin_pb2.ReloadResponse:
        return await self._reload("model", self.service.reload_model)

    async def ReloadWatchlists(
        self, request: admin_pb2.ReloadWatchlistsRequest, context: Context
    ) -> admin_pb2.ReloadResponse:
        return await self._reload("watchlist", self.service.reload_watchlist)
