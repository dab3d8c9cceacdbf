"""The floor and the ceiling of the comparison, served by ``python -m bench.peers --serve
bare|empty`` on Centinela's own proto:

- **bare grpc.aio + lightgbm**: ``ScoreShipment`` turns a precomputed feature row into an array
  and calls ``booster.predict`` on it: a model server with none of Centinela's pipeline.
- **empty RPC**: an empty ``Decision`` for every request: what the transport, the client and
  the machine cost alone.

Both answer a ``ScoreShipments`` stream in batches of ``STREAM_BATCH``, as Centinela does by
default.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from scoring.lgbm import lgb
from server.pb import risk_scoring_pb2 as pb
from server.pb import risk_scoring_pb2_grpc as pb_grpc

STREAM_BATCH = 64  # the bare server scores a stream in batches, as Centinela does by default

Context = grpc.aio.ServicerContext[Any, Any]


def row_scorer(model: Path, rows_file: Path) -> Callable[[int], list[float]]:
    """A function scoring the next ``n`` feature rows (round the file), each time made an array
    as a request would be."""
    rows: list[list[float]] = np.load(rows_file).tolist()
    booster = lgb.Booster(model_file=str(model))
    turn = itertools.count()

    def score(n: int) -> list[float]:
        matrix = np.array([rows[next(turn) % len(rows)] for _ in range(n)], dtype=np.float64)
        return [float(s) for s in booster.predict(matrix, num_threads=1)]

    return score


async def batches(
    requests: AsyncIterator[pb.ScoreShipmentRequest],
) -> AsyncIterator[list[pb.ScoreShipmentRequest]]:
    """A stream in batches of STREAM_BATCH, as both servers answer it: answering each
    message as it comes costs the empty server more than the bare one's batches."""
    pending: list[pb.ScoreShipmentRequest] = []
    async for request in requests:
        pending.append(request)
        if len(pending) == STREAM_BATCH:
            yield pending
            pending = []
    if pending:
        yield pending


class Unscored(pb_grpc.RiskScoringServicer):
    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Context
    ) -> pb.RecordOutcomeResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "a benchmark peer")

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: Context) -> pb.ModelInfo:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "a benchmark peer")


class Bare(Unscored):
    def __init__(self, score: Callable[[int], list[float]]) -> None:
        self.score = score

    async def ScoreShipment(
        self, request: pb.ScoreShipmentRequest, context: Context
    ) -> pb.Decision:
        (risk,) = self.score(1)
        return pb.Decision(shipment_id=request.shipment.shipment_id, risk_score=risk)

    async def ScoreShipments(
        self, request_iterator: AsyncIterator[pb.ScoreShipmentRequest], context: Context
    ) -> AsyncIterator[pb.Decision]:
        async for batch in batches(request_iterator):
            for r, risk in zip(batch, self.score(len(batch)), strict=True):
                yield pb.Decision(shipment_id=r.shipment.shipment_id, risk_score=risk)


class Empty(Unscored):
    async def ScoreShipment(
        self, request: pb.ScoreShipmentRequest, context: Context
    ) -> pb.Decision:
        return pb.Decision()

    async def ScoreShipments(
        self, request_iterator: AsyncIterator[pb.ScoreShipmentRequest], context: Context
    ) -> AsyncIterator[pb.Decision]:
        async for batch in batches(request_iterator):
            for _ in batch:
                yield pb.Decision()


async def serve_peer(kind: str, model: Path, rows_file: Path) -> None:
    """Serve the bare (``kind`` "bare") or the empty server on a free port until SIGTERM or
    SIGINT; the port goes to stdout as ``{"listening": PORT}``."""
    servicer = Bare(row_scorer(model, rows_file)) if kind == "bare" else Empty()
    server = grpc.aio.server()
    pb_grpc.add_RiskScoringServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"listening": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(1)
