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

from features.errors import InvalidInput
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
        async for request in request_iterator:
            try:
                yield await self._score_one(request)
            except Exception as error:
                log_unexpected(error, "ScoreShipments")
                self.metrics.stream_messages.labels("error").inc()
                yield converters.error_decision(request.shipment.shipment_id, error)
                continue
            self.metrics.stream_messages.labels("scored").inc()

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
