"""Thin gRPC servicers: convert the request, call the core, convert the answer.

Errors are raised, never mapped here (see :mod:`server.interceptors`), except in the
``ScoreShipments`` stream, where one bad shipment must not end the stream: its Decision carries
the error instead. Scoring is CPU work, so it runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from grpc import aio

from features.errors import CentinelaError, InvalidInput
from features.vocab import port_label
from scoring.service import Decision, ScoringService
from server import converters
from server.errors import log_unexpected
from server.metrics import Metrics
from server.pb import admin_pb2, admin_pb2_grpc
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

Context = aio.ServicerContext[Any, Any]


class RiskScoringServicer(pb_grpc.RiskScoringServicer):
    def __init__(self, service: ScoringService, metrics: Metrics) -> None:
        self.service = service
        self.metrics = metrics

    async def _score_one(self, request: pb.ScoreShipmentRequest) -> pb.Decision:
        try:
            shipment = converters.request_shipment(request)
            decisions = await asyncio.to_thread(self.service.score, [shipment])
        except InvalidInput:
            self.metrics.invalid_shipments.inc()
            raise
        decision = decisions[0]
        self._observe(decision)
        return converters.decision_to_proto(decision)

    def _observe(self, decision: Decision) -> None:
        port = port_label(decision.port_of_entry)
        self.metrics.decisions.labels(port, decision.lane).inc()
        self.metrics.risk_score.labels(port).observe(decision.risk_score)
        for hit in decision.watchlist_hits:
            self.metrics.watchlist_hits.labels(hit.match_type).inc()

    async def ScoreShipment(
        self, request: pb.ScoreShipmentRequest, context: Context
    ) -> pb.Decision:
        return await self._score_one(request)

    async def ScoreShipments(
        self, request_iterator: AsyncIterator[pb.ScoreShipmentRequest], context: Context
    ) -> AsyncIterator[pb.Decision]:
        """Micro-batched: whatever has arrived while the last batch was scored forms the next
        batch (up to ``stream_batch_max``), so a fast manifest is scored many at a time and a
        slow one still gets each answer as soon as it is scored. Order is kept."""
        limit = self.service.settings.stream_batch_max
        queue: asyncio.Queue[pb.ScoreShipmentRequest | None] = asyncio.Queue(maxsize=2 * limit)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await queue.put(request)
            finally:
                await queue.put(None)

        reader = asyncio.create_task(read())
        try:
            finished = False
            while not finished:
                first = await queue.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < limit and not queue.empty():
                    item = queue.get_nowait()
                    if item is None:
                        finished = True
                        break
                    batch.append(item)
                for response in await self._score_batch(batch):
                    yield response
        finally:
            reader.cancel()

    async def _score_batch(self, batch: list[pb.ScoreShipmentRequest]) -> list[pb.Decision]:
        shipments, errors = [], {}
        for i, request in enumerate(batch):
            try:
                shipments.append(converters.request_shipment(request))
            except CentinelaError as error:
                errors[i] = error
        try:
            results: list[Decision | Exception] = list(
                await asyncio.to_thread(self.service.score_each, shipments)
            )
        except Exception as error:
            log_unexpected(error, "ScoreShipments")
            results = [error] * len(shipments)
        scored = iter(results)
        out = []
        for i, request in enumerate(batch):
            result = errors.get(i) or next(scored)
            if isinstance(result, Decision):
                self._observe(result)
                self.metrics.stream_messages.labels("scored").inc()
                out.append(converters.decision_to_proto(result))
            else:
                if isinstance(result, InvalidInput):
                    self.metrics.invalid_shipments.inc()
                self.metrics.stream_messages.labels("error").inc()
                out.append(converters.error_decision(request.shipment.shipment_id, result))
        self.metrics.stream_batch_size.observe(len(batch))
        return out

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Context
    ) -> pb.RecordOutcomeResponse:
        receipt = await asyncio.to_thread(
            self.service.record_outcome, converters.outcome_from_proto(request)
        )
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
